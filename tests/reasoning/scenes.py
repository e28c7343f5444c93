"""Hand-built twins for the plan-language tests, and the transformations the property tests apply.

Objects are given by pixel boxes ``(x0, y0, x1, y1)`` (upper corner exclusive, as :func:`mask_box` returns them) on a
100 x 100 frame by default, so one pixel is 0.01 of the frame and every answer can be computed by hand from the
operator's definition. A depth is given exactly (the instance's :class:`DepthStats` is that value), not through a
depth map. :func:`mirrored` flips a twin left<->right and :func:`renumbered` maps its ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastreasonseg.reasoning.grounding import NameMatcher
from fastreasonseg.reasoning.program import Outcome, evaluate, parse_program
from fastreasonseg.reasoning.tools import ToolContext
from fastreasonseg.twin import DigitalTwin, Frame, Instance, Source
from fastreasonseg.twin.masks import encode_mask
from fastreasonseg.twin.schema import RLE, DepthStats

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Thing:
    """One object of an image twin (or of one video frame)."""

    id: int
    label: str
    box: Box
    depth: float | None = None
    score: float | None = 0.9
    alts: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Track:
    """One track of a video twin: its box (and depth) in every frame it is seen in."""

    id: int
    label: str
    boxes: Mapping[int, Box]
    depths: Mapping[int, float] = field(default_factory=dict)
    score: float | None = 0.9


def box_mask(h: int, w: int, box: Box) -> np.ndarray:
    x0, y0, x1, y1 = box
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def exact_depth(d: float | None) -> DepthStats | None:
    return None if d is None else DepthStats(mean=d, std=0.0, min=d, max=d)


def instance(o: Thing, h: int = 100, w: int = 100) -> Instance:
    inst = Instance.from_mask(o.id, o.label, box_mask(h, w, o.box), score=o.score, alt_labels=list(o.alts))
    assert inst is not None, f"empty box for {o}"
    return inst.model_copy(update={"depth": exact_depth(o.depth)})


def image(*objs: Thing, width: int = 100, height: int = 100, name: str = "scene.png") -> DigitalTwin:
    """An image twin of these objects."""
    twin = DigitalTwin(
        source=Source(kind="image", name=name, width=width, height=height),
        frames=[Frame(index=0, instances=[instance(o, height, width) for o in objs])],
    )
    twin.validate_all()
    return twin


def video(n_frames: int, *tracks: Track, fps: float = 2.0, width: int = 100, height: int = 100) -> DigitalTwin:
    """A video twin of ``n_frames`` frames (``fps`` frames a second) showing these tracks."""
    frames = []
    for k in range(n_frames):
        insts = [
            instance(Thing(t.id, t.label, t.boxes[k], t.depths.get(k), t.score), height, width)
            for t in tracks
            if k in t.boxes
        ]
        frames.append(Frame(index=k, time=k / fps, instances=insts))
    twin = DigitalTwin(
        source=Source(kind="video", name="clip.mp4", width=width, height=height, fps=fps, num_frames=n_frames),
        frames=frames,
    )
    twin.validate_all()
    return twin


def centred(cx: float, cy: float, size: int = 10) -> Box:
    """A ``size`` x ``size`` box whose centre is at ``(cx, cy)`` (fractions of a 100 x 100 frame)."""
    x, y = round(100 * cx), round(100 * cy)
    half = size // 2
    return (x - half, y - half, x - half + size, y - half + size)


def mirrored(twin: DigitalTwin) -> DigitalTwin:
    """The twin flipped left<->right: masks and boxes mirrored, everything else (ids, depth, area) kept."""
    w = twin.source.width
    frames = []
    for fr in twin.frames:
        insts = []
        for inst in fr.instances:
            m = inst.mask.decode()[:, ::-1]
            x0, y0, x1, y1 = inst.box
            insts.append(inst.model_copy(update={"box": (w - x1, y0, w - x0, y1), "mask": RLE(**encode_mask(m))}))
        frames.append(fr.model_copy(update={"instances": insts}))
    out = twin.model_copy(update={"frames": frames})
    out.validate_all()
    return out


def renumbered(twin: DigitalTwin, mapping: Mapping[int, int]) -> DigitalTwin:
    """The twin with every id ``i`` replaced by ``mapping[i]`` (a one-to-one map)."""
    frames = [
        fr.model_copy(update={"instances": [i.model_copy(update={"id": mapping[i.id]}) for i in fr.instances]})
        for fr in twin.frames
    ]
    out = twin.model_copy(update={"frames": frames})
    out.validate_all()
    return out


def context(twin: DigitalTwin, **kw: Any) -> ToolContext:
    """The operators' context over ``twin`` with a name matcher that needs no sentence model."""
    kw.setdefault("matcher", NameMatcher(use_embeddings=False))
    return ToolContext(twin=twin, **kw)


