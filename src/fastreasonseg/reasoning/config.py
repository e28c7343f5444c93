"""Knobs of the reasoner (the rollout executor)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReasonerConfig:
    """How a rollout is generated and checked. The defaults suit SmolLM2-135M / Qwen3-0.6B on a CPU."""

    max_rounds: int = 2
    """Most ``<plan>`` → ``<results>`` rounds; after that the model must answer."""
    max_new_tokens: int = 256
    """Most tokens of one model turn (one call to the runtime)."""
    max_total_tokens: int = 640
    """Most generated tokens over the whole rollout (all turns)."""
    constrained: bool = True
    """Decode with the GBNF grammar (:mod:`fastreasonseg.reasoning.grammar`): the rollout always parses."""
    restrict_ids: bool = True
    """With ``constrained``: the grammar only allows the twin's ids in answers and tool args."""
    reason_chars: int = 300
    """With ``constrained``: most characters of the ``<reason>`` (an untrained model never closes it)."""
    max_calls_per_plan: int = 3
    """Most tool calls in one ``<plan>``; the rest get an error."""
    max_answer_ids: int = 16
    """With ``constrained``: most ids in the answer."""
    strict: bool = True
    """Structural format problems (missing / repeated / misplaced tags, a model-written ``<results>``) void the
    answer (no target). Problems *inside* a plan never do: they are answered with errors in ``<results>``."""
    temperature: float = 0.0
    seed: int | None = None
    max_query_chars: int = 2000
    """Longer queries are truncated to this many characters (and the result says so)."""
    context_tokens: int = 2048
    """The runtime's context size, when the runtime does not tell (``n_ctx`` / ``context_size`` attribute)."""
    query_reserve_tokens: int = 160
    """Tokens kept for the question when the view is fitted to the context. The view does not depend on the
    question's length (so the prompt prefix stays cacheable) unless a question is longer than this."""
    max_view_instances: int = 60
    """Most instances (or tracks) listed in the view, whatever the budget."""
    tools: tuple[str, ...] | None = None
    """Tool names the model may call (``None`` = the default set; ``()`` = no tools)."""
    examples: bool = True
    """Put the short worked examples in the system prompt."""
