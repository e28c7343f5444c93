"""Seeded synthetic digital twins: images (one frame) and short videos of a coherent setting.

The camera looks at a ground plane from eye height. An object at relative depth ``z`` (0 = at the
camera, 1 = at the horizon) stands on the ground at image row ``y = horizon + (1.08 H - horizon)(1 - z)``
and is drawn ``real height * focal / distance`` pixels tall (``distance = 0.6 + 12 z`` metres), so
nearer objects are lower in the image and larger. Shapes (ellipses for animals, food, people and
balls; rounded rectangles otherwise) are painted far to near into one depth map and one id map:
nearer objects occlude farther ones, each instance's mask is what stays visible, and its
:class:`~fastreasonseg.twin.schema.DepthStats` are read from the painted depth map over that mask
(via :meth:`Instance.from_mask`). Rendering is at modest resolution (320x240 images, 320x180 videos)
so RLEs stay small.

Detector noise: scores in [0.5, 0.98] for correct labels; alternative labels are synonyms or
confusable objects; with a small probability the top label is a confusable object with a score
below 0.5 and the right name as the first alternative (the rule the reasoner can learn: a top
label under 50% with an alternative means the alternative may be right).

Videos: 8-24 frames at 6-24 fps (optionally with a frame stride). Objects that can move (animals,
people, vehicles, balls) move left/right (straight or on an arc), approach or recede (the depth
changes and the object grows or shrinks and slides down or up the image), enter from a side edge
or leave through one (they are absent from the frames where they are off-screen), or stay still.
Furniture and other static objects never move. Track ids are stable over the video.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastreasonseg.knowledge import KnowledgeBase, load_knowledge
from fastreasonseg.twin.schema import DigitalTwin, Frame, Instance, Models, Source

#: setting name -> (knowledge place tag, indoor)
SETTINGS: dict[str, tuple[str, bool]] = {
    "kitchen": ("kitchen", True),
    "living room": ("living", True),
    "bedroom": ("bedroom", True),
    "bathroom": ("bathroom", True),
    "office": ("office", True),
    "classroom": ("classroom", True),
    "garage": ("garage", True),
    "street": ("street", False),
    "park": ("park", False),
    "garden": ("garden", False),
    "farm": ("farm", False),
    "beach": ("beach", False),
}
#: settings whose objects can move, used for videos (plus any setting with enough movers)
VIDEO_SETTINGS = ("street", "park", "garden", "farm", "beach", "living room", "kitchen", "classroom")

IMAGE_SIZE = (240, 320)  # (H, W)
VIDEO_SIZE = (180, 320)
_REAL_HEIGHT = {"T": 0.1, "S": 0.35, "M": 1.0, "L": 1.7, "H": 4.5}
_DEPTH_RANGE = {"T": (0.03, 0.45), "S": (0.05, 0.6), "M": (0.1, 0.8), "L": (0.2, 0.9), "H": (0.45, 0.95)}
_ELLIPSE_CATEGORIES = {"animal", "fruit", "vegetable", "food", "person", "plant"}
MOTIONS = (
    "static",
    "left",
    "right",
    "arc_left",
    "arc_right",
    "approach",
    "recede",
    "enter_left",
    "enter_right",
    "leave_left",
    "leave_right",
    "stop_left",
    "stop_right",
)
GENERATOR_NAME = "fastreasonseg.synthetic"
ID_FROM_ZERO_RATE = 0.35
"""Share of scenes whose instance ids start at 0 (perception numbers from 0; the generator used to start at 1)."""
EXTRA_RATE = 0.4
"""Chance of each background surface (floor / ground, wall / sky) in a scene."""


@dataclass
class ObjectTruth:
    """What the generator knows about one instance (track) of a scene."""

    id: int
    key: str
    label: str
    """The detector's top label as written in the twin."""
    mislabelled: bool = False
    """True when ``label`` names another object; the right name is the first alternative label."""
    true_label: str = ""
    """The right name as it appears in the twin (``label`` unless mislabelled, then the first alt label)."""
    motion: str = "static"
    shape: str = "rect"


@dataclass
class Scene:
    """A synthetic twin plus the generator's ground truth about its objects."""

    twin: DigitalTwin
    setting: str
    objects: list[ObjectTruth] = field(default_factory=list)

    def obj(self, id: int) -> ObjectTruth:
        for o in self.objects:
            if o.id == id:
                return o
        raise KeyError(id)

    @property
    def keys(self) -> list[str]:
        return [o.key for o in self.objects]


