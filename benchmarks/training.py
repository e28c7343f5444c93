"""Benchmark: training throughput (samples/s, s/step) and peak RSS of student SFT and student GRPO on CPU.

Two ways:

* ``--run-dir DIR`` summarises a finished run (``fastreasonseg train sft|rl`` with ``/usr/bin/time -v`` logs
  ``sft.log`` / ``rl.log`` in DIR): the numbers of the run that produced the shipped student;
* ``--measure`` runs a few steps of each stage here, in this process's children, on the synthetic train split with
  the given config (``--config``), and measures them the same way.

    python benchmarks/training.py --run-dir /work/runs/student --config /work/runs/student/config.yaml
    python benchmarks/training.py --measure --config /work/runs/student/config.yaml --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _peak_rss_mb(log: str) -> float | None:
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log)
    return round(int(m.group(1)) / 1024, 1) if m else None


def _wall(log: str) -> str | None:
    m = re.search(r"Elapsed \(wall clock\) time.*: ([\d:.]+)", log)
    return m.group(1) if m else None


def stage_summary(run_dir: Path, stage: str, info_name: str, samples_per_step: int) -> dict:
    info_path = run_dir / stage / f"{info_name}_info.json"
    if not info_path.is_file():
        return {"missing": str(info_path)}
    info = json.loads(info_path.read_text())
    logs = sorted(run_dir.glob(f"{stage}*.log"))
    log = logs[-1].read_text(errors="replace") if logs else ""
    total = info.get("global_step") or 0
    resumed = info.get("resumed_from")
    start = int(str(resumed).rsplit("-", 1)[-1]) if resumed else 0
    steps = total - start  # steps trained by the last (possibly resumed) process
    secs = info.get("train_seconds") or info.get("train_runtime") or 0
    out = {
        "global_step": total,
        "resumed_from_step": start,
        "steps_measured": steps,
        "train_seconds": round(secs, 1),
        "s_per_step": round(secs / steps, 2) if steps else None,
        "samples_per_step": samples_per_step,
        "samples_per_s": round(steps * samples_per_step / secs, 4) if secs else None,
        "peak_rss_mb": _peak_rss_mb(log),
        "process_wall": _wall(log),
    }
    for k in ("first_loss", "last_loss", "first_reward", "last_reward", "rollout_format_rate", "reward_failures"):
        if k in info:
            out[k] = info[k]
    return out


def from_run(run_dir: Path, config: str | None) -> dict:
    from fastreasonseg.training.config import load_config

    cfg = load_config(config) if config else load_config(run_dir / "sft" / "config.yaml")
    sft_bs = cfg.sft.per_device_train_batch_size * cfg.sft.gradient_accumulation_steps
    rl_bs = cfg.rl.per_device_train_batch_size * cfg.rl.gradient_accumulation_steps
    return {
        "sft": stage_summary(run_dir, "sft", "sft", sft_bs) | {"unit": "training sequences (prompt + chain)"},
        "rl": stage_summary(run_dir, "rl", "rl", rl_bs)
        | {"unit": "rollouts (generation + tools + scoring + update)", "num_generations": cfg.rl.num_generations},
    }


def measure(config: str, steps: int, out_dir: Path) -> dict:
    """Run ``steps`` steps of SFT then GRPO in child processes and read their peak RSS and timings."""
    res = {}
    for stage, info in (("sft", "sft"), ("rl", "rl")):
        cmd = [
            sys.executable,
            "-m",
            "fastreasonseg",
            "train",
            stage,
            "--config",
            config,
            "--max-steps",
            str(steps),
            f"{stage}.output_dir={out_dir / stage}",
            f"{stage}.resume=false",
        ]
        if stage == "sft":
            cmd.append("sft.format_eval_samples=0")
        else:
            cmd.append(f"rl.init_adapter={out_dir / 'sft' / 'final'}")
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"})
        wall = time.perf_counter() - t0
        if proc.returncode:
            res[stage] = {"error": proc.stderr[-2000:]}
            continue
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        info_d = json.loads((out_dir / stage / f"{info}_info.json").read_text())
        res[stage] = {
            "steps": info_d["global_step"],
            "train_seconds": round(info_d["train_seconds"], 1),
            "process_wall_s": round(wall, 1),
            "peak_rss_mb_children": round(usage.ru_maxrss / 1024, 1),
        }
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", type=Path)
    ap.add_argument("--config")
    ap.add_argument("--measure", action="store_true")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "training_throughput.json"))
    args = ap.parse_args()
    result = {
        "benchmark": "training",
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "note": "2 CPU cores shared with other jobs (load average 4-8 during the run): numbers are pessimistic",
    }
    if args.run_dir:
        result["run"] = from_run(args.run_dir, args.config)
    if args.measure:
        if not args.config:
            ap.error("--measure needs --config")
        result["measured"] = measure(args.config, args.steps, Path("/tmp/frs-train-bench"))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
