"""The evaluation runner: a dataset, twins, a predictor → per-sample predictions, a summary and efficiency numbers.

>>> summary = run_eval("synthetic", "/data/synthetic", "test", "runs/eval", predictor="embedding")  # doctest: +SKIP
>>> summary["overall"]["gIoU"], summary["groups"]["category"]["spatial"]["cIoU"]                  # doctest: +SKIP

Data
    ``synthetic``: a JSONL split written by ``fastreasonseg data synthetic`` (``ROOT/<split>.jsonl``, or ROOT is the
    ``.jsonl`` file itself); each sample carries its twin and its target ids. Every other name goes through
    :func:`fastreasonseg.data.base.open_dataset` (ReasonSeg, LLM-Seg40K, RefCOCOg, ReVOS, MeViS, DAVIS). One
    *item* is one query of one sample; its key is ``<sample id>#<query index>``.

Twins (``twins=``)
    ``oracle``: synthetic samples use their own twin. For a real dataset the oracle twin is built from the sample's
    ground-truth mask(s) alone: **one instance** (id 1, labelled with the sample's category, e.g. the DAVIS-2016
    object name or the RefCOCOg class, else ``object``) in each scored frame where the target is visible. The
    annotations name no other object, so the twin holds only the target: the reasoner only has to decide between
    "id 1" and "no target", which tests the plumbing, the output format and the metrics, not the reasoning. Use
    ``twins="perception"`` for real measurements: :class:`~fastreasonseg.perception.builder.TwinBuilder` with a
    :class:`~fastreasonseg.config.PerceptionConfig` builds the twin from the pixels (once per sample, shared by its
    queries); the tools then get the frames and the perception models.

Scoring
    Predicted ids become masks on the (refined) twin, in every scored frame (the twin's frames: with ``stride`` and
    ``max_frames`` on videos of real datasets). Per item: intersection and union summed over the frames, its IoU
    (images: I/U; videos: the mean of the per-frame IoUs, an empty union scoring 1), and for videos J and F per frame
    (:class:`~fastreasonseg.eval.metrics.VideoScore`). gIoU = mean of the item IoUs, cIoU = ΣI / ΣU
    (:class:`~fastreasonseg.eval.metrics.IoUAccumulator`); J, F = means over expressions of the frame means,
    J&F = (J + F) / 2. Images report gIoU / cIoU, videos J / F / J&F as well. Breakdowns: split, category, level,
    media (image / video), query (long / short), novelty (seen / novel, synthetic).

Output (``output_dir``)
    ``predictions.jsonl`` - one line per item (key, sample id, query, predicted and ground-truth ids, IoU, J, F,
    format_ok, no_target, diagnostic, timings, tokens, rollout), appended and flushed as items finish.
    ``summary.json`` - recomputed from the whole JSONL at the end of every run. ``run.json`` - what was run.

Resuming
    Re-running with the same output directory skips the items already in ``predictions.jsonl`` (a truncated last
    line from a killed run is dropped) and recomputes the summary from the file; a different dataset, split,
    predictor or twin source in the same directory is refused. A sample that cannot be read or scored (a corrupt
    JSONL line, an unreadable image, a twin that fails) is skipped, counted and listed in the summary - never the end
    of the run - and is retried by the next run.

Efficiency (``summary["efficiency"]``)
    Parameters of every model used (reasoner LLM, embedding model, perception models), peak RSS of this process
    (``resource.getrusage``) and ``torch.cuda.max_memory_allocated`` on a GPU, milliseconds per query (predictor total,
    reasoning prefill / decode / tools) and per frame per perception stage (``twin.meta["timings_ms"]``), and frames
    per second (perception, reasoning, end to end). Timings come from the JSONL (all items, resumed ones included);
    parameters and memory from the process that wrote the summary.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fastreasonseg.errors import FastReasonSegError, InputError
from fastreasonseg.eval.metrics import IoUAccumulator, VideoScore, intersection_union
from fastreasonseg.eval.predictors import (
    EMBEDDING_THRESHOLD,
    PREDICTORS,
    Prediction,
    Predictor,
    count_parameters,
    make_predictor,
)
from fastreasonseg.twin.schema import DigitalTwin, Frame, Instance, Models, Source

PREDICTIONS_FILE = "predictions.jsonl"
SUMMARY_FILE = "summary.json"
RUN_FILE = "run.json"
TWIN_SOURCES = ("oracle", "perception")
_IDENTITY = ("dataset", "split", "predictor", "twins", "reasoner", "adapter", "stride", "max_frames")

__all__ = [
    "PREDICTIONS_FILE",
    "RUN_FILE",
    "SUMMARY_FILE",
    "EvalConfig",
    "EvalItem",
    "SkippedItem",
    "load_records",
    "oracle_twin_from_sample",
    "print_summary",
    "run_eval",
    "summarize",
]


@dataclass
class EvalConfig:
    """What to evaluate. ``dataset`` is ``synthetic`` or an :func:`~fastreasonseg.data.base.open_dataset` name."""

    dataset: str
    root: str
    split: str = "test"
    predictor: str = "oracle"
    reasoner: str | None = None
    """Reasoner spec or alias (``predictor="reasoner"``; default: the shipped student, or the zero-shot base when
    ``adapter`` is set; :func:`fastreasonseg.api.resolve_reasoner_spec`)."""
    adapter: str | None = None
    twins: str = "oracle"
    stride: int = 1
    """Videos of real datasets: score (and perceive) every ``stride``-th frame."""
    max_frames: int | None = None
    limit: int | None = None
    """Evaluate only the first ``limit`` items (queries) of the split, in order."""
    embedding_threshold: float = EMBEDDING_THRESHOLD
    dataset_options: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: d[k] for k in _IDENTITY}


@dataclass
class EvalItem:
    """One query of one sample, ready to predict and score."""

    key: str
    sample_id: str
    query_index: int
    query: str
    dataset: str
    split: str
    media: str
    groups: dict[str, str]
    gt_ids: list[int] | None
    gt_mask: Callable[[int], np.ndarray]
    """Ground-truth mask of a source frame index (``(H, W)``; bool, or uint8 with 255 = ignore)."""
    twin: Callable[[], DigitalTwin]
    """The twin (built on first call, shared by the queries of a sample)."""
    context: Callable[[], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SkippedItem:
    """A sample (or line) that could not be used, and why."""

    id: str
    reason: str


# ---------------------------------------------------------------------------------------------------------- sources


class _Once:
    """Call ``build`` once and keep the value (or the exception); records the build's wall time."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._value: Any = None
        self._error: BaseException | None = None
        self.done = False
        self.consumed = False  # the first item that asked gets the perception timings

    def __call__(self) -> Any:
        if not self.done:
            self.done = True
            try:
                self._value = self._build()
            except Exception as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._value


