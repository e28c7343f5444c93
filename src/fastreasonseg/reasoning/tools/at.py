"""``at(A, place)``: the objects of A whose centre lies in that part of the frame (thirds: ``left`` is the left
third, ``top right`` the top-right ninth, ``center`` the middle ninth)."""

from __future__ import annotations

from fastreasonseg.reasoning.tools.base import SET, Selection, Tool, ToolContext
from fastreasonseg.reasoning.tools.kinds import PLACE, PLACES


def in_place(cx: float, cy: float, place: str, s: float = 1.0) -> bool:
    m = 0.02 * s  # a centre this close to a third's edge is in neither
    col = "left" if cx < 1 / 3 - m else ("right" if cx > 2 / 3 + m else ("mid" if 1 / 3 + m < cx < 2 / 3 - m else ""))
    row = "top" if cy < 1 / 3 - m else ("bottom" if cy > 2 / 3 + m else ("mid" if 1 / 3 + m < cy < 2 / 3 - m else ""))
    words = place.split()
    if words == ["center"]:
        return col == "mid" and row == "mid"
    return all(w in (col, row) for w in words)


def _run(ctx: ToolContext, a: Selection, place: str) -> Selection:
    if not a.ids:
        return Selection((), a.why)
    scene = ctx.scene
    ids = [i for i in a.ids if in_place(scene[i].mean("cx"), scene[i].mean("cy"), place, ctx.slack)]
    return Selection.of(ids, f"at the {place}") if ids else Selection((), f"nothing at the {place}")


TOOL = Tool("at", (SET, PLACE), _run, "A in that part of the picture (place: " + ", ".join(PLACES) + ")")
