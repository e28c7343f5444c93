"""Token counting and context size: the runtime's own numbers, or an estimate that says so."""

from __future__ import annotations

import pytest

from fastreasonseg.reasoning.runtimes.tokens import (
    CHARS_PER_TOKEN,
    ContextWindow,
    TokenCounter,
    TokenCountUnavailable,
    context_window,
    estimate_tokens,
)


class Words:
    """Counts words; fails (as a server without a tokenizer does) after ``ok`` calls."""

    def __init__(self, ok: int = 10**9, error: Exception | None = None) -> None:
        self.ok, self.calls = ok, 0
        self.error = error or TokenCountUnavailable("the server has no tokenizer endpoint")

    def count_tokens(self, text: str) -> int:
        self.calls += 1
        if self.calls > self.ok:
            raise self.error
        return len(text.split())


@pytest.mark.parametrize(("text", "n"), [("", 0), ("a", 1), ("abc", 1), ("abcd", 2), ("x" * 30, 10)])
def test_estimate(text, n):
    assert CHARS_PER_TOKEN == 3 and estimate_tokens(text) == n


def test_exact_counts_have_no_note():
    count = TokenCounter(Words())
    assert count("a b c") == 3 and count("d") == 1
    assert count.exact and count.note is None


def test_a_failing_tokenizer_switches_to_the_estimate_for_good_and_says_why():
    rt = Words(ok=1)
    count = TokenCounter(rt)
    assert count("a b c") == 3
    assert count("abcdef") == 2  # the tokenizer fails: estimate
    assert count("a b c") == 2  # ... and stays an estimate (one prompt's counts stay comparable)
    assert rt.calls == 2 and count.estimates == 2 and not count.exact
    assert count.note == "token counts are estimates (3 characters a token): the server has no tokenizer endpoint"


def test_any_tokenizer_error_is_named_in_the_note():
    count = TokenCounter(Words(ok=0, error=RuntimeError("vocab not loaded")))
    assert count("abcdef") == 2 and count.note.endswith("RuntimeError: vocab not loaded")


def test_a_runtime_without_tokenizer():
    count = TokenCounter(object())
    assert count.note is None  # nothing counted yet
    assert count("abcdefg") == 3 and count.note.endswith("the runtime has no tokenizer")


class Ctx:
    def __init__(self, **attrs):
        self.__dict__.update(attrs)


@pytest.mark.parametrize(
    ("runtime", "expected"),
    [
        (Ctx(n_ctx=4096), ContextWindow(4096, True)),
        (Ctx(n_ctx=None, context_size=8192), ContextWindow(8192, True)),
        (Ctx(n_ctx=lambda: 1024), ContextWindow(1024, True)),
        (Ctx(context_tokens=0), ContextWindow(2048, False)),
        (Ctx(n_ctx=True), ContextWindow(2048, False)),  # a flag is not a size
        (Ctx(n_ctx=lambda: 1 / 0), ContextWindow(2048, False)),
        (None, ContextWindow(2048, False)),
    ],
)
def test_context_window(runtime, expected):
    got = context_window(runtime, 2048)
    assert got == expected
    if got.reported:
        assert got.note is None
    else:
        assert got.note == "the runtime does not report its context size: the prompt is fitted to 2048 tokens"