def _synthetic_path(root: str | os.PathLike, split: str) -> Path:
    p = Path(root)
    if p.is_file():
        return p
    if not p.exists():
        raise InputError(f"synthetic dataset not found: {p} (expected a folder with {split}.jsonl, or a .jsonl file)")
    f = p / f"{split}.jsonl"
    if not f.is_file():
        have = sorted(x.name for x in p.glob("*.jsonl"))
        raise InputError(
            f"no {split}.jsonl in {p} (found: {', '.join(have) or 'no .jsonl files'}); write one with "
            f"`fastreasonseg data synthetic -o {p}`"
        )
    return f


def _synthetic_items(cfg: EvalConfig) -> Iterator[EvalItem | SkippedItem]:
    from fastreasonseg.data.synthetic.dataset import SyntheticSample

    if cfg.twins != "oracle":
        raise InputError("synthetic samples have no pixels: evaluate them with --twins oracle (their own twins)")
    path = _synthetic_path(cfg.root, cfg.split)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                s = SyntheticSample.from_dict(json.loads(line))
            except Exception as exc:  # a corrupt line is one lost sample, never the run
                yield SkippedItem(f"{path.name}:{lineno}", f"{type(exc).__name__}: {str(exc)[:300]}")
                continue
            twin = s.twin
            ids = list(s.ids)
            groups = {
                "split": s.split,
                "category": s.category,
                "level": f"L{s.level}",
                "media": s.media,
                "novelty": "novel" if s.novel else "seen",
            }
            yield EvalItem(
                key=f"{s.uid}#0",
                sample_id=s.uid,
                query_index=0,
                query=s.query,
                dataset="synthetic",
                split=s.split,
                media=s.media,
                groups=groups,
                gt_ids=ids,
                gt_mask=lambda index, twin=twin, ids=ids: twin.mask(index, ids),
                twin=lambda twin=twin: twin,
                extra={"template_id": s.template_id, "novel": list(s.novel)},
            )


