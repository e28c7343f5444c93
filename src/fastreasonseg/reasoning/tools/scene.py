"""The twin as the operators see it: one :class:`Obj` per instance id, with its geometry in every frame.

Coordinates are fractions of the frame (x right, y down, both in [0, 1]); ``depth`` is the twin's relative depth
(0 = nearest); ``area`` is the mask's share of the frame. An image has one frame; a video object has the frames it
is seen in, plus its :class:`~fastreasonseg.twin.schema.TrackSummary`.

``all`` in a plan means :attr:`Scene.things`: every object except detector junk (the labels ``object``,
``shadow``... with a low score) and background surfaces (floor, wall, sky...: see :data:`STUFF`), which a name
still selects ("the floor").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastreasonseg.twin.schema import DigitalTwin, TrackSummary

#: background surfaces: selected by name only, never by ``all``
STUFF = frozenset(
    {
        "floor", "wall", "ceiling", "sky", "ground", "grass", "road", "street", "sidewalk", "pavement", "water",
        "sea", "snow", "sand", "carpet", "rug", "background", "tabletop", "countertop", "ski slope", "snow slope",
    }
)  # fmt: skip
#: labels that name no kind of object (detector junk)
JUNK = frozenset({"object", "thing", "shadow", "item", "stuff", "unknown", "background"})
JUNK_SCORE = 0.3
"""An object labelled with a :data:`JUNK` word is junk when its score is below this (or unknown)."""


@dataclass(frozen=True)
class Geom:
    """An object in one frame."""

    x0: float
    y0: float
    x1: float
    y1: float
    area: float
    depth: float | None

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def w(self) -> float:
        return self.x1 - self.x0

    @property
    def h(self) -> float:
        return self.y1 - self.y0


@dataclass
class Obj:
    """One object (an instance id) of the twin."""

    id: int
    label: str
    alt_labels: list[str]
    score: float | None
    frames: dict[int, Geom] = field(default_factory=dict)
    track: TrackSummary | None = None

    @property
    def names(self) -> list[str]:
        return [self.label, *self.alt_labels]

    def mean(self, attr: str) -> float | None:
        """Mean of a :class:`Geom` attribute over the frames it is seen in (``None`` if unknown)."""
        vals = [getattr(g, attr) for g in self.frames.values()]
        vals = [v for v in vals if v is not None]
        return sum(vals) / len(vals) if vals else None

    @property
    def is_junk(self) -> bool:
        return self.label.strip().lower() in JUNK and (self.score is None or self.score < JUNK_SCORE)

    @property
    def is_stuff(self) -> bool:
        return self.label.strip().lower() in STUFF

    def cite(self) -> str:
        """How ``<results>`` names the object: ``id label``."""
        return f"{self.id} {self.label}"


class Scene:
    """Every object of a twin, by id."""

    def __init__(self, twin: DigitalTwin) -> None:
        self.twin = twin
        h, w = twin.size
        self.width, self.height = w, h
        self.is_video = twin.is_video and len(twin.frames) > 1
        self.frame_indices = [fr.index for fr in twin.frames]
        objs: dict[int, Obj] = {}
        labels: dict[int, dict[str, int]] = {}
        for fr in twin.frames:
            for inst in fr.instances:
                o = objs.get(inst.id)
                if o is None:
                    o = objs[inst.id] = Obj(inst.id, inst.label, [], inst.score)
                    labels[inst.id] = {}
                labels[inst.id][inst.label] = labels[inst.id].get(inst.label, 0) + 1
                for name, _ in inst.alt_labels:
                    if name not in o.alt_labels:
                        o.alt_labels.append(name)
                if inst.score is not None and (o.score is None or inst.score > o.score):
                    o.score = inst.score
                x0, y0, x1, y1 = inst.box
                depth = inst.depth.mean if inst.depth is not None else None
                o.frames[fr.index] = Geom(x0 / w, y0 / h, x1 / w, y1 / h, inst.area / (w * h), depth)
        for i, o in objs.items():
            o.label = max(labels[i].items(), key=lambda kv: kv[1])[0]  # the most frequent label names a track
            o.alt_labels = [a for a in o.alt_labels if a != o.label]
            if self.is_video:
                o.track = twin.track_summary(i)
        self.objects = dict(sorted(objs.items()))

    @property
    def ids(self) -> list[int]:
        return list(self.objects)

    @property
    def things(self) -> list[int]:
        """What ``all`` selects: every object but junk and background surfaces."""
        return [i for i, o in self.objects.items() if not o.is_junk and not o.is_stuff]

    def __getitem__(self, i: int) -> Obj:
        return self.objects[i]

    def cite(self, ids: tuple[int, ...] | list[int]) -> str:
        return ", ".join(self.objects[i].cite() for i in ids)

    def order(self, ids: set[int] | list[int] | tuple[int, ...]) -> tuple[int, ...]:
        """``ids`` in id order."""
        s = set(ids)
        return tuple(i for i in self.objects if i in s)
