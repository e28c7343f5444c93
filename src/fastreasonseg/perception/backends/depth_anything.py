"""Depth-Anything-V2 through ``transformers``: relative depth in [0, 1], 0 = nearest to the camera.

Depth-Anything-V2 (relative variant) predicts *relative inverse depth*: larger = nearer, no scale,
no offset. :meth:`DepthAnything.predict` turns it into the twin's convention as follows:

1. the image is resized (bicubic, aspect ratio kept) so that its **short side** is ``input_size``
   (518, the model's native size, unless configured), each side a multiple of 14 (rounded, never
   below ``input_size``), as Depth-Anything-V2's own ``infer_image`` does, and ImageNet-normalised;
2. the prediction is resized to the image size (``post_process_depth_estimation``: bicubic);
3. it is normalised per frame by robust bounds: ``lo`` and ``hi`` are the 1st and 99th percentiles
   of the inverse depth, ``v = clip((inv - lo) / (hi - lo), 0, 1)`` (so 1 = nearest);
4. it is flipped, ``depth = 1 - v``, so 0 = nearest and 1 = farthest.

The result is a rank-like relative depth: comparable within a frame (this object is in front of
that one), only roughly across frames, and not linear in metres. A constant prediction maps to 0.5.

A smaller ``input_size`` (e.g. 364) costs about ``(size / 518)^2`` as much and blurs depth edges;
object-level statistics (mean/min/max per mask) move little. The network runs on the configured
runtime (OpenVINO is the fastest measured on CPU); one export per input shape, cached.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastreasonseg.perception._hf import IMAGENET_MEAN, IMAGENET_STD, load_model, torch_device
from fastreasonseg.perception.registry import BackendSettings, register

__all__ = ["DepthAnything", "depth_input_shape", "inverse_depth_to_relative"]

NATIVE_SIZE = 518
PATCH = 14


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


def depth_input_shape(height: int, width: int, size: int = NATIVE_SIZE, multiple: int = PATCH) -> tuple[int, int]:
    """``(h, w)`` the network sees: short side ``size``, aspect kept, multiples of ``multiple`` (>= size)."""
    scale = max(size / height, size / width)

    def fit(x: float) -> int:
        y = int(round(x / multiple) * multiple)
        if y < size:
            y = int(math.ceil(x / multiple) * multiple)
        return max(multiple, y)

    return fit(height * scale), fit(width * scale)


class _Network:
    """``pixel_values -> (predicted_depth,)`` (the exported part)."""

    def __new__(cls, model: Any) -> Any:
        import torch

        class Net(torch.nn.Module):
            def __init__(self, m: Any) -> None:
                super().__init__()
                self.m = m

            def forward(self, pixel_values: Any) -> tuple[Any]:
                return (self.m(pixel_values=pixel_values).predicted_depth,)

        return Net(model).eval()


@register(
    "depth",
    "depth-anything",
    model_types=("depth_anything",),
    name_hints=("depth-anything", "depth_anything"),
    default=True,
    description="Depth-Anything(-V2) relative depth (transformers)",
)
class DepthAnything:
    """Depth-Anything-V2 (``AutoModelForDepthEstimation``) with the official pre-processing (module doc)."""

    def __init__(self, model: str, settings: BackendSettings | str | None = None) -> None:
        from transformers import AutoModelForDepthEstimation

        if not isinstance(settings, BackendSettings):  # old signature: DepthAnything(model, device)
            settings = BackendSettings(device=settings or "cpu")
        self.name = model
        self.settings = settings
        self.device = torch_device(settings.device)
        self.model = load_model(
            "depth", model, lambda p, kw: AutoModelForDepthEstimation.from_pretrained(p, **kw).to(self.device).eval()
        )
        cfg = self.model.config
        native = getattr(getattr(cfg, "backbone_config", None), "image_size", NATIVE_SIZE)
        self.input_size = int(settings.input_size or native)
        self.patch = int(getattr(cfg, "patch_size", PATCH) or PATCH)
        self._net = _Network(self.model)
        self._encoders: dict[tuple[int, int], Any] = {}

    def _encoder(self, shape: tuple[int, int]) -> Any:
        if shape not in self._encoders:
            import torch

            from fastreasonseg.perception.runtimes import EncoderSpec, compile_encoder, local_model_dir

            example = (torch.zeros((1, 3, *shape), dtype=torch.float32, device=self.device),)
            spec = EncoderSpec(
                self.name, local_model_dir(self.name), "depth", self._net, example, ("pixel_values",), ("depth",)
            )
            self._encoders[shape] = compile_encoder(spec, self.settings)
        return self._encoders[shape]

    def preprocess(self, image: np.ndarray) -> Any:
        """``(1, 3, h, w)`` float tensor (short side ``input_size``, bicubic, ImageNet mean/std)."""
        import torch
        from PIL import Image

        h, w = depth_input_shape(image.shape[0], image.shape[1], self.input_size, self.patch)
        img = Image.fromarray(np.ascontiguousarray(image)).resize((w, h), Image.Resampling.BICUBIC)
        arr = np.asarray(img, dtype=np.float32) / 255.0
        arr = (arr - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None].to(self.device)

    def predict_inverse(self, image: np.ndarray) -> np.ndarray:
        """The model's raw relative inverse depth at the image size (larger = nearer)."""
        import torch
        import torch.nn.functional as F

        h, w = image.shape[:2]
        pix = self.preprocess(image)
        (pred,) = self._encoder(tuple(pix.shape[-2:]))(pix)
        with torch.inference_mode():
            up = F.interpolate(pred.float()[:, None], size=(h, w), mode="bicubic", align_corners=False)
        return up[0, 0].cpu().numpy()

    def predict(self, image: np.ndarray) -> np.ndarray:
        """``(H, W)`` float32 relative depth in [0, 1], 0 = nearest (see the module docstring)."""
        return inverse_depth_to_relative(self.predict_inverse(image))
