"""Benchmark: cost of building a digital twin, per stage, per configuration, in one run.

Cases: the example photo (``src/fastreasonseg/assets/example/coffee.jpg``, 600x400), a DAVIS-2016 sequence
(read from ``../shared/data/davis2016``, steady-state seconds per frame: detection on keyframes, SAM-2
propagation in between) and ``video40``: a 1280x720 clip (DAVIS frames upscaled) tracking up to 40
objects, for peak RSS and the tracker's stored state per object.

Configurations (each runs in its own subprocess, so peak RSS and threads are per configuration):

* ``before``: the code as it was before the fast-perception work (``--before-src DIR``: a checkout's
  ``src``; e.g. ``git archive 2cd3a8d src | tar -x -C /tmp/before``), torch;
* ``torch``, ``auto`` (the default: OpenVINO for SAM-2 / Depth-Anything, torch for OWLv2), ``onnx``,
  ``openvino``; ``int8``: ONNX Runtime with int8 dynamic quantisation;
* ``fast``: ``PerceptionConfig.preset("fast")`` (OWL-ViT B/32 labeller, smaller depth input), ``auto``.

Every image case builds two twins in its process (model loading excluded): ``first`` (the photo: exports
made or loaded, text embeddings encoded or read from the disk cache; what one CLI call costs) and
``next`` (the mirrored photo, so no per-image cache helps: the steady cost of one more image). Run the
script twice with the same ``--export-cache`` to see ``first`` with filled caches (every CLI call after
the first one).

Models: no hub is reachable here, so by default random weights (``--size real``: the true
architectures and input sizes; ``tiny``: test-size). ``--device cuda`` runs on a GPU (fp16 autocast
unless ``--precision``) and records peak GPU memory per stage.

    python benchmarks/twin_build.py --size real --configs before torch auto fast --before-src /tmp/before/src
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAVIS = (ROOT / ".." / "shared" / "data" / "davis2016" / "JPEGImages" / "480p").resolve()
COFFEE = ROOT / "src" / "fastreasonseg" / "assets" / "example" / "coffee.jpg"
STAGES = ("labeller", "segmenter", "depth", "tracking")


def peak_rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / 1024.0 / 1024.0


# --------------------------------------------------------------------------------------------- worker
def _config(job: dict):
    from fastreasonseg.config import PerceptionConfig

    kw = dict(job["models"])
    kw.update(
        box_threshold=job["threshold"],
        max_instances=job["max_instances"],
        max_side=job["max_side"],
        keyframe_interval=job["keyframe_interval"],
        device=job["device"],
    )
    name = job["config"]
    if name == "before":
        return PerceptionConfig(**kw)
    kw.update(export_cache=job["export_cache"], threads=job["threads"])
    if name == "fast":
        kw.pop("labeller", None)
        kw.update(labeller=job["fast_labeller"], backend="auto")
        return PerceptionConfig.preset("fast", **kw)
    backend = {"int8": "onnx"}.get(name, name)
    precision = "int8" if name == "int8" else job["precision"]
    return PerceptionConfig(**kw, backend=backend, precision=precision)


def _gpu_stage_memory(perc, device: str) -> dict:
    """Wrap the per-stage timer to record peak GPU memory per stage (CUDA only)."""
    import contextlib

    import torch

    peaks: dict[str, float] = {}
    if not device.startswith("cuda"):
        return peaks
    orig = perc._timed

    @contextlib.contextmanager
    def timed(stage: str):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        with orig(stage):
            yield
            torch.cuda.synchronize()
        peaks[stage] = max(peaks.get(stage, 0.0), torch.cuda.max_memory_allocated() / 2**20)

    perc._timed = timed
    return peaks


def _stage_ms(perc, before: dict) -> dict:
    return {s: round(perc.timings_ms.get(s, 0.0) - before.get(s, 0.0), 1) for s in (*STAGES, "load")}


def _session_state_mb(perc) -> tuple[int, float]:
    """(objects in the tracker session, MB of tensors it stores), counting each storage once."""
    import torch

    tr = perc._tracker
    s = getattr(tr, "session", None)
    if s is None:
        return 0, 0.0
    seen: dict[int, int] = {}

    def walk(x):
        if isinstance(x, torch.Tensor):
            st = x.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    for attr in ("output_dict_per_obj", "point_inputs_per_obj", "mask_inputs_per_obj"):
        walk(getattr(s, attr, {}))
    return len(s.obj_ids), sum(seen.values()) / 2**20


def run_job(job: dict) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(job["threads"])
    from fastreasonseg.perception import Perception, TwinBuilder
    from fastreasonseg.perception.media import open_media

    cfg = _config(job)
    perc = Perception(cfg)
    gpu = _gpu_stage_memory(perc, job["device"])
    res: dict = {"config": job["config"], "case": job["case"]}
    t0 = time.perf_counter()
    perc.load(video=job["case"] != "coffee")
    res["load_s"] = round(time.perf_counter() - t0, 2)
    if job["case"] == "coffee":
        from PIL import Image

        img = np.asarray(Image.open(COFFEE).convert("RGB"))
        # first: the first twin of this process; next: another image (the mirrored photo, so no per-image
        # cache helps) with everything loaded
        for run, image in (("first", img), ("next", np.ascontiguousarray(img[:, ::-1]))):
            before = dict(perc.timings_ms)
            t = time.perf_counter()
            twin = TwinBuilder(cfg, perception=perc).build(image)
            res[run] = {"total_s": round(time.perf_counter() - t, 2), "ms": _stage_ms(perc, before)}
            res[f"{run}_instances"] = twin.num_instances()
    else:
        media = open_media(job["source"], max_frames=job["frames"])
        perc.start_video()
        per_frame, kinds, states = [], [], []
        for k, (_, frame) in enumerate(media.frames()):
            if job["case"] == "video40":
                from PIL import Image

                frame = np.asarray(Image.fromarray(frame).resize((1280, 720), Image.Resampling.BILINEAR))
            before = dict(perc.timings_ms)
            key = k % max(1, job["keyframe_interval"]) == 0
            t = time.perf_counter()
            objs = perc.track(frame, keyframe=key)
            per_frame.append({"s": round(time.perf_counter() - t, 2), "ms": _stage_ms(perc, before), "n": len(objs)})
            kinds.append("key" if key else "prop")
            states.append(_session_state_mb(perc))
        steady = per_frame[1:] or per_frame
        res["frames"] = per_frame
        res["kinds"] = kinds
        res["steady_s_per_frame"] = round(sum(f["s"] for f in steady) / len(steady), 2)
        res["session_objects"] = [s[0] for s in states]
        res["session_state_mb"] = [round(s[1], 1) for s in states]
    res["peak_rss_mb"] = round(peak_rss_mb(), 1)
    res["notes"] = list(dict.fromkeys(getattr(perc, "notes", [])))
    if gpu:
        res["peak_gpu_mb_per_stage"] = {k: round(v, 1) for k, v in gpu.items()}
    return res


# --------------------------------------------------------------------------------------------- driver
def make_models(root: Path, size: str) -> dict[str, str]:
    from fastreasonseg.perception.testing import make_owlvit, make_tiny_models

    marker = root / f"ready-{size}"
    models = {"segmenter": str(root / "sam2"), "depth": str(root / "depth"), "labeller": str(root / "owlv2")}
    fast = str(root / "owlvit")
    if not marker.exists():
        make_tiny_models(root, size=size)
        make_owlvit(fast, size=size)
        marker.write_text("ok")
    return {**models, "fast_labeller": fast}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--size", choices=["tiny", "real"], default="tiny")
    ap.add_argument("--models-dir", type=Path, default=None, help="where random models are made / reused")
    ap.add_argument("--segmenter"), ap.add_argument("--depth"), ap.add_argument("--labeller")
    ap.add_argument("--configs", nargs="+", default=["torch", "auto", "fast"])
    ap.add_argument("--cases", nargs="+", default=["coffee", "davis"], choices=["coffee", "davis", "video40"])
    ap.add_argument("--before-src", type=Path, default=None, help="src/ of the code to compare against ('before')")
    ap.add_argument("--sequence", default="blackswan")
    ap.add_argument("--frames", type=int, default=None, help="video frames (default 8 tiny, 6 real)")
    ap.add_argument("--keyframe-interval", type=int, default=3)
    ap.add_argument("--max-side", type=int, default=1024)
    ap.add_argument("--max-instances", type=int, default=20)
    ap.add_argument("--threshold", type=float, default=None, help="labeller threshold (random weights: 0.0)")
    ap.add_argument("--threads", type=int, default=2, help="torch / ONNX Runtime / OpenVINO threads")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default=None, help="fp32 (CPU default), fp16 / bf16 (GPU default fp16)")
    ap.add_argument("--export-cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "twin_build.json")
    ap.add_argument("--load", default=None, help="note the machine load in the results (e.g. 'loaded: 2 jobs')")
    args = ap.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(run_job(json.loads(args.worker))), flush=True)
        return 0

    from rich.console import Console
    from rich.table import Table

    console = Console(width=180)
    tmp = tempfile.TemporaryDirectory()
    mroot = args.models_dir or Path(tmp.name) / "models"
    mroot.mkdir(parents=True, exist_ok=True)
    random_weights = not (args.segmenter and args.depth and args.labeller)
    models = make_models(mroot, args.size) if random_weights else {}
    for role in ("segmenter", "depth", "labeller"):
        if getattr(args, role):
            models[role] = getattr(args, role)
    fast_labeller = models.pop("fast_labeller", "google/owlvit-base-patch32")
    frames = args.frames or (6 if args.size == "real" else 8)
    cache = str(args.export_cache or Path(tmp.name) / "exports")
    precision = args.precision or ("fp16" if args.device.startswith("cuda") else "fp32")
    rows = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    for case in args.cases:
        source = str(DAVIS / args.sequence)
        if case != "coffee" and not Path(source).is_dir():
            console.print(f"[yellow]DAVIS sequence not found at {source}; skipping {case}[/]")
            continue
        for name in args.configs:
            job = {
                "config": name,
                "case": case,
                "models": models,
                "fast_labeller": fast_labeller,
                "threshold": args.threshold if args.threshold is not None else (0.0 if random_weights else 0.15),
                "max_instances": 40 if case == "video40" else args.max_instances,
                "max_side": 1280 if case == "video40" else args.max_side,
                "keyframe_interval": args.keyframe_interval,
                "device": args.device,
                "precision": precision,
                "threads": args.threads,
                "export_cache": cache,
                "source": source,
                "frames": frames,
            }
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
            if name == "before":
                if args.before_src is None:
                    console.print("[yellow]--before-src not given; skipping 'before'[/]")
                    continue
                env["PYTHONPATH"] = str(args.before_src.resolve())
            console.print(f"[dim]{case} / {name} ...[/]")
            p = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)],
                capture_output=True,
                text=True,
                env=env,
                cwd=str(ROOT),
            )
            line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                console.print(f"[red]{case} / {name} failed:[/]\n{p.stderr[-3000:]}")
                continue
            rows.append(json.loads(line[len("RESULT ") :]))
            args.out.with_suffix(".partial.json").write_text(json.dumps(rows, indent=1))  # survives an interrupt
    load_after = os.getloadavg()

    weights = " random weights" if random_weights else ""
    table = Table(title=f"twin build ({args.size}{weights}, {args.threads} threads)")
    for col in ("case", "config", "run", *STAGES, "total s", "vs before", "peak RSS MB", "state MB"):
        table.add_column(col, justify="left" if col in ("case", "config", "run") else "right")
    ref: dict[tuple[str, str], float] = {}
    for r in rows:
        if r["case"] == "coffee":
            for run in ("first", "next"):
                ref.setdefault((r["case"], run), 0.0)
                if r["config"] == "before":
                    ref[(r["case"], run)] = r[run]["total_s"]
        elif r["config"] == "before":
            ref[(r["case"], "steady")] = r["steady_s_per_frame"]
    for r in rows:
        if r["case"] == "coffee":
            for run in ("first", "next"):
                ms, tot = r[run]["ms"], r[run]["total_s"]
                base = ref.get((r["case"], run)) or 0.0
                table.add_row(
                    r["case"],
                    r["config"],
                    run,
                    *(f"{ms[s] / 1000:.2f}" for s in STAGES),
                    f"{tot:.2f}",
                    f"{base / tot:.2f}x" if base and tot else "-",
                    f"{r['peak_rss_mb']:.0f}",
                    "-",
                )
        else:
            steady = r["frames"][1:] or r["frames"]
            avg = {s: sum(f["ms"][s] for f in steady) / len(steady) / 1000 for s in STAGES}
            base = ref.get((r["case"], "steady")) or 0.0
            tot = r["steady_s_per_frame"]
            table.add_row(
                f"{r['case']} x{len(r['frames'])}",
                r["config"],
                "steady/frame",
                *(f"{avg[s]:.2f}" for s in STAGES),
                f"{tot:.2f}",
                f"{base / tot:.2f}x" if base and tot else "-",
                f"{r['peak_rss_mb']:.0f}",
                f"{max(r['session_state_mb']):.0f}",
            )
    console.print(table)
    result = {
        "size": args.size,
        "random_weights": random_weights,
        "threads": args.threads,
        "device": args.device,
        "machine": f"{platform.platform()}, {os.cpu_count()} cpus, {platform.processor() or platform.machine()}",
        "loadavg_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "load_note": args.load,
        "rows": rows,
    }
    args.out.with_suffix(".partial.json").unlink(missing_ok=True)
    prev = json.loads(args.out.read_text()) if args.out.exists() else {}
    prev = prev if isinstance(prev, dict) else {}
    prev[f"{args.size}-{args.device}" if random_weights else f"custom-{args.device}"] = result
    args.out.write_text(json.dumps(prev, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