@dataclass
class _Placed:
    truth: ObjectTruth
    size: str
    real_h: float
    aspect: float
    x0: float  # centre x in pixels at tau = 0
    dx: float  # centre x displacement over the video
    z0: float
    dz: float
    arc: float  # upward arc height in pixels (arcs)
    score: float
    alts: list[tuple[str, float]]
    support: _Placed | None = None
    """The object this one rests on (a cup on a table): it stands on that object's top edge, just in front."""
    offset: float = 0.0
    """With ``support``: the centre's offset from the support's centre, as a share of its width."""
    stop: float = 1.0
    """The moment (0..1 of the video) the object stops moving; 1 = it moves to the end."""


#: categories an object may rest on, and may rest on another
_SUPPORT_CATEGORIES = {"furniture", "appliance"}
_RESTING_CATEGORIES = {"kitchenware", "electronics", "fruit", "vegetable", "food", "office", "toy", "bag", "bathroom",
                       "plant", "tool", "instrument", "animal", "clothing", "sports"}  # fmt: skip
SUPPORT_RATE = 0.55
"""Chance that an image puts one or two small objects on top of a piece of furniture or an appliance."""


def _shape_mask(h: int, w: int, cx: float, yb: float, ow: float, oh: float, shape: str) -> np.ndarray:
    """Full-frame boolean mask of an ellipse / rounded rectangle standing on row ``yb`` centred at ``cx``."""
    m = np.zeros((h, w), dtype=bool)
    x0, x1 = int(np.floor(cx - ow / 2)), int(np.ceil(cx + ow / 2))
    y0, y1 = int(np.floor(yb - oh)), int(np.ceil(yb))
    cx0, cx1, cy0, cy1 = max(x0, 0), min(x1, w), max(y0, 0), min(y1, h)
    if cx1 <= cx0 or cy1 <= cy0:
        return m
    ys = np.arange(cy0, cy1)[:, None] + 0.5
    xs = np.arange(cx0, cx1)[None, :] + 0.5
    ccy = yb - oh / 2
    if shape == "ellipse":
        inside = ((xs - cx) / (ow / 2)) ** 2 + ((ys - ccy) / (oh / 2)) ** 2 <= 1.0
    else:
        r = 0.25 * min(ow, oh)
        ddx = np.maximum(np.abs(xs - cx) - (ow / 2 - r), 0.0)
        ddy = np.maximum(np.abs(ys - ccy) - (oh / 2 - r), 0.0)
        inside = ddx**2 + ddy**2 <= r * r
    m[cy0:cy1, cx0:cx1] = inside
    return m


