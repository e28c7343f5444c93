"""``closest_to(A, B[, k])``: the object of A whose centre is nearest the centre of B (the k-th nearest with k)."""

from __future__ import annotations

from fastreasonseg.reasoning.tools.base import ANCHOR, ORDINAL, SET, Selection, Tool, ToolContext
from fastreasonseg.reasoning.tools.geometry import centre_distance
from fastreasonseg.reasoning.tools.kinds import anchor_of, ordinal_word


def _run(ctx: ToolContext, a: Selection, b: Selection, k: int | None = None) -> Selection:
    k = k or 1
    anchor = anchor_of(ctx, b)
    if anchor is None:
        return Selection((), f"no anchor: {b.why}" if b.why else "no anchor")
    scene = ctx.scene
    ranked = []
    for i in a.ids:
        if i == anchor.id:
            continue
        o = scene[i]
        shared = [f for f in o.frames if f in anchor.frames]
        if shared:
            d = sum(centre_distance(o.frames[f], anchor.frames[f]) for f in shared) / len(shared)
            ranked.append((d, i))
    if not ranked:
        return Selection((), a.why or f"nothing to compare with {anchor.cite()}")
    ranked.sort()
    if k > len(ranked):
        return Selection((), f"only {len(ranked)} to rank")
    return Selection.of([ranked[k - 1][1]], f"{ordinal_word(k)}closest to {anchor.cite()}")


TOOL = Tool("closest_to", (SET, ANCHOR, ORDINAL), _run, "A's closest to B")
