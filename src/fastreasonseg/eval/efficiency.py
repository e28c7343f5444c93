"""The efficiency block of a summary (``summary["efficiency"]``).

Parameters of every model used (reasoner LLM, embedding model, perception models), peak RSS of this process
(``resource.getrusage``) and ``torch.cuda.max_memory_allocated`` on a GPU, milliseconds per query (predictor total,
reasoning prefill / decode / tools) and per frame per perception stage (``twin.meta["timings_ms"]``), and frames per
second (perception, reasoning, end to end). Timings come from the records (all items, resumed ones included);
parameters and memory from the process that wrote the summary.
"""

from __future__ import annotations

import resource
import statistics
import sys
from collections import defaultdict
from typing import Any

from fastreasonseg.eval.predictors import count_parameters

__all__ = ["efficiency", "peak_memory", "perception_parameters"]


def _stats(values: list[float]) -> dict[str, float] | None:
    v = [float(x) for x in values if x is not None]
    if not v:
        return None
    return {"mean": round(statistics.fmean(v), 3), "median": round(statistics.median(v), 3)}


def peak_memory() -> dict[str, Any]:
    """Peak RSS of this process in MB and, when torch has used a GPU, the CUDA peak allocation."""
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mb = rss_kb / (1024 * 1024) if sys.platform == "darwin" else rss_kb / 1024  # bytes on macOS, KiB on Linux
    out: dict[str, Any] = {"peak_rss_mb": round(mb, 1)}
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                out["cuda_max_memory_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        except Exception:  # a broken CUDA setup must not lose the summary; the number is then simply absent
            pass
    return out


def perception_parameters(perception: Any, media: set[str]) -> dict[str, int | None]:
    """Parameters of the perception models that built this run's twins of kind ``media`` (``image`` / ``video``).

    :meth:`TwinBuilder.build <fastreasonseg.perception.builder.TwinBuilder.build>` calls
    ``Perception.load(video=...)`` for each twin, so the models read here (the ones ``load`` loads for those media)
    are loaded already and reading them loads nothing new.
    """
    if not media:
        return {}
    models: dict[str, Any] = {"labeller": perception.labeller, "depth": perception.depth_model}
    video_needs_segmenter = perception.config.mode == "grid" or models["labeller"] is None
    if "image" in media or video_needs_segmenter:
        models["segmenter"] = perception.segmenter
    if "video" in media:
        models["tracker"] = perception.tracker
    return {role: count_parameters(m) for role, m in models.items()}


def _perception_block(records: list[dict]) -> tuple[dict[str, Any], float, float]:
    built = [r["perception"] for r in records if r.get("perception")]
    if not built:
        return {}, 0.0, 0.0
    per_stage: dict[str, list[float]] = defaultdict(list)
    ms = frames = 0.0
    for p in built:
        ms += float(p.get("frames_ms", p.get("total_ms", 0.0)) or 0.0)
        frames += int(p.get("frames", 0) or 0)
        for stage, v in (p.get("per_frame_ms") or {}).items():
            per_stage[stage].append(float(v))
    block = {
        "perception_ms_per_frame": {k: round(statistics.fmean(v), 3) for k, v in per_stage.items()},
        "perception_twins": len(built),
    }
    return block, ms, frames


def efficiency(records: list[dict], models: dict[str, Any]) -> dict[str, Any]:
    """The efficiency block of ``records`` (see the module docstring); ``models["parameters"]`` by role."""

    def timings(k: str) -> list[float]:
        return [r["timings"].get(k) for r in records if r.get("timings") and k in r["timings"]]

    eff: dict[str, Any] = {"parameters": models.get("parameters", {}), **peak_memory()}
    eff["ms_per_query"] = {k: s for k in ("predict", "prefill", "decode", "tools") if (s := _stats(timings(k)))}
    block, perception_ms, perception_frames = _perception_block(records)
    eff |= block
    # frames of each sample counted once (its first query); predictor time over every query
    seen: set[str] = set()
    frames = 0
    for r in records:
        if r["sample_id"] not in seen:
            seen.add(r["sample_id"])
            frames += int(r.get("frames", 1))
    predict_s = sum(float(x or 0.0) for x in timings("predict")) / 1000
    fps: dict[str, float] = {}
    if perception_ms > 0:
        fps["perception"] = round(perception_frames / (perception_ms / 1000), 4)
    if predict_s > 1e-3:
        fps["reasoning"] = round(frames / predict_s, 4)
        fps["end_to_end"] = round(frames / (predict_s + perception_ms / 1000), 4)
        eff["queries_per_second"] = round(len(records) / predict_s, 4)
    eff["frames"] = frames
    eff["frames_per_second"] = fps
    return eff
