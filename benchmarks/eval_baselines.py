"""Benchmark: what each predictor scores on the synthetic TEST split, so every reasoner number has context.

* ``reasoner`` - zero-shot base SmolLM2-135M-Instruct (Q4_1 GGUF, llama.cpp, no adapter, GBNF-constrained decoding);
* ``embedding`` - the non-LLM baseline: query-to-label all-MiniLM-L6-v2 similarity (no reasoning at all);
* ``oracle`` - the ground-truth ids (the upper bound given the twin: 1.0 on synthetic twins).

The split is generated into a temporary folder with the data CLI's defaults (seed 0, 300 test samples; the test
split does not depend on the train/val sizes), or read with ``--data``. Every predictor runs through
:func:`fastreasonseg.eval.runner.run_eval` into ``--work`` (resumable: rerun to continue). The reasoner is slow on a
shared 2-core CPU, so it runs on the first ``--reasoner-limit`` samples; the embedding and oracle numbers are given
both on the whole split and on that same subset. Writes ``benchmarks/results/eval_baselines.json``.

    python benchmarks/eval_baselines.py --reasoner-limit 100

``--devset DIR`` measures transfer instead: every query of a devset folder (``../shared/devset``: hand-written
questions over twins the generator never made) with the oracle, the embedding baseline and each ``--reasoner``
(default: the shipped ``student`` and the zero-shot ``base``), reporting gIoU, cIoU, exact id-set accuracy and the
breakdown by category, level and targets (none / single / multi). Work folders are ``--work/devset_<name>``
(``fastreasonseg eval run -o`` folders of the same runs resume into them). Writes
``benchmarks/results/eval_baselines_devset.json``.

    python benchmarks/eval_baselines.py --devset ../shared/devset
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fastreasonseg.data.synthetic import write_dataset  # noqa: E402
from fastreasonseg.eval.runner import (  # noqa: E402
    PREDICTIONS_FILE,
    EvalConfig,
    load_records,
    print_summary,
    run_eval,
    summarize,
)

SEED = 0
TEST_SIZE = 300  # `fastreasonseg data synthetic --help`: --seed 0, --test 300


def _digest(path: Path) -> str:
    """Hash of the (uid, query, ids) of every sample: identical splits have identical digests."""
    h = hashlib.sha256()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            h.update(json.dumps([d["uid"], d["query"], d["ids"]]).encode())
    return h.hexdigest()[:16]


def _table(summary: dict) -> dict:
    def pick(d: dict) -> dict:
        keys = ("count", "gIoU", "cIoU", "videos", "J", "F", "J&F", "format_rate", "no_target_rate", "exact_ids")
        return {k: (round(d[k], 4) if isinstance(d.get(k), float) else d.get(k)) for k in keys}

    g = summary["groups"]
    return {
        "overall": pick(summary["overall"]),
        "category": {k: pick(v) for k, v in g.get("category", {}).items()},
        "level": {k: pick(v) for k, v in g.get("level", {}).items()},
        "media": {k: pick(v) for k, v in g.get("media", {}).items()},
        "novelty": {k: pick(v) for k, v in g.get("novelty", {}).items()},
        "targets": {k: pick(v) for k, v in g.get("targets", {}).items()},
    }


def _machine() -> dict:
    return {"platform": platform.platform(), "cpus": os.cpu_count()}


def devset(root: Path, work: Path, reasoners: list[str], out: Path) -> None:
    """Every predictor on every query of a devset folder (see the module docstring)."""
    runs = [("oracle", "oracle", None), ("embedding", "embedding", None)] + [(r, "reasoner", r) for r in reasoners]
    results: dict = {"benchmark": "eval_baselines_devset", "root": str(root), "machine": _machine(), "predictors": {}}
    for name, predictor, spec in runs:
        t0 = time.perf_counter()
        s = run_eval(EvalConfig("devset", root, predictor=predictor, reasoner=spec), work / f"devset_{name}")
        print_summary(s)
        results["predictors"][name] = {
            "spec": spec,
            "queries": s["counts"]["evaluated"],
            "skipped": s["counts"]["skipped"],
            "wall_s_this_call": round(time.perf_counter() - t0, 1),
            "all": _table(s),
            "efficiency": s["efficiency"],
        }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\n{root}: gIoU / cIoU / exact ids")
    cols = [("all", None, None)] + [
        (v, k, v)
        for k in ("category", "targets")
        for v in ("semantic", "spatial", "temporal", "single", "multi", "none")
        if v in results["predictors"]["oracle"]["all"][k]
    ]
    print(f"{'predictor':<12}" + "".join(f"{c[0]:>22}" for c in cols))
    for name, entry in results["predictors"].items():
        row = f"{name:<12}"
        for _, kind, val in cols:
            d = entry["all"]["overall"] if val is None else entry["all"][kind][val]
            row += f"{d['gIoU']:>8.3f}/{d['cIoU']:.3f}/{d['exact_ids']:.3f}"
        print(row)
    print(f"\nwrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="Folder with test.jsonl (default: generate seed 0 into a temp dir).")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fastreasonseg-eval-baselines")
    ap.add_argument(
        "--reasoner",
        action="append",
        help="Reasoner spec (repeatable; default: the base SmolLM2 GGUF, with --devset: student and base).",
    )
    ap.add_argument("--devset", type=Path, help="Measure on this devset folder instead of the synthetic test split.")
    ap.add_argument("--reasoner-limit", type=int, default=100, help="Samples for the reasoner (0 = skip it).")
    ap.add_argument("--out", type=Path, help="Results JSON (default: benchmarks/results/eval_baselines[_devset].json).")
    args = ap.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    results_dir = ROOT / "benchmarks" / "results"
    if args.devset is not None:
        devset(
            args.devset,
            args.work,
            args.reasoner or ["student", "base"],
            args.out or results_dir / "eval_baselines_devset.json",
        )
        return
    args.out = args.out or results_dir / "eval_baselines.json"
    args.reasoner = (args.reasoner or ["llamacpp"])[-1]
    data = args.data
    if data is None:
        data = args.work / "synthetic"
        if not (data / "test.jsonl").is_file():
            write_dataset(data, seed=SEED, train=0, val=0, test=TEST_SIZE, force=True)
    digest = _digest(data / "test.jsonl")
    ref = Path("/work/runs/synthetic/test.jsonl")
    same_as_training_run = _digest(ref) == digest if ref.is_file() else None

    results: dict = {
        "benchmark": "eval_baselines",
        "split": {
            "dataset": "synthetic",
            "split": "test",
            "seed": SEED,
            "samples": len((data / "test.jsonl").read_text(encoding="utf-8").splitlines()),
            "digest": digest,
            "identical_to_/work/runs/synthetic/test.jsonl": same_as_training_run,
        },
        "split_note": (
            "generated by this checkout's generator (seed 0, test 300); it differs from "
            "/work/runs/synthetic/test.jsonl, "
            "which an older generator wrote with the same seed"
            if same_as_training_run is False
            else None
        ),
        "machine": _machine(),
        "predictors": {},
    }
    runs = [("oracle", None), ("embedding", None)]
    if args.reasoner_limit > 0:
        runs.append(("reasoner", args.reasoner_limit))
    summaries = {}
    for name, limit in runs:
        t0 = time.perf_counter()
        reasoner = args.reasoner if name == "reasoner" else None
        cfg = EvalConfig("synthetic", data, "test", predictor=name, reasoner=reasoner, limit=limit)
        s = run_eval(cfg, args.work / name)
        summaries[name] = s
        print_summary(s)
        entry = {"samples": s["counts"]["evaluated"], "wall_s": round(time.perf_counter() - t0, 1)}
        if name == "reasoner":
            entry["spec"] = args.reasoner
            entry["note"] = (
                f"zero-shot base model without adapter, limited to the first {limit} test samples (CPU time); "
                f"compare with the embedding/oracle rows 'on_reasoner_subset'"
            )
        entry["all"] = _table(s)
        entry["efficiency"] = s["efficiency"]
        results["predictors"][name] = entry
    if "reasoner" in summaries:
        n = summaries["reasoner"]["counts"]["evaluated"]
        keys = [json.loads(x)["key"] for x in (args.work / "reasoner" / PREDICTIONS_FILE).read_text().splitlines()]
        subset = set(keys)
        for name in ("oracle", "embedding"):
            recs, _ = load_records(args.work / name / PREDICTIONS_FILE)
            sub = [r for k, r in recs.items() if k in subset]
            results["predictors"][name]["on_reasoner_subset"] = _table(summarize(sub))
        results["reasoner_subset_size"] = n
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    # the comparison table
    print(f"\nsynthetic test (seed {SEED}), gIoU / cIoU:")
    cols = [("all", "overall", None)]
    for kind in ("category", "level"):
        for val in sorted(results["predictors"]["oracle"]["all"][kind]):
            cols.append((val, kind, val))
    header = f"{'predictor':<24}" + "".join(f"{c[0]:>16}" for c in cols)
    print(header)
    for name, entry in results["predictors"].items():
        for label, table in (("", entry["all"]), (" (subset)", entry.get("on_reasoner_subset"))):
            if table is None:
                continue
            row = f"{name + label:<24}"
            for _, kind, val in cols:
                d = table["overall"] if val is None else table[kind].get(val)
                row += f"{d['gIoU']:>8.3f}/{d['cIoU']:<7.3f}" if d else f"{'-':>16}"
            print(row)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
