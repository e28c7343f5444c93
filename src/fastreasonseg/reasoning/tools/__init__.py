"""The operators of the plan language, one file each (docs/design.md, "The plan language").

Every module here that defines ``TOOL`` is an operator: ``left.py`` is ``left(A, B)``, ``nearest.py`` is
``nearest(A[, k])``... :func:`default_registry` collects them; :mod:`fastreasonseg.reasoning.program` parses and
evaluates plans with them. The shared pieces: :mod:`.base` (parameters, context, result), :mod:`.scene` (the
twin's objects with their geometry), :mod:`.kinds` (relations, superlatives, track predicates), :mod:`.geometry`
and :mod:`.motion`.
"""

from fastreasonseg.reasoning.tools.base import (
    MAX_VARIADIC,
    Param,
    PerceptionLike,
    Selection,
    Tool,
    ToolContext,
    ToolError,
)
from fastreasonseg.reasoning.tools.registry import ToolRegistry, default_registry, discover

__all__ = [
    "MAX_VARIADIC",
    "Param",
    "PerceptionLike",
    "Selection",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "default_registry",
    "discover",
]
