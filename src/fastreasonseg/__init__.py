"""fastreasonseg: reasoning segmentation for images and videos over a digital twin (FastReasonSeg, CVPR 2026)."""

from fastreasonseg.api import FastReasonSeg, SegmentationResult
from fastreasonseg.config import PerceptionConfig
from fastreasonseg.errors import FastReasonSegError, InputError, ModelLoadError, TwinValidationError
from fastreasonseg.reasoning.config import ReasonerConfig
from fastreasonseg.twin import DigitalTwin, load_twin

__version__ = "0.1.0"

__all__ = [
    "DigitalTwin",
    "FastReasonSeg",
    "FastReasonSegError",
    "InputError",
    "ModelLoadError",
    "PerceptionConfig",
    "ReasonerConfig",
    "SegmentationResult",
    "TwinValidationError",
    "__version__",
    "load_twin",
]