def run(plan: str, twin: DigitalTwin | ToolContext, **kw: Any) -> Outcome:
    """Parse ``plan`` (it must parse) and evaluate it on ``twin`` (or on a prepared context)."""
    expr, err = parse_program(plan)
    assert err is None, f"{plan!r} does not parse: {err}"
    ctx = twin if isinstance(twin, ToolContext) else context(twin, **kw)
    return evaluate(expr, ctx)


def ids(plan: str, twin: DigitalTwin | ToolContext, **kw: Any) -> list[int]:
    """The ids ``plan`` selects (it must evaluate without an error)."""
    out = run(plan, twin, **kw)
    assert out.error is None, f"{plan!r}: {out.error}"
    return list(out.selection.ids)


def why(plan: str, twin: DigitalTwin | ToolContext, **kw: Any) -> str:
    """What ``plan`` says: the error, or the selection's facts."""
    out = run(plan, twin, **kw)
    return out.error if out.error is not None else out.selection.why


def ids_of(twin: DigitalTwin, label: str) -> list[int]:
    return sorted({i.id for fr in twin.frames for i in fr.instances if i.label == label})


def every_id(twin: DigitalTwin) -> Sequence[int]:
    return twin.track_ids


# ---------------------------------------------------------------------------------------------- strategies
def plan_strategies():
    """Hypothesis strategies: ``(names, expressions)``, where ``expressions`` draws canonical plan-language trees
    of the default registry's operators within the parser's limits (what :func:`parse_program` returns)."""
    from hypothesis import strategies as st

    from fastreasonseg.reasoning.program import MAX_DEPTH, MAX_NODES, AllObjects, Call, Names, Ref
    from fastreasonseg.reasoning.tools import MAX_VARIADIC, default_registry

    name = st.from_regex(r"[a-z0-9][a-z0-9'.&-]{0,7}( [a-z0-9'.&-]{1,8}){0,2}", fullmatch=True).filter(
        lambda s: s != "all"
    )
    name_list = st.lists(name, min_size=1, max_size=3, unique=True)
    leaf = st.one_of(
        name_list.map(lambda ns: Names(tuple(ns))), st.just(AllObjects()), st.integers(0, 999_999).map(Ref)
    )

    def calls(children):
        options = []
        for tool in default_registry():
            parts = []
            for p in tool.params:
                if p.kind == "set":
                    parts.append(children)
                elif p.kind == "ordinal":
                    parts.append(st.integers(1, 9) if not p.optional else st.none() | st.integers(1, 9))
                elif p.kind == "choice":
                    parts.append(st.sampled_from(p.choices))
                elif p.kind == "text":
                    parts.append(name)
                else:
                    parts.append(name_list.map("|".join))
            extra = st.lists(children, max_size=MAX_VARIADIC - len(tool.params)) if tool.variadic else st.just([])
            options.append(
                st.tuples(st.just(tool.name), st.tuples(*parts), extra).map(lambda t: Call(t[0], (*t[1], *t[2])))
            )
        return st.one_of(options)

    def size(e, depth=0):
        """(deepest operator nesting, nodes) as the parser counts them."""
        if isinstance(e, Call):
            subs = [size(a, depth + 1) for a in e.args if isinstance(a, (Call, Names, Ref, AllObjects))]
            return max([depth + 1, *(d for d, _ in subs)]), 1 + sum(n for _, n in subs)
        return depth, 0 if isinstance(e, AllObjects) else 1

    def within(e) -> bool:
        d, n = size(e)
        return d <= MAX_DEPTH and n <= MAX_NODES

    return name, st.recursive(leaf, calls, max_leaves=6).filter(within)
