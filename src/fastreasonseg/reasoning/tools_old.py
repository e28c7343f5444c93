"""The tools a rollout's ``<plan>`` can call: typed functions over the digital twin (DESIGN §3).

The same :class:`ToolRegistry` serves training and inference. Every tool takes a pydantic args
model (strict: JSON integers for ids, no extra keys), reads — and for ``detect``/``relabel``
refines — the *working copy* of the twin held by a :class:`ToolContext`, and returns a compact JSON
object (few tokens: the model reads it back). A tool never raises to the executor: problems (an
unknown id, a missing image, a failing model) become ``{"error": "..."}``.

====================  ===========================================================================
``detect(text)``      open-vocabulary detection of a phrase on the source frames (needs the images
                      and a perception object); adds new instances, or relabels an existing one
                      whose mask overlaps a detection.
``relabel(id, candidates)``  re-score candidate names for an instance's box with the labeller;
                      without one, match the candidates against the twin's label + alt labels.
``relation(a, b)``    where ``a`` is relative to ``b``: left of / right of / above / below /
                      in front of / behind / overlaps / inside / contains (boxes, masks, depth).
``attributes(id)``    size class and area %, position in the frame, depth rank, dominant colour.
``motion(id)``        videos: direction, displacement, speed, approaching/receding, frames seen.
====================  ===========================================================================
"""

from __future__ import annotations

import colorsys
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, get_args, get_origin

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fastreasonseg.reasoning.grammar import GENERIC_ARGS_RULE
from fastreasonseg.twin.schema import DepthStats, DigitalTwin, Frame, Instance

__all__ = [
    "AttributesArgs",
    "DetectArgs",
    "MotionArgs",
    "PerceptionLike",
    "RelabelArgs",
    "RelationArgs",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "default_registry",
]


class ToolError(Exception):
    """A tool cannot do what it was asked; the message goes back to the model inside ``<results>``."""


class PerceptionLike(Protocol):
    """What ``detect``/``relabel`` need from perception (``fastreasonseg.perception.pipeline.Perception``)."""

    def detect(self, image: np.ndarray, phrases: Sequence[str], threshold: float) -> list[tuple[Any, Any, Any]]:
        """``[(Detection, bool mask (H, W), DepthStats | None)]`` for the phrases found in ``image``."""
        ...

    def classify(
        self, image: np.ndarray, boxes: Sequence[Any], candidates: Sequence[str]
    ) -> list[list[tuple[str, float]]]:
        """For each box, the candidates with scores, best first."""
        ...


@dataclass
class ToolContext:
    """What the tools work on.

    ``twin`` is the working copy the tools refine (the executor copies the caller's twin, which is never
    mutated). ``frames`` maps frame index → ``(H, W, 3)`` uint8 RGB image; ``perception`` is the
    ``Perception`` facade (or anything with its ``detect``/``classify``). Both are optional: a twin
    loaded from JSON has neither, and the tools that need them say so. Callers of the executor may leave
    ``twin`` out: :meth:`Reasoner.ask <fastreasonseg.reasoning.executor.Reasoner.ask>` fills in its own copy.
    """

    twin: DigitalTwin | None = None  # type: ignore[assignment]  # set by the executor (a working copy)
    frames: Mapping[int, np.ndarray] | None = None
    perception: PerceptionLike | None = None
    detect_threshold: float = 0.15
    """Score threshold of ``detect``."""
    overlap_iou: float = 0.5
    """``detect``: a detection whose mask overlaps an existing instance this much relabels it."""
    max_detect_frames: int = 8
    """``detect`` on a video runs on at most this many frames (evenly spaced) that have an image."""
    log: list[str] = field(default_factory=list)
    """What the tools changed in the twin (human-readable, for diagnostics)."""

    def image(self, frame_index: int) -> np.ndarray | None:
        if not self.frames:
            return None
        img = self.frames.get(frame_index)
        return None if img is None else np.asarray(img)


# ---------------------------------------------------------------------------------------------- args
class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DetectArgs(_Args):
    text: str = Field(min_length=1, max_length=80, description="phrase to find")


class RelabelArgs(_Args):
    id: int = Field(ge=0)
    candidates: list[str] = Field(min_length=1, max_length=8, description="names to score")


class RelationArgs(_Args):
    a: int = Field(ge=0)
    b: int = Field(ge=0)


class AttributesArgs(_Args):
    id: int = Field(ge=0)


class MotionArgs(_Args):
    id: int = Field(ge=0)


