"""``closest_to(A, B[, k])``: the object of A whose centre is nearest the centre of B (the k-th nearest with k).

The camera is not an object of the twin: ``closest_to(A, camera)`` (or viewer, me, us) is ``nearest(A[, k])``,
unless the twin has an object of that name."""

from __future__ import annotations

from fastreasonseg.reasoning.program import Call, Names
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


VIEWER = frozenset({"camera", "the camera", "viewer", "the viewer", "me", "us", "you", "lens", "photographer"})


def _viewer(ctx: ToolContext, args: tuple) -> Call | None:
    """``nearest(A[, k])`` when B names the viewer and no object of the twin is called that."""
    b = args[1] if len(args) > 1 else None
    if not isinstance(b, Names) or not b.names or not all(n.strip().lower() in VIEWER for n in b.names):
        return None
    if ctx.matcher is not None and ctx.matcher.match(ctx.scene, b.names).ids:
        return None
    return Call("nearest", (args[0], *args[2:]))


TOOL = Tool("closest_to", (SET, ANCHOR, ORDINAL), _run, "A's closest to B", rewrite=_viewer)
