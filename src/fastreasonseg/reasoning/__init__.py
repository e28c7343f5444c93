"""Reasoning over a digital twin: the rollout grammar, the tools, the prompt and the executor loop.

>>> from fastreasonseg.reasoning import Reasoner, ReasonerConfig     # doctest: +SKIP
>>> Reasoner(runtime).ask(twin, "the mug nearest the camera").ids   # doctest: +SKIP
"""

from fastreasonseg.reasoning.config import ReasonerConfig
from fastreasonseg.reasoning.executor import Reasoner, RolloutResult, ToolCallRecord, run_rollout
from fastreasonseg.reasoning.grammar import (
    ParsedRollout,
    continuation_gbnf,
    format_ok,
    format_score,
    parse_rollout,
    render_rollout,
    rollout_gbnf,
)
from fastreasonseg.reasoning.prompt import build_prompt, system_prompt
from fastreasonseg.reasoning.tools import ToolContext, ToolRegistry, default_registry

__all__ = [
    "ParsedRollout",
    "Reasoner",
    "ReasonerConfig",
    "RolloutResult",
    "ToolCallRecord",
    "ToolContext",
    "ToolRegistry",
    "build_prompt",
    "continuation_gbnf",
    "default_registry",
    "format_ok",
    "format_score",
    "parse_rollout",
    "render_rollout",
    "rollout_gbnf",
    "run_rollout",
    "system_prompt",
]
