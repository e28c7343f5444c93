"""SAM-2 through ``transformers`` with our own pre/post-processing (no torchvision needed).

* :class:`Sam2Segmenter` (``Sam2Model``): ``set_image`` encodes once; ``masks_from_boxes`` and
  ``automatic_masks`` reuse the encoding, as in segment-anything.
* :class:`Sam2Tracker` (``Sam2VideoModel``): streams frames into an inference session and keeps one
  id per object; objects can be added (box or mask prompts) on any frame.

Pre-processing follows SAM-2's image processor: the RGB image is resized (bilinear, aspect ratio not
kept) to the model's square input size and normalised with the ImageNet mean/std; prompt coordinates
are scaled the same way. The model's low-resolution mask logits (a quarter of the input size) are
upsampled bilinearly to the image size and thresholded at 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fastreasonseg.perception._hf import IMAGENET_MEAN, IMAGENET_STD, load_model, torch_device
from fastreasonseg.perception.protocols import Box


def _input_size(config: Any) -> int:
    for obj, attr in ((config, "image_size"), (getattr(config, "prompt_encoder_config", None), "image_size")):
        v = getattr(obj, attr, None) if obj is not None else None
        if isinstance(v, int):
            return v
        if isinstance(v, (list, tuple)) and v:
            return int(v[0])
    return 1024


def preprocess(image: np.ndarray, size: int) -> Any:
    """``(H, W, 3)`` uint8 RGB -> ``(1, 3, size, size)`` float tensor, ImageNet-normalised."""
    import torch
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(image))
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(IMAGENET_MEAN, dtype=np.float32)) / np.asarray(IMAGENET_STD, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]


def upsample_logits(logits: Any, size: tuple[int, int]) -> np.ndarray:
    """``(N, h, w)`` mask logits -> ``(N, H, W)`` boolean masks (bilinear, threshold 0), in chunks."""
    import torch.nn.functional as F

    n = logits.shape[0]
    out = np.zeros((n, size[0], size[1]), dtype=bool)
    chunk = max(1, int(64_000_000 // max(1, size[0] * size[1])))
    for s in range(0, n, chunk):
        part = logits[s : s + chunk, None].float()
        up = F.interpolate(part, size=size, mode="bilinear", align_corners=False)[:, 0]
        out[s : s + chunk] = (up > 0).cpu().numpy()
        del up
    return out


def _scale_boxes(boxes: Sequence[Box], w: int, h: int, size: int) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    b[:, [0, 2]] *= size / w
    b[:, [1, 3]] *= size / h
    return np.clip(b, 0, size)


def mask_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every mask of ``a (N, H, W)`` and ``b (M, H, W)`` (boolean), as ``(N, M)``."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


class Sam2Segmenter:
    """Promptable SAM-2 on single images (implements the :class:`Segmenter` protocol).

    ``automatic_masks`` keeps a mask when its predicted IoU is at least ``pred_iou_thresh`` and its
    stability score (IoU of the mask thresholded at +1 and -1) at least ``stability_thresh``; masks
    overlapping a better one by more than ``nms_iou`` are dropped.
    """

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        *,
        pred_iou_thresh: float = 0.7,
        stability_thresh: float = 0.85,
        nms_iou: float = 0.7,
        points_per_batch: int = 64,
        max_masks: int = 100,
    ) -> None:
        from transformers import Sam2Model

        self.name = model
        self.device = torch_device(device)
        self.model = load_model(
            "segmenter", model, lambda p, kw: Sam2Model.from_pretrained(p, **kw).to(self.device).eval()
        )
        self.size = _input_size(self.model.config.prompt_encoder_config)
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_thresh = stability_thresh
        self.nms_iou = nms_iou
        self.points_per_batch = points_per_batch
        self.max_masks = max_masks
        self._emb: list[Any] | None = None
        self._hw: tuple[int, int] | None = None

    # ---------------------------------------------------------------------------------- encoding
    def set_image(self, image: np.ndarray) -> None:
        import torch

        with torch.inference_mode():
            pix = preprocess(image, self.size).to(self.device)
            self._emb = self.model.get_image_embeddings(pix)
        self._hw = (int(image.shape[0]), int(image.shape[1]))

    def _require(self) -> tuple[list[Any], tuple[int, int]]:
        if self._emb is None or self._hw is None:
            raise RuntimeError("call set_image(image) before asking for masks")
        return self._emb, self._hw

    # ---------------------------------------------------------------------------------- prompts
    def mask_logits_from_boxes(self, boxes: Sequence[Box]) -> tuple[Any, np.ndarray]:
        """Low-resolution logits ``(N, S/4, S/4)`` and predicted IoU ``(N,)`` for box prompts in pixels."""
        import torch

        emb, (h, w) = self._require()
        if len(boxes) == 0:
            q = self.size // 4
            return torch.zeros((0, q, q)), np.zeros(0, dtype=np.float32)
        b = torch.from_numpy(_scale_boxes(boxes, w, h, self.size))[None].to(self.device)
        with torch.inference_mode():
            out = self.model(image_embeddings=emb, input_boxes=b, multimask_output=False)
        logits = out.pred_masks[0, :, 0]  # (N, S/4, S/4)
        scores = out.iou_scores[0, :, 0].float().cpu().numpy()
        return logits.cpu(), scores

    def masks_from_boxes(self, boxes: Sequence[Box]) -> list[np.ndarray]:
        """One boolean mask (at the ``set_image`` image size) per box ``(x0, y0, x1, y1)`` in pixels."""
        _, hw = self._require()
        logits, _ = self.mask_logits_from_boxes(boxes)
        return list(upsample_logits(logits, hw)) if len(boxes) else []

    def automatic_masks(self, points_per_side: int) -> list[tuple[np.ndarray, float]]:
        """Class-agnostic masks from a ``points_per_side`` x ``points_per_side`` grid of point prompts.

        Points go through the mask decoder in batches of ``points_per_batch`` on the one image
        encoding; each point proposes 3 masks; they are filtered by predicted IoU and stability, then
        de-duplicated by mask NMS (at the low resolution), best first.
        """
        import torch

        emb, hw = self._require()
        n = max(1, int(points_per_side))
        coords = (np.arange(n, dtype=np.float32) + 0.5) / n * self.size
        gx, gy = np.meshgrid(coords, coords)
        pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
        all_logits, all_scores = [], []
        for s in range(0, len(pts), self.points_per_batch):
            p = torch.from_numpy(pts[s : s + self.points_per_batch])[None, :, None, :].to(self.device)
            labels = torch.ones(p.shape[:3], dtype=torch.int32, device=self.device)
            with torch.inference_mode():
                out = self.model(image_embeddings=emb, input_points=p, input_labels=labels, multimask_output=True)
            lg = out.pred_masks[0].flatten(0, 1).float().cpu()  # (P*3, h, w)
            sc = out.iou_scores[0].flatten().float().cpu()
            stab = ((lg > 1.0).flatten(1).sum(1).float() / (lg > -1.0).flatten(1).sum(1).clamp(min=1).float()).numpy()
            keep = (sc.numpy() >= self.pred_iou_thresh) & (stab >= self.stability_thresh)
            keep &= (lg > 0).flatten(1).any(1).numpy()
            if keep.any():
                idx = torch.from_numpy(np.flatnonzero(keep))
                all_logits.append(lg[idx])
                all_scores.append(sc[idx].numpy())
        if not all_logits:
            return []
        logits = torch.cat(all_logits)
        scores = np.concatenate(all_scores)
        order = np.argsort(-scores, kind="stable")
        low = (logits > 0).numpy()
        kept = nms_masks(low[order], self.nms_iou)[: self.max_masks]
        sel = order[kept]
        masks = upsample_logits(logits[torch.from_numpy(sel)], hw)
        return [(m, float(scores[i])) for m, i in zip(masks, sel, strict=True) if m.any()]


def nms_masks(masks: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy NMS over masks already sorted best first; returns the kept positions."""
    kept: list[int] = []
    if len(masks) == 0:
        return kept
    flat = masks.reshape(len(masks), -1).astype(np.float32)
    areas = flat.sum(1)
    for i in range(len(masks)):
        if kept:
            k = np.asarray(kept)
            inter = flat[k] @ flat[i]
            union = areas[k] + areas[i] - inter
            if np.any(np.where(union > 0, inter / np.maximum(union, 1e-9), 0) > iou_threshold):
                continue
        kept.append(i)
    return kept


