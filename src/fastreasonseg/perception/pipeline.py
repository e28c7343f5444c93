"""The :class:`Perception` facade: labeller + segmenter + depth (+ tracker), per image and per video frame.

Models are loaded lazily from :class:`~fastreasonseg.config.PerceptionConfig` (hub id or local
directory each; ``None`` skips the model). Each model's backend class comes from the registry
(:mod:`fastreasonseg.perception.registry`: a directory's ``config.json`` ``model_type`` picks it,
``name:MODEL`` forces one), and each backend runs its image encoder on the configured runtime
(``backend``: ``auto`` / ``torch`` / ``onnx`` / ``openvino``):

* no labeller: every instance is labelled ``"object"`` (proposals come from SAM-2's grid);
* no segmenter: masks are the detection boxes;
* no depth model: instances carry no depth statistics.

Modes: ``"detect"`` (default, fast) runs the labeller and prompts SAM-2 with all its boxes in one
decoder batch on one image encoding; ``"grid"`` runs SAM-2's automatic masks from a point grid and
labels each mask with the labeller's detection that overlaps it best (box IoU >= 0.5), else by
classifying the mask's box. Stages pass one :class:`~fastreasonseg.perception.detections.Detections`.

Frames larger than ``max_side`` are downscaled for the models (the *working* resolution); every
box and mask handed out (``PerceivedObject.full_mask()``, :meth:`Perception.detect`) is at the full
source resolution.

Videos: every frame is decoded once and encoded once per model; SAM-2 propagates every track; on
keyframes (every ``keyframe_interval`` processed frames) the labeller re-detects, unmatched
detections start tracks, recently lost tracks are re-prompted under their old id, and only the
prompted objects are decoded again. Tracks absent for more than ``release_after`` frames are
released, so memory stays flat in the number of frames and of objects that came and went.
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
from fastreasonseg.perception.detections import Detections
from fastreasonseg.perception.media import fit_to_side, resize_mask, to_rgb_uint8
from fastreasonseg.perception.protocols import Box, DepthEstimator, Detection, Labeller, Segmenter, Tracker
from fastreasonseg.perception.registry import BackendSettings, Registry, default_registry
from fastreasonseg.perception.tracking import assign_track_ids
from fastreasonseg.perception.vocabulary import build_vocabulary
from fastreasonseg.twin.masks import box_iou, mask_box
from fastreasonseg.twin.schema import DepthStats, Instance

STAGES = ("labeller", "segmenter", "depth", "tracking")
BACKENDS = ("auto", "torch", "onnx", "openvino")
PRECISIONS = ("fp32", "int8", "fp16", "bf16")


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


def _as_detections(found: Any) -> Detections:
    """A labeller's result as :class:`Detections` (older labellers return a list of ``Detection``)."""
    return found if isinstance(found, Detections) else Detections.from_list(list(found))


