"""OWL-ViT (v1) open-vocabulary labeller: the lighter detector of the ``fast`` preset.

OWL-ViT B/32 (``google/owlvit-base-patch32``) sees a 768x768 image in 32-pixel patches: 576 patch
tokens against OWLv2-base's 3,600, about a tenth of OWLv2's compute on a CPU, at a lower detection
quality (OWL-ViT B/32 ~ 20 vs OWLv2 B/16 ~ 27 AP on LVIS rare classes in the OWLv2 paper) and
coarser boxes. Same interface and caches as :class:`~.owlv2.Owlv2Labeller`; only the model classes
and the box geometry differ: OWL-ViT's processor resizes the image to the square without padding,
so normalised boxes scale by the image's own width and height.
"""

from __future__ import annotations

from typing import Any

from fastreasonseg.perception.backends.owlv2 import Owlv2Labeller
from fastreasonseg.perception.registry import register

__all__ = ["OwlVitLabeller"]


@register(
    "labeller",
    "owlvit",
    model_types=("owlvit",),
    name_hints=("owlvit", "owl-vit"),
    description="OWL-ViT open-vocabulary detector (transformers), e.g. B/32 for the fast preset",
)
class OwlVitLabeller(Owlv2Labeller):
    """OWL-ViT detector/classifier (implements the :class:`Labeller` protocol)."""

    text_cache_name = "owlvit-text"
    image_part = "owlvit-image"

    def _load(self, path: str, kw: dict) -> tuple[Any, Any]:
        from transformers import OwlViTForObjectDetection, OwlViTProcessor

        m = OwlViTForObjectDetection.from_pretrained(path, **kw).to(self.device).eval()
        return m, OwlViTProcessor.from_pretrained(path, **kw)

    def _box_scale(self, h: int, w: int) -> tuple[float, float]:
        return float(w), float(h)

    def _text_features(self, **tok: Any) -> Any:
        return self.model.owlvit.get_text_features(**tok)
