"""Knobs of the reasoner (the rollout executor)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReasonerConfig:
    """How a rollout is generated and checked. The defaults suit SmolLM2-135M / Qwen3-0.6B on a CPU."""

    max_rounds: int = 2
    """Most ``<plan>`` → ``<results>`` rounds. A plan is always run once; the model plans again only after a
    plan that failed (an error in ``<results>``), while rounds remain."""
    max_new_tokens: int = 96
    """Most tokens of one model turn (one call to the runtime)."""
    max_total_tokens: int = 256
    """Most generated tokens over the whole rollout (all turns)."""
    constrained: bool = True
    """Decode with the GBNF grammar (:mod:`fastreasonseg.reasoning.grammar`): the rollout always parses."""
    restrict_ids: bool = True
    """With ``constrained``: ``#id`` references in a plan can only be the twin's ids."""
    reason_chars: int = 160
    """With ``constrained``: most characters of the ``<reason>`` (an untrained model never closes it)."""
    max_answer_ids: int = 16
    """Most ids in the answer (and listed in ``<results>``)."""
    similar_names: bool = True
    """Ground a plan's names to labels by sentence-embedding similarity when no label, alternative label, synonym
    or category matches (reasoning/grounding.py; loads all-MiniLM-L6-v2 on first use)."""
    hints: int = 5
    """Objects listed after the question as "Likely: ...": the labels closest in meaning to the question
    (all-MiniLM-L6-v2), a prior for the model to pick from (0 turns the hint off)."""
    similarity_threshold: float = 0.75
    """Least cosine similarity between a plan's name and a label for a similar-name match."""
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
    """Operators plans may use (``None`` = every operator of reasoning/tools)."""
    examples: bool = True
    """Put the short worked examples in the system prompt."""
