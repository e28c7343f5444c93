"""Write the tiny dataset fixtures under ``tests/data/fixtures/`` in each dataset's exact on-disk format.

Run from the repository root: ``python tests/data/make_fixtures.py``. Deterministic (no randomness); every image is
32x24. The expected values in ``test_readers.py`` are derived from the shapes drawn here.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

OUT = Path(__file__).resolve().parent / "fixtures"
W, H = 32, 24


def jpg(path: Path, shade: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:H, :W]
    rgb = np.stack([(xx * 8 + shade) % 256, (yy * 10) % 256, np.full((H, W), 128)], -1).astype(np.uint8)
    Image.fromarray(rgb).save(path, quality=70)


def box(y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def rle(mask: np.ndarray) -> dict:
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}


def dump(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n")


def reasonseg() -> None:
    d = OUT / "reasonseg" / "val"
    for name, shade in (("img_a", 0), ("img_b", 40), ("img_c", 80), ("img_d", 120)):
        jpg(d / f"{name}.jpg", shade)
    rect = [[4.7, 4.2], [14.0, 4.0], [14.0, 12.0], [4.0, 12.9]]  # truncated to 4..14 x 4..12
    dump(
        d / "img_a.json",
        {
            "text": ["the red square", "what is red?"],
            "is_sentence": False,
            "shapes": [
                # listed first but smaller: drawn after the target (largest first), so it stays 255
                {"label": "ignore", "points": [[6, 6], [8, 6], [8, 8], [6, 8]], "shape_type": "polygon"},
                {"label": "target", "points": rect, "shape_type": "polygon"},
                {"label": "flag", "points": [[0, 0], [31, 0], [31, 23], [0, 23]], "shape_type": "polygon"},
            ],
        },
    )
    dump(
        d / "img_b.json",
        {
            "text": ["What would you sit on while reading in this room?"],
            "is_sentence": True,
            "shapes": [{"label": "target", "points": [[20, 2], [30, 2], [30, 20], [20, 20]]}],
        },
    )
    (d / "img_c.json").write_text('{"text": ["broken"], "shapes": [')  # corrupt JSON → skipped
    # img_d.jpg has no JSON → skipped


def llmseg40k() -> None:
    d = OUT / "llmseg40k"
    jpg(d / "coco" / "000000000139.jpg", 10)
    jpg(d / "egoobjects" / "ego_0001.jpg", 20)
    bad = rle(box(0, 0, 5, 5))
    bad["counts"] = bad["counts"][:-2]  # truncated counts: decodes to fewer pixels than 24x32
    dump(
        d / "validation.json",
        {
            "000000000139.jpg": {
                "from_dataset": "coco",
                "qa_pairs": [
                    {
                        "question": "Where can I put my cup?",
                        "answer": "On the table.",
                        "rle_seg": rle(box(12, 2, 20, 30)),
                    },
                    {"question": "What lights the room?", "answer": "The lamp.", "rle_seg": rle(box(1, 25, 8, 30))},
                    {"question": "Broken mask", "answer": "-", "rle_seg": bad},
                ],
            },
            "ego_0001.jpg": {
                "from_dataset": "egoobjects",
                "qa_pairs": [
                    {"question": "What can I drink from?", "answer": "The mug.", "rle_seg": rle(box(5, 5, 9, 9))}
                ],
            },
            "missing.jpg": {
                "from_dataset": "coco",
                "qa_pairs": [{"question": "?", "answer": "", "rle_seg": rle(box(0, 0, 1, 1))}],
            },
        },
    )


def refcocog() -> None:
    d = OUT / "refcocog"
    jpg(d / "images" / "COCO_train2014_000000000001.jpg", 30)
    jpg(d / "images" / "COCO_train2014_000000000002.jpg", 60)
    crowd = mask_utils.encode(np.asfortranarray(box(2, 3, 10, 12).astype(np.uint8)))
    crowd_counts = _uncompressed_counts(box(2, 3, 10, 12))
    assert mask_utils.area(crowd) == 8 * 9
    instances = {
        "images": [
            {"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "height": H, "width": W},
            {"id": 2, "file_name": "COCO_train2014_000000000002.jpg", "height": H, "width": W},
        ],
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [4, 4, 10, 8],
                "segmentation": [[4, 4, 14, 4, 14, 12, 4, 12]],
                "area": 80,
            },
            {
                "id": 11,
                "image_id": 2,
                "category_id": 2,
                "iscrowd": 1,
                "bbox": [3, 2, 9, 8],
                "segmentation": {"size": [H, W], "counts": crowd_counts},
                "area": 72,
            },
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}],
    }
    dump(d / "instances.json", instances)

    def sent(s, i):
        return {"sent": s, "raw": s, "tokens": s.split(), "sent_id": i}

    refs = [
        {
            "ref_id": 0,
            "ann_id": 10,
            "image_id": 1,
            "split": "val",
            "category_id": 1,
            "file_name": "COCO_train2014_000000000001_10.jpg",
            "sent_ids": [0, 1],
            "sentences": [sent("a man in a blue shirt", 0), sent("the person on the left", 1)],
        },
        {
            "ref_id": 1,
            "ann_id": 11,
            "image_id": 2,
            "split": "val",
            "category_id": 2,
            "file_name": "COCO_train2014_000000000002_11.jpg",
            "sent_ids": [2],
            "sentences": [sent("a small brown dog", 2)],
        },
        {
            "ref_id": 2,
            "ann_id": 12,
            "image_id": 2,
            "split": "val",
            "category_id": 2,
            "file_name": "COCO_train2014_000000000002_12.jpg",
            "sent_ids": [3],
            "sentences": [sent("an annotation that does not exist", 3)],
        },
        {
            "ref_id": 3,
            "ann_id": 10,
            "image_id": 1,
            "split": "train",
            "category_id": 1,
            "file_name": "COCO_train2014_000000000001_10.jpg",
            "sent_ids": [4],
            "sentences": [sent("train ref", 4)],
        },
    ]
    with open(d / "refs(umd).p", "wb") as fh:
        pickle.dump(refs, fh, protocol=2)


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    flat = mask.flatten(order="F").astype(np.uint8)
    counts, cur, run = [], 0, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            cur, run = v, 0
        run += 1
    counts.append(run)
    return counts


def _rvos(base: Path, vid: str, meta_name: str, expressions: dict, tracks: dict, nframes: int = 3) -> None:
    frames = [f"{i:05d}" for i in range(nframes)]
    for i, f in enumerate(frames):
        jpg(base / "JPEGImages" / vid / f"{f}.jpg", i * 30)
    dump(base / meta_name, {"videos": {vid: {"frames": frames, "expressions": expressions}}})
    dump(base / "mask_dict.json", tracks)


def mevis() -> None:
    a = [rle(box(2, 2 + 4 * t, 8, 8 + 4 * t)) for t in range(3)]  # a square moving right
    b = [rle(box(14, 20, 20, 26)), rle(box(14, 20, 20, 26)), None]  # a static square that leaves
    _rvos(
        OUT / "mevis" / "valid_u",
        "vid_mevis",
        "meta_expressions.json",
        {
            "0": {"exp": "the square moving to the right", "obj_id": [0], "anno_id": ["0"]},
            "1": {"exp": "both squares", "obj_id": [0, 1], "anno_id": ["0", "1"]},
            "2": {"exp": "an object without masks", "obj_id": [7], "anno_id": ["99"]},
        },
        {"0": a, "1": b},
    )


def revos() -> None:
    a = [rle(box(4, 4, 12, 12)), rle(box(5, 5, 13, 13)), rle(box(6, 6, 14, 14))]
    bad = rle(box(0, 0, 4, 4))
    bad["counts"] = "!!!"  # not a valid compressed RLE
    _rvos(
        OUT / "revos",
        "LVVIS/vid_revos",
        "meta_expressions_valid_.json",
        {
            "0": {"exp": "the cat", "obj_id": [1], "anno_id": [10], "type_id": 0},
            "1": {"exp": "what is the animal that catches mice?", "obj_id": [1], "anno_id": [10], "type_id": 1},
            "2": {"exp": "broken", "obj_id": [2], "anno_id": [11], "type_id": 0},
        },
        {"10": a, "11": [bad, None, None]},
    )


def davis() -> None:
    d16 = OUT / "davis2016"
    d17 = OUT / "davis2017"
    pal = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (3 * 253)
    pal[3 * 255 : 3 * 256] = [224, 224, 192]
    for t in range(3):
        jpg(d16 / "JPEGImages" / "480p" / "blackswan" / f"{t:05d}.jpg", t * 20)
        m = box(6, 4 + 2 * t, 16, 14 + 2 * t)
        p = d16 / "Annotations" / "480p" / "blackswan" / f"{t:05d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((m * 255).astype(np.uint8), mode="L").save(p)

        jpg(d17 / "JPEGImages" / "480p" / "two-objects" / f"{t:05d}.jpg", t * 20)
        lab = np.zeros((H, W), np.uint8)
        lab[box(2, 2, 10, 10)] = 1
        if t >= 1:  # object 2 enters at frame 1
            lab[box(12, 18, 20, 28)] = 2
        lab[0, :] = 255  # void border row
        im = Image.fromarray(lab, mode="P")
        im.putpalette(pal)
        p = d17 / "Annotations" / "480p" / "two-objects" / f"{t:05d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        im.save(p)


def _twin_instance(id: int, label: str, mask: np.ndarray, score: float, depth: float | None = None, **kw) -> dict:
    ys, xs = np.nonzero(mask)
    inst = {
        "id": id,
        "label": label,
        "score": score,
        "alt_labels": kw.get("alt_labels", []),
        "box": [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)],
        "area": int(mask.sum()),
        "mask": rle(mask),
    }
    if depth is not None:
        inst["depth"] = {"mean": depth, "std": 0.01, "min": round(depth - 0.02, 3), "max": round(depth + 0.02, 3)}
    return inst


def _twin(kind: str, name: str, frames: list[dict], fps: float = 0.0) -> dict:
    return {
        "version": 1,
        "source": {"kind": kind, "name": name, "width": W, "height": H, "fps": fps, "num_frames": len(frames)},
        "models": {"segmenter": "fixture", "labeller": "fixture"},
        "frames": frames,
    }


def devset() -> None:
    """A devset-format folder (README.md + queries.json + twins/) with one image and one video twin of its own."""
    d = OUT / "devset"
    bench = [
        _twin_instance(0, "mug", box(2, 2, 8, 8), 0.8, 0.2),  # id 0: perception numbers instances from 0
        _twin_instance(1, "hammer", box(12, 2, 16, 14), 0.7, 0.3, alt_labels=[["mallet", 0.4]]),
        _twin_instance(2, "screwdriver", box(18, 4, 20, 16), 0.6, 0.35),
        _twin_instance(3, "lamp", box(2, 22, 12, 28), 0.9, 0.6),
        _twin_instance(4, "object", box(20, 26, 23, 31), 0.12, 0.5),
    ]
    image = _twin("image", "workbench.jpg", [{"index": 0, "time": 0.0, "instances": bench}])
    dump(d / "twins" / "workbench.json", image)
    frames = []
    for t in range(3):
        insts = [
            _twin_instance(1, "ball", box(16, 2 + 6 * t, 20, 6 + 6 * t), 0.8),  # rolls to the right
            _twin_instance(2, "dog", box(4, 20, 14, 28), 0.9),  # never moves
        ]
        if t == 2:
            insts.append(_twin_instance(3, "cat", box(4, 4, 10, 10), 0.7))  # only in the last frame
        frames.append({"index": t, "time": round(t / 10, 4), "instances": insts})
    dump(d / "twins" / "hallway.json", _twin("video", "hallway.mp4", frames, fps=10.0))
    queries = [
        ("wb1", "workbench", "what would I hit a nail with?", "semantic", 1, [1]),
        ("wb2", "workbench", "the things a carpenter would grab to fix a shelf", "semantic", 2, [1, 2]),
        ("wb3", "workbench", "the object right above the hammer", "spatial", 1, [0]),
        ("wb4", "workbench", "the light on the right side of the bench", "spatial", 2, [3]),
        ("wb5", "workbench", "the laptop on the bench", "semantic", 1, []),
        ("hw1", "hallway", "the thing rolling to the right", "temporal", 1, [1]),
        ("hw2", "hallway", "the pet that only shows up at the end", "temporal", 2, [3]),
        ("hw3", "hallway", "the animal that stays put the whole time", "temporal", 2, [2]),
    ]
    dump(
        d / "queries.json",
        {
            "about": "Test fixture in the devset format: two hand-made twins and eight questions.",
            "queries": [
                {"qid": q, "twin": f"twins/{t}.json", "query": text, "category": c, "level": lv, "gold_ids": ids}
                for q, t, text, c, lv, ids in queries
            ],
        },
    )
    (d / "README.md").write_text(
        "# devset fixture\n\nA test fixture in the devset format (`queries.json` + `twins/*.json`, schema v1): two "
        "hand-made twins\n(a workbench image, a hallway video of 3 frames) and eight questions written for the "
        "tests.\n"
    )


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    reasonseg()
    llmseg40k()
    refcocog()
    mevis()
    revos()
    davis()
    devset()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