def _frame_indices(num_frames: int, stride: int, max_frames: int | None) -> list[int]:
    idx = list(range(0, max(1, num_frames), max(1, stride)))
    return idx[:max_frames] if max_frames else idx


def _gt_foreground(gt: np.ndarray) -> np.ndarray:
    g = np.asarray(gt)
    return g if g.dtype == bool else (g != 0) & (g != 255)


def oracle_twin_from_sample(sample: Any, *, stride: int = 1, max_frames: int | None = None) -> DigitalTwin:
    """Oracle twin of a dataset :class:`~fastreasonseg.data.base.Sample` from its ground truth alone.

    One instance, id 1, labelled ``sample.category`` (else ``object``), in each scored frame where the target is
    visible (ignore pixels excluded). Only the annotated target exists in it: see the module docstring.
    """
    label = str(sample.category or "object").strip() or "object"
    if sample.is_video:
        indices = _frame_indices(sample.num_frames, stride, max_frames)
    else:
        indices = [0]
    frames, h, w = [], 0, 0
    fps = float(sample.extra.get("fps", 24.0)) if sample.is_video else 0.0
    for i in indices:
        fg = _gt_foreground(sample.mask_at(i))
        h, w = fg.shape
        inst = Instance.from_mask(1, label, fg, score=1.0)
        frames.append(
            Frame(index=i, time=round(i / fps, 4) if fps else 0.0, instances=[inst] if inst is not None else [])
        )
    twin = DigitalTwin(
        source=Source(
            kind="video" if sample.is_video else "image",
            name=str(sample.id),
            width=w,
            height=h,
            fps=fps,
            num_frames=sample.num_frames,
        ),
        models=Models(segmenter=f"oracle:{sample.dataset}", labeller=f"oracle:{sample.dataset}"),
        frames=frames,
        meta={"oracle": sample.dataset, "note": "ground-truth target only; no other object is annotated"},
    )
    twin.validate_all()
    return twin


class _LazyFrames(Mapping):
    """Source frames for the tools, read on access (``ToolContext.frames``)."""

    def __init__(self, sample: Any, indices: list[int]) -> None:
        self.sample = sample
        self.indices = indices
        self._cache: dict[int, np.ndarray] = {}

    def __getitem__(self, index: int) -> np.ndarray:
        if index not in self.indices:
            raise KeyError(index)
        if index not in self._cache:
            if len(self._cache) >= 8:
                self._cache.pop(next(iter(self._cache)))
            self._cache[index] = self.sample.load_image(index)
        return self._cache[index]

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _perception_source(sample: Any) -> Any:
    if not sample.is_video:
        return sample.image
    folder = sample.frames[0].parent
    listed = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if all(p.parent == folder for p in sample.frames) and listed == list(sample.frames):
        return folder
    return [sample.load_image(i) for i in range(sample.num_frames)]


