"""The run folder: per-item prediction records in JSONL, resumable, and what was run.

``predictions.jsonl``
    One line per item (key, sample id, query, groups, predicted and ground-truth ids, IoU, J, F, format_ok,
    no_target, diagnostic, timings, tokens, rollout), appended and flushed as items finish.
``run.json``
    The :class:`~fastreasonseg.eval.config.EvalConfig` of the run and its identity.

Resuming: opening a folder again keeps the records already in ``predictions.jsonl`` (a truncated last line from a
killed run is dropped, unreadable lines are counted) so the runner skips their items; a folder whose ``run.json``
names another dataset, split, predictor or twin source is refused, so two runs never mix in one file.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import numpy as np

from fastreasonseg.errors import InputError
from fastreasonseg.eval.config import IDENTITY_FIELDS, EvalConfig
from fastreasonseg.eval.items import EvalItem
from fastreasonseg.eval.predictors import Prediction
from fastreasonseg.twin.schema import DigitalTwin

PREDICTIONS_FILE = "predictions.jsonl"
RUN_FILE = "run.json"

__all__ = ["PREDICTIONS_FILE", "RUN_FILE", "PredictionLog", "json_safe", "load_records", "make_record"]


def json_safe(obj: Any) -> Any:
    """NaN/inf → None and numpy scalars → Python numbers, recursively, so the output is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj


def load_records(path: str | os.PathLike) -> tuple[dict[str, dict], int]:
    """``({key: record}, unreadable lines)`` of a predictions JSONL (the last record of a key wins)."""
    p = Path(path)
    records: dict[str, dict] = {}
    bad = 0
    if not p.is_file():
        return records, bad
    with open(p, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                records[str(rec["key"])] = rec
            except (json.JSONDecodeError, KeyError, TypeError):
                bad += 1
    return records, bad


def _drop_truncated_line(path: Path) -> None:
    """Drop a truncated last line (a run killed mid-write) so appends stay valid JSONL."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        fh.truncate(data.rfind(b"\n") + 1)


def _check_run_file(out: Path, cfg: EvalConfig) -> None:
    run_file = out / RUN_FILE
    if not run_file.is_file():
        return
    try:
        old = json.loads(run_file.read_text(encoding="utf-8")).get("identity", {})
    except (OSError, json.JSONDecodeError, AttributeError):
        old = {}
    new = cfg.identity()
    diff = [k for k in IDENTITY_FIELDS if k in old and old[k] != new[k]]
    if diff:
        what = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in diff)
        raise InputError(f"{out} holds predictions of a different run ({what}); use another output folder to keep both")


class PredictionLog:
    """The records of a run folder; :meth:`open` prepares it, :meth:`append` writes one record (flushed)."""

    def __init__(self, folder: Path, records: dict[str, dict], bad_lines: int) -> None:
        self.folder = folder
        self.path = folder / PREDICTIONS_FILE
        self.records = records
        self.bad_lines = bad_lines
        self._fh: IO[str] | None = None

    @classmethod
    def open(cls, folder: str | os.PathLike, cfg: EvalConfig) -> PredictionLog:
        """Create or resume ``folder`` for ``cfg`` (refused when it holds another run); writes ``run.json``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        _check_run_file(out, cfg)
        _drop_truncated_line(out / PREDICTIONS_FILE)
        records, bad = load_records(out / PREDICTIONS_FILE)
        run = {"identity": cfg.identity(), "config": asdict(cfg)}
        (out / RUN_FILE).write_text(json.dumps(json_safe(run), indent=2) + "\n", encoding="utf-8")
        return cls(out, records, bad)

    def __enter__(self) -> PredictionLog:
        self._fh = open(self.path, "a", encoding="utf-8")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def append(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            raise RuntimeError("PredictionLog.append outside its `with` block")
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._fh.flush()
        self.records[str(record["key"])] = record


def perception_meta(twin: DigitalTwin) -> dict[str, Any] | None:
    """The perception timings a built twin records (``twin.meta["timings_ms"]``), for the efficiency block."""
    t = twin.meta.get("timings_ms") if isinstance(twin.meta, dict) else None
    if not isinstance(t, dict):
        return None
    return {
        "total_ms": t.get("total"),
        "frames_ms": t.get("frames"),
        "load_ms": t.get("load"),
        "frames": twin.meta.get("num_processed_frames", len(twin.frames)),
        "per_frame_ms": dict(t.get("per_frame") or {}),
    }


def make_record(item: EvalItem, pred: Prediction, scores: dict, perception: dict | None) -> dict[str, Any]:
    """The JSONL record of one scored item."""
    timings = {k: round(float(v), 3) for k, v in pred.timings.items()}
    rec: dict[str, Any] = {
        "key": item.key,
        "sample_id": item.sample_id,
        "query_index": item.query_index,
        "dataset": item.dataset,
        "split": item.split,
        "media": item.media,
        "query": item.query,
        "groups": item.groups,
        "pred_ids": list(pred.ids),
        "gt_ids": item.gt_ids,
        "no_target": pred.no_target,
        "gt_no_target": (not item.gt_ids) if item.gt_ids is not None else None,
        "format_ok": pred.format_ok,
        "diagnostic": pred.diagnostic,
        **scores,
        "timings": timings,
        "perception": perception,
        "tokens": pred.tokens,
        "rollout": pred.rollout,
        "notes": pred.notes,
        **({"extra": pred.extra} if pred.extra else {}),
    }
    return json_safe(rec)
