"""The objects of a synthetic scene as the query generator knows them: the view's label, the right name, the
knowledge-base entry, and the generator's own truth (mislabels, motions)."""

from __future__ import annotations

from dataclasses import dataclass

from fastreasonseg.data.synthetic.scenes import Scene
from fastreasonseg.knowledge import Entry, KnowledgeBase


def pct(v: float) -> int:
    """A fraction in [0, 1] as an integer percent, clipped to 0..99."""
    return max(0, min(99, int(round(v * 100))))


def depth_digit(mean: float) -> int:
    """Relative depth in [0, 1] as one digit 0 (nearest) .. 9 (farthest)."""
    return max(0, min(9, int(mean * 10)))


@dataclass
class Obj:
    """One instance (image) or track (video) as the view shows it, with exact numbers and its knowledge entry."""

    id: int
    key: str
    entry: Entry
    label: str
    score: float | None
    alt: str | None
    mislabelled: bool
    true_label: str
    motion: str
    cx: float
    cy: float
    x0: float
    x1: float
    area: float
    depth: float
    # video only
    first: int = 0
    last: int = 0
    dxm: float = 0.0
    dym: float = 0.0
    speed: float = 0.0
    depth_last: float = 0.0

    @property
    def d(self) -> int:
        return depth_digit(self.depth)

    @property
    def px(self) -> int:
        """Centre x as the view writes it (integer % of the frame)."""
        return pct(self.cx)

    @property
    def py(self) -> int:
        """Centre y as the view writes it (integer % of the frame)."""
        return pct(self.cy)

    @property
    def cite(self) -> str:
        """How a rationale names the object: as the view shows it."""
        return f"{self.id} {self.label}"

    @property
    def name(self) -> str:
        """The right name: the label, or the alternative when the top label is wrong."""
        return self.true_label


def scene_objects(scene: Scene, kb: KnowledgeBase) -> list[Obj]:
    """Per-object view facts of a scene (first frame for images, track summaries for videos)."""
    twin = scene.twin
    h, w = twin.size
    out = []
    for t in scene.objects:
        pairs = twin.instances_of(t.id)
        if not pairs:
            continue
        _fr, inst = pairs[0]
        x0, y0, x1, y1 = inst.box
        o = Obj(
            id=t.id,
            key=t.key,
            entry=kb[t.key],
            label=inst.label,
            score=inst.score,
            alt=inst.alt_labels[0][0] if inst.alt_labels else None,
            mislabelled=t.mislabelled,
            true_label=t.true_label,
            motion=t.motion,
            cx=(x0 + x1) / 2 / w,
            cy=(y0 + y1) / 2 / h,
            x0=x0 / w,
            x1=x1 / w,
            area=inst.area / (w * h),
            depth=inst.depth.mean if inst.depth is not None else 0.5,
        )
        if twin.is_video:
            s = twin.track_summary(t.id)
            o.first, o.last = s.first_frame, s.last_frame
            o.dxm, o.dym = s.displacement
            o.speed = s.speed
            o.area = s.mean_area
            o.depth = s.depth_first if s.depth_first is not None else 0.5
            o.depth_last = s.depth_last if s.depth_last is not None else 0.5
        out.append(o)
    return sorted(out, key=lambda o: o.id)
