"""Predictors the evaluation runner compares: the reasoner, a non-LLM embedding baseline and the oracle.

Every predictor answers one query on one twin with instance ids; the runner turns the ids into masks and scores them.

``reasoner``
    The real pipeline: :func:`~fastreasonseg.reasoning.executor.run_rollout` with any runtime
    :func:`~fastreasonseg.reasoning.runtimes.load_runtime` builds from a reasoner spec or alias (default: the
    library's default, the shipped student; :func:`fastreasonseg.api.resolve_reasoner_spec`), optionally with a LoRA
    adapter (on the zero-shot base when no spec is given).
``embedding``
    A baseline with no LLM: the query and every instance's label (and alternative labels) are embedded with
    all-MiniLM-L6-v2 (mean pooling, L2 norm; :class:`fastreasonseg.reasoning.embeddings.SentenceEmbedder`, the
    encoder the reasoner's grounding uses) and the instances whose best label similarity is the highest are the
    answer: every instance whose similarity is within ``tie`` of the best (so all instances sharing the best label
    are returned). When the best cosine similarity is below
    ``threshold`` (default :data:`EMBEDDING_THRESHOLD` = 0.25) the answer is "no target". It knows what things are
    called, not where they are nor what they are for beyond what the label words carry, so it bounds how much of a
    benchmark a label lookup solves.
``oracle``
    The ground-truth ids: the best any reasoner can do on that twin. For synthetic samples and oracle twins of real
    data they are the target ids. On perception twins (no ground-truth ids) the oracle picks, over the scored frames,
    every track whose pixels lie mostly (>= 50 %) inside the ground-truth mask, or else the single track with the
    highest IoU, so its score measures what perception left reachable.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastreasonseg.errors import InputError
from fastreasonseg.twin.schema import DigitalTwin

EMBEDDING_THRESHOLD = 0.25
"""Cosine similarity below which the embedding baseline answers "no target"."""

PREDICTORS = ("reasoner", "embedding", "oracle")

__all__ = [
    "EMBEDDING_THRESHOLD",
    "PREDICTORS",
    "EmbeddingPredictor",
    "OraclePredictor",
    "Prediction",
    "Predictor",
    "ReasonerPredictor",
    "count_parameters",
    "make_predictor",
    "spec_with_adapter",
    "track_labels",
]


@dataclass
class Prediction:
    """One predictor's answer to one query."""

    ids: list[int]
    no_target: bool
    format_ok: bool = True
    diagnostic: str = ""
    rollout: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    """Milliseconds: ``predict`` (wall time of the call) and, for the reasoner, ``prefill``, ``decode``, ``tools``."""
    tokens: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)
    twin: DigitalTwin | None = None
    """The twin the ids refer to (the reasoner's refined copy; ``None`` = the input twin)."""
    extra: dict[str, Any] = field(default_factory=dict)


