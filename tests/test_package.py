"""The package's top-level names: everything in ``__all__`` is importable and is the object its module defines."""

import fastreasonseg
from fastreasonseg.config import PerceptionConfig
from fastreasonseg.reasoning.config import ReasonerConfig


def test_top_level_exports():
    for name in fastreasonseg.__all__:
        assert getattr(fastreasonseg, name) is not None, name
    assert fastreasonseg.PerceptionConfig is PerceptionConfig
    assert fastreasonseg.ReasonerConfig is ReasonerConfig
    assert {"FastReasonSeg", "PerceptionConfig", "ReasonerConfig", "load_twin"} <= set(fastreasonseg.__all__)
