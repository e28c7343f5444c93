"""The small interfaces every perception backend implements.

Images are ``(H, W, 3)`` uint8 RGB numpy arrays; boxes are ``(x0, y0, x1, y1)`` in pixels of that
image; masks are boolean ``(H, W)`` arrays. Heavy work (image encoding) happens once per image in
``set_image``-like calls and is reused by the light calls, as in segment-anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

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

    def detect(self, image: np.ndarray, vocabulary: Sequence[str], threshold: float) -> list[Detection]:
        """Boxes of every vocabulary entry found in ``image``, best label first in each."""
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
        """One full-resolution boolean mask per box prompt, on the image given to ``set_image``."""
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