class Predictor:
    """Base class: ``predict(twin, query, gt_ids=..., gt_mask=..., context=...)`` → :class:`Prediction`."""

    name = "predictor"

    def predict(
        self,
        twin: DigitalTwin,
        query: str,
        *,
        gt_ids: list[int] | None = None,
        gt_mask: Callable[[int], np.ndarray] | None = None,
        context: Any = None,
    ) -> Prediction:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Name, models and their parameter counts (for the efficiency block)."""
        return {"name": self.name}


# --------------------------------------------------------------------------------------------------------- oracle


def _foreground(gt: np.ndarray) -> np.ndarray:
    g = np.asarray(gt)
    if g.dtype == bool:
        return g
    return (g != 0) & (g != 255)


def match_ids(twin: DigitalTwin, gt_mask: Callable[[int], np.ndarray], min_precision: float = 0.5) -> list[int]:
    """Track ids of ``twin`` that best explain the ground truth (see the module docstring, ``oracle``)."""
    inter: Counter[int] = Counter()
    area: Counter[int] = Counter()
    gt_area = 0
    for fr in twin.frames:
        g = _foreground(gt_mask(fr.index))
        gt_area += int(g.sum())
        for inst in fr.instances:
            m = inst.mask.decode()
            if m.shape != g.shape:
                raise InputError(f"twin frame {fr.index} is {m.shape}, the ground truth is {g.shape}")
            inter[inst.id] += int(np.count_nonzero(m & g))
            area[inst.id] += int(inst.area)
    chosen = sorted(i for i in area if area[i] > 0 and inter[i] / area[i] >= min_precision)
    if chosen or gt_area == 0:
        return chosen
    best, best_iou = None, 0.0
    for i in area:
        u = area[i] + gt_area - inter[i]
        v = inter[i] / u if u > 0 else 0.0
        if v > best_iou:
            best, best_iou = i, v
    return [best] if best is not None else []


class OraclePredictor(Predictor):
    """The ground-truth ids (or, without them, the tracks matching the ground-truth mask)."""

    name = "oracle"

    def predict(self, twin, query, *, gt_ids=None, gt_mask=None, context=None) -> Prediction:
        t0 = time.perf_counter()
        if gt_ids is not None:
            ids = sorted(int(i) for i in gt_ids)
        elif gt_mask is not None:
            ids = match_ids(twin, gt_mask)
        else:
            raise InputError("the oracle predictor needs ground-truth ids or masks")
        return Prediction(ids=ids, no_target=not ids, timings={"predict": (time.perf_counter() - t0) * 1000})


# --------------------------------------------------------------------------------------------------------- embedding


def track_labels(twin: DigitalTwin) -> dict[int, list[str]]:
    """Per track id: its most frequent label first, then its other labels and alternative labels (unique)."""
    labels: dict[int, Counter[str]] = {}
    alts: dict[int, list[str]] = {}
    for fr in twin.frames:
        for inst in fr.instances:
            labels.setdefault(inst.id, Counter())[inst.label] += 1
            alts.setdefault(inst.id, []).extend(name for name, _ in inst.alt_labels)
    out: dict[int, list[str]] = {}
    for i, counts in labels.items():
        names = [n for n, _ in counts.most_common()] + alts.get(i, [])
        out[i] = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))
    return out


class EmbeddingPredictor(Predictor):
    """Query-to-label sentence-embedding similarity (all-MiniLM-L6-v2); see the module docstring."""

    name = "embedding"

    def __init__(
        self, model_dir: str | None = None, *, threshold: float = EMBEDDING_THRESHOLD, tie: float = 1e-4
    ) -> None:
        from fastreasonseg.reasoning.embeddings import SentenceEmbedder

        self.encoder = SentenceEmbedder(model_dir, 256)
        self.encoder.embed(["warm up"])  # load now: the first query's time is not the model's load time
        self.threshold = float(threshold)
        self.tie = float(tie)
        self._cache: dict[str, np.ndarray] = {}

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for t, v in zip(missing, self.encoder.embed(missing), strict=True):
                self._cache[t] = v
        return np.stack([self._cache[t] for t in texts])

    def scores(self, twin: DigitalTwin, query: str) -> dict[int, float]:
        """Cosine similarity of ``query`` to each track's best label."""
        labels = track_labels(twin)
        if not labels:
            return {}
        names = sorted({n for ns in labels.values() for n in ns})
        emb = dict(zip(names, self._embed(names), strict=True))
        q = self.encoder.embed([query])[0]
        return {i: max(float(emb[n] @ q) for n in ns) for i, ns in labels.items() if ns}

    def predict(self, twin, query, *, gt_ids=None, gt_mask=None, context=None) -> Prediction:
        t0 = time.perf_counter()
        sims = self.scores(twin, query)
        ids: list[int] = []
        best = max(sims.values()) if sims else float("-inf")
        if sims and best >= self.threshold:
            ids = sorted(i for i, s in sims.items() if s >= best - self.tie)
        diag = "" if ids else (f"best label similarity {best:.3f} < {self.threshold}" if sims else "empty twin")
        return Prediction(
            ids=ids,
            no_target=not ids,
            diagnostic=diag,
            timings={"predict": (time.perf_counter() - t0) * 1000},
            extra={"best_similarity": round(best, 4) if sims else None},
        )

    def describe(self) -> dict[str, Any]:
        from fastreasonseg.reasoning.embeddings import load_encoder

        _, model = load_encoder(self.encoder.model_dir)
        return {
            "name": self.name,
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "threshold": self.threshold,
            "parameters": {"embedding": count_parameters(model)},
        }


