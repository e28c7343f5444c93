"""Shared CLI plumbing: the root Typer app and the one place user errors become messages."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from fastreasonseg.errors import FastReasonSegError

REASONER_HELP = (
    "Reasoner spec: 'student' (the default: SmolLM2-135M on llama.cpp with the shipped student adapter, offline), "
    "'base' (the same model zero-shot: faster, less accurate), llamacpp[:MODEL.gguf][?lora=ADAPTER.gguf], "
    "transformers:HUB_ID_OR_DIR[?adapter=DIR], openai:URL?model=NAME."
)

app = typer.Typer(
    name="fastreasonseg",
    help="Reasoning segmentation for images and videos over a digital twin.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> None:
    """Print an error message (no traceback) and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def main() -> None:
    """Entry point of the ``fastreasonseg`` console script."""
    try:
        app()
    except FastReasonSegError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except MemoryError:
        err_console.print("error: out of memory (try a smaller input, --stride or a smaller model)")
        sys.exit(1)
    except Exception as exc:  # last resort: a bug, not a user error; keep the traceback behind a switch
        if os.environ.get("FASTREASONSEG_DEBUG"):
            raise
        err_console.print(
            f"error: unexpected {type(exc).__name__}: {exc}\n"
            "  (this is a bug in fastreasonseg; set FASTREASONSEG_DEBUG=1 for the traceback and report it)",
            highlight=False,
            markup=False,
        )
        sys.exit(2)
