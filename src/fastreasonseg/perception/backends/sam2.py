"""SAM-2 through ``transformers`` with our own pre/post-processing (no torchvision needed).

* :class:`Sam2Segmenter` (``Sam2Model``): ``set_image`` encodes once; ``masks_from_boxes`` (every box
  prompt in one decoder batch) and ``automatic_masks`` reuse the encoding, as in segment-anything.
* :class:`Sam2Tracker` (``Sam2VideoModel``): streams frames into an inference session and keeps one
  id per object; objects can be added (box or mask prompts) on any frame.

Pre-processing follows SAM-2's image processor: the RGB image is resized (bilinear, aspect ratio not
kept) to the model's square input size and normalised with the ImageNet mean/std; prompt coordinates
are scaled the same way. The model's low-resolution mask logits (a quarter of the input size) are
upsampled bilinearly to the image size and thresholded at 0.

The image encoder (Hiera + FPN neck + the decoder's two high-resolution projections, the expensive
part) runs on the configured runtime (:mod:`fastreasonseg.perception.runtimes`); prompts, the mask
decoder and the video memory stay in torch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from fastreasonseg.perception._hf import IMAGENET_MEAN, IMAGENET_STD, load_model, torch_device
from fastreasonseg.perception.protocols import Box
from fastreasonseg.perception.registry import BackendSettings, register

__all__ = ["Sam2Segmenter", "Sam2Tracker", "mask_iou_matrix", "nms_masks", "preprocess", "upsample_logits"]

_SAM2_TYPES = ("sam2", "sam2_video")
_SAM2_HINTS = ("sam2", "sam-2")


def _settings(settings: BackendSettings | str | None) -> BackendSettings:
    return settings if isinstance(settings, BackendSettings) else BackendSettings(device=settings or "cpu")


def _input_size(config: Any) -> int:
    for obj, attr in ((config, "image_size"), (getattr(config, "prompt_encoder_config", None), "image_size")):
        v = getattr(obj, attr, None) if obj is not None else None
        if isinstance(v, int):
            return v
        if isinstance(v, (list, tuple)) and v:
            return int(v[0])
    return 1024


def _resize_config(cfg: Any, side: int) -> None:
    """Run ``Sam2Model`` at ``side`` instead of its native input (a multiple of 32; Hiera interpolates its
    position embeddings). Masks come from ``side / 4`` logits: a 512 input costs about a quarter of 1024 and
    gives coarser boundaries."""
    side = max(64, int(round(side / 32)) * 32)
    cfg.vision_config.backbone_config.image_size = [side, side]
    cfg.vision_config.backbone_feature_sizes = [[side // 4] * 2, [side // 8] * 2, [side // 16] * 2]
    cfg.prompt_encoder_config.image_size = side
    if hasattr(cfg, "image_size"):
        cfg.image_size = side


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


class _VisionTower:
    """``pixel_values -> (feat_s0, feat_s1, feat_top, pos_s0, pos_s1, pos_top)``, all NCHW (the exported part).

    The same computation as ``get_image_features`` of ``Sam2Model`` / ``Sam2VideoModel`` before their
    flattening: Hiera + FPN neck, and the mask decoder's ``conv_s0`` / ``conv_s1`` projections.
    """

    def __new__(cls, model: Any) -> Any:
        import torch

        class Tower(torch.nn.Module):
            def __init__(self, m: Any) -> None:
                super().__init__()
                self.m = m

            def forward(self, pixel_values: Any) -> tuple[Any, ...]:
                out = self.m.vision_encoder(pixel_values, return_dict=True)
                fm = list(out.fpn_hidden_states)
                fm[0] = self.m.mask_decoder.conv_s0(fm[0])
                fm[1] = self.m.mask_decoder.conv_s1(fm[1])
                return (*fm, *out.fpn_position_encoding)

        return Tower(model).eval()


def _compile_tower(owner: Any, part: str) -> Any:
    import torch

    from fastreasonseg.perception.runtimes import EncoderSpec, compile_encoder, local_model_dir

    example = (torch.zeros((1, 3, owner.size, owner.size), dtype=torch.float32, device=owner.device),)
    names = ("feat_s0", "feat_s1", "feat_top", "pos_s0", "pos_s1", "pos_top")
    spec = EncoderSpec(
        owner.name, local_model_dir(owner.name), part, _VisionTower(owner.model), example, ("pixel_values",), names
    )
    return compile_encoder(spec, owner.settings)


@register(
    "segmenter",
    "sam2",
    model_types=_SAM2_TYPES,
    name_hints=_SAM2_HINTS,
    default=True,
    description="SAM-2 promptable image segmenter (transformers Sam2Model)",
)
class Sam2Segmenter:
    """Promptable SAM-2 on single images (implements the :class:`Segmenter` protocol).

    ``automatic_masks`` keeps a mask when its predicted IoU is at least ``pred_iou_thresh`` and its
    stability score (IoU of the mask thresholded at +1 and -1) at least ``stability_thresh``; masks
    overlapping a better one by more than ``nms_iou`` are dropped.
    """

    def __init__(
        self,
        model: str,
        settings: BackendSettings | str | None = None,
        *,
        pred_iou_thresh: float = 0.7,
        stability_thresh: float = 0.85,
        nms_iou: float = 0.7,
        points_per_batch: int = 64,
        max_masks: int = 100,
    ) -> None:
        from transformers import Sam2Config, Sam2Model

        self.settings = _settings(settings)
        self.name = model
        self.device = torch_device(self.settings.device)
        side = self.settings.input_size

        def _load(p: str, kw: dict) -> Any:
            cfg = Sam2Config.from_pretrained(p, **kw)
            if side and side != _input_size(cfg.prompt_encoder_config):
                _resize_config(cfg, int(side))
            return Sam2Model.from_pretrained(p, config=cfg, **kw).to(self.device).eval()

        self.model = load_model("segmenter", model, _load)
        self.size = _input_size(self.model.config.prompt_encoder_config)
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_thresh = stability_thresh
        self.nms_iou = nms_iou
        self.points_per_batch = points_per_batch
        self.max_masks = max_masks
        self._tower: Any = None
        self._emb: list[Any] | None = None
        self._hw: tuple[int, int] | None = None

    # ---------------------------------------------------------------------------------- encoding
    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image`` once (the image encoder, on the configured runtime)."""
        if self._tower is None:
            self._tower = _compile_tower(self, "sam2-vision")
        pix = preprocess(image, self.size).to(self.device)
        f0, f1, top = (t.to(self.device) for t in self._tower(pix)[:3])
        nme = self.model.no_memory_embedding.detach().reshape(1, -1, 1, 1).to(top.dtype)
        self._emb = [f0, f1, top + nme]  # = Sam2Model.get_image_embeddings(pix)
        self._hw = (int(image.shape[0]), int(image.shape[1]))

    def _require(self) -> tuple[list[Any], tuple[int, int]]:
        if self._emb is None or self._hw is None:
            raise RuntimeError("call set_image(image) before asking for masks")
        return self._emb, self._hw

    # ---------------------------------------------------------------------------------- prompts
    def mask_logits_from_boxes(self, boxes: Sequence[Box]) -> tuple[Any, np.ndarray]:
        """Low-resolution logits ``(N, S/4, S/4)`` and predicted IoU ``(N,)``: every box in one decoder batch."""
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
        return logits.float().cpu(), scores

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