# --------------------------------------------------------------------------------------------------------- reasoner


def spec_with_adapter(spec: str, adapter: str | None) -> str:
    """Add a LoRA adapter to a reasoner spec (``lora=`` for llama.cpp, ``adapter=`` for transformers)."""
    if not adapter:
        return spec
    from fastreasonseg.reasoning.runtimes import parse_spec

    kind, _, options = parse_spec(spec)
    key = {"llamacpp": "lora", "transformers": "adapter"}.get(kind)
    if key is None:
        raise InputError(f"--adapter is not supported for {kind} reasoners (the server loads its own adapters)")
    if key in options:
        raise InputError(f"the reasoner spec {spec!r} already names an adapter ({key}=)")
    return f"{spec}{'&' if '?' in spec else '?'}{key}={adapter}"


def count_parameters(model: Any) -> int | None:
    """Parameters of a torch module, a llama.cpp model or a runtime holding one; ``None`` when unknown."""
    if model is None:
        return None
    params = getattr(model, "parameters", None)
    if callable(params):
        try:
            return int(sum(p.numel() for p in params()))
        except Exception:
            pass
    llm = getattr(model, "llm", None)
    if llm is not None:
        try:
            import llama_cpp

            return int(llama_cpp.llama_model_n_params(llm.model))
        except Exception:
            pass
    inner = getattr(model, "model", None)
    if inner is not None and inner is not model and callable(getattr(inner, "parameters", None)):
        return count_parameters(inner)
    return None


class ReasonerPredictor(Predictor):
    """The executor with a runtime from a reasoner spec (or a runtime object)."""

    name = "reasoner"

    def __init__(self, spec: str | None = None, *, adapter: str | None = None, config=None, runtime=None) -> None:
        from fastreasonseg.reasoning.config import ReasonerConfig
        from fastreasonseg.reasoning.executor import Reasoner
        from fastreasonseg.reasoning.runtimes import BASE_REASONER, load_runtime, resolve_spec

        if runtime is None:  # an explicit --adapter goes on the zero-shot base unless a spec is named
            spec = resolve_spec(spec if spec or not adapter else BASE_REASONER)
            self.spec: str | None = spec_with_adapter(spec, adapter)
        else:
            self.spec = None
        self.runtime = runtime if runtime is not None else load_runtime(self.spec)
        self.reasoner = Reasoner(self.runtime, config or ReasonerConfig())

    def predict(self, twin, query, *, gt_ids=None, gt_mask=None, context=None) -> Prediction:
        t0 = time.perf_counter()
        res = self.reasoner.ask(twin, query, context)
        ms = (time.perf_counter() - t0) * 1000
        return Prediction(
            ids=list(res.ids),
            no_target=res.no_target,
            format_ok=res.format_ok,
            diagnostic=res.diagnostic,
            rollout=res.rollout,
            timings={
                "predict": ms,
                "prefill": res.prefill_ms,
                "decode": res.decode_ms,
                "tools": res.tools_ms,
            },
            tokens={
                "prompt": res.prompt_tokens,
                "cached": res.cached_tokens,
                "completion": res.completion_tokens,
            },
            notes=list(res.notes),
            twin=res.twin,
            extra={"rounds": res.rounds, "model_calls": res.model_calls},
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": self.spec,
            "model": getattr(self.runtime, "name", type(self.runtime).__name__),
            "parameters": {"reasoner": count_parameters(self.runtime)},
        }


def make_predictor(
    name: str,
    *,
    reasoner: str | None = None,
    adapter: str | None = None,
    reasoner_config=None,
    embedding_threshold: float = EMBEDDING_THRESHOLD,
) -> Predictor:
    """A predictor by name: ``reasoner``, ``embedding`` or ``oracle``."""
    key = name.strip().lower()
    if key == "oracle":
        return OraclePredictor()
    if key == "embedding":
        return EmbeddingPredictor(threshold=embedding_threshold)
    if key == "reasoner":
        return ReasonerPredictor(reasoner, adapter=adapter, config=reasoner_config)
    raise InputError(f"unknown predictor {name!r}; choose one of {', '.join(PREDICTORS)}")
