"""The summary of a run, recomputed from its prediction records (``summary.json``).

``overall`` and ``groups[key][value]``: gIoU = mean of the item IoUs, cIoU = ΣI / ΣU
(:class:`~fastreasonseg.eval.metrics.IoUAccumulator`); for videos J, F = means over expressions of the frame means and
J&F = (J + F) / 2; ``format_rate``, ``no_target_rate`` and, where the ground-truth ids are known, ``exact_ids`` (the
share of items whose predicted id set equals the ground truth's). Breakdowns, as the records carry them: split,
category, level, media (image / video), targets (none / single / multi; twin datasets), query (long / short),
novelty (seen / novel, synthetic). Then ``counts`` and the efficiency block (:mod:`fastreasonseg.eval.efficiency`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from fastreasonseg.eval.config import EvalConfig
from fastreasonseg.eval.efficiency import efficiency
from fastreasonseg.eval.metrics import IoUAccumulator, VideoScore
from fastreasonseg.eval.records import json_safe

SUMMARY_FILE = "summary.json"

__all__ = ["SUMMARY_FILE", "group_table", "summarize"]


def _video_cells(v: dict[str, Any] | None) -> dict[str, Any]:
    if not v:
        return {"J": None, "F": None, "J&F": None, "videos": 0}
    return {"J": v["J"], "F": v["F"], "J&F": v["J&F"], "videos": v["count"]}


def _rates(rs: list[dict]) -> dict[str, Any]:
    n = max(1, len(rs))
    out = {
        "format_rate": sum(bool(r.get("format_ok")) for r in rs) / n,
        "no_target_rate": sum(bool(r.get("no_target")) for r in rs) / n,
    }
    known = [r for r in rs if r.get("gt_ids") is not None]
    if known:
        out["exact_ids"] = sum(sorted(r["pred_ids"]) == sorted(r["gt_ids"]) for r in known) / len(known)
    return out


def _by_group(records: list[dict]) -> dict[str, dict[str, list[dict]]]:
    out: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        for k, val in (r.get("groups") or {}).items():
            if val is not None:
                out[k][str(val)].append(r)
    return out


def group_table(records: list[dict]) -> dict[str, Any]:
    """``{"overall": {...}, "groups": {key: {value: {...}}}}`` of prediction records (see the module docstring)."""
    acc = IoUAccumulator()
    vid = VideoScore()
    for r in records:
        groups = {k: v for k, v in (r.get("groups") or {}).items() if v is not None}
        acc.add_counts(int(r["intersection"]), int(r["union"]), groups=groups, id=r["key"], iou=float(r["iou"]))
        pf = r.get("per_frame")
        if r.get("media") == "video" and pf:
            for j, f in zip(pf["J"], pf["F"], strict=True):
                vid.add_frame_scores(r["key"], j, f, groups=groups)
    overall = acc.result().as_dict() | _video_cells(vid.result()) | _rates(records)
    vgroups = vid.by_group()
    rates = _by_group(records)
    groups_out: dict[str, dict[str, dict]] = {}
    for key, vals in acc.by_group().items():
        groups_out[key] = {}
        for val, res in vals.items():
            d = res.as_dict() | _video_cells(vgroups.get(key, {}).get(val))
            members = rates.get(key, {}).get(str(val))
            groups_out[key][val] = d | _rates(members) if members else d
    return {"overall": overall, "groups": groups_out}


def summarize(
    records: Mapping[str, dict] | list[dict],
    *,
    config: EvalConfig | None = None,
    models: dict[str, Any] | None = None,
    counts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON summary of prediction records (as written to ``predictions.jsonl``)."""
    recs = list(records.values()) if isinstance(records, Mapping) else list(records)
    out: dict[str, Any] = {
        "config": asdict(config) if config is not None else None,
        "models": {k: v for k, v in (models or {}).items() if k != "parameters"},
        "counts": {"evaluated": len(recs), **(counts or {})},
        **group_table(recs),
        "efficiency": efficiency(recs, models or {}),
    }
    return json_safe(out)