# ---------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Tool:
    """A registered tool: ``fn(args, ctx) -> dict``; ``summary`` is its one-line description for the prompt."""

    name: str
    args_model: type[BaseModel]
    fn: Callable[[Any, ToolContext], dict]
    summary: str
    video_only: bool = False

    def signature(self) -> str:
        """Compact args signature from the JSON schema, e.g. ``{"id": int, "candidates": [str]}``."""
        props = self.args_model.model_json_schema().get("properties", {})
        parts = []
        for name, p in props.items():
            t = p.get("type")
            if t == "array":
                t = "[" + {"string": "str", "integer": "int"}.get(p.get("items", {}).get("type"), "any") + "]"
            else:
                t = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}.get(t, "any")
            parts.append(f'"{name}": {t}')
        return "{" + ", ".join(parts) + "}"

    def json_schema(self) -> dict:
        """OpenAI / TRL style function description."""
        return {"name": self.name, "description": self.summary, "parameters": self.args_model.model_json_schema()}


def _field_gbnf(annotation: Any, name: str) -> str:
    if annotation is int:
        return "id"  # every int argument of the tool set is an instance id
    if annotation is str:
        return "jstr"
    if get_origin(annotation) is list and get_args(annotation) == (str,):
        return '"[" jstr ( ", " jstr ){0,7} "]"'
    raise TypeError(f"no GBNF for field {name!r} of type {annotation!r}")


class ToolRegistry:
    """The tools a rollout may call, their descriptions and their GBNF args, and a safe ``call``."""

    def __init__(self, tools: Sequence[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def subset(self, names: Sequence[str]) -> ToolRegistry:
        unknown = [n for n in names if n not in self._tools]
        if unknown:
            raise ValueError(f"unknown tools {unknown} (known: {self.names})")
        return ToolRegistry([self._tools[n] for n in names])

    def describe(self) -> str:
        """One line per tool for the system prompt: ``name {"arg": type}: what it does``."""
        return "\n".join(f"{t.name} {t.signature()}: {t.summary}" for t in self._tools.values())

    def json_schemas(self) -> list[dict]:
        return [t.json_schema() for t in self._tools.values()]

    def gbnf_args(self) -> dict[str, str]:
        """Tool name → GBNF body of its args object (ints are instance ids: the ``id`` rule)."""
        out = {}
        for t in self._tools.values():
            fields = t.args_model.model_fields
            try:
                parts = [f'"\\"{n}\\": " {_field_gbnf(f.annotation, n)}' for n, f in fields.items()]
            except TypeError:
                out[t.name] = GENERIC_ARGS_RULE
                continue
            out[t.name] = '"{" ' + ' ", " '.join(parts) + ' "}"' if parts else '"{}"'
        return out

    def call(self, name: str, args: Any, ctx: ToolContext) -> dict:
        """Validate and run one call; every problem is returned as ``{"error": ...}``, never raised."""
        tool = self._tools.get(name)
        if tool is None:
            return {"error": f"unknown tool {str(name)[:30]!r}; tools: {', '.join(self._tools)}"}
        try:
            parsed = tool.args_model.model_validate(args)
        except ValidationError as exc:
            return {"error": f"bad args for {name}: {_describe_validation(exc)}; expected {tool.signature()}"}
        try:
            return tool.fn(parsed, ctx)
        except ToolError as exc:
            return {"error": str(exc)}
        except Exception as exc:  # a failing model or a bug must not end the rollout
            return {"error": f"{name} failed: {type(exc).__name__}: {str(exc)[:120]}"}


def _describe_validation(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ())) or "args"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}".replace("Input should be", "should be"))
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------- helpers
def _require(ctx: ToolContext, track_id: int) -> list[tuple[Frame, Instance]]:
    pairs = ctx.twin.instances_of(track_id)
    if not pairs:
        ids = ctx.twin.track_ids
        shown = ",".join(map(str, ids[:12])) + ("…" if len(ids) > 12 else "")
        raise ToolError(f"no object with id {track_id} (ids: {shown})")
    return pairs


def _pct(v: float) -> int:
    return int(round(100 * v))


