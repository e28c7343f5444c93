"""Configuration in one place: default models and the knobs of each stage.

Every model is given by a hub id (the paper's models are the defaults) or a local directory. The
dataclasses here are the only source of defaults; the CLI and the Python API read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_SEGMENTER = "facebook/sam2.1-hiera-tiny"
DEFAULT_DEPTH = "depth-anything/Depth-Anything-V2-Small-hf"
DEFAULT_LABELLER = "google/owlv2-base-patch16-ensemble"


@dataclass
class PerceptionConfig:
    """Which perception models to use and how to run them."""

    segmenter: str | None = DEFAULT_SEGMENTER
    """SAM-2 model (hub id or local directory); ``None`` to skip segmentation (boxes become masks)."""
    depth: str | None = DEFAULT_DEPTH
    """Depth-Anything-V2 model; ``None`` to skip depth."""
    labeller: str | None = DEFAULT_LABELLER
    """OWLv2 model; ``None`` to skip labelling (instances are labelled ``object``)."""
    device: str = "cpu"
    """torch device: ``cpu``, ``cuda``, ``cuda:1``, ``mps``."""
    mode: str = "detect"
    """``detect``: labeller boxes prompt SAM-2 on one image encoding (fast, default);
    ``grid``: SAM-2 automatic masks from a point grid (class-agnostic, slow on CPU)."""
    vocabulary: list[str] = field(default_factory=list)
    """Extra object names added to the built-in vocabulary."""
    use_default_vocabulary: bool = True
    box_threshold: float = 0.15
    """OWLv2 detection score threshold."""
    max_instances: int = 40
    """Most instances kept per frame (highest scores first)."""
    max_side: int = 1024
    """Frames larger than this (longest side, pixels) are downscaled for the models; masks are
    returned at full resolution."""
    stride: int = 1
    """Process every ``stride``-th video frame."""
    max_frames: int | None = None
    """Stop after this many processed frames (``None`` = all)."""
    keyframe_interval: int = 10
    """Videos: re-detect every this many processed frames to catch objects that appear mid-video."""
    grid_points: int = 16
    """``grid`` mode: points per side of the prompt grid."""
