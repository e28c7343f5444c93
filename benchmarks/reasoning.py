"""Reasoner latency: llama.cpp vs transformers on the same model (SmolLM2-135M-Instruct Q4_1 GGUF).

For synthetic twins of 5, 20 and 100 instances (the real prompt from ``fastreasonseg.reasoning.prompt``):
  * cold   - the first question on a twin (nothing cached),
  * follow - a second question on the same twin (the system prompt + twin view are cached),
  * constrained - the follow-up again with a GBNF grammar (llama.cpp grammar sampler / xgrammar in transformers),
each split into prefill (time to first token) and decode, with token counts and the peak RSS of the process.
Every runtime runs in its own subprocess so peak RSS is its own.

    python benchmarks/reasoning.py [--sizes 5 20 100] [--max-tokens 32] [--repeats 3] [--runtimes llamacpp transformers]

Writes benchmarks/results/reasoning.json and prints a table. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "reasoning.json"
LABELS = ["mug", "chair", "table", "lamp", "book", "plant", "bottle", "laptop", "cup", "sofa", "dog", "bag"]
QUESTIONS = ["the mug closest to the camera", "something I could sit on", "the object left of the lamp"]
# A representative constrained rollout: capped free-text reason, then an answer with known ids.
GRAMMAR = (
    'root ::= "<reason>" [a-z ,.]{0,160} "</reason><answer>{\\"ids\\": [" id ("," " "? id){0,3} "]}</answer>"\n'
    "id ::= [0-9] | [1-9] [0-9]\n"
)


def make_twin(n: int, seed: int = 0):
    from fastreasonseg.twin.schema import DigitalTwin, Frame, Instance, Source

    rng = np.random.default_rng(seed + n)
    h, w = 240, 320
    depth = np.tile(np.linspace(0.0, 1.0, h)[:, None], (1, w))
    insts = []
    for i in range(n):
        mask = np.zeros((h, w), bool)
        x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        mask[y0 : y0 + int(rng.integers(8, 60)), x0 : x0 + int(rng.integers(8, 60))] = True
        inst = Instance.from_mask(i + 1, LABELS[i % len(LABELS)], mask, score=0.9, depth_map=depth)
        insts.append(inst)
    src = Source(kind="image", name=f"synthetic-{n}.png", width=w, height=h)
    return DigitalTwin(source=src, frames=[Frame(index=0, instances=insts)])


def build(twin, question: str, rt):
    try:
        from fastreasonseg.reasoning.prompt import build_prompt

        built = build_prompt(twin, question, count=rt.count_tokens, context_tokens=getattr(rt, "n_ctx", None) or 2048)
        return built.prompt, built.view_instances, "fastreasonseg.reasoning.prompt.build_prompt"
    except ImportError:  # pragma: no cover - before the prompt module existed
        from fastreasonseg.reasoning.runtimes.base import ChatPrompt
        from fastreasonseg.twin.view import twin_view

        return ChatPrompt("Find the objects.", twin_view(twin) + f"\nQuestion: {question}"), None, "fallback"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(kind: str, sizes: list[int], max_tokens: int, repeats: int, threads: int | None) -> dict:
    from fastreasonseg.reasoning.runtimes.base import ChatPrompt  # noqa: F401

    t0 = time.perf_counter()
    if kind == "llamacpp":
        from fastreasonseg.reasoning.runtimes.llamacpp import LlamaCppRuntime

        rt = LlamaCppRuntime(n_ctx=4096, n_threads=threads)
    else:
        import torch

        from fastreasonseg.reasoning.runtimes.transformers import TransformersRuntime

        if threads:
            torch.set_num_threads(threads)
        rt = TransformersRuntime()
    load_s = time.perf_counter() - t0
    rows = []
    for n in sizes:
        twin = make_twin(n)
        cells: dict[str, list] = {"cold": [], "follow": [], "constrained": []}
        source = None
        listed = None
        for r in range(repeats):
            rt.clear_cache()
            for phase, q, grammar in (
                ("cold", QUESTIONS[0], None),
                ("follow", QUESTIONS[1 + r % 2], None),
                ("constrained", QUESTIONS[1 + (r + 1) % 2], GRAMMAR),
            ):
                prompt, listed, source = build(twin, q, rt)
                c = rt.complete(prompt, "", stop=["</answer>"], max_tokens=max_tokens, grammar=grammar)
                cells[phase].append(c)
        for phase, cs in cells.items():

            def med(f, cs=cs):
                return statistics.median(f(c) for c in cs)

            rows.append(
                {
                    "runtime": kind,
                    "instances": n,
                    "listed": listed,
                    "phase": phase,
                    "prompt_tokens": cs[-1].prompt_tokens,
                    "cached_tokens": cs[-1].cached_tokens,
                    "completion_tokens": med(lambda c: c.completion_tokens),
                    "prefill_ms": med(lambda c: c.prefill_ms),
                    "decode_ms": med(lambda c: c.decode_ms),
                    "decode_ms_per_token": med(lambda c: c.decode_ms / max(1, c.completion_tokens - 1)),
                    "total_ms": med(lambda c: c.prefill_ms + c.decode_ms),
                    "prompt_source": source,
                }
            )
    return {"runtime": kind, "name": rt.name, "load_s": load_s, "peak_rss_mb": peak_rss_mb(), "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 100])
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--runtimes", nargs="+", default=["llamacpp", "transformers"], choices=["llamacpp", "transformers"])
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_child-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args._child:
        res = run_one(args._child, args.sizes, args.max_tokens, args.repeats, args.threads)
        Path(args._child_out).write_text(json.dumps(res))
        return

    results = []
    for kind in args.runtimes:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            out = f.name
        cmd = [sys.executable, __file__, "--_child", kind, "--_child-out", out, "--max-tokens", str(args.max_tokens)]
        cmd += ["--repeats", str(args.repeats), "--sizes", *map(str, args.sizes)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        print(f"running {kind} ...", flush=True)
        subprocess.run(cmd, check=True)
        results.append(json.loads(Path(out).read_text()))
        os.unlink(out)

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Reasoner latency (median of {args.repeats}; max {args.max_tokens} new tokens)")
    for col in ("runtime", "inst", "phase", "prompt tok", "cached", "new tok", "prefill ms", "decode ms", "ms/tok"):
        table.add_column(col, justify="right")
    for res in results:
        for r in res["rows"]:
            table.add_row(
                r["runtime"],
                str(r["instances"]),
                r["phase"],
                str(r["prompt_tokens"]),
                str(r["cached_tokens"]),
                f"{r['completion_tokens']:.0f}",
                f"{r['prefill_ms']:.0f}",
                f"{r['decode_ms']:.0f}",
                f"{r['decode_ms_per_token']:.1f}",
            )
    console = Console()
    console.print(table)
    for res in results:
        console.print(f"{res['name']}: load {res['load_s']:.1f} s, peak RSS {res['peak_rss_mb']:.0f} MB")
    summary = {}
    if len(results) == 2:
        a, b = ({(r["instances"], r["phase"]): r for r in res["rows"]} for res in results)
        ratios = {f"{k[0]}/{k[1]}": b[k]["total_ms"] / max(a[k]["total_ms"], 1e-9) for k in a if k in b}
        summary["transformers_over_llamacpp_total_ms"] = ratios
        console.print(
            "transformers / llama.cpp total latency: " + ", ".join(f"{k} {v:.1f}x" for k, v in ratios.items())
        )
    payload = {
        "config": {k: v for k, v in vars(args).items() if not k.startswith("_") and k != "out"},
        "cpu_count": os.cpu_count(),
        "grammar": GRAMMAR,
        "results": results,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
