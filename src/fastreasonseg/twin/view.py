"""The compact text view of a twin: the only thing the LLM reads about the scene.

The reasoner's plan is evaluated by the executor, which computes positions, sizes, depth and motion exactly
(docs/design.md, "Who does what"), so the model only needs to know *what* is in the scene: one line per object
with its id and label, and the detector's first alternative label after a slash. Every token is latency on a
small CPU (about 5 tokens a line here, against 25-40 for a view that spelled out boxes, areas and depth; sizes,
frame rates and durations are not needed either)::

    image, 3 objects:
    1 mug/cup
    2 table
    3 person

A video lists each track (an id is the same object in every frame) once::

    video, 50 frames, 2 objects:
    1 dog
    4 person/child

Labels are untrusted input: they are written through :func:`~fastreasonseg.twin.labels.render_label`, so no label
can start a line, fake an id or a column, or write a tag. Twins with more objects than ``max_instances`` list the
largest ones and say how many were left out, so the view always fits the model's context.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastreasonseg.twin.labels import render_label
from fastreasonseg.twin.schema import DigitalTwin


@dataclass(frozen=True)
class ViewOptions:
    """How much of the twin the view shows."""

    max_instances: int = 60
    """Most objects listed (the largest first); the rest are summarised in one line."""
    alt_labels: int = 1
    """Alternative labels shown per object (0 to hide them)."""
    frame: int | None = None
    """For a video, list only the objects of this frame index; ``None`` = every track."""


def object_line(oid: int, label: str, alts: list[str], n_alt: int = 1) -> str:
    """One line of the view: ``id label[/alt]``."""
    shown = render_label(label)
    extra = [render_label(a) for a in alts]
    extra = list(dict.fromkeys(a for a in extra if a != shown))[: max(0, n_alt)]
    return f"{oid} {'/'.join([shown, *extra])}"


def _objects(twin: DigitalTwin, frame: int | None) -> list[tuple[int, str, list[str], float]]:
    """(id, label, alt labels, size for ranking) of each object, in id order."""
    frames = twin.frames if frame is None else [twin.frame(frame)]
    labels: dict[int, dict[str, int]] = {}
    alts: dict[int, list[str]] = {}
    size: dict[int, float] = {}
    for fr in frames:
        for inst in fr.instances:
            counts = labels.setdefault(inst.id, {})
            counts[inst.label] = counts.get(inst.label, 0) + 1
            alts.setdefault(inst.id, [])
            alts[inst.id] += [a for a, _ in inst.alt_labels if a not in alts[inst.id]]
            size[inst.id] = size.get(inst.id, 0.0) + inst.area
    out = []
    for i in sorted(labels):
        label = max(labels[i].items(), key=lambda kv: kv[1])[0]  # the most frequent label names a track
        out.append((i, label, alts[i], size[i]))
    return out


def _header(twin: DigitalTwin, frame: int | None, n: int) -> str:
    if not twin.is_video or len(twin.frames) == 1:
        return f"image, {n} objects:"
    if frame is not None:
        return f"video frame {frame}, {n} objects:"
    return f"video, {len(twin.frames)} frames, {n} objects:"


def twin_view(twin: DigitalTwin, options: ViewOptions | None = None) -> str:
    """The compact text the reasoner reads for ``twin`` (see the module docstring for the format)."""
    opts = options or ViewOptions()
    frame = opts.frame if twin.is_video and len(twin.frames) > 1 else None
    objs = _objects(twin, frame)
    keep = {o[0] for o in sorted(objs, key=lambda o: -o[3])[: max(1, opts.max_instances)]}
    lines = [_header(twin, frame, len(objs))]
    lines += [object_line(i, label, alts, opts.alt_labels) for i, label, alts, _ in objs if i in keep]
    hidden = [o[0] for o in objs if o[0] not in keep]
    if hidden:
        ids = ",".join(map(str, hidden)) if len(hidden) <= 6 else f"{min(hidden)}..{max(hidden)}"
        lines.append(f"(+{len(hidden)} smaller objects not listed; ids {ids})")
    if not objs:
        lines.append("(no objects detected)")
    return "\n".join(lines)
