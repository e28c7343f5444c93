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
    """Which perception models to use and how to run them (the one place for perception settings).

    Speed knobs and their trade-offs (measured numbers: docs/benchmarks.md, perception section):

    * ``backend``: the runtime of each model's image encoder. ``auto`` (default) picks the fastest
      installed one per model on CPUs (OpenVINO for SAM-2 and Depth-Anything, torch for OWLv2) and torch
      on GPUs. Exports are made once per model directory and cached (``export_cache``); results match
      the torch path (fp32) within the tolerances the tests check.
    * ``precision``: ``fp32`` (default); ``int8`` (ONNX Runtime dynamic quantisation, ``backend="onnx"``:
      faster on some CPUs, deviates more, see the docs); ``fp16`` / ``bf16`` (torch on a GPU).
    * ``labeller_size`` / ``depth_size`` / ``segmenter_size``: model input sides (``None`` = native: OWLv2 960,
      Depth-Anything 518 short side, SAM-2 1024). Smaller is roughly quadratically cheaper and loses small
      objects, fine depth and mask boundaries first.
    * ``keyframe_interval``: videos detect new objects every this many processed frames and propagate
      masks with SAM-2 in between.
    * :meth:`preset` ``"fast"``: OWL-ViT B/32 labeller and smaller inputs (a few times faster, less accurate).
    """

    segmenter: str | None = DEFAULT_SEGMENTER
    """SAM-2 model (hub id or local directory); ``None`` to skip segmentation (boxes become masks).
    A ``name:`` prefix picks a registered backend by name (see :mod:`fastreasonseg.perception.registry`)."""
    depth: str | None = DEFAULT_DEPTH
    """Depth-Anything-V2 model; ``None`` to skip depth."""
    labeller: str | None = DEFAULT_LABELLER
    """Open-vocabulary labeller (OWLv2 by default; OWL-ViT directories work too); ``None`` to skip labelling
    (instances are labelled ``object``)."""
    device: str = "cpu"
    """torch device: ``cpu``, ``cuda``, ``cuda:1``, ``mps``."""
    backend: str = "auto"
    """Image-encoder runtime: ``auto``, ``torch``, ``onnx`` or ``openvino`` (see the class docstring)."""
    precision: str = "fp32"
    """``fp32``, ``int8`` (onnx backend), ``fp16`` or ``bf16`` (GPU, torch backend)."""
    threads: int | None = None
    """CPU threads for torch / ONNX Runtime / OpenVINO (``None``: torch's current setting)."""
    export_cache: str | None = None
    """Where exported encoders are cached (``None``: ``$FASTREASONSEG_CACHE/exports`` or
    ``~/.cache/fastreasonseg/exports``)."""
    compile: bool = False
    """Wrap the torch encoders in ``torch.compile`` (GPUs; compiled once per input shape)."""
    mode: str = "detect"
    """``detect``: labeller boxes prompt SAM-2 on one image encoding (fast, default);
    ``grid``: SAM-2 automatic masks from a point grid (class-agnostic, slow on CPU)."""
    vocabulary: list[str] = field(default_factory=list)
    """Extra object names added to the built-in vocabulary."""
    use_default_vocabulary: bool = True
    box_threshold: float = 0.15
    """Labeller detection score threshold."""
    max_instances: int = 40
    """Most instances kept per frame (highest scores first); videos track at most this many objects."""
    max_side: int = 1024
    """Frames larger than this (longest side, pixels) are downscaled for the models; masks are
    returned at full resolution."""
    max_pixels: int = 40_000_000
    """Largest source frame accepted (width x height) by the CLI, the Python API and the server: a larger
    image or video is refused before it is decoded, with a message saying how to proceed (downscale it, or
    raise this limit). Frames within the limit but above ``max_side`` are downscaled for the models."""
    labeller_size: int | None = None
    """Labeller input side (``None``: the model's, 960 for OWLv2-base, 768 for OWL-ViT)."""
    depth_size: int | None = None
    """Depth-Anything input short side (``None``: the model's, 518)."""
    segmenter_size: int | None = None
    """SAM-2 image segmenter input side (``None``: the model's, 1024; a multiple of 32). Videos track at the
    model's native size."""
    stride: int = 1
    """Process every ``stride``-th video frame."""
    max_frames: int | None = None
    """Stop after this many processed frames (``None`` = all)."""
    keyframe_interval: int = 10
    """Videos: re-detect every this many processed frames to catch objects that appear mid-video."""
    release_after: int | None = None
    """Videos: a track absent for more than this many processed frames is released (its memory freed;
    ``None``: twice ``keyframe_interval``, the window in which a lost object can be re-acquired)."""
    grid_points: int = 16
    """``grid`` mode: points per side of the prompt grid."""

    @classmethod
    def preset(cls, name: str, **overrides: object) -> PerceptionConfig:
        """A named configuration (``paper`` or ``fast``, see :data:`PERCEPTION_PRESETS`) with ``overrides``."""
        if name not in PERCEPTION_PRESETS:
            raise ValueError(f"unknown perception preset {name!r}; presets: {', '.join(PERCEPTION_PRESETS)}")
        return cls(**{**PERCEPTION_PRESETS[name], **overrides})  # type: ignore[arg-type]


FAST_LABELLER = "google/owlvit-base-patch32"

PERCEPTION_PRESETS: dict[str, dict[str, object]] = {
    "paper": {},
    "fast": {"labeller": FAST_LABELLER, "depth_size": 364, "segmenter_size": 512, "keyframe_interval": 15},
}
"""``paper``: the paper's models at their native sizes (the defaults). ``fast``: OWL-ViT B/32 instead of
OWLv2-base (576 instead of 3,600 image tokens; weaker on small and rare objects), SAM-2 on a 512 image
(a quarter of the encoder's work; masks from 128² logits, coarser boundaries), Depth-Anything at a 364
short side (about half the cost; blurrier depth edges), and videos re-detect every 15 frames."""