def _reader_items(cfg: EvalConfig, builder: Any, reader: Any) -> Iterator[EvalItem | SkippedItem]:
    for sample in reader:
        if not sample.queries:
            yield SkippedItem(sample.id, "the sample has no text query")
            continue
        if cfg.twins == "oracle":
            twin = _Once(
                lambda sample=sample: oracle_twin_from_sample(sample, stride=cfg.stride, max_frames=cfg.max_frames)
            )
            context = None
        else:
            twin = _Once(
                lambda sample=sample: (
                    builder.build(_perception_source(sample), name=str(sample.id), fps=24.0)
                    if sample.is_video
                    else builder.build(_perception_source(sample), name=str(sample.id))
                )
            )
            indices = _frame_indices(sample.num_frames, cfg.stride, cfg.max_frames) if sample.is_video else [0]

            def context(sample=sample, indices=indices):
                from fastreasonseg.reasoning.tools import ToolContext

                return ToolContext(frames=_LazyFrames(sample, indices), perception=builder.perception)

        gt_ids = [1] if cfg.twins == "oracle" else None
        media = "video" if sample.is_video else "image"
        groups = {k: v for k, v in sample.groups.items() if k != "dataset"} | {"media": media}
        for q, text in enumerate(sample.queries):
            yield EvalItem(
                key=f"{sample.id}#{q}",
                sample_id=str(sample.id),
                query_index=q,
                query=text,
                dataset=sample.dataset,
                split=sample.split,
                media=media,
                groups=groups,
                gt_ids=gt_ids,
                gt_mask=sample.mask_at,
                twin=twin,
                context=context,
            )
    for s in reader.skipped:
        yield SkippedItem(str(s.id), s.reason)


# ---------------------------------------------------------------------------------------------------------- scoring


def score_item(item: EvalItem, twin: DigitalTwin, pred: Prediction) -> dict[str, Any]:
    """Masks of the predicted ids on the (refined) twin vs the ground truth, over the twin's frames."""
    ptwin = pred.twin if pred.twin is not None else twin
    known = {fr.index for fr in ptwin.frames}
    video = VideoScore()
    inter_t = union_t = 0
    ious: list[float] = []
    for fr in twin.frames:
        gt = np.asarray(item.gt_mask(fr.index))
        if fr.index in known and pred.ids:
            pm = ptwin.mask(fr.index, pred.ids)
        else:
            pm = np.zeros(gt.shape, dtype=bool)
        if pm.shape != gt.shape:
            raise InputError(f"frame {fr.index}: predicted mask {pm.shape} vs ground truth {gt.shape}")
        i, u = intersection_union(pm, gt)
        inter_t += int(i)
        union_t += int(u)
        ious.append(1.0 if u == 0 else int(i) / int(u))
        if item.media == "video":
            fg = _gt_foreground(gt)
            void = None if gt.dtype == bool else (gt == 255)
            video.add_frame(item.key, pm, fg, void=void if void is not None and void.any() else None)
    out: dict[str, Any] = {
        "iou": float(np.mean(ious)) if ious else 1.0,
        "intersection": inter_t,
        "union": union_t,
        "frames": len(ious),
    }
    if item.media == "video":
        j, f, jf = video.expression(item.key)
        pj, pf = video.per_frame(item.key)
        out |= {
            "J": j,
            "F": f,
            "J&F": jf,
            "per_frame": {
                "index": [fr.index for fr in twin.frames],
                "J": [round(float(x), 6) for x in pj],
                "F": [round(float(x), 6) for x in pf],
            },
        }
    return out


# ---------------------------------------------------------------------------------------------------------- records


