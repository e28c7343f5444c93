"""How far the fast runtimes are from the torch path, per stage, on the example photo.

For each runtime (``openvino``, ``onnx``, ``onnx-int8``) against ``torch`` with the same models:

* labeller: detections after NMS (threshold 0 on random weights) matched one to one with the torch ones
  (same label and box IoU >= 0.9): the fraction matched, the largest box-corner and score differences;
* segmenter: SAM-2 masks for the *torch* labeller's boxes: the smallest and mean mask IoU;
* depth: the largest absolute difference of the raw inverse depth relative to its range, and of the
  twin's [0, 1] relative depth.

    python benchmarks/perception_equivalence.py --size real --models-dir /tmp/models --export-cache /tmp/exports
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COFFEE = ROOT / "src" / "fastreasonseg" / "assets" / "example" / "coffee.jpg"
VOCAB = ["cup", "mug", "spoon", "plate", "saucer", "table", "coffee", "bowl", "napkin", "person"]


def outputs(cfg, image: np.ndarray, boxes=None) -> dict:
    from fastreasonseg.perception import Perception
    from fastreasonseg.perception.backends.depth_anything import inverse_depth_to_relative

    perc = Perception(cfg)
    _, work, _ = perc.prepare(image)
    dets = perc.labeller.detect(work, VOCAB, 0.0)
    use = boxes if boxes is not None else [dets.box(i) for i in range(min(20, len(dets)))]
    perc.segmenter.set_image(work)
    masks = np.stack(perc.segmenter.masks_from_boxes(use)) if use else np.zeros((0, *work.shape[:2]), bool)
    inv = perc.depth_model.predict_inverse(work)
    return {"dets": dets, "boxes": use, "masks": masks, "inv": inv, "rel": inverse_depth_to_relative(inv)}


def compare(ref: dict, got: dict) -> dict:
    from fastreasonseg.perception.backends.sam2 import mask_iou_matrix
    from fastreasonseg.twin.masks import box_iou

    rd, gd = ref["dets"], got["dets"]
    used: set[int] = set()
    matched, corner, score = 0, 0.0, 0.0
    for i in range(len(rd)):
        best, best_iou = None, 0.9
        for j in range(len(gd)):
            if j not in used and gd.labels[j] == rd.labels[i] and (v := box_iou(rd.box(i), gd.box(j))) >= best_iou:
                best, best_iou = j, v
        if best is not None:
            used.add(best)
            matched += 1
            corner = max(corner, float(np.abs(rd.boxes[i] - gd.boxes[best]).max()))
            score = max(score, abs(float(rd.scores[i] - gd.scores[best])))
    ious = np.diag(mask_iou_matrix(got["masks"], ref["masks"])) if len(ref["masks"]) else np.ones(1)
    span = float(ref["inv"].max() - ref["inv"].min()) or 1.0
    return {
        "detections": [len(rd), len(gd)],
        "matched_fraction": round(matched / max(1, len(rd)), 4),
        "max_box_corner_px": round(corner, 4),
        "max_score_diff": round(score, 6),
        "mask_iou_min": round(float(ious.min()), 5),
        "mask_iou_mean": round(float(ious.mean()), 5),
        "depth_inv_max_rel_diff": float(f"{float(np.abs(got['inv'] - ref['inv']).max()) / span:.3g}"),
        "depth_rel_max_abs_diff": float(f"{float(np.abs(got['rel'] - ref['rel']).max()):.3g}"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["tiny", "real"], default="tiny")
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--export-cache", type=Path, default=None)
    ap.add_argument("--runtimes", nargs="+", default=["openvino", "onnx", "onnx-int8"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "perception_equivalence.json")
    args = ap.parse_args(argv)

    import torch
    from PIL import Image
    from rich.console import Console
    from rich.table import Table

    from fastreasonseg.config import PerceptionConfig

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from twin_build import make_models

    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    mroot = args.models_dir or Path(tmp.name) / "models"
    mroot.mkdir(parents=True, exist_ok=True)
    models = make_models(mroot, args.size)
    models.pop("fast_labeller")
    cache = str(args.export_cache or Path(tmp.name) / "exports")
    image = np.asarray(Image.open(COFFEE).convert("RGB"))

    def cfg(backend: str, precision: str = "fp32") -> PerceptionConfig:
        return PerceptionConfig(
            **models, backend=backend, precision=precision, export_cache=cache, threads=args.threads
        )

    ref = outputs(cfg("torch"), image)
    rows = {}
    for name in args.runtimes:
        backend, precision = ("onnx", "int8") if name == "onnx-int8" else (name, "fp32")
        rows[name] = compare(ref, outputs(cfg(backend, precision), image, ref["boxes"]))
    console = Console(width=160)
    table = Table(title=f"fast runtimes vs torch ({args.size} random-weight models, coffee photo)")
    cols = list(next(iter(rows.values())).keys())
    table.add_column("runtime")
    for c in cols:
        table.add_column(c, justify="right")
    for name, r in rows.items():
        table.add_row(name, *(str(r[c]) for c in cols))
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    prev = json.loads(args.out.read_text()) if args.out.exists() else {}
    prev[args.size] = {"machine": platform.platform(), "threads": args.threads, "rows": rows}
    args.out.write_text(json.dumps(prev, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
