"""Tiny randomly initialised SAM-2 / Depth-Anything / OWLv2 checkpoints, created once per session.

They are saved like downloaded models and loaded through the public path users take
(``PerceptionConfig(segmenter=str(dir), ...)``). Random weights detect random things: tests check
structure and invariants, with a very low detection threshold so that detections exist.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fastreasonseg.config import PerceptionConfig
from fastreasonseg.perception.testing import make_tiny_models


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return make_tiny_models(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="session")
def export_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("export_cache"))


@pytest.fixture
def make_config(tiny_models, export_cache):
    """``make_config(**overrides)``: a config using the tiny models, threshold 0, small working size.

    The torch backend unless overridden (the fast runtimes are checked against it in test_backends.py).
    """

    def _make(**kw) -> PerceptionConfig:
        base = dict(tiny_models)
        base.update(box_threshold=0.0, max_instances=6, max_side=160, keyframe_interval=2)
        base.update(backend="torch", export_cache=export_cache)
        base.update(kw)
        return PerceptionConfig(**base)

    return _make


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    from skimage import data

    return data.coffee()


@pytest.fixture(scope="session")
def davis_seq(davis2016_full) -> Path:
    """A real 480p DAVIS-2016 frames folder (``blackswan``, 50 frames); skipped without the full set."""
    return davis2016_full / "JPEGImages" / "480p" / "blackswan"


def write_mp4(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def moving_square_frames(n: int = 8, h: int = 96, w: int = 128) -> list[np.ndarray]:
    out = []
    for t in range(n):
        f = np.full((h, w, 3), 40, np.uint8)
        x = 10 + 8 * t
        f[30:60, x : x + 30] = (220, 60, 60)
        out.append(f)
    return out