class SceneGenerator:
    """Makes :class:`Scene` objects from a numpy ``Generator``.

    ``allowed_keys`` restricts the objects that may appear (e.g. to keep held-out objects out of the
    training split); ``required_keys`` are placed first when they fit the setting.
    """

    def __init__(self, kb: KnowledgeBase | None = None):
        self.kb = kb or load_knowledge()

    # ------------------------------------------------------------------ object choice
    def pool(self, setting: str, allowed: set[str] | None = None, movers: bool = False) -> list[str]:
        place, _ = SETTINGS[setting]
        keys = [k for k in self.kb.in_place(place) if allowed is None or k in allowed]
        if movers:
            keys = [k for k in keys if self.kb[k].can_move]
        return keys

    def _choose_keys(
        self, rng: np.random.Generator, setting: str, n: int, allowed: set[str] | None, required: list[str], video: bool
    ) -> list[str]:
        pool = self.pool(setting, allowed)
        chosen = [k for k in required if k in pool][:n]
        if video:
            movers = [k for k in self.pool(setting, allowed, movers=True) if k not in chosen]
            n_move = min(len(movers), int(rng.integers(2, max(3, n - 1) + 1)))
            if n_move:
                chosen += [str(k) for k in rng.choice(movers, size=n_move, replace=False)]
        rest = [k for k in pool if k not in chosen]
        while len(chosen) < n and rest:
            k = rest.pop(int(rng.integers(len(rest))))
            chosen.append(k)
            # sometimes a second instance of the same object (two chairs, two apples)
            if len(chosen) < n and rng.random() < 0.12:
                chosen.append(k)
        return chosen[:n]

    def _labels(self, rng: np.random.Generator, key: str, present: set[str]) -> tuple[str, bool, str, float, list]:
        kb = self.kb
        names = kb.unambiguous_names(key)
        label = key if rng.random() < 0.7 or len(names) == 1 else str(rng.choice(names))
        conf = [c for c in kb.confusables(key) if c not in present]
        if conf and rng.random() < 0.06:
            wrong = str(rng.choice(conf))
            score = float(rng.uniform(0.28, 0.48))
            return wrong, True, label, score, [(label, score - float(rng.uniform(0.01, 0.1)))]
        score = float(rng.uniform(0.52, 0.98))
        alts: list[tuple[str, float]] = []
        u = rng.random()
        others = [s for s in kb[key].names if s != label]
        if u < 0.5 and others:
            alts.append((str(rng.choice(others)), score * float(rng.uniform(0.5, 0.9))))
        elif u < 0.6 and conf:
            alts.append((str(rng.choice(conf)), score * float(rng.uniform(0.2, 0.6))))
        return label, False, label, score, alts

    # ------------------------------------------------------------------ geometry
    @staticmethod
    def _ground_y(z: float, horizon: float, h: int) -> float:
        return horizon + (1.08 * h - horizon) * (1.0 - z)

    @staticmethod
    def _pixel_size(p: _Placed, z: float, h: int, w: int) -> tuple[float, float]:
        dist = 0.6 + 12.0 * z
        oh = float(np.clip(p.real_h * 1.1 * h / dist, 10.0, 0.85 * h))
        ow = float(np.clip(oh * p.aspect, 8.0, 0.6 * w))
        return ow, oh

    def _place(self, rng: np.random.Generator, truth: ObjectTruth, score: float, alts: list, w: int) -> _Placed:
        e = self.kb[truth.key]
        lo, hi = _DEPTH_RANGE[e.size]
        if e.category == "person":
            aspect = float(rng.uniform(0.35, 0.5))
        elif e.category == "vehicle" and e.size in "LH":
            aspect = float(rng.uniform(1.4, 2.2))
        else:
            aspect = float(rng.uniform(0.6, 1.6))
        return _Placed(
            truth=truth,
            size=e.size,
            real_h=_REAL_HEIGHT[e.size] * float(rng.uniform(0.75, 1.3)),
            aspect=aspect,
            x0=float(rng.uniform(0.08, 0.92) * w),
            dx=0.0,
            z0=float(rng.uniform(lo, hi)),
            dz=0.0,
            arc=0.0,
            score=score,
            alts=alts,
        )

    def _set_motion(self, rng: np.random.Generator, p: _Placed, w: int, h: int, motion: str | None = None) -> None:
        e = self.kb[p.truth.key]
        if not e.can_move:
            p.truth.motion = "static"
            return
        if motion is None:
            weights = np.array([0.16, 0.1, 0.1, 0.06, 0.06, 0.1, 0.1, 0.08, 0.08, 0.08, 0.08, 0.05, 0.05])
            motion = str(rng.choice(MOTIONS, p=weights / weights.sum()))
        p.truth.motion = motion
        ow, _ = self._pixel_size(p, p.z0, h, w)
        if motion in ("left", "right", "arc_left", "arc_right", "stop_left", "stop_right"):
            d = float(rng.uniform(0.3, 0.6) * w)
            sign = -1.0 if motion.endswith("left") else 1.0
            if motion.startswith("stop"):
                p.stop = float(rng.uniform(0.35, 0.6))  # walks, then stands still for the rest of the video
            p.x0 = float(rng.uniform(0.55, 0.85) * w) if sign < 0 else float(rng.uniform(0.15, 0.45) * w)
            p.dx = sign * d
            if motion.startswith("arc"):
                p.arc = float(rng.uniform(0.12, 0.25) * h)
        elif motion == "approach":
            p.z0 = float(rng.uniform(0.6, 0.92))
            p.dz = -float(rng.uniform(0.35, 0.5))
            p.dx = float(rng.uniform(-0.04, 0.04) * w)
        elif motion == "recede":
            p.z0 = float(rng.uniform(0.08, 0.4))
            p.dz = float(rng.uniform(0.35, 0.5))
            p.dx = float(rng.uniform(-0.04, 0.04) * w)
        elif motion.startswith("enter"):
            # starts off-screen and crosses the edge at tau ~= frac, then keeps walking in
            frac = float(rng.uniform(0.3, 0.6))
            end = float(rng.uniform(0.25, 0.7) * w)
            if motion == "enter_right":
                end = w - end
            edge = -ow / 2 - 2 if motion == "enter_left" else w + ow / 2 + 2
            p.dx = (end - edge) / (1.0 - frac)
            p.x0 = end - p.dx
        elif motion.startswith("leave"):
            frac = float(rng.uniform(0.3, 0.6))  # leaves the frame at tau ~= frac
            start = float(rng.uniform(0.3, 0.7) * w)
            edge = -ow / 2 - 2 if motion == "leave_left" else w + ow / 2 + 2
            p.x0 = start
            p.dx = (edge - start) / frac

    # ------------------------------------------------------------------ rendering
    def _render_frame(
        self, placed: list[_Placed], tau: float, h: int, w: int, horizon: float, indoor: bool
    ) -> tuple[np.ndarray, list[tuple[_Placed, np.ndarray, np.ndarray]]]:
        rows = np.arange(h, dtype=np.float64)[:, None] + 0.5
        ground = np.clip(1.0 - (rows - horizon) / (1.08 * h - horizon), 0.0, 1.0)
        depth = np.broadcast_to(np.where(rows < horizon, 0.97 if indoor else 1.0, ground), (h, w)).copy()
        shapes = []
        for p in placed:
            t = min(tau / p.stop, 1.0)
            z = float(np.clip(p.z0 + p.dz * t, 0.02, 0.98))
            ow, oh = self._pixel_size(p, z, h, w)
            yb = self._ground_y(z, horizon, h) - p.arc * float(np.sin(np.pi * t))
            cx = p.x0 + p.dx * t
            if p.support is not None:  # on top of the support: its top edge, a hair in front of it
                sup = p.support
                zs = float(np.clip(sup.z0, 0.02, 0.98))
                sw, sh = self._pixel_size(sup, zs, h, w)
                z = max(0.02, zs - 0.01)
                ow, oh = self._pixel_size(p, z, h, w)
                yb = self._ground_y(zs, horizon, h) - sh + 1
                cx = sup.x0 + p.offset * sw
            m = _shape_mask(h, w, cx, yb, ow, oh, p.truth.shape)
            shapes.append((z, p, m, yb, oh))
        shapes.sort(key=lambda s: -s[0])  # far to near
        owner = np.full((h, w), -1, dtype=np.int32)
        for k, (z, _p, m, yb, oh) in enumerate(shapes):
            if not m.any():
                continue
            # a gentle vertical gradient: the top of an object is a little farther than its base
            rel = np.clip((yb - rows) / max(oh, 1.0), 0.0, 1.0)
            obj_depth = np.clip(z + 0.03 * rel, 0.0, 1.0)
            depth = np.where(m, np.broadcast_to(obj_depth, (h, w)), depth)
            owner[m] = k
        out = []
        for k, (_z, p, m, _yb, _oh) in enumerate(shapes):
            vis = owner == k
            out.append((p, m, vis))
        return depth, out

    def _instance(self, rng: np.random.Generator, p: _Placed, vis: np.ndarray, depth: np.ndarray, video: bool):
        score = p.score
        if video:
            lo, hi = (0.2, 0.49) if p.truth.mislabelled else (0.5, 0.99)
            score = float(np.clip(score + rng.normal(0, 0.02), lo, hi))
        return Instance.from_mask(p.truth.id, p.truth.label, vis, score=score, alt_labels=list(p.alts), depth_map=depth)

    # ------------------------------------------------------------------ public
    def image(
        self,
        rng: np.random.Generator,
        *,
        setting: str | None = None,
        num_objects: int | None = None,
        allowed_keys: set[str] | None = None,
        required_keys: list[str] | None = None,
    ) -> Scene:
        """A one-frame scene (``kind: image``)."""
        h, w = IMAGE_SIZE
        setting = setting or str(rng.choice(list(SETTINGS)))
        n = num_objects or int(rng.integers(4, 10))
        if required_keys:
            n = max(n, len(required_keys) + 1)
        placed = self._make_objects(rng, setting, n, allowed_keys, required_keys or [], video=False, w=w, h=h)
        horizon = float(rng.uniform(0.3, 0.45) * h)
        indoor = SETTINGS[setting][1]
        depth, shapes = self._render_frame(placed, 0.0, h, w, horizon, indoor)
        insts, kept = [], []
        for p, full, vis in shapes:
            area = int(vis.sum())
            if area < 40 or area < 0.3 * max(int(full.sum()), 1):
                continue  # hidden behind nearer objects: not detected
            inst = self._instance(rng, p, vis, depth, video=False)
            if inst is not None:
                insts.append(inst)
                kept.append(p.truth)
        next_id = max([p.truth.id for p in placed], default=0) + 1
        insts += scene_extras(rng, h, w, horizon, indoor, next_id, depth)
        insts.sort(key=lambda i: i.id)
        twin = DigitalTwin(
            source=Source(kind="image", name=f"synthetic-{setting.replace(' ', '_')}.png", width=w, height=h),
            models=Models(segmenter=GENERATOR_NAME, depth=GENERATOR_NAME, labeller=GENERATOR_NAME),
            frames=[Frame(index=0, time=0.0, instances=insts)],
            meta={"synthetic": {"setting": setting}},
        )
        return Scene(twin=twin, setting=setting, objects=sorted(kept, key=lambda o: o.id))

    def video(
        self,
        rng: np.random.Generator,
        *,
        setting: str | None = None,
        num_objects: int | None = None,
        num_frames: int | None = None,
        allowed_keys: set[str] | None = None,
        required_keys: list[str] | None = None,
        required_motions: list[str] | None = None,
    ) -> Scene:
        """A short video scene (``kind: video``) with moving, entering, leaving and static objects.

        ``required_motions`` gives the motion of each of ``required_keys`` (a scene plan); the others draw theirs.
        """
        h, w = VIDEO_SIZE
        setting = setting or str(rng.choice(VIDEO_SETTINGS))
        n = num_objects or int(rng.integers(3, 8))
        if required_keys:
            n = max(n, len(required_keys) + 1)
        t = num_frames or int(rng.integers(8, 25))
        fps = float(rng.choice([6.0, 8.0, 10.0, 12.0, 15.0, 24.0]))
        stride = int(rng.choice([1, 1, 2, 3]))
        placed = self._make_objects(
            rng, setting, n, allowed_keys, required_keys or [], video=True, w=w, h=h, motions=required_motions
        )
        horizon = float(rng.uniform(0.3, 0.42) * h)
        indoor = SETTINGS[setting][1]
        frames = []
        seen: set[int] = set()
        extras: list[Instance] = []
        for k in range(t):
            tau = k / (t - 1)
            depth, shapes = self._render_frame(placed, tau, h, w, horizon, indoor)
            if k == 0:
                extras = scene_extras(rng, h, w, horizon, indoor, max(p.truth.id for p in placed) + 1, depth)
            insts = []
            for p, full, vis in shapes:
                area = int(vis.sum())
                if area < 25 or area < 0.2 * max(int(full.sum()), 1):
                    continue
                inst = self._instance(rng, p, vis, depth, video=True)
                if inst is not None:
                    insts.append(inst)
                    seen.add(p.truth.id)
            insts += [e for e in extras if e.label not in ("object", "shadow") or k % 3 == e.id % 3]
            insts.sort(key=lambda i: i.id)
            index = k * stride
            frames.append(Frame(index=index, time=round(index / fps, 4), instances=insts))
        twin = DigitalTwin(
            source=Source(
                kind="video",
                name=f"synthetic-{setting.replace(' ', '_')}.mp4",
                width=w,
                height=h,
                fps=fps,
                num_frames=(t - 1) * stride + 1,
            ),
            models=Models(segmenter=GENERATOR_NAME, depth=GENERATOR_NAME, labeller=GENERATOR_NAME),
            frames=frames,
            meta={"synthetic": {"setting": setting, "stride": stride}},
        )
        kept = sorted((p.truth for p in placed if p.truth.id in seen), key=lambda o: o.id)
        return Scene(twin=twin, setting=setting, objects=kept)

    def _make_objects(
        self,
        rng: np.random.Generator,
        setting: str,
        n: int,
        allowed: set[str] | None,
        required: list[str],
        *,
        video: bool,
        w: int,
        h: int,
        motions: list[str] | None = None,
    ) -> list[_Placed]:
        keys = self._choose_keys(rng, setting, n, allowed, required, video)
        # planned motions belong to the required keys placed first (in order, when they fit the setting)
        forced = list(motions or [])[: len(keys)]
        if forced and keys[: len(forced)] != list(required[: len(forced)]):
            forced = []
        ids = _instance_ids(rng, len(keys))
        present = set(keys)
        placed = []
        for k, (key, iid) in enumerate(zip(keys, ids, strict=True)):
            label, wrong, true_label, score, alts = self._labels(rng, key, present)
            e = self.kb[key]
            truth = ObjectTruth(
                id=iid,
                key=key,
                label=label,
                mislabelled=wrong,
                true_label=true_label,
                shape="ellipse" if (e.category in _ELLIPSE_CATEGORIES or e.group == "ball") else "rect",
            )
            p = self._place(rng, truth, score, alts, w)
            if video:
                self._set_motion(rng, p, w, h, forced[k] if k < len(forced) else None)
            placed.append(p)
        if not video and rng.random() < SUPPORT_RATE:
            self._rest_on_support(rng, placed)
        return placed

    def _rest_on_support(self, rng: np.random.Generator, placed: list[_Placed]) -> None:
        """Put one or two small objects on top of a piece of furniture or an appliance (a cup on a table)."""
        kb = self.kb
        supports = [p for p in placed if kb[p.truth.key].category in _SUPPORT_CATEGORIES and p.size in "ML"]
        small = [p for p in placed if kb[p.truth.key].category in _RESTING_CATEGORIES and p.size in "TS"]
        if not supports or not small:
            return
        sup = supports[int(rng.integers(len(supports)))]
        for k in rng.permutation(len(small))[: int(rng.integers(1, 3))]:
            p = small[int(k)]
            p.support = sup
            p.offset = float(rng.uniform(-0.3, 0.3))