def _center(box: Sequence[float]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return float(inter / union) if union else 0.0


def _box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


def _merge_alts(label: str, alts: Sequence[tuple[str, float]], extra: Sequence[tuple[str, float]]) -> list:
    seen, out = {label}, []
    for name, score in [*extra, *alts]:
        if name not in seen:
            seen.add(name)
            out.append((name, round(float(min(max(score, 0.0), 1.0)), 4)))
    return out[:4]


# ---------------------------------------------------------------------------------------------- detect
def _detect(args: DetectArgs, ctx: ToolContext) -> dict:
    text = " ".join(args.text.split())
    if ctx.perception is None or not ctx.frames:
        raise ToolError("detect needs the source image and the perception models; this twin was loaded without them")
    twin = ctx.twin
    usable = [fr for fr in twin.frames if ctx.image(fr.index) is not None]
    if not usable:
        raise ToolError("detect needs the source image of a twin frame; none of the given frames match the twin")
    if len(usable) > ctx.max_detect_frames:
        step = len(usable) / ctx.max_detect_frames
        usable = [usable[int(k * step)] for k in range(ctx.max_detect_frames)]
    h, w = twin.size
    next_id = max(twin.track_ids, default=0) + 1
    new_ids: list[int] = []
    relabelled: list[int] = []
    prev_new: list[tuple[int, tuple[float, float, float, float]]] = []  # new tracks in the previous frame
    for fr in usable:
        image = ctx.image(fr.index)
        found = ctx.perception.detect(image, [text], ctx.detect_threshold)
        this_new: list[tuple[int, tuple[float, float, float, float]]] = []
        claimed: set[int] = set()
        for det, mask, depth in found:
            m = np.asarray(mask, dtype=bool)
            if m.shape != (h, w):
                raise ToolError(f"perception returned a {m.shape[1]}x{m.shape[0]} mask for a {w}x{h} twin")
            score = float(getattr(det, "score", 0.0) or 0.0)
            best, best_iou = None, 0.0
            for inst in fr.instances:
                if inst.id in claimed:
                    continue
                iou = _mask_iou(m, inst.mask.decode())
                if iou > best_iou:
                    best, best_iou = inst, iou
            if best is not None and best_iou >= ctx.overlap_iou:
                claimed.add(best.id)
                if best.label != text:
                    old = best.label
                    best.alt_labels = _merge_alts(text, best.alt_labels, [(old, best.score or 0.0)])
                    best.label = text
                    best.score = round(min(max(score, 0.0), 1.0), 4)
                    ctx.log.append(f"detect: relabelled {best.id} {old!r} -> {text!r} in frame {fr.index}")
                if best.id not in relabelled and best.id not in new_ids:
                    relabelled.append(best.id)
                continue
            inst = Instance.from_mask(0, text, m, score=score, alt_labels=list(getattr(det, "alt_labels", []) or []))
            if inst is None:
                continue
            # link to a track created on the previous processed frame when the boxes overlap
            match = max(prev_new, key=lambda p: _box_iou(p[1], inst.box), default=None)
            if match is not None and _box_iou(match[1], inst.box) > 0.3 and match[0] not in claimed:
                tid = match[0]
            else:
                tid, next_id = next_id, next_id + 1
                new_ids.append(tid)
            claimed.add(tid)
            update: dict[str, Any] = {"id": tid}
            if isinstance(depth, DepthStats):
                update["depth"] = depth
            fr.instances.append(inst.model_copy(update=update))
            this_new.append((tid, inst.box))
            ctx.log.append(f"detect: added {tid} {text!r} in frame {fr.index}")
        prev_new = this_new
    out: dict[str, Any] = {"text": text, "new": new_ids, "relabelled": relabelled}
    if not new_ids and not relabelled:
        out["found"] = 0
    return out


# ---------------------------------------------------------------------------------------------- relabel
def _norm(s: str) -> str:
    return " ".join(s.lower().replace("_", " ").split())


def _relabel(args: RelabelArgs, ctx: ToolContext) -> dict:
    pairs = _require(ctx, args.id)
    candidates = list(dict.fromkeys(" ".join(c.split()) for c in args.candidates if c.strip()))
    if not candidates:
        raise ToolError("relabel needs at least one non-empty candidate")
    with_image = [(fr, inst) for fr, inst in pairs if ctx.image(fr.index) is not None]
    if ctx.perception is not None and with_image:
        fr, inst = max(with_image, key=lambda p: p[1].area)
        scored = ctx.perception.classify(ctx.image(fr.index), [inst.box], candidates)[0]
        scored = sorted(((str(n), float(s)) for n, s in scored), key=lambda p: -p[1])
        best, best_score = scored[0]
        for _, i in pairs:
            if i.label != best:
                i.alt_labels = _merge_alts(best, i.alt_labels, [(i.label, i.score or 0.0), *scored[1:]])
                i.label = best
                i.score = round(min(max(best_score, 0.0), 1.0), 4)
        ctx.log.append(f"relabel: {args.id} -> {best!r}")
        return {"id": args.id, "label": best, "scores": {n: _pct(s) for n, s in scored}}
    # fallback: match the candidates against what the twin already knows
    known: dict[str, float] = {}
    for _, i in pairs:
        for name, score in [(i.label, i.score if i.score is not None else 1.0), *i.alt_labels]:
            known[_norm(name)] = max(known.get(_norm(name), 0.0), float(score))
    scores: dict[str, int] = {}
    for c in candidates:
        nc = _norm(c)
        s = known.get(nc)
        if s is None:  # partial match: a candidate word in a label, or a label word in the candidate
            cw = set(nc.split())
            partial = [v / 2 for k, v in known.items() if cw & set(k.split())]
            s = max(partial, default=0.0)
        scores[c] = _pct(s)
    best = max(scores, key=lambda c: scores[c])
    return {
        "id": args.id,
        "label": best if scores[best] > 0 else None,
        "scores": scores,
        "note": "no labeller: candidates matched against the twin's labels",
    }


# ---------------------------------------------------------------------------------------------- relation
def _frame_relation(a: Instance, b: Instance, w: int, h: int) -> list[str]:
    rel: list[str] = []
    (ax, ay), (bx, by) = _center(a.box), _center(b.box)
    tol_x, tol_y = 0.02 * w, 0.02 * h
    if ax < bx - tol_x:
        rel.append("left of")
    elif ax > bx + tol_x:
        rel.append("right of")
    if ay < by - tol_y:
        rel.append("above")
    elif ay > by + tol_y:
        rel.append("below")
    if a.depth is not None and b.depth is not None:
        dz = a.depth.mean - b.depth.mean
        if dz < -0.03:
            rel.append("in front of")
        elif dz > 0.03:
            rel.append("behind")
    if _box_iou(a.box, b.box) > 0:
        ma, mb = a.mask.decode(), b.mask.decode()
        inter = int(np.logical_and(ma, mb).sum())
        if a.area and inter >= 0.9 * a.area:
            rel.append("inside")
        elif b.area and inter >= 0.9 * b.area:
            rel.append("contains")
        elif inter > 0:
            rel.append("overlaps")
        else:  # boxes overlap, masks do not: touching / interleaved
            rel.append("next to")
    return rel


def _relation(args: RelationArgs, ctx: ToolContext) -> dict:
    if args.a == args.b:
        raise ToolError("relation needs two different ids")
    pa, pb = _require(ctx, args.a), _require(ctx, args.b)
    fb = {fr.index: inst for fr, inst in pb}
    shared = [(fr.index, inst, fb[fr.index]) for fr, inst in pa if fr.index in fb]
    if not shared:
        raise ToolError(f"{args.a} and {args.b} are never in the same frame")
    h, w = ctx.twin.size
    if len(shared) == 1:
        idx, a, b = shared[0]
        out: dict[str, Any] = {"a": args.a, "b": args.b, "a_is": _frame_relation(a, b, w, h)}
        if ctx.twin.is_video:
            out["frame"] = idx
        return out
    per = [_frame_relation(a, b, w, h) for _, a, b in shared]
    counts: dict[str, int] = {}
    for rel in per:
        for r in rel:
            counts[r] = counts.get(r, 0) + 1
    mostly = [r for r, c in counts.items() if 2 * c >= len(per)]
    out = {"a": args.a, "b": args.b, "frames": f"{shared[0][0]}-{shared[-1][0]}", "shared": len(shared)}
    out["a_is"] = mostly
    if per[0] != mostly:
        out["first"] = per[0]
    if per[-1] != mostly:
        out["last"] = per[-1]
    return out


# ---------------------------------------------------------------------------------------------- attributes
def size_class(area_fraction: float) -> str:
    """Size class of an object covering ``area_fraction`` of the frame."""
    for limit, name in ((0.01, "tiny"), (0.05, "small"), (0.2, "medium"), (0.5, "large")):
        if area_fraction < limit:
            return name
    return "huge"


def position_name(cx: float, cy: float) -> str:
    """Position of a normalised centre in a 3x3 grid: ``top-left`` … ``center`` … ``bottom-right``."""
    col = "left" if cx < 1 / 3 else ("right" if cx > 2 / 3 else "")
    row = "top" if cy < 1 / 3 else ("bottom" if cy > 2 / 3 else "")
    if row and col:
        return f"{row}-{col}"
    return row or col or "center"


_HUES = ((15, "red"), (40, "orange"), (70, "yellow"), (165, "green"), (195, "cyan"), (255, "blue"), (290, "purple"))


def colour_name(rgb: Sequence[float]) -> str:
    """A basic colour name for an RGB colour (0..255)."""
    r, g, b = (min(max(float(c), 0.0), 255.0) / 255.0 for c in rgb[:3])
    hue, light, sat = colorsys.rgb_to_hls(r, g, b)
    if light < 0.12:
        return "black"
    if light > 0.9:
        return "white"
    if sat < 0.18 or (sat < 0.3 and 0.2 < light < 0.8 and max(r, g, b) - min(r, g, b) < 0.12):
        return "gray"
    deg = hue * 360
    if 15 <= deg < 45 and light < 0.4:
        return "brown"
    if (deg >= 290 or deg < 15) and light > 0.65:
        return "pink"
    for limit, name in _HUES:
        if deg < limit:
            return name
    if deg < 335:
        return "pink" if light > 0.5 else "purple"
    return "red"


def _attributes(args: AttributesArgs, ctx: ToolContext) -> dict:
    pairs = _require(ctx, args.id)
    fr, inst = max(pairs, key=lambda p: p[1].area)  # the frame where the object is seen best
    h, w = ctx.twin.size
    cx, cy = _center(inst.box)
    frac = inst.area / (h * w)
    out: dict[str, Any] = {"id": args.id, "label": inst.label, "size": size_class(frac), "area": _pct(frac)}
    out["pos"] = position_name(cx / w, cy / h)
    with_depth = sorted((i for i in fr.instances if i.depth is not None), key=lambda i: i.depth.mean)
    if inst.depth is not None and with_depth:
        rank = next(k for k, i in enumerate(with_depth) if i.id == inst.id) + 1
        out["depth_rank"] = f"{rank}/{len(with_depth)}"  # 1 = nearest
    image = ctx.image(fr.index)
    if image is not None and image.ndim == 3 and image.shape[:2] == (h, w):
        px = image[inst.mask.decode()][:, :3]
        if len(px):
            out["colour"] = colour_name(np.median(px, axis=0))
    if ctx.twin.is_video:
        out["frame"] = fr.index
    return out


# ---------------------------------------------------------------------------------------------- motion
def direction_name(dx: float, dy: float, still: float = 0.03) -> str:
    """Direction of a displacement in normalised image coordinates (y grows downwards)."""
    if math.hypot(dx, dy) < still:
        return "still"
    horiz = "right" if dx > 0 else "left"
    vert = "down" if dy > 0 else "up"
    if abs(dx) > 2 * abs(dy):
        return horiz
    if abs(dy) > 2 * abs(dx):
        return vert
    return f"{vert}-{horiz}"


def _motion(args: MotionArgs, ctx: ToolContext) -> dict:
    twin = ctx.twin
    if not twin.is_video or len(twin.frames) < 2:
        raise ToolError("motion needs a video; this twin is a single image")
    _require(ctx, args.id)
    t = twin.track_summary(args.id)
    dx, dy = t.displacement
    out: dict[str, Any] = {
        "id": args.id,
        "frames": f"{t.first_frame}-{t.last_frame}",
        "seen": f"{t.num_frames}/{len(twin.frames)}",
        "dir": direction_name(dx, dy),
        "dx": _pct(dx),
        "dy": _pct(dy),
        "speed": _pct(t.speed),
    }
    trend = t.depth_trend
    if trend is not None:
        out["depth"] = "approaching" if trend < -0.05 else ("receding" if trend > 0.05 else "steady")
    return out


# ---------------------------------------------------------------------------------------------- default set
_DEFAULT_TOOLS = (
    Tool("detect", DetectArgs, _detect, "find objects matching a phrase, add them"),
    Tool("relabel", RelabelArgs, _relabel, "score candidate names for an object"),
    Tool("relation", RelationArgs, _relation, "where a is relative to b (left, above, in front...)"),
    Tool("attributes", AttributesArgs, _attributes, "size, position, depth rank, colour"),
    Tool("motion", MotionArgs, _motion, "direction, speed, approaching or receding (videos)", video_only=True),
)


def default_registry(*, video: bool | None = None) -> ToolRegistry:
    """The standard tool set; ``video=False`` leaves out the video-only tools (``motion``)."""
    return ToolRegistry([t for t in _DEFAULT_TOOLS if video is not False or not t.video_only])


def run_tool(name: str, args: Any, ctx: ToolContext, registry: ToolRegistry | None = None) -> tuple[dict, float]:
    """Run one call through ``registry`` (default set); returns (result, milliseconds)."""
    t0 = time.perf_counter()
    res = (registry or default_registry()).call(name, args, ctx)
    return res, (time.perf_counter() - t0) * 1000
