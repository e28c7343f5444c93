"""The :class:`Perception` facade: labeller + segmenter + depth, per image and per video frame.

Models are loaded lazily from :class:`~fastreasonseg.config.PerceptionConfig` (hub id or local
directory each; ``None`` skips the model):

* no labeller: every instance is labelled ``"object"`` (proposals come from SAM-2's grid);
* no segmenter: masks are the detection boxes;
* no depth model: instances carry no depth statistics.

Modes: ``"detect"`` (default, fast) runs the labeller and prompts SAM-2 with its boxes on one image
encoding; ``"grid"`` runs SAM-2's automatic masks from a point grid and labels each mask with the
labeller's detection that overlaps it best (box IoU >= 0.5), else by classifying the mask's box.

Frames larger than ``max_side`` are downscaled for the models (the *working* resolution); every
box and mask handed out (``PerceivedObject.full_mask()``, :meth:`Perception.detect`) is at the full
source resolution.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastreasonseg.config import PerceptionConfig
from fastreasonseg.errors import InputError
from fastreasonseg.perception.media import fit_to_side, resize_mask, to_rgb_uint8
from fastreasonseg.perception.protocols import Box, DepthEstimator, Detection, Labeller, Segmenter
from fastreasonseg.perception.tracking import assign_track_ids
from fastreasonseg.perception.vocabulary import build_vocabulary
from fastreasonseg.twin.masks import box_iou, mask_box
from fastreasonseg.twin.schema import DepthStats, Instance

STAGES = ("labeller", "segmenter", "depth", "tracking")


@dataclass
class PerceivedObject:
    """One object found in one frame.

    ``mask`` is at the *working* resolution (the frame the models saw); :meth:`full_mask` gives it at
    the source resolution ``full_size = (H, W)``. ``box`` is in full-resolution pixels.
    """

    label: str
    score: float | None
    alt_labels: list[tuple[str, float]]
    box: Box
    mask: np.ndarray
    full_size: tuple[int, int]
    depth: DepthStats | None = None
    id: int | None = None

    def full_mask(self) -> np.ndarray:
        return resize_mask(self.mask, self.full_size)

    def to_instance(self, id: int | None = None) -> Instance | None:
        """The twin instance (``None`` if the mask is empty at full resolution)."""
        iid = self.id if id is None else id
        if iid is None:
            raise ValueError("an instance needs an id")
        inst = Instance.from_mask(iid, self.label, self.full_mask(), score=self.score, alt_labels=self.alt_labels)
        if inst is not None and self.depth is not None:
            inst.depth = self.depth
        return inst


@dataclass
class _Track:
    label: str
    score: float | None
    alt_labels: list[tuple[str, float]]
    last_box: Box | None = None
    last_seen: int = -1


@dataclass
class _VideoState:
    tracks: dict[int, _Track] = field(default_factory=dict)
    next_id: int = 0
    frame: int = -1
    prev: dict[int, np.ndarray] = field(default_factory=dict)


def _box_mask(box: Box, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    x0, y0, x1, y1 = box
    m = np.zeros((h, w), dtype=bool)
    c0, r0 = int(np.floor(max(0.0, x0))), int(np.floor(max(0.0, y0)))
    c1, r1 = int(np.ceil(min(float(w), x1))), int(np.ceil(min(float(h), y1)))
    if c1 > c0 and r1 > r0:
        m[r0:r1, c0:c1] = True
    return m


def _scale_box(box: Box, factor: float) -> Box:
    return (box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor)


class Perception:
    """Labeller + segmenter + depth behind one object; see the module docstring.

    Backends can be injected (anything implementing the protocols in
    :mod:`fastreasonseg.perception.protocols`); otherwise they are loaded from ``config`` on first use.
    ``timings_ms`` accumulates milliseconds per stage (``labeller``, ``segmenter``, ``depth``,
    ``tracking``, ``load``).
    """

    def __init__(
        self,
        config: PerceptionConfig | None = None,
        *,
        labeller: Labeller | None = None,
        segmenter: Segmenter | None = None,
        depth: DepthEstimator | None = None,
    ) -> None:
        self.config = config or PerceptionConfig()
        if self.config.mode not in ("detect", "grid"):
            raise InputError(f"perception mode must be 'detect' or 'grid', got {self.config.mode!r}")
        self._labeller = labeller
        self._segmenter = segmenter
        self._depth = depth
        self._tracker: Any = None
        self.vocabulary = build_vocabulary(self.config.vocabulary, use_default=self.config.use_default_vocabulary)
        self.timings_ms: dict[str, float] = {s: 0.0 for s in (*STAGES, "load")}
        self._video: _VideoState | None = None

    # ---------------------------------------------------------------------------------- models
    @contextlib.contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings_ms[stage] = self.timings_ms.get(stage, 0.0) + (time.perf_counter() - t0) * 1000.0

    @property
    def labeller(self) -> Labeller | None:
        if self._labeller is None and self.config.labeller:
            from fastreasonseg.perception.labeller import Owlv2Labeller

            with self._timed("load"):
                self._labeller = Owlv2Labeller(self.config.labeller, self.config.device)
        return self._labeller

    @property
    def segmenter(self) -> Segmenter | None:
        if self._segmenter is None and self.config.segmenter:
            from fastreasonseg.perception.segmenter import Sam2Segmenter

            with self._timed("load"):
                self._segmenter = Sam2Segmenter(self.config.segmenter, self.config.device)
        return self._segmenter

    @property
    def depth_model(self) -> DepthEstimator | None:
        if self._depth is None and self.config.depth:
            from fastreasonseg.perception.depth import DepthAnything

            with self._timed("load"):
                self._depth = DepthAnything(self.config.depth, self.config.device)
        return self._depth

    @property
    def tracker(self) -> Any:
        """SAM-2 video tracker (``Sam2Tracker``), or ``None`` without a segmenter."""
        if self._tracker is None and self.config.segmenter:
            from fastreasonseg.perception.segmenter import Sam2Tracker

            with self._timed("load"):
                self._tracker = Sam2Tracker(self.config.segmenter, self.config.device)
        return self._tracker

    def load(self, *, video: bool = False) -> None:
        """Load every configured model now (errors surface before any frame is processed)."""
        _ = self.labeller, self.depth_model
        if video:
            _ = self.tracker
            if self.config.mode == "grid" or self.labeller is None:
                _ = self.segmenter
        else:
            _ = self.segmenter

    def model_ids(self) -> dict[str, str | None]:
        return {"segmenter": self.config.segmenter, "depth": self.config.depth, "labeller": self.config.labeller}

    # ---------------------------------------------------------------------------------- helpers
    def prepare(self, image: Any) -> tuple[np.ndarray, np.ndarray, float]:
        """(full-resolution RGB uint8, working copy, scale = working / full)."""
        full = to_rgb_uint8(image, name="image")
        work, scale = fit_to_side(full, self.config.max_side)
        return full, work, scale

    def _depth_map(self, work: np.ndarray) -> np.ndarray | None:
        model = self.depth_model
        if model is None:
            return None
        with self._timed("depth"):
            return model.predict(work)

    def _detect_work(self, work: np.ndarray, vocabulary: Sequence[str], threshold: float) -> list[Detection] | None:
        lab = self.labeller
        if lab is None:
            return None
        with self._timed("labeller"):
            dets = lab.detect(work, vocabulary, threshold)
        dets.sort(key=lambda d: -d.score)
        return dets

    def _grid(self, work: np.ndarray) -> list[tuple[np.ndarray, float]]:
        seg = self.segmenter
        if seg is None:
            return []
        with self._timed("segmenter"):
            seg.set_image(work)
            return seg.automatic_masks(self.config.grid_points)

    def _label_masks(
        self, work: np.ndarray, masks: list[tuple[np.ndarray, float]]
    ) -> list[tuple[np.ndarray, str, float | None, list[tuple[str, float]]]]:
        """Labels for class-agnostic masks: best-overlapping detection, else classification of the box."""
        out: list[tuple[np.ndarray, str, float | None, list[tuple[str, float]]]] = []
        dets = self._detect_work(work, self.vocabulary, self.config.box_threshold)
        if dets is None:
            return [(m, "object", q, []) for m, q in masks]
        unmatched: list[int] = []
        for k, (m, _q) in enumerate(masks):
            mb = mask_box(m)
            best, best_iou = None, 0.5
            for d in dets:
                v = box_iou(mb, d.box) if mb is not None else 0.0
                if v >= best_iou:
                    best, best_iou = d, v
            if best is None:
                unmatched.append(k)
                out.append((m, "object", None, []))
            else:
                out.append((m, best.label, best.score, list(best.alt_labels)))
        if unmatched and self.labeller is not None:
            boxes = [mask_box(masks[k][0]) for k in unmatched]
            with self._timed("labeller"):
                ranked = self.labeller.classify(work, boxes, self.vocabulary)
            top = 1 + getattr(self.labeller, "top_k", 3)
            for k, r in zip(unmatched, ranked, strict=True):
                if r:
                    out[k] = (masks[k][0], r[0][0], r[0][1], list(r[1:top]))
        return out

    def _objects_from_masks(
        self,
        labelled: list[tuple[np.ndarray, str, float | None, list[tuple[str, float]]]],
        depth: np.ndarray | None,
        full_size: tuple[int, int],
        scale: float,
    ) -> list[PerceivedObject]:
        objs = []
        for m, label, score, alts in labelled:
            b = mask_box(m)
            if b is None:
                continue
            d = DepthStats.from_map(depth, m) if depth is not None else None
            objs.append(PerceivedObject(label, score, alts, _scale_box(b, 1 / scale), m, full_size, d))
        objs.sort(key=lambda o: -(o.score if o.score is not None else 0.0))
        return objs[: self.config.max_instances]

    # ---------------------------------------------------------------------------------- images
    def perceive(self, image: Any) -> list[PerceivedObject]:
        """Every object in one image, best score first (at most ``max_instances``), ids unset."""
        full, work, scale = self.prepare(image)
        full_size = full.shape[:2]
        del full
        labelled = self._propose(work)
        depth = self._depth_map(work)
        return self._objects_from_masks(labelled, depth, full_size, scale)

    def _propose(self, work: np.ndarray) -> list[tuple[np.ndarray, str, float | None, list[tuple[str, float]]]]:
        """Masks with labels on the working frame, according to the mode."""
        cfg = self.config
        if cfg.mode == "grid" or self.labeller is None:
            if self.segmenter is not None:
                return self._label_masks(work, self._grid(work))
            if self.labeller is None:
                return []
        dets = self._detect_work(work, self.vocabulary, cfg.box_threshold) or []
        dets = dets[: cfg.max_instances]
        masks = self._masks_for_boxes(work, [d.box for d in dets])
        return [(m, d.label, d.score, list(d.alt_labels)) for m, d in zip(masks, dets, strict=True)]

    def _masks_for_boxes(self, work: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        if not boxes:
            return []
        seg = self.segmenter
        if seg is None:
            return [_box_mask(b, work.shape[:2]) for b in boxes]
        with self._timed("segmenter"):
            seg.set_image(work)
            return seg.masks_from_boxes(boxes)

    def detect(
        self, image: Any, phrases: Sequence[str] | str, threshold: float | None = None
    ) -> list[tuple[Detection, np.ndarray, DepthStats | None]]:
        """Open-vocabulary detection of ``phrases`` in ``image`` (the reasoner's ``detect(text)`` tool).

        Returns ``(detection, full-resolution boolean mask, depth stats or None)`` per object, best
        first; boxes are in full-resolution pixels. Needs a labeller.
        """
        if isinstance(phrases, str):
            phrases = [phrases]
        if self.labeller is None:
            raise InputError("detect() needs a labeller model; PerceptionConfig.labeller is None")
        full, work, scale = self.prepare(image)
        full_size = full.shape[:2]
        thr = self.config.box_threshold if threshold is None else threshold
        dets = (self._detect_work(work, list(phrases), thr) or [])[: self.config.max_instances]
        masks = self._masks_for_boxes(work, [d.box for d in dets])
        depth = self._depth_map(work) if dets else None
        out = []
        for d, m in zip(dets, masks, strict=True):
            if not m.any():
                continue
            stats = DepthStats.from_map(depth, m) if depth is not None else None
            fm = resize_mask(m, full_size)
            fd = Detection(_clip_box(_scale_box(d.box, 1 / scale), full_size), d.label, d.score, list(d.alt_labels))
            out.append((fd, fm, stats))
        return out

    def classify(self, image: Any, boxes: Sequence[Box], candidates: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Score ``candidates`` for each full-resolution box (the reasoner's ``relabel`` tool)."""
        if self.labeller is None:
            raise InputError("classify() needs a labeller model; PerceptionConfig.labeller is None")
        _, work, scale = self.prepare(image)
        with self._timed("labeller"):
            return self.labeller.classify(work, [_scale_box(b, scale) for b in boxes], candidates)

    # ---------------------------------------------------------------------------------- videos
    def start_video(self) -> None:
        """Forget every track; the next :meth:`track` call starts a new video."""
        self._video = _VideoState()
        if self.tracker is not None:
            self.tracker.session = None

    def track(self, image: Any, *, keyframe: bool) -> list[PerceivedObject]:
        """Objects of the next processed video frame, each with its track ``id``.

        With a segmenter, SAM-2 propagates every track; on keyframes the frame is re-detected and
        detections that match no present track (see :func:`~fastreasonseg.perception.tracking.assign_track_ids`)
        start new tracks. Without a segmenter, the labeller runs on every frame and ids follow box IoU
        with the previous frame.
        """
        if self._video is None:
            self.start_video()
        st = self._video
        assert st is not None
        st.frame += 1
        full, work, scale = self.prepare(image)
        full_size = full.shape[:2]
        del full
        tracker = self.tracker
        if tracker is None:
            masks = self._track_by_detection(work, st)
        else:
            with self._timed("tracking"):
                masks = tracker.track(work)
            if keyframe:
                masks = self._keyframe(work, st, masks)
        depth = self._depth_map(work)
        objs = []
        for tid, m in sorted(masks.items()):
            b = mask_box(m)
            if b is None:
                continue
            info = st.tracks.get(tid) or _Track("object", None, [])
            info.last_box, info.last_seen = b, st.frame
            d = DepthStats.from_map(depth, m) if depth is not None else None
            objs.append(
                PerceivedObject(
                    info.label, info.score, list(info.alt_labels), _scale_box(b, 1 / scale), m, full_size, d, tid
                )
            )
        st.prev = masks
        return objs

    def _candidates(self, work: np.ndarray) -> list[tuple[Box, np.ndarray | None, str, float | None, list]]:
        """Keyframe proposals: (box, mask or None, label, score, alt labels), best first."""
        labelled = None
        if (self.config.mode == "grid" or self.labeller is None) and self.segmenter is not None:
            labelled = self._label_masks(work, self._grid(work))
        if labelled is not None:
            cands = [(mask_box(m), m, lab, sc, alts) for m, lab, sc, alts in labelled if m.any()]
            cands.sort(key=lambda c: -(c[3] if c[3] is not None else 0.0))
            return cands
        dets = self._detect_work(work, self.vocabulary, self.config.box_threshold) or []
        return [(d.box, None, d.label, d.score, list(d.alt_labels)) for d in dets]

    def _keyframe(self, work: np.ndarray, st: _VideoState, tracked: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        cands = self._candidates(work)
        if not cands:
            return tracked
        interval = max(1, self.config.keyframe_interval)
        track_boxes: dict[int, Box] = {t: b for t, m in tracked.items() if (b := mask_box(m)) is not None}
        # recently lost tracks can be re-acquired under their old id
        for t, info in st.tracks.items():
            if t not in track_boxes and info.last_box is not None and st.frame - info.last_seen <= 2 * interval:
                track_boxes[t] = info.last_box
        det_masks = [c[1] for c in cands]
        asg = assign_track_ids(
            [c[0] for c in cands],
            track_boxes,
            st.next_id,
            det_masks=det_masks if all(m is not None for m in det_masks) else None,
            track_masks=tracked,
        )
        prompts: dict[int, Any] = {}
        for i, tid in asg.matched.items():
            box, m, label, score, alts = cands[i]
            info = st.tracks.get(tid)
            if info is not None and score is not None and (info.score is None or score > info.score):
                info.label, info.score, info.alt_labels = label, score, alts
            if tid not in tracked:
                prompts[tid] = m if m is not None else np.asarray(box, dtype=np.float32)
        active = len(tracked)
        for i, tid in sorted(asg.new.items(), key=lambda kv: kv[1]):
            if active >= self.config.max_instances:
                break
            box, m, label, score, alts = cands[i]
            st.tracks[tid] = _Track(label, score, alts)
            prompts[tid] = m if m is not None else np.asarray(box, dtype=np.float32)
            st.next_id = max(st.next_id, tid + 1)  # ids of capped-away detections are not consumed
            active += 1
        if not prompts:
            return tracked
        with self._timed("tracking"):
            return self.tracker.add(prompts)

    def _track_by_detection(self, work: np.ndarray, st: _VideoState) -> dict[int, np.ndarray]:
        cands = self._candidates(work)[: self.config.max_instances]
        if not cands:
            return {}
        prev_boxes = {t: b for t, m in st.prev.items() if (b := mask_box(m)) is not None}
        asg = assign_track_ids([c[0] for c in cands], prev_boxes, st.next_id)
        st.next_id = max(st.next_id, asg.next_id)
        out: dict[int, np.ndarray] = {}
        for i, tid in {**asg.matched, **asg.new}.items():
            box, m, label, score, alts = cands[i]
            info = st.tracks.get(tid)
            if info is None or (score is not None and (info.score is None or score > info.score)):
                st.tracks[tid] = _Track(label, score, alts)
            out[tid] = m if m is not None else _box_mask(box, work.shape[:2])
        return out


def _clip_box(box: Box, size: tuple[int, int]) -> Box:
    h, w = size
    return (
        float(min(max(box[0], 0.0), w)),
        float(min(max(box[1], 0.0), h)),
        float(min(max(box[2], 0.0), w)),
        float(min(max(box[3], 0.0), h)),
    )
