"""Track-id assignment: which re-detections are objects already tracked and which are new.

:func:`assign_track_ids` is a pure function so its rules can be tested without any model:

1. Detections are compared with tracks by IoU (mask IoU when both sides have masks, else box IoU).
2. Pairs are matched greedily, highest IoU first, each track and each detection at most once, if
   their IoU is at least ``iou_threshold``.
3. An unmatched detection that still overlaps a matched or an already-new object by at least
   ``iou_threshold`` is a duplicate and is dropped (no second id for one object).
4. Every other detection gets a fresh id, ``next_id, next_id + 1, ...`` in detection order (which
   callers sort by score). Ids are never reused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fastreasonseg.perception.protocols import Box
from fastreasonseg.twin.masks import box_iou


@dataclass
class TrackAssignment:
    """Result of :func:`assign_track_ids` (keys are detection positions)."""

    matched: dict[int, int] = field(default_factory=dict)
    """detection position -> existing track id"""
    new: dict[int, int] = field(default_factory=dict)
    """detection position -> newly created track id"""
    duplicates: list[int] = field(default_factory=list)
    """detection positions dropped as duplicates of another object"""
    next_id: int = 0
    """the first id still unused"""


def _iou(a_box: Box, b_box: Box, a_mask: np.ndarray | None, b_mask: np.ndarray | None) -> float:
    if a_mask is not None and b_mask is not None and a_mask.shape == b_mask.shape:
        inter = np.logical_and(a_mask, b_mask).sum()
        union = np.logical_or(a_mask, b_mask).sum()
        return float(inter / union) if union else 0.0
    return box_iou(a_box, b_box)


def assign_track_ids(
    det_boxes: Sequence[Box],
    track_boxes: Mapping[int, Box],
    next_id: int,
    *,
    iou_threshold: float = 0.5,
    det_masks: Sequence[np.ndarray | None] | None = None,
    track_masks: Mapping[int, np.ndarray] | None = None,
) -> TrackAssignment:
    """Match detections to tracks and give unmatched, non-duplicate detections new ids (rules above)."""
    track_ids = list(track_boxes)
    n, m = len(det_boxes), len(track_ids)
    dm = list(det_masks) if det_masks is not None else [None] * n
    tm = track_masks or {}
    next_id = max([next_id, *[t + 1 for t in track_ids]])
    iou = np.zeros((n, m))
    for i in range(n):
        for j, t in enumerate(track_ids):
            iou[i, j] = _iou(det_boxes[i], track_boxes[t], dm[i], tm.get(t))
    res = TrackAssignment(next_id=next_id)
    used_tracks: set[int] = set()
    pairs = sorted(((iou[i, j], i, j) for i in range(n) for j in range(m)), key=lambda p: -p[0])
    for v, i, j in pairs:
        if v < iou_threshold:
            break
        if i in res.matched or j in used_tracks:
            continue
        res.matched[i] = track_ids[j]
        used_tracks.add(j)
    for i in range(n):
        if i in res.matched:
            continue
        dup = any(iou[i, j] >= iou_threshold for j in range(m))
        if not dup:
            dup = any(_iou(det_boxes[i], det_boxes[k], dm[i], dm[k]) >= iou_threshold for k in res.new)
        if dup:
            res.duplicates.append(i)
            continue
        res.new[i] = res.next_id
        res.next_id += 1
    return res
