"""Teacher chains by rejection sampling (the paper's distillation data): sample ``k`` rollouts per training example
from any runtime through the project's executor, keep those whose answer has IoU > ``threshold`` (0.7) with the
ground truth and a well-formed rollout, write them as JSONL with provenance (teacher spec, sample id, IoU, seed).

Bootstrap without a strong teacher (``from_reference``): the synthetic samples carry reference rationales written
in the rollout grammar by the generator (it knows the scene), which play the teacher's part; they go through the same
check (format + IoU of their answer), so the chains file has one format whatever its source.

Teacher errors never stop the run: a rollout whose runtime fails (an endpoint that times out, a server error) is
skipped and counted (``errors`` in the summary) with the first messages logged.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastreasonseg.reasoning.grammar import format_ok, parse_rollout
from fastreasonseg.training.data import Chain, TrainSample, write_chains
from fastreasonseg.training.rewards import answer_iou

log = logging.getLogger(__name__)


@dataclass
class ChainStats:
    samples: int = 0
    rollouts: int = 0
    kept: int = 0
    rejected: int = 0
    errors: int = 0
    samples_with_chain: int = 0
    seconds: float = 0.0
    error_messages: list[str] = field(default_factory=list)

    def skip(self, message: str) -> None:
        """Count a rollout the teacher failed on (the first five are logged)."""
        self.errors += 1
        self.error_messages.append(message)
        if self.errors <= 5:
            log.warning("%s; rollout skipped", message)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "error_messages"} | {
            "first_errors": self.error_messages[:5]
        }


def _seed(base: int, sample_id: str, j: int) -> int:
    return (base * 1_000_003 + zlib.crc32(sample_id.encode()) * 31 + j) % (2**31 - 1)


def reference_chains(samples: list[TrainSample], threshold: float = 0.7) -> tuple[list[Chain], ChainStats]:
    """The samples' reference rollouts as chains (kept when well-formed with IoU > ``threshold``)."""
    stats = ChainStats(samples=len(samples))
    out = []
    t0 = time.perf_counter()
    for s in samples:
        if not s.reference:
            continue
        stats.rollouts += 1
        ids = parse_rollout(s.reference, tools=None).answer_ids
        iou = answer_iou(s.load_twin(), ids, s.target_ids)
        if format_ok(s.reference, tools=None) and iou > threshold:
            out.append(Chain(s.sample_id, s.reference, iou, "reference", None, s.query))
            stats.kept += 1
            stats.samples_with_chain += 1
        else:
            stats.rejected += 1
    stats.seconds = time.perf_counter() - t0
    return out, stats


def sample_chains(
    runtime: Any,
    samples: list[TrainSample],
    *,
    k: int = 4,
    threshold: float = 0.7,
    temperature: float = 0.7,
    seed: int = 0,
    teacher: str | None = None,
    max_per_sample: int = 1,
    reasoner_config: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Chain], ChainStats]:
    """Rejection sampling: ``k`` rollouts per sample, keep the well-formed ones with IoU > ``threshold`` (best
    first, at most ``max_per_sample``, distinct texts)."""
    from dataclasses import replace

    from fastreasonseg.reasoning.config import ReasonerConfig
    from fastreasonseg.reasoning.executor import run_rollout

    base_cfg = reasoner_config or ReasonerConfig()
    name = teacher or getattr(runtime, "name", type(runtime).__name__)
    stats = ChainStats(samples=len(samples))
    out: list[Chain] = []
    t0 = time.perf_counter()
    for n, s in enumerate(samples):
        twin = s.load_twin()
        kept: list[Chain] = []
        for j in range(k):
            sd = _seed(seed, s.sample_id, j)
            cfg = replace(base_cfg, temperature=temperature if k > 1 or temperature > 0 else 0.0, seed=sd)
            stats.rollouts += 1
            try:
                res = run_rollout(runtime, twin, s.query, config=cfg)
            except Exception as exc:  # a runtime that raises: skip the rollout, count it
                stats.skip(f"{s.sample_id}: the teacher failed ({type(exc).__name__}: {exc})")
                continue
            if res.diagnostic.startswith("the runtime failed"):
                stats.skip(f"{s.sample_id}: {res.diagnostic}")
                continue
            iou = answer_iou(twin, res.ids if res.format_ok else None, s.target_ids)
            if res.format_ok and iou > threshold:
                if all(c.rollout != res.rollout for c in kept):
                    kept.append(Chain(s.sample_id, res.rollout, iou, name, sd, s.query))
            else:
                stats.rejected += 1
        kept.sort(key=lambda c: -c.iou)
        kept = kept[: max(1, max_per_sample)]
        stats.kept += len(kept)
        stats.samples_with_chain += int(bool(kept))
        out.extend(kept)
        if progress is not None:
            progress(n + 1, len(samples))
    stats.seconds = time.perf_counter() - t0
    return out, stats


def run_chains(cfg: Any, *, samples: list[TrainSample] | None = None, runtime: Any = None) -> ChainStats:
    """The ``train chains`` stage: sample (or take the references), write ``chains.output``, return the stats."""
    import json
    from pathlib import Path

    from fastreasonseg.reasoning.runtimes import load_runtime
    from fastreasonseg.training.common import config_samples

    c = cfg.chains
    if samples is None:
        samples = config_samples(cfg)
    if c.from_reference:
        chains, stats = reference_chains(samples, c.threshold)
    else:
        rt = runtime or load_runtime(c.teacher)
        chains, stats = sample_chains(
            rt,
            samples,
            k=c.k,
            threshold=c.threshold,
            temperature=c.temperature,
            seed=c.seed,
            teacher=c.teacher,
            max_per_sample=c.max_per_sample,
        )
    write_chains(chains, c.output)
    info = stats.to_dict() | {"teacher": "reference" if c.from_reference else c.teacher, "threshold": c.threshold}
    Path(str(c.output) + ".stats.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    if not chains:
        log.warning("no chain passed the threshold: %s is empty", c.output)
    return stats