class Sam2Tracker:
    """SAM-2 video propagation, streamed one frame at a time.

    Call :meth:`reset` with the frame size, then for every processed frame :meth:`track` (adds the
    frame and propagates every object added so far), and optionally :meth:`add` (prompts for new or
    lost objects on that same frame; all of them in one call, as SAM-2 requires). Masks are at the
    size of the images given; an object whose score logit is <= 0 is absent (not in the result).

    Memory stays flat on long videos: only the current frame's pixels and the last few frames'
    memories (enough for ``num_maskmem`` and ``max_object_pointers_in_encoder``) are kept.
    """

    def __init__(self, model: str, device: str = "cpu") -> None:
        from transformers import Sam2VideoModel

        self.name = model
        self.device = torch_device(device)
        self.model = load_model(
            "segmenter", model, lambda p, kw: Sam2VideoModel.from_pretrained(p, **kw).to(self.device).eval()
        )
        cfg = self.model.config
        self.size = _input_size(cfg)
        self._keep = max(int(getattr(cfg, "num_maskmem", 7)), int(getattr(cfg, "max_object_pointers_in_encoder", 16)))
        self.session: Any = None
        self.frame_idx = -1
        self._pix: Any = None
        self._hw: tuple[int, int] = (0, 0)

    def reset(self, height: int, width: int) -> None:
        import torch
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        self.session = Sam2VideoInferenceSession(
            video_height=height,
            video_width=width,
            inference_device=self.device,
            inference_state_device=self.device,
            video_storage_device=self.device,
            dtype=torch.float32,
        )
        self.frame_idx = -1
        self._hw = (height, width)

    @property
    def object_ids(self) -> list[int]:
        return list(self.session.obj_ids) if self.session is not None else []

    def track(self, image: np.ndarray) -> dict[int, np.ndarray]:
        """Add the next frame; return ``{object id: boolean mask}`` of the objects present in it."""
        import torch

        if self.session is None:
            self.reset(image.shape[0], image.shape[1])
        self._hw = (int(image.shape[0]), int(image.shape[1]))
        self.frame_idx += 1
        self._pix = preprocess(image, self.size).to(self.device)
        self._prune()
        if self.session.get_obj_num() == 0:
            self.session.add_new_frame(self._pix, self.frame_idx)
            return {}
        with torch.inference_mode():
            out = self.model(inference_session=self.session, frame=self._pix, frame_idx=self.frame_idx)
        return self._masks(out)

    def add(self, prompts: Mapping[int, Box | np.ndarray]) -> dict[int, np.ndarray]:
        """Prompt objects on the current frame (box in pixels, or a boolean mask of the image size).

        New ids start tracks; existing ids are re-anchored. Returns the masks of every present object
        on the current frame, after the prompts.
        """
        import torch
        import torch.nn.functional as F

        if self.frame_idx < 0 or self._pix is None:
            raise RuntimeError("call track(frame) before add(prompts)")
        if not prompts:
            return {}
        h, w = self._hw
        s = self.session
        for oid, prompt in prompts.items():
            idx = s.obj_id_to_idx(int(oid))
            arr = np.asarray(prompt)
            if arr.ndim == 2:
                m = torch.from_numpy(arr.astype(np.float32))[None, None]
                m = F.interpolate(m, size=(self.size, self.size), mode="bilinear", align_corners=False)
                s.add_mask_inputs(idx, self.frame_idx, (m >= 0.5).float())
                s.remove_point_inputs(idx, self.frame_idx)
            else:
                b = torch.from_numpy(_scale_boxes([tuple(arr.tolist())], w, h, self.size)).reshape(1, 1, 2, 2)
                labels = torch.tensor([[[2, 3]]], dtype=torch.int32)
                s.add_point_inputs(idx, self.frame_idx, {"point_coords": b, "point_labels": labels})
                s.remove_mask_inputs(idx, self.frame_idx)
        s.obj_with_new_inputs = [int(o) for o in prompts]
        with torch.inference_mode():
            out = self.model(inference_session=s, frame=self._pix, frame_idx=self.frame_idx)
        return self._masks(out)

    def _masks(self, out: Any) -> dict[int, np.ndarray]:
        scores = out.object_score_logits.reshape(-1).float().cpu().numpy()
        logits = out.pred_masks[:, 0].float().cpu()
        present = [i for i, sc in enumerate(scores) if sc > 0]
        if not present:
            return {}
        import torch

        masks = upsample_logits(logits[torch.as_tensor(present)], self._hw)
        return {int(out.object_ids[i]): m for i, m in zip(present, masks, strict=True) if m.any()}

    def _prune(self) -> None:
        s = self.session
        if s.processed_frames:
            for k in [k for k in s.processed_frames if k < self.frame_idx]:
                del s.processed_frames[k]
        horizon = self.frame_idx - self._keep - 1
        for per in s.output_dict_per_obj.values():
            nc = per["non_cond_frame_outputs"]
            for k in [k for k in nc if k < horizon]:
                del nc[k]
        for tracked in s.frames_tracked_per_obj.values():
            for k in [k for k in tracked if k < horizon]:
                del tracked[k]
