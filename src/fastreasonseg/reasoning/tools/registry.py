"""The operator registry: every module of this package that defines ``TOOL`` is an operator.

Adding an operator is adding one file ``reasoning/tools/<name>.py`` with ``TOOL = Tool(...)``: the grammar
(:func:`fastreasonseg.reasoning.grammar.plan_gbnf`), the prompt's operator list (:meth:`ToolRegistry.describe`),
the plan parser and the format reward all read the registry.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Sequence
from functools import lru_cache

from fastreasonseg.reasoning.tools.base import Tool

#: operators listed first in the prompt (the rest follow in name order)
_PROMPT_ORDER = ("union", "exclude")


class ToolRegistry:
    """The operators a plan may use."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, tool: Tool) -> None:
        if not isinstance(tool, Tool):
            raise TypeError(f"not a Tool: {tool!r}")
        if tool.name in self._tools:
            raise ValueError(f"operator {tool.name!r} is already registered")
        if not tool.name.isidentifier() or tool.name == "all":
            raise ValueError(f"bad operator name {tool.name!r}")
        self._tools[tool.name] = tool

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def __iter__(self):
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def subset(self, names: Sequence[str]) -> ToolRegistry:
        unknown = [n for n in names if n not in self._tools]
        if unknown:
            raise ValueError(f"unknown operators {unknown} (known: {', '.join(self.names)})")
        return ToolRegistry([self._tools[n] for n in names])

    def for_media(self, video: bool) -> ToolRegistry:
        """The operators that apply to an image (``video=False``) or a video twin."""
        return ToolRegistry(t for t in self if not (t.video_only and not video) and not (t.image_only and video))

    def describe(self) -> str:
        """The operator list of the system prompt: ``name(A, B): what it selects``, one per line."""
        return "\n".join(t.describe() for t in self)


def discover() -> list[Tool]:
    """Every ``TOOL`` defined by a module of this package, prompt order first, then by name."""
    import fastreasonseg.reasoning.tools as pkg

    found = []
    for info in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        tool = getattr(mod, "TOOL", None)
        if isinstance(tool, Tool):
            found.append(tool)
    rank = {n: k for k, n in enumerate(_PROMPT_ORDER)}
    return sorted(found, key=lambda t: (rank.get(t.name, len(rank)), t.name))


@lru_cache(maxsize=1)
def _all_tools() -> tuple[Tool, ...]:
    return tuple(discover())


def default_registry(*, video: bool | None = None) -> ToolRegistry:
    """Every operator of the package; ``video=False`` / ``True`` keeps those that apply to images / videos."""
    reg = ToolRegistry(_all_tools())
    return reg if video is None else reg.for_media(video)
