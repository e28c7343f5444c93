"""The shapes operators come in: relations to an anchor, superlatives, region filters and track predicates.

An operator file defines only what is particular to it (the predicate or the key) and builds its :class:`Tool`
with one of these functions, so the rules every operator of a kind shares (anchors must name exactly one object,
a video relation must hold in at least half of the shared frames, ordinals, empty sets) live here once.
"""

from __future__ import annotations

from collections.abc import Callable

from fastreasonseg.reasoning.tools.base import ANCHOR, ORDINAL, SET, Param, Selection, Tool, ToolContext, ToolError
from fastreasonseg.reasoning.tools.scene import Geom, Obj, Scene

GeomPredicate = Callable[[Geom, Geom, float], bool]
"""``holds(a, b, slack)``: ``a`` stands in the relation to the anchor ``b`` in one frame."""
TrackPredicate = Callable[[Obj, Scene, float], bool]
"""``holds(obj, scene, slack)`` for a video object."""
Key = Callable[[Obj, Scene], float | None]
"""A value to rank by (smallest first); ``None`` when the object has no such value."""

ORDINAL_WORDS = {1: "", 2: "2nd ", 3: "3rd "}


def ordinal_word(k: int) -> str:
    return ORDINAL_WORDS.get(k, f"{k}th ")


def anchor_of(ctx: ToolContext, b: Selection, what: str = "anchor") -> Obj | None:
    """The one object an anchor set names; ``None`` when it names none. Two or more: :class:`ToolError`."""
    if not b.ids:
        return None
    if len(b.ids) > 1:
        shown = ctx.scene.cite(b.ids[:6])
        raise ToolError(f"ambiguous {what}: {len(b.ids)} objects ({shown}); name one, e.g. with leftmost(...)")
    return ctx.scene[b.ids[0]]


def relation_holds(scene: Scene, a: Obj, b: Obj, holds: GeomPredicate, slack: float) -> bool:
    """``holds`` in the image, or in at least half of the frames a video shows both objects in."""
    shared = [f for f in a.frames if f in b.frames]
    if not shared:
        return False
    yes = sum(1 for f in shared if holds(a.frames[f], b.frames[f], slack))
    return 2 * yes >= len(shared)


def relation_tool(name: str, phrase: str, holds: GeomPredicate, summary: str) -> Tool:
    """``name(A, B)``: the objects of A that are ``phrase`` the one object B names."""

    def run(ctx: ToolContext, a: Selection, b: Selection) -> Selection:
        anchor = anchor_of(ctx, b)
        if anchor is None:
            return Selection((), f"no anchor: {b.why}" if b.why else "no anchor")
        if not a.ids:
            return Selection((), a.why)
        scene = ctx.scene
        ids = [i for i in a.ids if i != anchor.id and relation_holds(scene, scene[i], anchor, holds, ctx.slack)]
        if not ids:
            return Selection((), f"nothing {phrase} {anchor.cite()}")
        return Selection.of(ids, f"{phrase} {anchor.cite()}")

    return Tool(name, (SET, ANCHOR), run, summary)


def superlative_tool(name: str, key: Key, summary: str, *, video_only: bool = False, need: str = "") -> Tool:
    """``name(A[, k])``: the object of A with the smallest ``key`` (the k-th smallest with ``k``)."""

    def run(ctx: ToolContext, a: Selection, k: int | None = None) -> Selection:
        k = k or 1
        if not a.ids:
            return Selection((), a.why)
        scene = ctx.scene
        valued = [(key(scene[i], scene), i) for i in a.ids]
        known = [(v, i) for v, i in valued if v is not None]
        if not known:
            raise ToolError(f"{name} needs {need or 'a value'} and this twin has none for {scene.cite(a.ids[:4])}")
        known.sort()
        if k > len(known):
            return Selection((), f"only {len(known)} to rank, no {ordinal_word(k)}{name}")
        return Selection.of([known[k - 1][1]], f"{ordinal_word(k)}{name} of {len(known)}")

    return Tool(name, (SET, ORDINAL), run, summary, video_only=video_only)


def track_tool(name: str, holds: TrackPredicate, summary: str, phrase: str) -> Tool:
    """``name(A)``: the video objects of A whose track ``holds``."""

    def run(ctx: ToolContext, a: Selection) -> Selection:
        scene = ctx.scene
        if not scene.is_video:
            raise ToolError(f"{name} needs a video; this twin is a single image")
        if not a.ids:
            return Selection((), a.why)
        ids = [i for i in a.ids if holds(scene[i], scene, ctx.slack)]
        if not ids:
            return Selection((), f"none of {len(a.ids)} {phrase}")
        return Selection.of(ids, phrase)

    return Tool(name, (SET,), run, summary, video_only=True)


def track_key(fn: Callable[[Obj, Scene], float | None]) -> Key:
    """A key over the track of a video object (``None`` for an image object)."""
    return lambda o, s: fn(o, s) if o.track is not None else None


PLACES = ("left", "right", "top", "bottom", "center", "top left", "top right", "bottom left", "bottom right")
PLACE = Param("place", "choice", choices=PLACES)
