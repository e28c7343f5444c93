"""Shared CLI plumbing: the root Typer app and the one place user errors become messages."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


def progress_bar(title: str):  # -> rich.progress.Progress
    """A progress bar on stderr (``title``, each task's description, done/total, elapsed, remaining), shown only when
    stderr is a terminal and erased when done, so pipes and ``--json`` output stay clean."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(f"[bold]{escape(title)}[/] {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        redirect_stdout=False,  # the bar is on stderr; stdout (tables, --json) is never touched
        redirect_stderr=False,
        disable=not err_console.is_terminal,
    )


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
    except OSError as exc:  # a path the user named (or the disk) refused: not a bug
        if exc.filename is None or os.environ.get("FASTREASONSEG_DEBUG"):
            _bug(exc)
        err_console.print(f"error: cannot access {exc.filename}: {exc.strerror or exc}", highlight=False, markup=False)
        sys.exit(1)
    except Exception as exc:  # last resort: a bug, not a user error; keep the traceback behind a switch
        _bug(exc)


def _bug(exc: BaseException) -> None:
    if os.environ.get("FASTREASONSEG_DEBUG"):
        raise exc
    err_console.print(
        f"error: unexpected {type(exc).__name__}: {exc}\n"
        "  (this is a bug in fastreasonseg; set FASTREASONSEG_DEBUG=1 for the traceback and report it)",
        highlight=False,
        markup=False,
    )
    sys.exit(2)


def check_output_file(path: Path, force: bool) -> None:
    """Before any work: ``path`` may be written (absent, or ``force``; its folder can be created and written)."""
    from fastreasonseg.api import ensure_writable_dir

    if path.is_dir():
        fail(f"cannot write to {path}: it is a folder")
    if (path.exists() or path.is_symlink()) and not force:
        fail(f"{path} already exists; pass --force to overwrite it")
    ensure_writable_dir(path.parent)
