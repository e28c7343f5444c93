"""Reasoning over a digital twin: the plan language and its operators, the rollout grammar, the prompt and the
executor loop (docs/design.md).

>>> from fastreasonseg.reasoning import Reasoner, ReasonerConfig     # doctest: +SKIP
>>> Reasoner(runtime).ask(twin, "the mug nearest the camera").ids   # doctest: +SKIP
"""

from fastreasonseg.reasoning.config import ReasonerConfig
from fastreasonseg.reasoning.executor import Reasoner, RolloutResult, ToolCallRecord, run_rollout
from fastreasonseg.reasoning.grammar import (
    ParsedRollout,
    answer_gbnf,
    format_ok,
    format_score,
    parse_rollout,
    plan_gbnf,
    reason_gbnf,
    render_rollout,
)
from fastreasonseg.reasoning.program import evaluate, format_program, parse_program
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
    "answer_gbnf",
    "build_prompt",
    "default_registry",
    "evaluate",
    "format_ok",
    "format_program",
    "format_score",
    "parse_program",
    "parse_rollout",
    "plan_gbnf",
    "reason_gbnf",
    "render_rollout",
    "run_rollout",
    "system_prompt",
]
