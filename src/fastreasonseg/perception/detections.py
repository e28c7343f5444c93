"""``Detections``: the one record passed between perception stages.

The labeller produces boxes, scores and labels; the segmenter fills ``masks``; the tracker fills
``track_ids``; the depth stage fills ``depth``. Every field is an array (or list) with one row per
object, so a stage can add its column without touching the others, and selections (``dets[idx]``)
keep every column aligned.

>>> import numpy as np
>>> d = Detections.from_boxes([(0, 0, 10, 10), (5, 5, 20, 20)], scores=[0.2, 0.9], labels=["cup", "mug"])
>>> d.sorted().labels
['mug', 'cup']
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from fastreasonseg.perception.protocols import Box, Detection
from fastreasonseg.twin.schema import DepthStats


@dataclass
class Detections:
    """Objects of one frame, column by column (``N`` rows).

    * ``boxes``: ``(N, 4)`` float32 ``x0, y0, x1, y1`` in pixels of the frame the stage saw;
    * ``scores``: ``(N,)`` float32, ``NaN`` where unknown (class-agnostic proposals);
    * ``labels``: ``N`` names (``"object"`` when unlabelled); ``alt_labels``: runner-up ``(name, score)`` pairs;
    * ``masks``: ``(N, H, W)`` bool or ``None`` before segmentation;
    * ``track_ids``: ``(N,)`` int64 or ``None`` outside videos;
    * ``depth``: per-object depth statistics or ``None`` without a depth model.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: list[str]
    alt_labels: list[list[tuple[str, float]]] = field(default_factory=list)
    masks: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    depth: list[DepthStats | None] | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        n = len(self.boxes)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if not self.alt_labels:
            self.alt_labels = [[] for _ in range(n)]
        lengths = {"scores": len(self.scores), "labels": len(self.labels), "alt_labels": len(self.alt_labels)}
        if self.masks is not None:
            self.masks = np.asarray(self.masks, dtype=bool)
            lengths["masks"] = len(self.masks)
        if self.track_ids is not None:
            self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
            lengths["track_ids"] = len(self.track_ids)
        if self.depth is not None:
            lengths["depth"] = len(self.depth)
        bad = {k: v for k, v in lengths.items() if v != n}
        if bad:
            raise ValueError(f"Detections columns disagree with {n} boxes: {bad}")

    # ---------------------------------------------------------------------------------- building
    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), [])

    @classmethod
    def from_boxes(
        cls,
        boxes: Sequence[Box] | np.ndarray,
        *,
        scores: Sequence[float | None] | np.ndarray | None = None,
        labels: Sequence[str] | None = None,
        alt_labels: Sequence[Sequence[tuple[str, float]]] | None = None,
        masks: np.ndarray | Sequence[np.ndarray] | None = None,
    ) -> Detections:
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        n = len(b)
        if scores is None:
            sc = np.full(n, np.nan, np.float32)
        else:
            sc = np.asarray([np.nan if s is None else s for s in scores], dtype=np.float32)
        lab = list(labels) if labels is not None else ["object"] * n
        alts = [list(a) for a in alt_labels] if alt_labels is not None else [[] for _ in range(n)]
        m = None if masks is None else np.asarray(masks, dtype=bool)
        return cls(b, sc, lab, alts, m)

    @classmethod
    def from_list(cls, dets: Sequence[Detection]) -> Detections:
        """From the per-object :class:`~fastreasonseg.perception.protocols.Detection` records."""
        if not dets:
            return cls.empty()
        return cls.from_boxes(
            [d.box for d in dets],
            scores=[d.score for d in dets],
            labels=[d.label for d in dets],
            alt_labels=[d.alt_labels for d in dets],
        )

    # ---------------------------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, idx: Any) -> Detections:
        """Rows selected by an index array, a boolean mask or a slice (every column follows)."""
        sel = np.arange(len(self))[idx]
        sel = np.atleast_1d(sel)
        return Detections(
            self.boxes[sel],
            self.scores[sel],
            [self.labels[i] for i in sel],
            [list(self.alt_labels[i]) for i in sel],
            None if self.masks is None else self.masks[sel],
            None if self.track_ids is None else self.track_ids[sel],
            None if self.depth is None else [self.depth[i] for i in sel],
        )

    def score(self, i: int) -> float | None:
        v = float(self.scores[i])
        return None if np.isnan(v) else v

    def box(self, i: int) -> Box:
        return tuple(float(c) for c in self.boxes[i])  # type: ignore[return-value]

    def to_list(self) -> list[Detection]:
        """Per-object records (scores of ``NaN`` become ``0.0``)."""
        return [
            Detection(self.box(i), self.labels[i], self.score(i) or 0.0, list(self.alt_labels[i]))
            for i in range(len(self))
        ]

    def __iter__(self) -> Iterator[Detection]:
        return iter(self.to_list())

    def sorted(self) -> Detections:
        """Best score first (unknown scores last), stable."""
        key = np.where(np.isnan(self.scores), -np.inf, self.scores)
        return self[np.argsort(-key, kind="stable")]

    def top(self, k: int) -> Detections:
        return self[: max(0, int(k))]

    def with_masks(self, masks: np.ndarray | Sequence[np.ndarray]) -> Detections:
        m = np.asarray(masks, dtype=bool)
        if len(self) == 0:
            m = m.reshape(0, *(m.shape[1:] if m.ndim == 3 else (0, 0)))
        return replace(self, masks=m)

    def scaled(self, factor: float) -> Detections:
        """Boxes multiplied by ``factor`` (e.g. ``1 / scale`` from working to full resolution)."""
        return replace(self, boxes=self.boxes * np.float32(factor))
