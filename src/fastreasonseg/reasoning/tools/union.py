"""``union(A, B, ...)``: every object of any of the sets (multi-target answers: "the cart and whoever pushes it")."""

from __future__ import annotations

from fastreasonseg.reasoning.tools.base import ANCHOR, SET, Selection, Tool, ToolContext


def _run(ctx: ToolContext, *sets: Selection) -> Selection:
    ids = [i for s in sets for i in s.ids]
    why = "; ".join(s.why for s in sets if s.why and not s.ids)
    return Selection.of(ctx.scene.order(ids), why)


TOOL = Tool("union", (SET, ANCHOR), _run, "A or B", variadic=True)
