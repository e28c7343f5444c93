"""The small interfaces every perception backend implements.

Images are ``(H, W, 3)`` uint8 RGB numpy arrays; boxes are ``(x0, y0, x1, y1)`` in pixels of that
image; masks are boolean ``(H, W)`` arrays. Heavy work (image encoding) happens once per image in
``set_image``-like calls and is reused by the light calls, as in segment-anything.

Stages exchange :class:`~fastreasonseg.perception.detections.Detections` (one row per object,
column by column). A new backend implements one of these protocols in one file under
``fastreasonseg/perception/backends/`` and registers itself by name (see
:mod:`fastreasonseg.perception.registry`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from fastreasonseg.perception.detections import Detections

Box = tuple[float, float, float, float]


@dataclass
class Detection:
    """One open-vocabulary detection: a box, its best label and the runner-up labels."""

    box: Box
    label: str
    score: float
    alt_labels: list[tuple[str, float]] = field(default_factory=list)


@runtime_checkable
class Labeller(Protocol):
    """Open-vocabulary detector / classifier (OWLv2 by default)."""

    name: str

    def detect(self, image: np.ndarray, vocabulary: Sequence[str], threshold: float) -> Detections:
        """Boxes of every vocabulary entry found in ``image``, best first, runner-up labels in ``alt_labels``."""
        ...

    def classify(
        self, image: np.ndarray, boxes: Sequence[Box], candidates: Sequence[str]
    ) -> list[list[tuple[str, float]]]:
        """For each box, ``candidates`` with scores, best first (reuses the cached image encoding)."""
        ...


@runtime_checkable
class Segmenter(Protocol):
    """Promptable segmenter (SAM-2 by default): encode once, prompt many times."""

    name: str

    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image``; later calls reuse the encoding."""
        ...

    def masks_from_boxes(self, boxes: Sequence[Box]) -> list[np.ndarray]:
        """One full-resolution boolean mask per box prompt (all prompts in one decoder batch)."""
        ...

    def automatic_masks(self, points_per_side: int) -> list[tuple[np.ndarray, float]]:
        """Class-agnostic masks with their predicted quality, from a grid of point prompts."""
        ...


@runtime_checkable
class DepthEstimator(Protocol):
    """Monocular depth (Depth-Anything-V2 by default)."""

    name: str

    def predict(self, image: np.ndarray) -> np.ndarray:
        """``(H, W)`` float relative depth in [0, 1], 0 = nearest to the camera."""
        ...


@runtime_checkable
class Tracker(Protocol):
    """Video object tracker (SAM-2 video by default), fed one frame at a time.

    ``track`` adds the next frame and returns ``{id: mask}`` of the objects present; ``add`` prompts
    objects (a box or a boolean mask each) on that same frame; ``release`` forgets objects for good
    (their memory is freed); ``reset`` starts a new video.
    """

    name: str

    def reset(self) -> None: ...

    def track(self, image: np.ndarray) -> dict[int, np.ndarray]: ...

    def add(self, prompts: Mapping[int, Box | np.ndarray]) -> dict[int, np.ndarray]: ...

    def release(self, ids: Iterable[int]) -> None: ...
