"""Format-failure rate of the zero-shot reasoner with and without grammar-constrained decoding.

    python benchmarks/format_rate.py --n 30

Runs the real executor (SmolLM2-135M on llama.cpp by default) on the first N samples of the synthetic test split
(seed 0), once constrained (GBNF, the default) and once unconstrained, and counts rollouts that fail the format
check or give no valid answer. Prints a table and writes benchmarks/results/format_rate.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fastreasonseg.data.synthetic.dataset import iter_split, make_holdout
from fastreasonseg.knowledge import load_knowledge
from fastreasonseg.reasoning import Reasoner, ReasonerConfig
from fastreasonseg.reasoning.runtimes import DEFAULT_REASONER, load_runtime

OUT = Path(__file__).resolve().parent / "results" / "format_rate.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30, help="samples of the synthetic test split")
    ap.add_argument("--reasoner", default=DEFAULT_REASONER)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    kb = load_knowledge()
    samples = list(iter_split("test", args.n, 0, make_holdout(0, kb), kb=kb))
    runtime = load_runtime(args.reasoner)
    rows = []
    for constrained in (True, False):
        reasoner = Reasoner(runtime, ReasonerConfig(constrained=constrained))
        fails = no_answer = 0
        ms = []
        t0 = time.perf_counter()
        for s in samples:
            r = reasoner.ask(s.twin, s.query)
            fails += not r.format_ok
            no_answer += r.no_target and bool(r.diagnostic)
            ms.append(r.total_ms)
        rows.append(
            {
                "constrained": constrained,
                "samples": len(samples),
                "format_failure_rate": fails / len(samples),
                "no_valid_answer_rate": no_answer / len(samples),
                "median_ms_per_query": statistics.median(ms),
                "wall_s": time.perf_counter() - t0,
            }
        )
    table = Table(title=f"format failures, {args.reasoner}, synthetic test[:{args.n}]")
    for col in ("decoding", "format failure", "no valid answer", "median ms/query"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            "constrained (GBNF)" if r["constrained"] else "free",
            f"{r['format_failure_rate']:.0%}",
            f"{r['no_valid_answer_rate']:.0%}",
            f"{r['median_ms_per_query']:.0f}",
        )
    Console().print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"reasoner": args.reasoner, "machine": platform.platform(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