def _prepare_predictions(path: Path) -> None:
    """Drop a truncated last line (a run killed mid-write) so appends stay valid JSONL."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        fh.truncate(cut)


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


def _record(item: EvalItem, pred: Prediction, scores: dict, perception: dict | None) -> dict[str, Any]:
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


# ---------------------------------------------------------------------------------------------------------- summary


def _stats(values: list[float]) -> dict[str, float] | None:
    v = [float(x) for x in values if x is not None]
    if not v:
        return None
    return {"mean": round(statistics.fmean(v), 3), "median": round(statistics.median(v), 3)}


def _peak_memory() -> dict[str, Any]:
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mb = rss_kb / (1024 * 1024) if sys.platform == "darwin" else rss_kb / 1024  # bytes on macOS, KiB on Linux
    out: dict[str, Any] = {"peak_rss_mb": round(mb, 1)}
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                out["cuda_max_memory_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        except Exception:
            pass
    return out


def _efficiency(records: list[dict], models: dict[str, Any]) -> dict[str, Any]:
    t = lambda k: [r["timings"].get(k) for r in records if r.get("timings") and k in r["timings"]]  # noqa: E731
    eff: dict[str, Any] = {"parameters": models.get("parameters", {}), **_peak_memory()}
    eff["ms_per_query"] = {k: s for k in ("predict", "prefill", "decode", "tools") if (s := _stats(t(k)))}
    built = [r["perception"] for r in records if r.get("perception")]
    per_stage: dict[str, list[float]] = defaultdict(list)
    perception_ms = perception_frames = 0.0
    for p in built:
        perception_ms += float(p.get("frames_ms", p.get("total_ms", 0.0)) or 0.0)
        perception_frames += int(p.get("frames", 0) or 0)
        for stage, v in (p.get("per_frame_ms") or {}).items():
            per_stage[stage].append(float(v))
    if built:
        eff["perception_ms_per_frame"] = {k: round(statistics.fmean(v), 3) for k, v in per_stage.items()}
        eff["perception_twins"] = len(built)
    # frames of each sample counted once (its first query); predictor time over every query
    seen: set[str] = set()
    frames = 0
    for r in records:
        if r["sample_id"] not in seen:
            seen.add(r["sample_id"])
            frames += int(r.get("frames", 1))
    predict_s = sum(float(x or 0.0) for x in t("predict")) / 1000
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


def _group_table(records: list[dict]) -> dict[str, Any]:
    acc = IoUAccumulator()
    vid = VideoScore()
    for r in records:
        groups = {k: v for k, v in (r.get("groups") or {}).items() if v is not None}
        acc.add_counts(int(r["intersection"]), int(r["union"]), groups=groups, id=r["key"], iou=float(r["iou"]))
        pf = r.get("per_frame")
        if r.get("media") == "video" and pf:
            for j, f in zip(pf["J"], pf["F"], strict=True):
                vid.add_frame_scores(r["key"], j, f, groups=groups)
    overall = acc.result().as_dict()
    v = vid.result()
    overall |= {"J": v["J"], "F": v["F"], "J&F": v["J&F"], "videos": v["count"]}
    groups_out: dict[str, dict[str, dict]] = {}
    vgroups = vid.by_group()
    for key, vals in acc.by_group().items():
        groups_out[key] = {}
        for val, res in vals.items():
            d = res.as_dict()
            vv = vgroups.get(key, {}).get(val)
            d |= {
                "J": vv["J"] if vv else None,
                "F": vv["F"] if vv else None,
                "J&F": vv["J&F"] if vv else None,
                "videos": vv["count"] if vv else 0,
            }
            groups_out[key][val] = d
    # format / no-target rates per group
    rates: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        for k, val in (r.get("groups") or {}).items():
            if val is not None:
                rates[k][str(val)].append(r)
    for key, vals in rates.items():
        for val, rs in vals.items():
            if key in groups_out and val in groups_out[key]:
                groups_out[key][val] |= _rates(rs)
    overall |= _rates(records)
    return {"overall": overall, "groups": groups_out}


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


def summarize(
    records: Mapping[str, dict] | list[dict],
    *,
    config: EvalConfig | None = None,
    models: dict[str, Any] | None = None,
    counts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON summary of prediction records (as written to ``predictions.jsonl``)."""
    recs = list(records.values()) if isinstance(records, Mapping) else list(records)
    table = _group_table(recs)
    out: dict[str, Any] = {
        "config": asdict(config) if config is not None else None,
        "models": {k: v for k, v in (models or {}).items() if k != "parameters"},
        "counts": {"evaluated": len(recs), **(counts or {})},
        **table,
        "efficiency": _efficiency(recs, models or {}),
    }
    return json_safe(out)


