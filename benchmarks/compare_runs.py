"""Benchmark report: several eval runs of the same dataset side by side (``fastreasonseg eval run`` output folders),
with every group's gIoU, the exact-id rate, median generated tokens and ask time, and the paired gain of each run
over the first one (seeded paired bootstrap, 95 % interval), as the issue targets are stated.

    python benchmarks/compare_runs.py --run embedding=runs/dev_embed --run student=runs/dev_student \
        --json benchmarks/results/devset.json

Prints a table and writes JSON. The runs must hold predictions for the same items (same dataset and split).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fastreasonseg.eval.metrics import paired_bootstrap  # noqa: E402

GROUPS = ("category", "level", "targets", "media")


def load(folder: Path) -> dict[str, dict]:
    rows = {}
    for line in (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            rows[r["key"]] = r
    return rows


def summary(rows: list[dict]) -> dict:
    ious = [r["iou"] for r in rows]
    inter = sum(r.get("intersection", 0) for r in rows)
    union = sum(r.get("union", 0) for r in rows)
    toks = [r.get("tokens", {}).get("completion", 0) for r in rows if r.get("tokens")]
    ms = [r.get("timings", {}).get("predict", 0.0) for r in rows]
    out = {
        "n": len(rows),
        "gIoU": round(statistics.fmean(ious), 4) if ious else None,
        "cIoU": round(inter / union, 4) if union else None,
        "exact": round(sum(sorted(r["pred_ids"]) == sorted(r["gt_ids"]) for r in rows) / len(rows), 4),
        "format_rate": round(sum(bool(r.get("format_ok")) for r in rows) / len(rows), 4),
    }
    if toks:
        out["median_generated_tokens"] = statistics.median(toks)
    if ms:
        out["median_ms"] = round(statistics.median(ms), 1)
    for g in GROUPS:
        values = sorted({r["groups"].get(g) for r in rows if r["groups"].get(g) is not None})
        out[g] = {v: round(statistics.fmean(r["iou"] for r in rows if r["groups"].get(g) == v), 4) for v in values}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, help="NAME=FOLDER of an eval run (first = reference)")
    ap.add_argument("--json", type=Path, help="write the report here")
    args = ap.parse_args()
    runs = {}
    for spec in args.run:
        name, _, folder = spec.partition("=")
        runs[name] = load(Path(folder))
    names = list(runs)
    keys = sorted(set.intersection(*(set(r) for r in runs.values())))
    if not keys:
        sys.exit("the runs share no items")
    report: dict = {"items": len(keys), "runs": {}}
    ref = [runs[names[0]][k]["iou"] for k in keys]
    for name in names:
        rows = [runs[name][k] for k in keys]
        s = summary(rows)
        if name != names[0]:
            d = paired_bootstrap(ref, [r["iou"] for r in rows])
            s[f"gain_over_{names[0]}"] = {"mean": round(d.mean, 4), "low": round(d.low, 4), "high": round(d.high, 4)}
        report["runs"][name] = s
    cols = ["gIoU", "cIoU", "exact"]
    groups = [(g, v) for g in GROUPS for v in report["runs"][names[0]][g]]
    head = f"{'run':<22}" + "".join(f"{c:>8}" for c in cols) + "".join(f"{v[:8]:>9}" for _, v in groups)
    print(f"{len(keys)} items\n{head}\n" + "-" * len(head))
    for name in names:
        s = report["runs"][name]
        line = f"{name:<22}" + "".join(f"{s[c] if s[c] is not None else '-':>8}" for c in cols)
        line += "".join(f"{s[g].get(v, '-'):>9}" for g, v in groups)
        gain = s.get(f"gain_over_{names[0]}")
        if gain:
            line += f"   gain {gain['mean']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}]"
        extra = {k: s[k] for k in ("median_generated_tokens", "median_ms", "format_rate") if k in s}
        print(line + f"   {extra}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