_NEVER_READ_AFTER_THE_FRAME = ("high_res_masks",)
"""Stored by transformers for every object and frame, read only inside the forward that made it
(the batched memory encoding): 1024² float32 = 4 MiB per object per frame at the real size."""


@register(
    "tracker",
    "sam2",
    model_types=_SAM2_TYPES,
    name_hints=_SAM2_HINTS,
    default=True,
    description="SAM-2 video tracker (transformers Sam2VideoModel), streamed frame by frame",
)
class Sam2Tracker:
    """SAM-2 video propagation, streamed one frame at a time (implements the :class:`Tracker` protocol).

    For every processed frame call :meth:`track` (adds the frame and propagates every object added so
    far), then optionally :meth:`add` (prompts for new or lost objects on that same frame, all in one
    call). Masks are at the size of the images given; an object whose score logit is <= 0 is absent
    (not in the result).

    * A prompted object that was already tracked on this frame is *re-anchored*: this frame becomes a
      new conditioning frame for it, exactly as if the prompt had been added before propagating (the
      reference order), instead of a correction decoded with memory that may say "absent".
    * :meth:`add` decodes only the prompted objects; the others keep the masks :meth:`track` gave them.
    * What is kept stays bounded on long videos: the current frame's pixels and features; per object
      the memory features of the last ``num_maskmem`` frames, the object pointers of the last
      ``max_object_pointers_in_encoder`` frames, and the most recent ``max_cond_frames`` conditioning
      frames (the model's ``max_cond_frame_num`` when set, else ``num_maskmem``). Never-read outputs
      (``high_res_masks``, old ``pred_masks``, consumed prompt inputs) are dropped, and the memory
      position encoding (the same for every frame) is stored once. :meth:`release` forgets objects.
    """

    def __init__(
        self, model: str, settings: BackendSettings | str | None = None, *, max_cond_frames: int | None = None
    ) -> None:
        from transformers import Sam2VideoModel

        self.settings = _settings(settings)
        self.name = model
        self.device = torch_device(self.settings.device)
        self.model = load_model(
            "segmenter", model, lambda p, kw: Sam2VideoModel.from_pretrained(p, **kw).to(self.device).eval()
        )
        cfg = self.model.config
        self.size = _input_size(cfg)
        self.num_maskmem = max(1, int(getattr(cfg, "num_maskmem", 7)))
        self.max_pointers = max(1, int(getattr(cfg, "max_object_pointers_in_encoder", 16)))
        model_cap = int(getattr(cfg, "max_cond_frame_num", -1) or -1)
        self.max_cond_frames = int(max_cond_frames or (model_cap if model_cap > 0 else self.num_maskmem))
        self.session: Any = None
        self.frame_idx = -1
        self._pix: Any = None
        self._hw: tuple[int, int] = (0, 0)
        self._tower: Any = None
        self._pos_enc: Any = None

    # ---------------------------------------------------------------------------------- session
    def reset(self, height: int | None = None, width: int | None = None) -> None:
        """Start a new video (the session is created on the first frame when no size is given)."""
        self.session = None
        self.frame_idx = -1
        self._pos_enc = None
        if height is not None and width is not None:
            self._new_session(height, width)

    def _new_session(self, height: int, width: int) -> None:
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
        self._hw = (height, width)

    @property
    def object_ids(self) -> list[int]:
        return list(self.session.obj_ids) if self.session is not None else []

    def _cache_features(self) -> None:
        """Encode the current frame on the configured runtime and hand the features to the session's cache."""
        if self._tower is None:
            self._tower = _compile_tower(self, "sam2video-vision")
        outs = [t.to(self.device) for t in self._tower(self._pix)]
        feats = [f.flatten(2).permute(2, 0, 1) for f in outs[:3]]
        pos = [p.flatten(2).permute(2, 0, 1) for p in outs[3:]]
        self.session.cache.cache_vision_features(self.frame_idx, {"vision_feats": feats, "vision_pos_embeds": pos})

    def track(self, image: np.ndarray) -> dict[int, np.ndarray]:
        """Add the next frame; return ``{object id: boolean mask}`` of the objects present in it."""
        import torch

        if self.session is None:
            self._new_session(int(image.shape[0]), int(image.shape[1]))
        self._hw = (int(image.shape[0]), int(image.shape[1]))
        self.frame_idx += 1
        self._pix = preprocess(image, self.size).to(self.device)
        self._prune()
        self._cache_features()
        if self.session.get_obj_num() == 0:
            self.session.add_new_frame(self._pix, self.frame_idx)
            return {}
        with torch.inference_mode():
            out = self.model(inference_session=self.session, frame=self._pix, frame_idx=self.frame_idx)
        self._slim_frame()
        return self._masks(out)

    def add(self, prompts: Mapping[int, Box | np.ndarray]) -> dict[int, np.ndarray]:
        """Prompt objects on the current frame (box in pixels, or a boolean mask of the image size).

        New ids start tracks; existing ids are re-anchored (see the class docstring). Returns the
        masks of every present object on the current frame, after the prompts.
        """
        import torch
        import torch.nn.functional as F

        if self.frame_idx < 0 or self._pix is None:
            raise RuntimeError("call track(frame) before add(prompts)")
        if not prompts:
            return {}
        h, w = self._hw
        s = self.session
        f = self.frame_idx
        prompted = [int(o) for o in prompts]
        for oid, prompt in prompts.items():
            idx = s.obj_id_to_idx(int(oid))
            # re-anchor: forget what track() decoded for it here, so this frame is a new conditioning frame
            s.output_dict_per_obj[idx]["non_cond_frame_outputs"].pop(f, None)
            s.output_dict_per_obj[idx]["cond_frame_outputs"].pop(f, None)
            s.frames_tracked_per_obj[idx].pop(f, None)
            arr = np.asarray(prompt)
            if arr.ndim == 2:
                m = torch.from_numpy(arr.astype(np.float32))[None, None]
                m = F.interpolate(m, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
                s.add_mask_inputs(idx, f, (m >= 0.5).float())
                s.remove_point_inputs(idx, f)
            else:
                b = torch.from_numpy(_scale_boxes([tuple(arr.tolist())], w, h, self.size)).reshape(1, 1, 2, 2)
                labels = torch.tensor([[[2, 3]]], dtype=torch.int32)
                s.add_point_inputs(idx, f, {"point_coords": b, "point_labels": labels})
                s.remove_mask_inputs(idx, f)
        # objects already decoded on this frame are not decoded again: the model reuses a frame's
        # conditioning outputs, so their outputs are parked there for the duration of the call
        parked: dict[int, Any] = {}
        for idx in range(s.get_obj_num()):
            if s.obj_idx_to_id(idx) in prompts:
                continue
            per = s.output_dict_per_obj[idx]
            if f in per["non_cond_frame_outputs"] and f not in per["cond_frame_outputs"]:
                parked[idx] = per["non_cond_frame_outputs"].pop(f)
                per["cond_frame_outputs"][f] = parked[idx]
        s.obj_with_new_inputs = list(prompted)  # the model empties this list as it consumes the inputs
        try:
            with torch.inference_mode():
                out = self.model(inference_session=s, frame=self._pix, frame_idx=f)
        finally:
            for idx, o in parked.items():
                s.output_dict_per_obj[idx]["cond_frame_outputs"].pop(f, None)
                s.output_dict_per_obj[idx]["non_cond_frame_outputs"][f] = o
            for oid in prompted:  # consumed: never read again
                idx = s.obj_id_to_idx(oid)
                s.remove_point_inputs(idx, f)
                s.remove_mask_inputs(idx, f)
        if parked:
            self._reencode_memories(list(parked))
        self._slim_frame()
        return self._masks(out)

    def _reencode_memories(self, idxs: list[int]) -> None:
        """Memory of the objects tracked on a prompted frame, encoded as the reference does.

        When any object is prompted on a frame, SAM-2 (and transformers, which batches every object's
        memory encoding on a frame) encodes *all* objects' memories of that frame from binarised masks
        instead of sigmoid probabilities. The tracked objects were encoded by :meth:`track` before the
        prompts arrived; this re-encodes them (the cheap memory encoder only; their masks are reused,
        recomputed exactly from the stored low-resolution logits) so results match the reference order.
        """
        import torch
        import torch.nn.functional as F

        encode = getattr(self.model, "_batch_encode_memories", None)
        if encode is None:  # a transformers version without it: keep track()'s memories
            return
        s, f, size = self.session, self.frame_idx, self.model.image_size
        outs = [s.output_dict_per_obj[i]["non_cond_frame_outputs"][f] for i in idxs]
        high = [
            F.interpolate(o["pred_masks"].float(), size=(size, size), mode="bilinear", align_corners=False)
            for o in outs
        ]
        with torch.inference_mode():
            encode(
                inference_session=s,
                frame_idx=f,
                objects_needing_memory_encoding=idxs,
                high_res_masks_for_memory=high,
                object_score_logits_for_memory=[o["object_score_logits"] for o in outs],
                is_mask_from_pts_per_obj=[True] * len(idxs),
            )

    def release(self, ids: Iterable[int]) -> None:
        """Forget objects for good: their prompts, outputs and memories are freed (ids are not reused)."""
        s = self.session
        gone = {int(i) for i in ids}
        if s is None or not gone & set(s.obj_ids):
            return
        keep = [o for o in s.obj_ids if o not in gone]
        old = {o: s._obj_id_to_idx[o] for o in keep}
        s._obj_id_to_idx = OrderedDict((o, n) for n, o in enumerate(keep))
        s._obj_idx_to_id = OrderedDict((n, o) for n, o in enumerate(keep))
        s.obj_ids = list(keep)
        for attr in ("point_inputs_per_obj", "mask_inputs_per_obj", "output_dict_per_obj", "frames_tracked_per_obj"):
            table = getattr(s, attr)
            setattr(s, attr, {n: table[old[o]] for n, o in enumerate(keep)})
        s.obj_with_new_inputs = [o for o in s.obj_with_new_inputs if o not in gone]

    # ---------------------------------------------------------------------------------- outputs and memory
    def _masks(self, out: Any) -> dict[int, np.ndarray]:
        scores = out.object_score_logits.reshape(-1).float().cpu().numpy()
        logits = out.pred_masks[:, 0].float().cpu()
        present = [i for i, sc in enumerate(scores) if sc > 0]
        if not present:
            return {}
        import torch

        masks = upsample_logits(logits[torch.as_tensor(present)], self._hw)
        return {int(out.object_ids[i]): m for i, m in zip(present, masks, strict=True) if m.any()}

    def _slim_frame(self) -> None:
        """After a forward: drop the current frame's never-read outputs, share the memory position encoding."""
        import torch

        f = self.frame_idx
        for per in self.session.output_dict_per_obj.values():
            for store in (per["cond_frame_outputs"], per["non_cond_frame_outputs"]):
                o = store.get(f)
                if o is None:
                    continue
                for k in _NEVER_READ_AFTER_THE_FRAME:
                    o.pop(k, None)
                for k, v in list(o.items()):  # slices of a batch keep the whole batch alive: own them
                    if isinstance(v, torch.Tensor) and v.untyped_storage().nbytes() > v.numel() * v.element_size():
                        o[k] = v.clone()
                pe = o.get("maskmem_pos_enc")
                if isinstance(pe, torch.Tensor):
                    if self._pos_enc is None or self._pos_enc.shape != pe.shape:
                        self._pos_enc = pe.clone()
                        o["maskmem_pos_enc"] = self._pos_enc
                    elif pe is not self._pos_enc and torch.equal(pe, self._pos_enc):
                        o["maskmem_pos_enc"] = self._pos_enc

    def _prune(self) -> None:
        """Before a new frame: keep only what the model can still read (see the class docstring)."""
        s = self.session
        f = self.frame_idx
        if s.processed_frames:
            for k in [k for k in s.processed_frames if k < f]:
                del s.processed_frames[k]
        for idx, per in s.output_dict_per_obj.items():
            nc = per["non_cond_frame_outputs"]
            for k in list(nc):
                age = f - k
                if age >= self.max_pointers:
                    del nc[k]
                elif age >= self.num_maskmem:
                    nc[k] = {key: v for key, v in nc[k].items() if key in ("object_pointer", "object_score_logits")}
                elif age > 0:
                    nc[k].pop("pred_masks", None)
            cond = per["cond_frame_outputs"]
            for k in [k for k in cond if k < f]:
                cond[k].pop("pred_masks", None)
            if len(cond) > self.max_cond_frames:
                for k in sorted(cond)[: len(cond) - self.max_cond_frames]:
                    del cond[k]
            tracked = s.frames_tracked_per_obj[idx]
            for k in [k for k in tracked if k < f]:
                del tracked[k]
            for table in (s.point_inputs_per_obj[idx], s.mask_inputs_per_obj[idx]):
                for k in [k for k in table if k < f]:
                    del table[k]

    def stored_outputs(self) -> dict[int, dict[str, int]]:
        """Per object id: stored conditioning / tracked outputs, prompt inputs, tensors and their bytes."""
        import torch

        s = self.session
        if s is None:
            return {}
        res: dict[int, dict[str, int]] = {}
        for idx, oid in s._obj_idx_to_id.items():
            per = s.output_dict_per_obj[idx]
            tensors: dict[int, Any] = {}
            for store in (per["cond_frame_outputs"], per["non_cond_frame_outputs"]):
                for o in store.values():
                    for v in o.values():
                        if isinstance(v, torch.Tensor):
                            tensors[id(v)] = v
            inputs = len(s.point_inputs_per_obj[idx]) + len(s.mask_inputs_per_obj[idx])
            res[int(oid)] = {
                "cond": len(per["cond_frame_outputs"]),
                "non_cond": len(per["non_cond_frame_outputs"]),
                "inputs": inputs,
                "tensors": len(tensors),
                "bytes": int(sum(t.untyped_storage().nbytes() for t in tensors.values())),
                "high_res_masks": sum(
                    "high_res_masks" in o for st in per.values() if isinstance(st, dict) for o in st.values()
                ),
            }
        return res
