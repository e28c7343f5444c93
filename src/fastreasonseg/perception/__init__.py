"""Perception: models that turn images and videos into digital twins.

``TwinBuilder(config).build(source)`` is the entry point; :class:`Perception` exposes the per-frame
operations (``perceive``, ``detect``, ``classify``, ``track``) the reasoner's tools reuse. Model
classes are imported lazily so ``import fastreasonseg.perception`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastreasonseg.perception.protocols import Box, DepthEstimator, Detection, Labeller, Segmenter

if TYPE_CHECKING:  # for type checkers and IDEs; runtime access goes through __getattr__
    from fastreasonseg.perception.builder import TwinBuilder, build_twin  # noqa: F401
    from fastreasonseg.perception.media import Media, open_media  # noqa: F401
    from fastreasonseg.perception.pipeline import PerceivedObject, Perception  # noqa: F401

_LAZY = {
    "TwinBuilder": "fastreasonseg.perception.builder",
    "build_twin": "fastreasonseg.perception.builder",
    "Perception": "fastreasonseg.perception.pipeline",
    "PerceivedObject": "fastreasonseg.perception.pipeline",
    "Media": "fastreasonseg.perception.media",
    "open_media": "fastreasonseg.perception.media",
    "read_image": "fastreasonseg.perception.media",
    "DEFAULT_VOCABULARY": "fastreasonseg.perception.vocabulary",
    "build_vocabulary": "fastreasonseg.perception.vocabulary",
    "vocabulary_for_query": "fastreasonseg.perception.vocabulary",
    "assign_track_ids": "fastreasonseg.perception.tracking",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fastreasonseg.perception' has no attribute {name!r}")


__all__ = ["Box", "DepthEstimator", "Detection", "Labeller", "Segmenter", *_LAZY]
