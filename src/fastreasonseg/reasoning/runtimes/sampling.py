"""Grammar-constrained sampling that checks the grammar on the model's best candidates only.

llama-cpp-python's sampler chain applies the grammar first, to every token of the vocabulary (49k for SmolLM2), at
every step; with the plan language's grammar that costs more than the model itself. As llama.cpp's own server does
("grammar after sampling"), :class:`LazyGrammarSampler` ranks the logits first and asks the grammar only about the
``k`` best tokens; only when none of them is allowed does it check the whole vocabulary. The choice is the same
token: greedy decoding picks the best allowed token, which is among the ``k`` best whenever any of them is allowed.
Sampling (``temperature > 0``) draws from the allowed tokens among the ``top_k`` best with min-p and top-p filtering,
the filters the runtime used before.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

TOP_K = 40
MIN_P = 0.05
TOP_P = 0.95


class LazyGrammarSampler:
    """Picks the next token from logits under an optional llama.cpp grammar sampler (see the module docstring)."""

    def __init__(self, llama_cpp: Any, k: int = 64) -> None:
        self._lib = llama_cpp
        self.k = k
        self._cand = (llama_cpp.llama_token_data * k)()
        self.full_checks = 0
        """How many steps had to check the whole vocabulary (none of the ``k`` best was allowed)."""

    def _allowed(self, grammar: Any, ids: np.ndarray, logits: np.ndarray, buf: Any) -> np.ndarray:
        """The logits of ``ids`` with the tokens the grammar forbids at ``-inf``."""
        n = len(ids)
        for i in range(n):
            buf[i].id = int(ids[i])
            buf[i].logit = float(logits[ids[i]])
            buf[i].p = 0.0
        arr = self._lib.llama_token_data_array(buf, n, -1, False)
        self._lib.llama_sampler_apply(grammar, ctypes.byref(arr))
        return np.array([buf[i].logit for i in range(n)], dtype=np.float32)

    def pick(self, logits: np.ndarray, grammar: Any, temperature: float, rng: np.random.Generator) -> int | None:
        """The next token, or ``None`` when the grammar allows none."""
        k = min(self.k, len(logits))
        top = np.argpartition(-logits, k - 1)[:k]
        top = top[np.argsort(-logits[top], kind="stable")]
        vals = logits[top].astype(np.float32)
        if grammar is not None:
            vals = self._allowed(grammar, top, logits, self._cand)
            if not np.isfinite(vals).any():
                self.full_checks += 1
                top = np.argsort(-logits, kind="stable")
                vals = self._allowed(grammar, top, logits, (self._lib.llama_token_data * len(top))())
        ok = np.isfinite(vals)
        if not ok.any():
            return None
        if temperature <= 0:
            return int(top[int(np.argmax(np.where(ok, vals, -np.inf)))])
        idx = np.flatnonzero(ok)[:TOP_K]
        z = vals[idx] / float(temperature)
        p = np.exp(z - z.max())
        p /= p.sum()
        keep = p >= MIN_P * p.max()
        idx, p = idx[keep], p[keep]
        order = np.argsort(-p)
        cum = np.cumsum(p[order])
        cut = int(np.searchsorted(cum, TOP_P)) + 1
        chosen = order[:cut]
        q = p[chosen] / p[chosen].sum()
        return int(top[idx[chosen[rng.choice(len(chosen), p=q)]]])