# ---------------------------------------------------------------------------------------------------------- runner


def _iter_items(cfg: EvalConfig, builder: Any) -> tuple[Iterator[EvalItem | SkippedItem], int | None]:
    """(items, estimated total) of the configured split; raises InputError for a bad path or layout."""
    if cfg.dataset.lower() == "synthetic":
        path = _synthetic_path(cfg.root, cfg.split)
        with open(path, "rb") as fh:
            total = sum(1 for line in fh if line.strip())
        return _synthetic_items(cfg), total
    from fastreasonseg.data.base import open_dataset

    reader = open_dataset(cfg.dataset, cfg.root, cfg.split, **cfg.dataset_options)
    return _reader_items(cfg, builder, reader), None


def _perception_meta(twin: DigitalTwin) -> dict[str, Any] | None:
    t = twin.meta.get("timings_ms") if isinstance(twin.meta, dict) else None
    if not isinstance(t, dict):
        return None
    return {
        "total_ms": t.get("total"),
        "frames_ms": t.get("frames"),
        "load_ms": t.get("load"),
        "frames": twin.meta.get("num_processed_frames", len(twin.frames)),
        "per_frame_ms": {k: v for k, v in (t.get("per_frame") or {}).items()},
    }


def _check_run_file(out: Path, cfg: EvalConfig) -> None:
    run_file = out / RUN_FILE
    if run_file.is_file():
        try:
            old = json.loads(run_file.read_text(encoding="utf-8")).get("identity", {})
        except (OSError, json.JSONDecodeError, AttributeError):
            old = {}
        new = cfg.identity()
        diff = [k for k in _IDENTITY if k in old and old[k] != new[k]]
        if diff:
            what = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in diff)
            raise InputError(
                f"{out} holds predictions of a different run ({what}); use another output folder to keep both"
            )


