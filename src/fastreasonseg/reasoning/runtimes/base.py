"""The one interface every LLM runtime (llama.cpp, transformers, OpenAI-compatible HTTP) implements.

The executor never builds chat-template strings itself: it hands the runtime the system and user
messages plus the assistant text generated so far (the rollout prefix), and the runtime renders its
chat template, continues the assistant turn, and stops at the first stop string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from fastreasonseg.errors import FastReasonSegError


class RuntimeUnavailableError(FastReasonSegError):
    """A runtime cannot answer: an endpoint that is unreachable, times out, fails or returns nonsense."""


@dataclass(frozen=True)
class ChatPrompt:
    """The conversation before the assistant turn."""

    system: str
    user: str


@dataclass
class Completion:
    """What one call to :meth:`Runtime.complete` produced."""

    text: str
    """Generated text, including the stop string when generation stopped on one."""
    finish_reason: Literal["stop", "length", "error"]
    stopped_on: str | None = None
    prompt_tokens: int = 0
    """Tokens the model had to read for this call (after any prefix-cache reuse: ``prompt_tokens - cached_tokens``
    were actually evaluated)."""
    cached_tokens: int = 0
    completion_tokens: int = 0
    prefill_ms: float = 0.0
    decode_ms: float = 0.0
    error: str | None = None
    total_ms: float = 0.0
    """Wall time of the call (for HTTP runtimes that cannot split it into prefill and decode)."""
    notes: tuple[str, ...] = ()
    """What the runtime had to assume to produce this (e.g. a stop string the server stripped and did not name,
    restored from the open tag): for the result's notes."""


@runtime_checkable
class Runtime(Protocol):
    """A causal LM that continues an assistant turn."""

    name: str

    def complete(
        self,
        prompt: ChatPrompt,
        assistant_prefix: str,
        *,
        stop: list[str],
        max_tokens: int,
        grammar: str | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
        cache_prefix: str | None = None,
    ) -> Completion:
        """Continue ``assistant_prefix`` after ``prompt``; ``grammar`` is a GBNF grammar the continuation must match.

        ``cache_prefix`` is the leading part of ``prompt.user`` that later questions about the same twin share (the
        twin view): runtimes that can keep an evaluated prefix keep this one. Optional: the executor passes it only to
        runtimes whose ``complete`` accepts it.
        """
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` with this model's tokenizer; raises
        :class:`~fastreasonseg.reasoning.runtimes.tokens.TokenCountUnavailable` when it cannot count (never a silent
        estimate: :class:`~fastreasonseg.reasoning.runtimes.tokens.TokenCounter` estimates and says so)."""
        ...