def check_config(cfg: PerceptionConfig) -> None:
    """Every bad perception setting named in one :class:`~fastreasonseg.errors.InputError`."""
    problems = []
    if cfg.mode not in ("detect", "grid"):
        problems.append(f"perception mode must be 'detect' or 'grid', got {cfg.mode!r}")
    if cfg.backend not in BACKENDS:
        problems.append(f"backend must be one of {', '.join(BACKENDS)}, got {cfg.backend!r}")
    if cfg.precision not in PRECISIONS:
        problems.append(f"precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if cfg.precision == "int8" and cfg.backend != "onnx":
        problems.append("precision 'int8' needs backend 'onnx' (ONNX Runtime dynamic quantisation)")
    for name in ("labeller_size", "depth_size", "segmenter_size", "threads", "release_after"):
        v = getattr(cfg, name)
        if v is not None and (not isinstance(v, int) or v < 1):
            problems.append(f"{name} must be a positive integer or None, got {v!r}")
    if not isinstance(cfg.max_pixels, int) or cfg.max_pixels < 1:
        problems.append(f"max_pixels must be a positive integer, got {cfg.max_pixels!r}")
    if problems:
        raise InputError("; ".join(problems))


class Perception:
    """Labeller + segmenter + depth (+ tracker) behind one object; see the module docstring.

    Backends can be injected (anything implementing the protocols in
    :mod:`fastreasonseg.perception.protocols`); otherwise they are loaded from ``config`` on first use.
    ``timings_ms`` accumulates milliseconds per stage (``labeller``, ``segmenter``, ``depth``,
    ``tracking``, ``load``); ``notes`` collects what the backends said (runtimes used, fallbacks).
    """

    def __init__(
        self,
        config: PerceptionConfig | None = None,
        *,
        labeller: Labeller | None = None,
        segmenter: Segmenter | None = None,
        depth: DepthEstimator | None = None,
        tracker: Tracker | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.config = config or PerceptionConfig()
        check_config(self.config)
        self.registry = registry or default_registry
        self._labeller = labeller
        self._segmenter = segmenter
        self._depth = depth
        self._tracker: Any = tracker
        self.vocabulary = build_vocabulary(self.config.vocabulary, use_default=self.config.use_default_vocabulary)
        self.timings_ms: dict[str, float] = {s: 0.0 for s in (*STAGES, "load")}
        self.notes: list[str] = []
        self._video: _VideoState | None = None

    # ---------------------------------------------------------------------------------- models
    @contextlib.contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings_ms[stage] = self.timings_ms.get(stage, 0.0) + (time.perf_counter() - t0) * 1000.0

    def settings(self, stage: str) -> BackendSettings:
        """What a backend of ``stage`` is told: device, resolved runtime, precision, input size, threads."""
        from fastreasonseg.perception.runtimes import resolve_runtime

        cfg = self.config
        size = {"labeller": cfg.labeller_size, "depth": cfg.depth_size, "segmenter": cfg.segmenter_size}.get(stage)
        precision = cfg.precision
        if precision in ("fp16", "bf16") and str(cfg.device).startswith("cpu"):
            precision = "fp32"
        return BackendSettings(
            device=cfg.device,
            runtime=resolve_runtime(cfg.backend, stage, str(cfg.device), self.registry),
            precision=precision,
            input_size=size,
            threads=cfg.threads,
            export_cache=cfg.export_cache,
            compile=cfg.compile,
            notes=self.notes,
        )

    def _build(self, kind: str, stage: str, model: str) -> Any:
        spec, name = self.registry.resolve(kind, model)
        with self._timed("load"):
            return spec.factory(name, self.settings(stage))

    @property
    def labeller(self) -> Labeller | None:
        if self._labeller is None and self.config.labeller:
            self._labeller = self._build("labeller", "labeller", self.config.labeller)
        return self._labeller

    @property
    def segmenter(self) -> Segmenter | None:
        if self._segmenter is None and self.config.segmenter:
            self._segmenter = self._build("segmenter", "segmenter", self.config.segmenter)
        return self._segmenter

    @property
    def depth_model(self) -> DepthEstimator | None:
        if self._depth is None and self.config.depth:
            self._depth = self._build("depth", "depth", self.config.depth)
        return self._depth

    @property
    def tracker(self) -> Any:
        """The video tracker (SAM-2 by default), or ``None`` without a segmenter."""
        if self._tracker is None and self.config.segmenter:
            self._tracker = self._build("tracker", "tracker", self.config.segmenter)
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

    def _detect_work(self, work: np.ndarray, vocabulary: Sequence[str], threshold: float) -> Detections | None:
        lab = self.labeller
        if lab is None:
            return None
        with self._timed("labeller"):
            dets = _as_detections(lab.detect(work, vocabulary, threshold))
        return dets.sorted()

    def _grid(self, work: np.ndarray) -> list[tuple[np.ndarray, float]]:
        seg = self.segmenter
        if seg is None:
            return []
        with self._timed("segmenter"):
            seg.set_image(work)
            return seg.automatic_masks(self.config.grid_points)

    def _label_masks(self, work: np.ndarray, masks: list[tuple[np.ndarray, float]]) -> Detections:
        """Labels for class-agnostic masks: best-overlapping detection, else classification of the box."""
        if not masks:
            return Detections.empty()
        boxes = [mask_box(m) or (0.0, 0.0, 0.0, 0.0) for m, _ in masks]
        out = Detections.from_boxes(boxes, masks=np.stack([m for m, _ in masks]))
        out.scores[:] = [q for _, q in masks]
        dets = self._detect_work(work, self.vocabulary, self.config.box_threshold)
        if dets is None:
            return out
        unmatched: list[int] = []
        for k, mb in enumerate(boxes):
            best, best_iou = None, 0.5
            for j in range(len(dets)):
                v = box_iou(mb, dets.box(j))
                if v >= best_iou:
                    best, best_iou = j, v
            if best is None:
                unmatched.append(k)
                out.scores[k] = np.nan
            else:
                out.labels[k], out.scores[k] = dets.labels[best], dets.scores[best]
                out.alt_labels[k] = list(dets.alt_labels[best])
        if unmatched and self.labeller is not None:
            with self._timed("labeller"):
                ranked = self.labeller.classify(work, [boxes[k] for k in unmatched], self.vocabulary)
            top = 1 + getattr(self.labeller, "top_k", 3)
            for k, r in zip(unmatched, ranked, strict=True):
                if r:
                    out.labels[k], out.scores[k], out.alt_labels[k] = r[0][0], r[0][1], list(r[1:top])
        return out

    def _objects(
        self, dets: Detections, depth: np.ndarray | None, full_size: tuple[int, int], scale: float
    ) -> list[PerceivedObject]:
        objs: list[PerceivedObject] = []
        if dets.masks is None:
            return objs
        for i in range(len(dets)):
            m = dets.masks[i]
            b = mask_box(m)
            if b is None:
                continue
            d = DepthStats.from_map(depth, m) if depth is not None else None
            objs.append(
                PerceivedObject(
                    dets.labels[i], dets.score(i), list(dets.alt_labels[i]), _scale_box(b, 1 / scale), m, full_size, d
                )
            )
        objs.sort(key=lambda o: -(o.score if o.score is not None else 0.0))
        return objs[: self.config.max_instances]

    # ---------------------------------------------------------------------------------- images
    def perceive(self, image: Any) -> list[PerceivedObject]:
        """Every object in one image, best score first (at most ``max_instances``), ids unset."""
        full, work, scale = self.prepare(image)
        full_size = full.shape[:2]
        del full
        dets = self._propose(work)
        depth = self._depth_map(work)
        return self._objects(dets, depth, full_size, scale)

    def _propose(self, work: np.ndarray) -> Detections:
        """Masks with labels on the working frame, according to the mode."""
        cfg = self.config
        if cfg.mode == "grid" or self.labeller is None:
            if self.segmenter is not None:
                return self._label_masks(work, self._grid(work))
            if self.labeller is None:
                return Detections.empty().with_masks(np.zeros((0, *work.shape[:2]), bool))
        dets = (self._detect_work(work, self.vocabulary, cfg.box_threshold) or Detections.empty()).top(
            cfg.max_instances
        )
        return dets.with_masks(self._masks_for_boxes(work, dets))

    def _masks_for_boxes(self, work: np.ndarray, dets: Detections) -> np.ndarray:
        h, w = work.shape[:2]
        if len(dets) == 0:
            return np.zeros((0, h, w), dtype=bool)
        seg = self.segmenter
        boxes = [dets.box(i) for i in range(len(dets))]
        if seg is None:
            return np.stack([_box_mask(b, (h, w)) for b in boxes])
        with self._timed("segmenter"):
            seg.set_image(work)
            return np.stack(seg.masks_from_boxes(boxes))

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
        dets = (self._detect_work(work, list(phrases), thr) or Detections.empty()).top(self.config.max_instances)
        masks = self._masks_for_boxes(work, dets)
        depth = self._depth_map(work) if len(dets) else None
        out = []
        for i, m in enumerate(masks):
            if not m.any():
                continue
            stats = DepthStats.from_map(depth, m) if depth is not None else None
            fm = resize_mask(m, full_size)
            box = _clip_box(_scale_box(dets.box(i), 1 / scale), full_size)
            out.append((Detection(box, dets.labels[i], dets.score(i) or 0.0, list(dets.alt_labels[i])), fm, stats))
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
            self.tracker.reset()

    @property
    def release_after(self) -> int:
        cfg = self.config
        return int(cfg.release_after or 2 * max(1, cfg.keyframe_interval))

    def track(self, image: Any, *, keyframe: bool) -> list[PerceivedObject]:
        """Objects of the next processed video frame, each with its track ``id``.

        With a segmenter, SAM-2 propagates every track; on keyframes the frame is re-detected,
        detections that match no present track (see :func:`~fastreasonseg.perception.tracking.assign_track_ids`)
        start new tracks and recently lost tracks are re-prompted. Without a segmenter, the labeller runs
        on every frame and ids follow box IoU with the previous frame.
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
        self._release_gone(st)
        return objs

    def _release_gone(self, st: _VideoState) -> None:
        """Tracks absent for more than ``release_after`` frames leave: the tracker frees their memory."""
        horizon = st.frame - self.release_after
        gone = [t for t, info in st.tracks.items() if info.last_seen < horizon and t not in st.prev]
        if not gone:
            return
        if self._tracker is not None:
            self._tracker.release(gone)
        for t in gone:
            del st.tracks[t]

    def _candidates(self, work: np.ndarray) -> Detections:
        """Keyframe proposals, best first (with masks in grid mode, boxes only in detect mode)."""
        if (self.config.mode == "grid" or self.labeller is None) and self.segmenter is not None:
            cands = self._label_masks(work, self._grid(work))
            if cands.masks is not None and len(cands):
                cands = cands[cands.masks.reshape(len(cands), -1).any(1)]
            return cands.sorted()
        return self._detect_work(work, self.vocabulary, self.config.box_threshold) or Detections.empty()

    def _keyframe(self, work: np.ndarray, st: _VideoState, tracked: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        cands = self._candidates(work)
        if not len(cands):
            return tracked
        window = self.release_after
        track_boxes: dict[int, Box] = {t: b for t, m in tracked.items() if (b := mask_box(m)) is not None}
        # recently lost tracks can be re-acquired under their old id
        for t, info in st.tracks.items():
            if t not in track_boxes and info.last_box is not None and st.frame - info.last_seen <= window:
                track_boxes[t] = info.last_box
        asg = assign_track_ids(
            [cands.box(i) for i in range(len(cands))],
            track_boxes,
            st.next_id,
            det_masks=list(cands.masks) if cands.masks is not None else None,
            track_masks=tracked,
        )

        def prompt(i: int) -> Any:
            return cands.masks[i] if cands.masks is not None else np.asarray(cands.box(i), dtype=np.float32)

        prompts: dict[int, Any] = {}
        for i, tid in asg.matched.items():
            info = st.tracks.get(tid)
            score = cands.score(i)
            if info is not None and score is not None and (info.score is None or score > info.score):
                info.label, info.score, info.alt_labels = cands.labels[i], score, list(cands.alt_labels[i])
            if tid not in tracked:
                prompts[tid] = prompt(i)
        active = len(tracked) + len(prompts)
        for i, tid in sorted(asg.new.items(), key=lambda kv: kv[1]):
            if active >= self.config.max_instances:
                break
            st.tracks[tid] = _Track(cands.labels[i], cands.score(i), list(cands.alt_labels[i]))
            prompts[tid] = prompt(i)
            st.next_id = max(st.next_id, tid + 1)  # ids of capped-away detections are not consumed
            active += 1
        if not prompts:
            return tracked
        with self._timed("tracking"):
            return self.tracker.add(prompts)

    def _track_by_detection(self, work: np.ndarray, st: _VideoState) -> dict[int, np.ndarray]:
        cands = self._candidates(work).top(self.config.max_instances)
        if not len(cands):
            return {}
        prev_boxes = {t: b for t, m in st.prev.items() if (b := mask_box(m)) is not None}
        asg = assign_track_ids([cands.box(i) for i in range(len(cands))], prev_boxes, st.next_id)
        st.next_id = max(st.next_id, asg.next_id)
        out: dict[int, np.ndarray] = {}
        for i, tid in {**asg.matched, **asg.new}.items():
            score = cands.score(i)
            info = st.tracks.get(tid)
            if info is None or (score is not None and (info.score is None or score > info.score)):
                st.tracks[tid] = _Track(cands.labels[i], score, list(cands.alt_labels[i]))
            out[tid] = cands.masks[i] if cands.masks is not None else _box_mask(cands.box(i), work.shape[:2])
        return out


def _clip_box(box: Box, size: tuple[int, int]) -> Box:
    h, w = size
    return (
        float(min(max(box[0], 0.0), w)),
        float(min(max(box[1], 0.0), h)),
        float(min(max(box[2], 0.0), w)),
        float(min(max(box[3], 0.0), h)),
    )
