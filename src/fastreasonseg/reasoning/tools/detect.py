"""``detect(name)``: run the open-vocabulary detector for a phrase on the source frames and select what it finds.

Needs the source frames and the perception models (a twin loaded from JSON alone has neither: the result says
so). A detection whose mask overlaps an existing instance (IoU >= ``ToolContext.overlap_iou``) relabels that
instance; any other becomes a new instance with a new id, linked across processed video frames by box overlap.
The working copy of the twin changes; the caller's twin never does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastreasonseg.reasoning.tools.base import Param, Selection, Tool, ToolContext, ToolError
from fastreasonseg.twin.masks import box_iou
from fastreasonseg.twin.schema import DepthStats, Frame, Instance

Box = tuple[float, float, float, float]


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return float(inter / union) if union else 0.0


def merge_alts(label: str, alts: list[tuple[str, float]], extra: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Alternative labels after a relabel: ``extra`` first, no duplicates, not the new label, at most four."""
    seen, out = {label}, []
    for name, score in [*extra, *alts]:
        if name not in seen:
            seen.add(name)
            out.append((name, round(float(min(max(score, 0.0), 1.0)), 4)))
    return out[:4]


def _frames_to_scan(ctx: ToolContext) -> list[Frame]:
    if ctx.perception is None or not ctx.frames:
        raise ToolError("detect needs the source image and the perception models; this twin was loaded without them")
    usable = [fr for fr in ctx.twin.frames if ctx.image(fr.index) is not None]
    if not usable:
        raise ToolError("detect needs the source image of a twin frame; none of the given frames match the twin")
    if len(usable) > ctx.max_detect_frames:
        step = len(usable) / ctx.max_detect_frames
        usable = [usable[int(k * step)] for k in range(ctx.max_detect_frames)]
    return usable


def _relabel_existing(fr: Frame, inst: Instance, text: str, score: float, ctx: ToolContext) -> None:
    if inst.label != text:
        old = inst.label
        inst.alt_labels = merge_alts(text, inst.alt_labels, [(old, inst.score or 0.0)])
        inst.label = text
        inst.score = round(min(max(score, 0.0), 1.0), 4)
        ctx.log.append(f"detect: relabelled {inst.id} {old!r} -> {text!r} in frame {fr.index}")


def _best_overlap(fr: Frame, m: np.ndarray, claimed: set[int]) -> tuple[Instance | None, float]:
    best, best_iou = None, 0.0
    for inst in fr.instances:
        if inst.id not in claimed:
            iou = mask_iou(m, inst.mask.decode())
            if iou > best_iou:
                best, best_iou = inst, iou
    return best, best_iou


def _run(ctx: ToolContext, text: str) -> Selection:
    text = " ".join(text.split())
    usable = _frames_to_scan(ctx)
    twin = ctx.twin
    h, w = twin.size
    next_id = max(twin.track_ids, default=-1) + 1
    found_ids: list[int] = []
    prev_new: list[tuple[int, Box]] = []  # new tracks on the previous processed frame
    for fr in usable:
        this_new: list[tuple[int, Box]] = []
        claimed: set[int] = set()
        for det, mask, depth in ctx.perception.detect(ctx.image(fr.index), [text], ctx.detect_threshold):
            m = np.asarray(mask, dtype=bool)
            if m.shape != (h, w):
                raise ToolError(f"perception returned a {m.shape[1]}x{m.shape[0]} mask for a {w}x{h} twin")
            score = float(getattr(det, "score", 0.0) or 0.0)
            best, iou = _best_overlap(fr, m, claimed)
            if best is not None and iou >= ctx.overlap_iou:
                claimed.add(best.id)
                _relabel_existing(fr, best, text, score, ctx)
                found_ids.append(best.id)
                continue
            alts: list[Any] = list(getattr(det, "alt_labels", []) or [])
            inst = Instance.from_mask(0, text, m, score=score, alt_labels=alts)
            if inst is None:
                continue
            match = max(prev_new, key=lambda p: box_iou(p[1], inst.box), default=None)
            if match is not None and box_iou(match[1], inst.box) > 0.3 and match[0] not in claimed:
                tid = match[0]
            else:
                tid, next_id = next_id, next_id + 1
            claimed.add(tid)
            update: dict[str, Any] = {"id": tid}
            if isinstance(depth, DepthStats):
                update["depth"] = depth
            fr.instances.append(inst.model_copy(update=update))
            this_new.append((tid, inst.box))
            found_ids.append(tid)
            ctx.log.append(f"detect: added {tid} {text!r} in frame {fr.index}")
        prev_new = this_new
    ctx.changed()
    if not found_ids:
        return Selection((), f"the detector found no {text!r}")
    return Selection.of(ctx.scene.order(found_ids), f"detected {text!r}")


TOOL = Tool("detect", (Param("name", "text"),), _run, "run the detector for a name")
