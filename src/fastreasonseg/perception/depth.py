"""Depth-Anything-V2 through ``transformers``: relative depth in [0, 1], 0 = nearest to the camera.

Depth-Anything-V2 (relative variant) predicts *relative inverse depth*: larger = nearer, no scale,
no offset. :meth:`DepthAnything.predict` turns it into the twin's convention as follows:

1. the prediction is resized to the image size (``post_process_depth_estimation``);
2. it is normalised per frame by robust bounds: ``lo`` and ``hi`` are the 1st and 99th percentiles
   of the inverse depth, ``v = clip((inv - lo) / (hi - lo), 0, 1)`` (so 1 = nearest);
3. it is flipped, ``depth = 1 - v``, so 0 = nearest and 1 = farthest.

The result is a rank-like relative depth: comparable within a frame (this object is in front of
that one), only roughly across frames, and not linear in metres. A constant prediction maps to 0.5.
"""

from __future__ import annotations

import numpy as np

from fastreasonseg.perception._hf import load_model, torch_device


def inverse_depth_to_relative(inv: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0) -> np.ndarray:
    """Relative inverse depth (larger = nearer) -> relative depth in [0, 1], 0 = nearest (see module doc)."""
    a = np.asarray(inv, dtype=np.float32)
    finite = np.isfinite(a)
    if not finite.any():
        return np.full(a.shape, 0.5, dtype=np.float32)
    vals = a[finite]
    lo, hi = np.percentile(vals, [low_pct, high_pct])
    if not hi > lo:
        lo, hi = float(vals.min()), float(vals.max())
    if not hi > lo:
        return np.full(a.shape, 0.5, dtype=np.float32)
    v = np.clip((np.where(finite, a, lo) - lo) / (hi - lo), 0.0, 1.0)
    return (1.0 - v).astype(np.float32)


class DepthAnything:
    """Depth-Anything-V2 (``AutoModelForDepthEstimation`` + its PIL image processor)."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        self.name = model
        self.device = torch_device(device)

        def _load(p: str, kw: dict) -> tuple:
            m = AutoModelForDepthEstimation.from_pretrained(p, **kw).to(self.device).eval()
            try:
                proc = AutoImageProcessor.from_pretrained(p, **kw)
            except Exception:
                proc = _default_processor(m)
            return m, proc

        self.model, self.processor = load_model("depth", model, _load)

    def predict_inverse(self, image: np.ndarray) -> np.ndarray:
        """The model's raw relative inverse depth at the image size (larger = nearer)."""
        import torch
        from PIL import Image

        h, w = image.shape[:2]
        inputs = self.processor(images=Image.fromarray(image), return_tensors="pt")
        with torch.inference_mode():
            out = self.model(pixel_values=inputs["pixel_values"].to(self.device))
        post = self.processor.post_process_depth_estimation(out, target_sizes=[(h, w)])
        return post[0]["predicted_depth"].float().cpu().numpy()

    def predict(self, image: np.ndarray) -> np.ndarray:
        """``(H, W)`` float32 relative depth in [0, 1], 0 = nearest (see the module docstring)."""
        return inverse_depth_to_relative(self.predict_inverse(image))


def _default_processor(model) -> object:
    """Depth-Anything-V2's preprocessing when the directory has no processor config."""
    from transformers import DPTImageProcessor

    size = getattr(getattr(model.config, "backbone_config", None), "image_size", 518)
    patch = getattr(model.config, "patch_size", 14)
    return DPTImageProcessor(
        size={"height": size, "width": size},
        keep_aspect_ratio=True,
        ensure_multiple_of=patch,
        do_pad=False,
        resample=3,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
