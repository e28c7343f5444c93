"""Token counts and context sizes for fitting a prompt to a runtime, with every fallback said out loud.

The twin view is fitted to the runtime's context window with the runtime's own tokenizer. When a runtime cannot
count (an OpenAI-compatible server without a tokenizer endpoint) or does not say how large its context is, the
prompt is fitted to an estimate instead — which changes what the model sees, so the helpers here report it:

>>> count = TokenCounter(None)
>>> count("12,34 56x78 mug")
5
>>> count.note
'token counts are estimates (3 characters a token): the runtime has no tokenizer'
>>> context_window(None, 2048).note
'the runtime does not report its context size: the prompt is fitted to 2048 tokens'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastreasonseg.errors import FastReasonSegError

CHARS_PER_TOKEN = 3
"""The estimate's characters per token (the view's digits and short words; SmolLM2 averages ~3.1 on it)."""


class TokenCountUnavailable(FastReasonSegError):
    """A runtime's ``count_tokens`` cannot count (e.g. the server has no tokenizer endpoint); the message says why."""


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: ``ceil(len(text) / CHARS_PER_TOKEN)``."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class TokenCounter:
    """``counter(text)``: tokens of ``text`` with ``runtime.count_tokens``; once that fails (it raises, or the
    runtime has none), every later count is an estimate (:func:`estimate_tokens`, so the counts of one prompt stay
    comparable) and :attr:`note` says so and why. ``runtime=None`` always estimates."""

    def __init__(self, runtime: object | None) -> None:
        self.runtime = runtime
        fn = getattr(runtime, "count_tokens", None)
        self._count = fn if callable(fn) else None
        self.reason: str | None = None if self._count is not None else "the runtime has no tokenizer"
        self.estimates = 0
        """How many counts were estimates."""

    @property
    def exact(self) -> bool:
        """True while every count so far came from the runtime's tokenizer."""
        return self.estimates == 0

    def __call__(self, text: str) -> int:
        if self._count is not None and self.reason is None:
            try:
                return int(self._count(text))
            except Exception as exc:  # any failure of the tokenizer: estimate, and say so in the note
                self.reason = str(exc) if isinstance(exc, TokenCountUnavailable) else f"{type(exc).__name__}: {exc}"
        self.estimates += 1
        return estimate_tokens(text)

    @property
    def note(self) -> str | None:
        """``None`` while the counts are exact (or nothing was estimated yet); else what a result's notes should say."""
        if not self.estimates:
            return None
        return f"token counts are estimates ({CHARS_PER_TOKEN} characters a token): {self.reason}"


@dataclass(frozen=True)
class ContextWindow:
    """How many tokens (prompt + generation) a runtime takes, and whether that was assumed."""

    tokens: int
    reported: bool
    """True when the runtime said it (``n_ctx`` / ``context_size`` / ``context_tokens``), False for the default."""

    @property
    def note(self) -> str | None:
        if self.reported:
            return None
        return f"the runtime does not report its context size: the prompt is fitted to {self.tokens} tokens"


def context_window(runtime: object | None, default: int) -> ContextWindow:
    """The runtime's context window (attribute or method ``n_ctx``, ``context_size`` or ``context_tokens``, the
    first positive int), else ``default`` with ``reported=False`` (see :attr:`ContextWindow.note`)."""
    for attr in ("n_ctx", "context_size", "context_tokens"):
        value = getattr(runtime, attr, None)
        if callable(value):
            try:
                value = value()
            except Exception:  # a method that fails tells nothing: try the next attribute, then the default
                value = None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return ContextWindow(value, True)
    return ContextWindow(int(default), False)
