"""Hand-built twins shared by the twin tests."""

from __future__ import annotations

import numpy as np
import pytest

from fastreasonseg.twin import DigitalTwin, Frame, Instance, Source


def disk(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


@pytest.fixture
def image_twin() -> DigitalTwin:
    h, w = 120, 160
    depth = np.tile(np.linspace(0.0, 1.0, h)[:, None], (1, w))[::-1]  # bottom rows nearest
    insts = [
        Instance.from_mask(1, "mug", disk(h, w, 90, 40, 15), score=0.81, alt_labels=[("cup", 0.7)], depth_map=depth),
        Instance.from_mask(2, "table", np.pad(np.ones((40, w), bool), ((80, 0), (0, 0))), score=0.6, depth_map=depth),
        Instance.from_mask(7, "person", disk(h, w, 40, 120, 30), score=0.93, depth_map=depth),
    ]
    twin = DigitalTwin(
        source=Source(kind="image", name="hand.png", width=w, height=h),
        frames=[Frame(index=0, instances=insts)],
    )
    twin.validate_all()
    return twin


@pytest.fixture
def video_twin() -> DigitalTwin:
    """A dog moving right and approaching over 6 frames (stride 2), a ball appearing at frame 6."""
    h, w = 60, 100
    frames = []
    for k, index in enumerate(range(0, 12, 2)):
        depth = np.full((h, w), 0.8 - 0.1 * k)
        insts = [Instance.from_mask(3, "dog", disk(h, w, 30, 10 + 15 * k, 8), score=0.9, depth_map=depth)]
        if index >= 6:
            insts.append(Instance.from_mask(4, "ball", disk(h, w, 50, 80, 4), score=0.5))
        frames.append(Frame(index=index, time=index / 10.0, instances=insts))
    twin = DigitalTwin(
        source=Source(kind="video", name="dog.mp4", width=w, height=h, fps=10.0, num_frames=12), frames=frames
    )
    twin.validate_all()
    return twin
