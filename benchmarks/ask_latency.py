"""Benchmark: how long a question takes on one CPU thread, for the current reasoner and (optionally) an older source
tree's, measured in the same run, alternating, so the ratio holds on a loaded machine.

* **fresh**: a new process loads the default reasoner and asks one question about a twin it has never seen (the
  first ask of a process: model load excluded, prompt-state cache on disk allowed, as a user's second run sees it);
* **cached**: the same process asks more questions about that twin (the twin's prefix stays evaluated).

Each measurement runs in its own subprocess (``--src`` puts another checkout's ``src`` first on ``sys.path``).
Prints a table and writes JSON::

    python benchmarks/ask_latency.py --twin ../shared/devset/twins/laundry_room.json \
        --before-src /path/to/old/checkout/src --rounds 5 --json benchmarks/results/ask_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "what could I carry the dirty clothes in?",
    "the thing nearest the camera",
    "what is hanging above the cat?",
    "the biggest object",
    "is there a vacuum cleaner?",
    "the bottle on the left",
]

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from fastreasonseg.reasoning.executor import Reasoner
from fastreasonseg.reasoning.runtimes import load_runtime
from fastreasonseg.twin.io import load_twin
spec, twin_path, questions = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
rt = load_runtime(spec)
twin = load_twin(twin_path)
reasoner = Reasoner(rt)
t1 = time.perf_counter()
out = []
for q in questions:
    t = time.perf_counter()
    r = reasoner.ask(twin, q)
    out.append({"q": q, "ms": (time.perf_counter() - t) * 1000, "tokens": r.completion_tokens, "ids": r.ids,
                "prompt": r.prompt_tokens, "cached": r.cached_tokens})
print(json.dumps({"load_ms": (t1 - t0) * 1000, "asks": out}))
"""


def run_child(src: Path, spec: str, twin: str, questions: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    p = subprocess.run(
        [sys.executable, "-c", CHILD, spec, twin, json.dumps(questions)], env=env, capture_output=True, text=True
    )
    if p.returncode != 0:
        raise SystemExit(f"child failed ({src}):\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--twin", required=True)
    ap.add_argument("--spec", default="student?threads=1", help="reasoner spec (both trees)")
    ap.add_argument("--before-src", type=Path, help="another checkout's src folder to compare with")
    ap.add_argument(
        "--before-spec",
        help="reasoner spec for the other tree (default: --spec; an older tree may not know "
        "the 'student' alias: pass llamacpp?lora=ITS/assets/student/adapter.gguf&threads=1)",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    trees = {"current": ROOT / "src"}
    if args.before_src:
        trees["before"] = args.before_src
    res: dict[str, dict[str, list[float]]] = {k: {"fresh": [], "cached": [], "tokens": []} for k in trees}
    for _ in range(args.rounds):
        for name, src in trees.items():  # alternate: drift on a shared machine hits both
            spec = args.before_spec if name == "before" and args.before_spec else args.spec
            d = run_child(src, spec, args.twin, QUESTIONS)
            res[name]["fresh"].append(d["asks"][0]["ms"])
            res[name]["cached"] += [a["ms"] for a in d["asks"][1:]]
            res[name]["tokens"] += [a["tokens"] for a in d["asks"]]
    report = {
        "machine": f"{platform.platform()}, {os.cpu_count()} cpus",
        "load_average": os.getloadavg(),
        "spec": args.spec,
        "before_spec": args.before_spec or args.spec,
        "twin": args.twin,
        "rounds": args.rounds,
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "trees": {k: str(v) for k, v in trees.items()},
    }
    print(f"{'tree':<10}{'fresh first ask ms':>20}{'cached ask ms':>16}{'tokens':>8}")
    for name, r in res.items():
        row = {
            "fresh_median_ms": round(statistics.median(r["fresh"]), 1),
            "cached_median_ms": round(statistics.median(r["cached"]), 1),
            "median_generated_tokens": statistics.median(r["tokens"]),
        }
        report[name] = row
        print(f"{name:<10}{row['fresh_median_ms']:>20}{row['cached_median_ms']:>16}{row['median_generated_tokens']:>8}")
    if "before" in res:
        for k in ("fresh_median_ms", "cached_median_ms"):
            report[f"ratio_{k}"] = round(report["before"][k] / report["current"][k], 2)
        print(f"before / current: fresh {report['ratio_fresh_median_ms']}x, cached {report['ratio_cached_median_ms']}x")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
