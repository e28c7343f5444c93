"""The evaluation runner: a dataset, twins, a predictor → per-item predictions, a summary and efficiency numbers.

>>> summary = run_eval(EvalConfig("synthetic", "/data/synthetic", predictor="embedding"), "runs/eval")  # doctest: +SKIP
>>> summary["overall"]["gIoU"], summary["groups"]["category"]["spatial"]["cIoU"]                       # doctest: +SKIP

One job per module:

* :mod:`.config` - :class:`EvalConfig`, what is evaluated (dataset, split, predictor, twin source, limits);
* :mod:`.items` - the dataset's items (one query of one sample) and their twins (oracle or perception);
* :mod:`.predictors` - the predictors compared (reasoner, embedding baseline, oracle);
* :mod:`.scoring` - one item's predicted masks against its ground truth, frame by frame;
* :mod:`.records` - the run folder: ``predictions.jsonl`` (resumable) and ``run.json``;
* :mod:`.summary` - ``summary.json``: gIoU / cIoU, J / F / J&F, exact ids, rates, per group;
* :mod:`.efficiency` - parameters, peak memory, milliseconds per query and per frame, frames per second;
* :mod:`.tables` - the console tables.

This module runs the loop. Re-running with the same output folder skips the items already in
``predictions.jsonl`` and recomputes the summary from the file. A sample that cannot be read or scored - a data
error: a corrupt line, an unreadable image, a twin that fails validation, a mask of the wrong size, a model file
that cannot be read (:class:`~fastreasonseg.errors.FastReasonSegError` or ``OSError``) - is skipped, counted and
listed in the summary, never the end of the run, and is retried by the next run. Any other exception is a bug and
stops the run (the items finished so far stay in the file).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fastreasonseg.errors import FastReasonSegError, InputError
from fastreasonseg.eval.config import TWIN_SOURCES, EvalConfig
from fastreasonseg.eval.efficiency import perception_parameters
from fastreasonseg.eval.items import EvalItem, SkippedItem, open_items, oracle_twin_from_sample
from fastreasonseg.eval.predictors import Predictor, make_predictor
from fastreasonseg.eval.records import (
    PREDICTIONS_FILE,
    RUN_FILE,
    PredictionLog,
    json_safe,
    load_records,
    make_record,
    perception_meta,
)
from fastreasonseg.eval.scoring import score_item
from fastreasonseg.eval.summary import SUMMARY_FILE, summarize
from fastreasonseg.eval.tables import print_summary

DATA_ERRORS: tuple[type[BaseException], ...] = (FastReasonSegError, OSError)
"""What skips an item: errors of the data or the environment (:class:`~fastreasonseg.errors.InputError`,
:class:`~fastreasonseg.data.base.CorruptSample`, a failed twin validation, an unreadable file)."""

Progress = Callable[[str, "int | None"], None]

__all__ = [
    "DATA_ERRORS",
    "PREDICTIONS_FILE",
    "RUN_FILE",
    "SUMMARY_FILE",
    "TWIN_SOURCES",
    "EvalConfig",
    "EvalItem",
    "SkippedItem",
    "json_safe",
    "load_records",
    "oracle_twin_from_sample",
    "print_summary",
    "run_eval",
    "summarize",
]


@dataclass
class _Tally:
    """Counts of one run, and the progress callback told about each item."""

    progress: Progress | None
    total: int | None
    counts: dict[str, Any] = field(default_factory=lambda: {"evaluated_now": 0, "resumed": 0, "skipped": 0})
    skipped: list[dict[str, str]] = field(default_factory=list)
    built_media: set[str] = field(default_factory=set)

    def event(self, kind: str) -> None:
        if self.progress:
            self.progress(kind, self.total)

    def skip(self, id: str, reason: str) -> None:
        self.counts["skipped"] += 1
        self.skipped.append({"id": id, "reason": reason})
        self.event("skipped")


def _make_builder(cfg: EvalConfig) -> Any:
    """The TwinBuilder of ``twins="perception"`` (the config's perception models, with the run's stride / frames)."""
    if cfg.twins != "perception":
        return None
    from fastreasonseg.config import PerceptionConfig
    from fastreasonseg.perception.builder import TwinBuilder

    pc = cfg.perception if cfg.perception is not None else PerceptionConfig()
    return TwinBuilder(replace(pc, stride=cfg.stride, max_frames=cfg.max_frames))


def _evaluate(item: EvalItem, pred: Predictor, tally: _Tally) -> dict[str, Any]:
    """Predict and score one item; data errors propagate to the caller, which skips the item."""
    twin = item.twin()
    perception = None
    if item.twin.built and not item.twin.consumed:  # the sample's first item carries the build's timings
        item.twin.consumed = True
        perception = perception_meta(twin)
        tally.built_media.add(item.media)
    ctx = item.context() if item.context is not None else None
    p = pred.predict(twin, item.query, gt_ids=item.gt_ids, gt_mask=item.gt_mask, context=ctx)
    return make_record(item, p, score_item(item, twin, p), perception)


def _models(pred: Predictor, builder: Any, tally: _Tally) -> dict[str, Any]:
    models = pred.describe()
    params = dict(models.get("parameters", {}))
    if builder is not None:
        params |= perception_parameters(builder.perception, tally.built_media)
        models["perception"] = builder.perception.model_ids()
    models["parameters"] = {k: v for k, v in params.items() if v is not None}
    return models


def run_eval(
    config: EvalConfig,
    output_dir: str | os.PathLike,
    *,
    predictor: Predictor | None = None,
    builder: Any = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Evaluate ``config``; writes ``predictions.jsonl``, ``summary.json`` and ``run.json`` to ``output_dir``.

    ``predictor`` replaces the one ``config.predictor`` names (``config.predictor`` is then only its recorded name);
    ``builder`` replaces the :class:`~fastreasonseg.perception.builder.TwinBuilder` built from ``config.perception``
    for ``twins="perception"``. ``progress(event, total)`` is called with ``"start"`` (total items or ``None``) and
    then with ``"done"``, ``"resumed"`` or ``"skipped"`` per item. Returns the summary (also in ``summary.json``).
    Raises :class:`~fastreasonseg.errors.InputError` for a bad configuration, path or layout before writing anything.
    """
    cfg = config
    cfg.check(named_predictor=predictor is None)
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output path exists and is not a folder: {out}")
    builder = builder if builder is not None or cfg.twins != "perception" else _make_builder(cfg)
    source = open_items(cfg, builder)  # bad path / layout fails here, before any model loads
    total = source.total
    if cfg.limit is not None:
        total = cfg.limit if total is None else min(total, cfg.limit)
    log = PredictionLog.open(out, cfg)
    pred = predictor or make_predictor(
        cfg.predictor,
        reasoner=cfg.reasoner,
        adapter=cfg.adapter,
        reasoner_config=cfg.reasoner_config,
        embedding_threshold=cfg.embedding_threshold,
    )
    tally = _Tally(progress, total)
    tally.event("start")
    in_split: list[str] = []
    t_run = time.perf_counter()
    with log:
        for item in source.items:
            if isinstance(item, SkippedItem):
                tally.skip(item.id, item.reason)
                continue
            if cfg.limit is not None and len(in_split) >= cfg.limit:
                break
            in_split.append(item.key)
            if item.key in log.records:
                tally.counts["resumed"] += 1
                tally.event("resumed")
                continue
            try:
                record = _evaluate(item, pred, tally)
            except DATA_ERRORS as exc:
                tally.skip(item.key, f"{type(exc).__name__}: {str(exc)[:300]}")
                continue
            log.append(record)
            tally.counts["evaluated_now"] += 1
            tally.event("done")
    counts = tally.counts | {
        "skipped_items": tally.skipped,
        "unreadable_prediction_lines": log.bad_lines,
        "wall_s": round(time.perf_counter() - t_run, 3),
    }
    selected = [log.records[k] for k in in_split if k in log.records]
    summary = summarize(selected, config=cfg, models=_models(pred, builder, tally), counts=counts)
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
