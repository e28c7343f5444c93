"""``between(A, B, C)``: the objects of A between B and C: the centre lies between theirs left to right (or top to
bottom, when B and C are one above the other), within the band their boxes span the other way."""

from __future__ import annotations

from fastreasonseg.reasoning.tools.base import ANCHOR, SET, Param, Selection, Tool, ToolContext
from fastreasonseg.reasoning.tools.kinds import anchor_of
from fastreasonseg.reasoning.tools.scene import Geom


def between(a: Geom, b: Geom, c: Geom, s: float) -> bool:
    horizontal = abs(b.cx - c.cx) >= abs(b.cy - c.cy)
    if horizontal:
        lo, hi, band = min(b.cx, c.cx), max(b.cx, c.cx), (b, c)
        pos, other = a.cx, a.cy
        top, bottom = min(g.y0 for g in band), max(g.y1 for g in band)
    else:
        lo, hi, band = min(b.cy, c.cy), max(b.cy, c.cy), (b, c)
        pos, other = a.cy, a.cx
        top, bottom = min(g.x0 for g in band), max(g.x1 for g in band)
    margin = 0.1 * (hi - lo) * s
    return lo + margin < pos < hi - margin and top <= other <= bottom


def _run(ctx: ToolContext, a: Selection, b: Selection, c: Selection) -> Selection:
    first, second = anchor_of(ctx, b, "first anchor"), anchor_of(ctx, c, "second anchor")
    if first is None or second is None:
        missing = b if first is None else c
        return Selection((), f"no anchor: {missing.why}" if missing.why else "no anchor")
    if first.id == second.id:
        return Selection((), f"both anchors are {first.cite()}")
    if not a.ids:
        return Selection((), a.why)
    scene = ctx.scene
    ids = []
    for i in a.ids:
        if i in (first.id, second.id):
            continue
        o = scene[i]
        shared = [f for f in o.frames if f in first.frames and f in second.frames]
        yes = sum(between(o.frames[f], first.frames[f], second.frames[f], ctx.slack) for f in shared)
        if shared and 2 * yes >= len(shared):  # a video: in at least half of the frames showing all three
            ids.append(i)
    phrase = f"between {first.cite()} and {second.cite()}"
    return Selection.of(ids, phrase) if ids else Selection((), f"nothing {phrase}")


TOOL = Tool("between", (SET, ANCHOR, Param("C", "set")), _run, "A between B and C")