def _instance_ids(rng: np.random.Generator, n: int) -> list[int]:
    """Ids as perception writes them: from 0 (a third of the scenes) or 1, sometimes with gaps, in random order."""
    start = 0 if rng.random() < ID_FROM_ZERO_RATE else 1
    span = n + (int(rng.integers(1, 5)) if rng.random() < 0.25 else 0)
    return [int(i) for i in rng.choice(np.arange(start, start + span), size=n, replace=False)]


def _band(h: int, w: int, y0: float, y1: float) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[int(y0) : int(y1), :] = True
    return m


def scene_extras(
    rng: np.random.Generator, h: int, w: int, horizon: float, indoor: bool, next_id: int, depth: np.ndarray
) -> list[Instance]:
    """What a real detector also reports: background surfaces (floor or ground, wall or sky) and low-score junk
    (``object``, ``shadow``). They are not objects of the scene: no query is about them."""
    out: list[Instance] = []
    surfaces = [("floor", "carpet") if indoor else ("ground", "grass"), ("wall", "ceiling") if indoor else ("sky", "")]
    bands = [(horizon, h), (0, horizon)]
    for (name, alt), (y0, y1) in zip(surfaces, bands, strict=True):
        if rng.random() < EXTRA_RATE:
            alts = [(alt, round(float(rng.uniform(0.1, 0.4)), 4))] if alt and rng.random() < 0.5 else []
            inst = Instance.from_mask(
                next_id, name, _band(h, w, y0, y1), score=float(rng.uniform(0.3, 0.7)), alt_labels=alts, depth_map=depth
            )
            if inst is not None:
                out.append(inst)
                next_id += 1
    for _ in range(int(rng.integers(0, 3))):
        bw, bh = int(rng.integers(8, 40)), int(rng.integers(6, 30))
        x, y = int(rng.integers(0, w - bw)), int(rng.integers(int(horizon), h - bh))
        m = np.zeros((h, w), bool)
        m[y : y + bh, x : x + bw] = True
        label = str(rng.choice(["object", "shadow", "object"]))
        inst = Instance.from_mask(next_id, label, m, score=float(rng.uniform(0.1, 0.28)), depth_map=depth)
        if inst is not None:
            out.append(inst)
            next_id += 1
    return out


def random_scene(rng: np.random.Generator, *, video: bool = False, **kwargs) -> Scene:
    """Shortcut: one image or video scene from the default knowledge base."""
    gen = SceneGenerator()
    return gen.video(rng, **kwargs) if video else gen.image(rng, **kwargs)


__all__ = ["IMAGE_SIZE", "SETTINGS", "VIDEO_SIZE", "ObjectTruth", "Scene", "SceneGenerator", "random_scene"]
