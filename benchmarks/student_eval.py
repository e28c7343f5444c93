"""Benchmark: accuracy of the offline reasoner — zero-shot SmolLM2-135M vs the SFT student vs SFT+RL — on the
synthetic val/test splits (never trained on: held-out objects, facts and phrasings), through the real executor and
the llama.cpp runtime (Q4_1 base + GGUF LoRA), with the inference defaults (GBNF-constrained decoding).

Reports gIoU (mean over samples of the per-sample IoU; for videos the mean over frames, an empty union scoring 1),
cIoU (Σ intersections / Σ unions over every frame of every sample), the format rate (well-formed rollouts), per
category, level, media and seen/novel, and the query latency (median total ms, prefill, decode ms/token) with and
without the adapter.

    python benchmarks/student_eval.py --samples /work/runs/synthetic --splits test val --n 150 \
        --model zero-shot= --model sft=src/.../sft.gguf --model sft+rl=src/fastreasonseg/assets/student/adapter.gguf
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fastreasonseg.eval.metrics import ciou, giou, paired_bootstrap  # noqa: E402
from fastreasonseg.reasoning.config import ReasonerConfig  # noqa: E402
from fastreasonseg.reasoning.executor import run_rollout  # noqa: E402
from fastreasonseg.reasoning.runtimes.llamacpp import LlamaCppRuntime  # noqa: E402
from fastreasonseg.training.data import load_samples  # noqa: E402


def sample_scores(twin, ids, target) -> tuple[float, int, int]:
    """(per-sample IoU = mean over frames with empty union → 1, Σ intersection, Σ union)."""
    ious, inter_t, union_t = [], 0, 0
    for fr in twin.frames:
        p = twin.mask(fr.index, ids)
        g = twin.mask(fr.index, target)
        inter, union = int(np.logical_and(p, g).sum()), int(np.logical_or(p, g).sum())
        inter_t += inter
        union_t += union
        ious.append(1.0 if union == 0 else inter / union)
    return float(np.mean(ious)), inter_t, union_t


def summarise(rows: list[dict]) -> dict:
    if not rows:
        return {}
    return {
        "n": len(rows),
        "gIoU": round(giou([r["iou"] for r in rows]), 4),
        "cIoU": round(ciou([r["inter"] for r in rows], [r["union"] for r in rows]), 4),
        "format_rate": round(sum(r["format_ok"] for r in rows) / len(rows), 4),
        "exact": round(sum(r["exact"] for r in rows) / len(rows), 4),
    }


def evaluate(name: str, lora: str | None, samples, cfg: ReasonerConfig, threads: int) -> dict:
    rt = LlamaCppRuntime(lora_path=lora or None, n_threads=threads)
    rows = []
    t0 = time.perf_counter()
    for s in samples:
        twin = s.load_twin()
        res = run_rollout(rt, twin, s.query, config=cfg)
        iou, inter, union = sample_scores(twin, res.ids, s.target_ids)
        rows.append(
            {
                "sample_id": s.sample_id,
                "split": s.split,
                "category": s.category,
                "level": s.level,
                "media": twin.source.kind,
                "novel": bool(s.extra.get("novel")),
                "no_target": not s.target_ids,
                "iou": iou,
                "inter": inter,
                "union": union,
                "exact": sorted(res.ids) == sorted(s.target_ids),
                "format_ok": res.format_ok,
                "total_ms": res.total_ms,
                "prefill_ms": res.prefill_ms,
                "decode_ms": res.decode_ms,
                "prompt_tokens": res.prompt_tokens,
                "completion_tokens": res.completion_tokens,
                "rollout": res.rollout,
                "ids": res.ids,
                "target": s.target_ids,
            }
        )
    wall = time.perf_counter() - t0
    out: dict = {"model": name, "lora": lora, "wall_s": round(wall, 1)}
    for split in sorted({r["split"] for r in rows}):
        sr = [r for r in rows if r["split"] == split]
        block = {"all": summarise(sr)}
        for key in ("category", "level", "media", "novel", "no_target"):
            block[f"by_{key}"] = {
                str(v): summarise([r for r in sr if r[key] == v]) for v in sorted({r[key] for r in sr}, key=str)
            }
        out[split] = block
    toks = [r["completion_tokens"] for r in rows if r["completion_tokens"]]
    out["latency"] = {
        "median_total_ms": round(statistics.median(r["total_ms"] for r in rows), 1),
        "mean_total_ms": round(statistics.fmean(r["total_ms"] for r in rows), 1),
        "median_prefill_ms": round(statistics.median(r["prefill_ms"] for r in rows), 1),
        "decode_ms_per_token": round(sum(r["decode_ms"] for r in rows) / max(1, sum(toks)), 2),
        "median_prompt_tokens": statistics.median(r["prompt_tokens"] for r in rows),
        "median_completion_tokens": statistics.median(toks) if toks else 0,
    }
    out["per_sample"] = [
        {"sample_id": r["sample_id"], "split": r["split"], "iou": round(r["iou"], 4), "exact": r["exact"]} for r in rows
    ]
    out["examples"] = [
        {k: r[k] for k in ("sample_id", "category", "level", "rollout", "ids", "target", "iou")} for r in rows[:5]
    ]
    return out


def latency_probe(loras: dict[str, str | None], samples, threads: int, repeats: int = 3) -> dict:
    """Same prompt, same fixed number of tokens (no stop), with and without the adapter: pure runtime cost."""
    from fastreasonseg.reasoning.executor import Reasoner

    out = {}
    for name, lora in loras.items():
        rt = LlamaCppRuntime(lora_path=lora or None, n_threads=threads, prefix_cache_size=0)
        reasoner = Reasoner(rt, ReasonerConfig())
        prefill, per_tok = [], []
        for s in samples:
            p = reasoner.prompt(s.load_twin(), s.query).prompt
            for _ in range(repeats):
                rt.clear_cache()
                c = rt.complete(p, "<reason>", stop=[], max_tokens=32)
                prefill.append(c.prefill_ms)
                per_tok.append(c.decode_ms / max(1, c.completion_tokens - 1))
        out[name] = {
            "median_prefill_ms_fresh": round(statistics.median(prefill), 1),
            "median_decode_ms_per_token": round(statistics.median(per_tok), 2),
        }
    return out


def paired_vs_reference(models: dict) -> dict:
    """Per split, the gIoU gain of every model over the first one on the same samples, with a 95 % paired bootstrap
    interval (only models whose per-sample scores are stored)."""
    names = [n for n, m in models.items() if m.get("per_sample")]
    if len(names) < 2:
        return {}
    ref = names[0]
    scores = {n: {(r["split"], r["sample_id"]): r["iou"] for r in models[n]["per_sample"]} for n in names}
    out: dict = {"reference": ref}
    for name in names[1:]:
        out[name] = {}
        for split in sorted({k[0] for k in scores[ref]}):
            keys = [k for k in scores[ref] if k[0] == split and k in scores[name]]
            if not keys:
                continue
            d = paired_bootstrap([scores[ref][k] for k in keys], [scores[name][k] for k in keys])
            out[name][split] = {
                "n": d.n,
                "gIoU_gain": round(d.mean, 4),
                "ci95": [round(d.low, 4), round(d.high, 4)],
                "wins": d.wins,
                "losses": d.losses,
            }
    return out


def _reusable(path: str, current: dict) -> dict:
    """The model blocks of an earlier run that evaluated exactly the same samples the same way (else none)."""
    try:
        old = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--reuse {path}: cannot read it ({exc})") from exc
    same = ("samples", "splits", "n_per_split", "seed", "constrained")
    diff = [k for k in same if old.get(k) != current[k]]
    if diff:
        print(f"--reuse {path}: not reused, it differs in {', '.join(diff)}", flush=True)
        return {}
    return {(m.get("lora") or ""): m for m in old.get("models", {}).values()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", required=True, help="folder with the synthetic <split>.jsonl files")
    ap.add_argument("--splits", nargs="+", default=["test", "val"])
    ap.add_argument("--n", type=int, default=150, help="samples per split (seeded subset)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", action="append", default=[], help="name=LORA.gguf (empty path = no adapter)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--unconstrained", action="store_true", help="decode without the GBNF grammar")
    ap.add_argument(
        "--reuse",
        default=None,
        help="earlier results JSON: adapters already evaluated there on the same samples (same --samples, --splits, "
        "--n, --seed, decoding) are copied instead of re-run; the latency probe still runs for every model",
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "training_student_eval.json"))
    args = ap.parse_args()

    samples = []
    for split in args.splits:
        ss = load_samples(args.samples, split)
        random.Random(args.seed).shuffle(ss)
        for s in ss[: args.n]:
            s.split = split
            samples.append(s)
    models = dict(m.split("=", 1) for m in args.model) or {"zero-shot": ""}
    cfg = ReasonerConfig(constrained=not args.unconstrained)
    results = {
        "benchmark": "student_eval",
        "host": platform.node(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "samples": args.samples,
        "splits": args.splits,
        "n_per_split": args.n,
        "seed": args.seed,
        "constrained": not args.unconstrained,
        "runtime": "llama.cpp (llama-cpp-python), SmolLM2-135M-Instruct Q4_1, n_ctx 2048",
        "threads": args.threads,
        "models": {},
    }
    earlier = _reusable(args.reuse, results) if args.reuse else {}
    for name, lora in models.items():
        if (lora or "") in earlier:  # the same adapter (or none), whatever it was called there
            old = earlier[lora or ""]
            print(f"reusing {name} ({old['model']} in {args.reuse})", flush=True)
            results["models"][name] = {**old, "model": name, "reused_from": old.get("reused_from", args.reuse)}
        else:
            print(f"evaluating {name} ({lora or 'no adapter'}) on {len(samples)} samples", flush=True)
            results["models"][name] = evaluate(name, lora, samples, cfg, args.threads)
        for split in args.splits:
            print(f"  {split}: {results['models'][name][split]['all']}", flush=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    results["paired_vs_reference"] = paired_vs_reference(results["models"])
    if results["paired_vs_reference"]:
        print(json.dumps(results["paired_vs_reference"], indent=2), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    results["latency_probe"] = latency_probe(models, samples[:4], args.threads)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results["latency_probe"], indent=2))


if __name__ == "__main__":
    main()
