"""Scoring one item: the predicted ids' masks against the ground truth, frame by frame.

Predicted ids become masks on the (refined) twin, in every scored frame (the twin's frames: with ``stride`` and
``max_frames`` on videos of real datasets). Per item: intersection and union summed over the frames, its IoU
(the mean of the per-frame IoUs, a frame whose union is empty scoring 1; for an image, I/U) and for videos J and F
per frame (:class:`~fastreasonseg.eval.metrics.VideoScore`). The summary's gIoU is the mean of the item IoUs and
cIoU = ΣI / ΣU over all frames of all items (:mod:`fastreasonseg.eval.summary`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastreasonseg.errors import InputError
from fastreasonseg.eval.items import EvalItem, gt_foreground
from fastreasonseg.eval.metrics import VideoScore, intersection_union
from fastreasonseg.eval.predictors import Prediction
from fastreasonseg.twin.schema import DigitalTwin

__all__ = ["score_item"]


def score_item(item: EvalItem, twin: DigitalTwin, pred: Prediction) -> dict[str, Any]:
    """Masks of the predicted ids on the (refined) twin vs the ground truth, over the twin's frames.

    Returns ``iou``, ``intersection``, ``union``, ``frames`` and, for videos, ``J``, ``F``, ``J&F`` and
    ``per_frame`` (``index``, ``J``, ``F`` lists). A predicted mask of another size than the ground truth is an
    :class:`~fastreasonseg.errors.InputError` (the item is skipped).
    """
    ptwin = pred.twin if pred.twin is not None else twin
    known = {fr.index for fr in ptwin.frames}
    video = VideoScore()
    inter_t = union_t = 0
    ious: list[float] = []
    for fr in twin.frames:
        gt = np.asarray(item.gt_mask(fr.index))
        if fr.index in known and pred.ids:
            pm = ptwin.mask(fr.index, pred.ids)
        else:
            pm = np.zeros(gt.shape, dtype=bool)
        if pm.shape != gt.shape:
            raise InputError(f"frame {fr.index}: predicted mask {pm.shape} vs ground truth {gt.shape}")
        i, u = intersection_union(pm, gt)
        inter_t += int(i)
        union_t += int(u)
        ious.append(1.0 if u == 0 else int(i) / int(u))
        if item.media == "video":
            void = None if gt.dtype == bool else (gt == 255)
            video.add_frame(item.key, pm, gt_foreground(gt), void=void if void is not None and void.any() else None)
    out: dict[str, Any] = {
        "iou": float(np.mean(ious)) if ious else 1.0,
        "intersection": inter_t,
        "union": union_t,
        "frames": len(ious),
    }
    if item.media == "video":
        out |= _video_scores(item.key, video, twin)
    return out


def _video_scores(key: str, video: VideoScore, twin: DigitalTwin) -> dict[str, Any]:
    j, f, jf = video.expression(key)
    pj, pf = video.per_frame(key)
    return {
        "J": j,
        "F": f,
        "J&F": jf,
        "per_frame": {
            "index": [fr.index for fr in twin.frames],
            "J": [round(float(x), 6) for x in pj],
            "F": [round(float(x), 6) for x in pf],
        },
    }