def run_eval(
    dataset: str | EvalConfig,
    root: str | os.PathLike | None = None,
    split: str = "test",
    output_dir: str | os.PathLike = "eval-out",
    *,
    predictor: str | Predictor = "oracle",
    reasoner: str | None = None,
    adapter: str | None = None,
    twins: str = "oracle",
    perception: Any = None,
    reasoner_config: Any = None,
    stride: int = 1,
    max_frames: int | None = None,
    limit: int | None = None,
    embedding_threshold: float = EMBEDDING_THRESHOLD,
    dataset_options: dict[str, Any] | None = None,
    progress: Callable[[str, int | None], None] | None = None,
) -> dict[str, Any]:
    """Evaluate a predictor on a split; writes ``predictions.jsonl``, ``summary.json``, ``run.json``.

    ``dataset`` is a name (``synthetic``, ``reasonseg``, ``davis``, ...) or a full :class:`EvalConfig`;
    ``predictor`` a name (``reasoner``, ``embedding``, ``oracle``) or a :class:`~.predictors.Predictor` object;
    ``perception`` a :class:`~fastreasonseg.config.PerceptionConfig` or a ``TwinBuilder`` for ``twins="perception"``.
    ``progress(event, total)`` is called with ``"start"`` (total items or ``None``) and then with ``"done"``,
    ``"resumed"`` or ``"skipped"`` per item. Returns the summary (also written to ``summary.json``).
    """
    if isinstance(dataset, EvalConfig):
        cfg = dataset
    else:
        if root is None:
            raise InputError("run_eval needs the dataset root")
        cfg = EvalConfig(
            dataset=dataset,
            root=str(root),
            split=split,
            predictor=predictor if isinstance(predictor, str) else getattr(predictor, "name", "custom"),
            reasoner=reasoner,
            adapter=adapter,
            twins=twins,
            stride=stride,
            max_frames=max_frames,
            limit=limit,
            embedding_threshold=embedding_threshold,
            dataset_options=dict(dataset_options or {}),
        )
    if isinstance(predictor, str) and cfg.predictor.strip().lower() not in PREDICTORS:
        raise InputError(f"unknown predictor {cfg.predictor!r}; choose one of {', '.join(PREDICTORS)}")
    if cfg.twins not in TWIN_SOURCES:
        raise InputError(f"twins must be one of {', '.join(TWIN_SOURCES)}, got {cfg.twins!r}")
    if cfg.stride < 1:
        raise InputError(f"stride must be >= 1, got {cfg.stride}")
    if cfg.limit is not None and cfg.limit < 0:
        raise InputError(f"limit must be >= 0, got {cfg.limit}")
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output path exists and is not a folder: {out}")

    builder = None
    if cfg.twins == "perception":
        from fastreasonseg.config import PerceptionConfig
        from fastreasonseg.perception.builder import TwinBuilder

        if isinstance(perception, TwinBuilder):
            builder = perception
        else:
            pc = perception if isinstance(perception, PerceptionConfig) else PerceptionConfig()
            builder = TwinBuilder(replace(pc, stride=cfg.stride, max_frames=cfg.max_frames))

    items, total = _iter_items(cfg, builder)  # bad path / layout fails here, before any model loads
    if cfg.limit is not None:
        total = min(total, cfg.limit) if total is not None else cfg.limit
    out.mkdir(parents=True, exist_ok=True)
    _check_run_file(out, cfg)
    pred_path = out / PREDICTIONS_FILE
    _prepare_predictions(pred_path)
    records, bad_lines = load_records(pred_path)
    (out / RUN_FILE).write_text(
        json.dumps({"identity": cfg.identity(), "config": asdict(cfg)}, indent=2) + "\n", encoding="utf-8"
    )

    pred = (
        predictor
        if isinstance(predictor, Predictor)
        else make_predictor(
            cfg.predictor,
            reasoner=cfg.reasoner,
            adapter=cfg.adapter,
            reasoner_config=reasoner_config,
            embedding_threshold=cfg.embedding_threshold,
        )
    )
    if progress:
        progress("start", total)
    counts = {"evaluated_now": 0, "resumed": 0, "skipped": 0}
    skipped: list[dict[str, str]] = []
    in_split: list[str] = []
    seen_items = 0
    t_run = time.perf_counter()
    with open(pred_path, "a", encoding="utf-8") as fh:
        for item in items:
            if isinstance(item, SkippedItem):
                counts["skipped"] += 1
                skipped.append({"id": item.id, "reason": item.reason})
                if progress:
                    progress("skipped", total)
                continue
            if cfg.limit is not None and seen_items >= cfg.limit:
                break
            seen_items += 1
            in_split.append(item.key)
            if item.key in records:
                counts["resumed"] += 1
                if progress:
                    progress("resumed", total)
                continue
            try:
                twin_fn = item.twin
                twin = twin_fn()
                perception = None
                if isinstance(twin_fn, _Once) and cfg.twins == "perception" and not twin_fn.consumed:
                    twin_fn.consumed = True
                    perception = _perception_meta(twin)
                ctx = item.context() if item.context is not None else None
                p = pred.predict(twin, item.query, gt_ids=item.gt_ids, gt_mask=item.gt_mask, context=ctx)
                scores = score_item(item, twin, p)
                rec = _record(item, p, scores, perception)
            except (FastReasonSegError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
                counts["skipped"] += 1
                skipped.append({"id": item.key, "reason": f"{type(exc).__name__}: {str(exc)[:300]}"})
                if progress:
                    progress("skipped", total)
                continue
            fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
            fh.flush()
            records[item.key] = rec
            counts["evaluated_now"] += 1
            if progress:
                progress("done", total)
    selected = [records[k] for k in in_split if k in records]
    counts["skipped_items"] = skipped
    counts["unreadable_prediction_lines"] = bad_lines
    counts["wall_s"] = round(time.perf_counter() - t_run, 3)
    models = pred.describe()
    params = dict(models.get("parameters", {}))
    if builder is not None:
        perc = builder.perception
        for role, attr in (("segmenter", "_segmenter"), ("tracker", "_tracker"), ("labeller", "_labeller")):
            params[role] = count_parameters(getattr(perc, attr, None))
        params["depth"] = count_parameters(getattr(perc, "_depth", None))
        models["perception"] = perc.model_ids()
    models["parameters"] = {k: v for k, v in params.items() if v is not None}
    summary = summarize(selected, config=cfg, models=models, counts=counts)
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


# ---------------------------------------------------------------------------------------------------------- tables

_TABLE_GROUPS = ("split", "category", "level", "media", "query", "novelty")


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{100 * v:.1f}" if pct else f"{v:.3f}"


def print_summary(summary: dict[str, Any], console: Any = None) -> None:
    """Rich tables: overall and per split, category, level, media, query length, novelty; then efficiency."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    rows = [("overall", "all", summary["overall"])]
    for key in _TABLE_GROUPS:
        for val, d in summary.get("groups", {}).get(key, {}).items():
            rows.append((key, val, d))
    has_video = any((d.get("videos") or 0) > 0 for _, _, d in rows)
    cfg = summary.get("config") or {}
    title = (
        f"{cfg.get('dataset', '?')} / {cfg.get('split', '?')} - {cfg.get('predictor', '?')} on {cfg.get('twins')} twins"
    )
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False)
    for col in ("group", "value", "n", "gIoU", "cIoU"):
        table.add_column(col, justify="left" if col in ("group", "value") else "right")
    if has_video:
        for col in ("videos", "J", "F", "J&F"):
            table.add_column(col, justify="right")
    for col in ("format%", "none%", "exact%"):
        table.add_column(col, justify="right")
    last = None
    for key, val, d in rows:
        first = key != last
        if first and last is not None:
            table.add_section()
        last = key
        row = [key if first else "", str(val), str(d.get("count", 0))]
        row += [_fmt(d.get("gIoU")), _fmt(d.get("cIoU"))]
        if has_video:
            row += [str(d.get("videos") or 0), _fmt(d.get("J")), _fmt(d.get("F")), _fmt(d.get("J&F"))]
        row += [_fmt(d.get("format_rate"), True), _fmt(d.get("no_target_rate"), True), _fmt(d.get("exact_ids"), True)]
        table.add_row(*row)
    if not con.is_terminal and con.width < 132:  # files and pipes: don't squash the columns
        con = Console(file=con.file, width=132, soft_wrap=True)
    con.print(table)
    c = summary.get("counts", {})
    con.print(
        f"evaluated {c.get('evaluated', 0)} (now {c.get('evaluated_now', 0)}, resumed {c.get('resumed', 0)}), "
        f"skipped {c.get('skipped', 0)}",
        highlight=False,
    )
    for s in (c.get("skipped_items") or [])[:5]:
        con.print(f"  skipped {s['id']}: {s['reason']}", highlight=False, markup=False)
    eff = summary.get("efficiency", {})
    et = Table(title="efficiency", box=box.SIMPLE_HEAD, show_edge=False)
    et.add_column("measure")
    et.add_column("value", justify="right")
    for role, n in (eff.get("parameters") or {}).items():
        et.add_row(f"parameters: {role}", f"{n / 1e6:.1f} M")
    et.add_row("peak RSS", f"{eff.get('peak_rss_mb', 0):.0f} MB")
    if "cuda_max_memory_allocated_mb" in eff:
        et.add_row("CUDA max allocated", f"{eff['cuda_max_memory_allocated_mb']:.0f} MB")
    for k, s in (eff.get("ms_per_query") or {}).items():
        et.add_row(f"ms/query: {k}", f"{s['mean']:.1f} (median {s['median']:.1f})")
    for k, v in (eff.get("perception_ms_per_frame") or {}).items():
        et.add_row(f"perception ms/frame: {k}", f"{v:.1f}")
    for k, v in (eff.get("frames_per_second") or {}).items():
        et.add_row(f"frames/s: {k}", f"{v:.2f}")
    con.print(et)
