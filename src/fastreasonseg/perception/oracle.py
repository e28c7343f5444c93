"""Oracle twins: digital twins built from ground-truth annotations instead of perception models.

They are the upper bound of the pipeline (perfect masks and labels), the source of training data,
and the fixtures of many tests. Two annotation formats are read:

* DAVIS folders (``JPEGImages/480p/<seq>/*.jpg`` + ``Annotations/480p/<seq>/*.png``): DAVIS-2016
  masks are 0/255 with one object; DAVIS-2017 masks are palette PNGs whose values are object ids.
* COCO instances JSON (polygons or RLE); instance ids are renumbered 1..N (the COCO annotation ids
  are kept in ``twin.meta["annotation_ids"]``) so the text view stays short.

An oracle twin has no depth unless a :class:`~fastreasonseg.perception.protocols.DepthEstimator`
is given, because the annotations carry none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils

from fastreasonseg.errors import InputError
from fastreasonseg.perception.protocols import DepthEstimator
from fastreasonseg.twin.schema import DigitalTwin, Frame, Instance, Models, Source

# DAVIS has no class labels; these name the annotated object of each DAVIS-2016 sequence.
DAVIS2016_LABELS: dict[str, str] = {
    "bear": "bear",
    "blackswan": "swan",
    "bmx-bumps": "cyclist",
    "bmx-trees": "cyclist",
    "boat": "boat",
    "breakdance": "dancer",
    "breakdance-flare": "dancer",
    "bus": "bus",
    "camel": "camel",
    "car-roundabout": "car",
    "car-shadow": "car",
    "car-turn": "car",
    "cows": "cow",
    "dance-jump": "dancer",
    "dance-twirl": "dancer",
    "dog": "dog",
    "dog-agility": "dog",
    "drift-chicane": "car",
    "drift-straight": "car",
    "drift-turn": "car",
    "elephant": "elephant",
    "flamingo": "flamingo",
    "goat": "goat",
    "hike": "hiker",
    "hockey": "hockey player",
    "horsejump-high": "horse rider",
    "horsejump-low": "horse rider",
    "kite-surf": "kite surfer",
    "kite-walk": "kite surfer",
    "libby": "dog",
    "lucia": "person",
    "mallard-fly": "duck",
    "mallard-water": "duck",
    "motocross-bumps": "motorcyclist",
    "motocross-jump": "motorcyclist",
    "motorbike": "motorcyclist",
    "paragliding": "paraglider",
    "paragliding-launch": "paraglider",
    "parkour": "person",
    "rhino": "rhino",
    "rollerblade": "skater",
    "scooter-black": "scooter rider",
    "scooter-gray": "scooter rider",
    "soapbox": "soapbox cart",
    "soccerball": "soccer ball",
    "stroller": "stroller",
    "surf": "surfer",
    "swing": "person on swing",
    "tennis": "tennis player",
    "train": "train",
}

_IMAGE_EXTS = {".jpg", ".jpeg", ".png"}


def _read_png(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            if im.mode == "P":
                return np.asarray(im)  # palette indices = object ids (DAVIS-2017)
            return np.asarray(im.convert("L"))
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"cannot read annotation {path}: {exc}") from None


def _read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"cannot read frame {path}: {exc}") from None


def davis_sequence_dirs(root: str | os.PathLike, sequence: str, resolution: str = "480p") -> tuple[Path, Path]:
    """The (frames, annotations) folders of one DAVIS sequence, with a clear error if either is missing."""
    r = Path(root)
    if not r.is_dir():
        raise InputError(f"DAVIS root not found: {r}")
    frames = r / "JPEGImages" / resolution / sequence
    annos = r / "Annotations" / resolution / sequence
    for d, what in ((frames, "frames"), (annos, "annotations")):
        if not d.is_dir():
            available = sorted(p.name for p in (r / "Annotations" / resolution).glob("*"))[:8]
            raise InputError(
                f"DAVIS {what} folder not found: {d} (expected <root>/JPEGImages/{resolution}/<seq> and "
                f"<root>/Annotations/{resolution}/<seq>; sequences here: {available})"
            )
    return frames, annos


def oracle_from_davis(
    root: str | os.PathLike,
    sequence: str,
    *,
    stride: int = 1,
    max_frames: int | None = None,
    fps: float = 24.0,
    labels: dict[int, str] | None = None,
    depth: DepthEstimator | None = None,
    resolution: str = "480p",
) -> DigitalTwin:
    """Oracle twin of one DAVIS sequence.

    Object ids are the annotation values (1 for DAVIS-2016's 255 foreground). ``labels`` maps ids
    to names; by default DAVIS-2016 sequences get their object's name (``DAVIS2016_LABELS``) and
    other objects are called ``object``.
    """
    if stride < 1:
        raise InputError(f"stride must be >= 1, got {stride}")
    frames_dir, annos_dir = davis_sequence_dirs(root, sequence, resolution)
    annos = sorted(p for p in annos_dir.iterdir() if p.suffix.lower() == ".png")
    if not annos:
        raise InputError(f"no PNG annotations in {annos_dir}")
    num_source = len(annos)
    default_label = DAVIS2016_LABELS.get(sequence, "object")
    out_frames: list[Frame] = []
    height = width = 0
    for index in range(0, num_source, stride):
        if max_frames is not None and len(out_frames) >= max_frames:
            break
        anno = _read_png(annos[index])
        if height == 0:
            height, width = anno.shape[:2]
        elif anno.shape[:2] != (height, width):
            raise InputError(f"{annos[index]} is {anno.shape[1]}x{anno.shape[0]}, other frames are {width}x{height}")
        values = [int(v) for v in np.unique(anno) if v != 0]
        binary = values == [255]  # DAVIS-2016: one object stored as 255
        depth_map = None
        if depth is not None:
            jpg = frames_dir / (annos[index].stem + ".jpg")
            depth_map = depth.predict(_read_rgb(jpg))
        instances = []
        for v in values:
            if v == 255 and not binary:
                continue  # DAVIS-2017 marks void/ignore pixels with 255
            obj_id = 1 if binary else v
            name = (labels or {}).get(obj_id, default_label)
            inst = Instance.from_mask(obj_id, name, anno == v, score=1.0, depth_map=depth_map)
            if inst is not None:
                instances.append(inst)
        out_frames.append(Frame(index=index, time=round(index / fps, 4) if fps > 0 else 0.0, instances=instances))
    twin = DigitalTwin(
        source=Source(kind="video", name=sequence, width=width, height=height, fps=fps, num_frames=num_source),
        models=Models(segmenter="oracle:davis", labeller="oracle:davis", depth=getattr(depth, "name", None)),
        frames=out_frames,
        meta={"oracle": "davis", "davis_root": str(Path(root)), "sequence": sequence, "stride": stride},
    )
    twin.validate_all()
    return twin


class CocoOracle:
    """Oracle twins of the images of a COCO instances JSON (loaded once, then ``twin(image_id)`` many)."""

    def __init__(self, instances_json: str | os.PathLike) -> None:
        p = Path(instances_json)
        if not p.is_file():
            raise InputError(f"COCO instances file not found: {p}")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read COCO instances file {p}: {exc}") from None
        if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= data.keys():
            raise InputError(f"{p} is not a COCO instances file (needs images, annotations and categories)")
        self.path = p
        self.images = {int(im["id"]): im for im in data["images"]}
        self.categories = {int(c["id"]): c["name"] for c in data["categories"]}
        self.annotations: dict[int, list[dict]] = {}
        for ann in data["annotations"]:
            self.annotations.setdefault(int(ann["image_id"]), []).append(ann)

    def annotation_mask(self, ann: dict, height: int, width: int) -> np.ndarray:
        seg = ann.get("segmentation")
        if isinstance(seg, list):  # polygons
            polys = [p for p in seg if len(p) >= 6]
            if not polys:
                return np.zeros((height, width), dtype=bool)
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
        elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, height, width)
        elif isinstance(seg, dict):
            counts = seg["counts"]
            rle = {"size": seg["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        else:
            raise InputError(f"annotation {ann.get('id')} has no usable segmentation")
        return mask_utils.decode(rle).astype(bool)

    def twin(self, image_id: int, *, depth: DepthEstimator | None = None, image_root: str | None = None) -> DigitalTwin:
        """Oracle twin of one image; ``depth`` (with ``image_root`` holding the images) adds depth statistics."""
        if image_id not in self.images:
            raise InputError(f"image id {image_id} is not in {self.path}")
        im = self.images[image_id]
        h, w = int(im["height"]), int(im["width"])
        depth_map = None
        if depth is not None:
            if image_root is None:
                raise InputError("depth statistics for a COCO oracle twin need image_root (the images folder)")
            depth_map = depth.predict(_read_rgb(Path(image_root) / im["file_name"]))
        instances = []
        ann_ids = {}
        for ann in sorted(self.annotations.get(image_id, []), key=lambda a: int(a["id"])):
            if ann.get("iscrowd", 0):
                continue
            inst = Instance.from_mask(
                len(instances) + 1,
                self.categories.get(int(ann["category_id"]), "object"),
                self.annotation_mask(ann, h, w),
                score=1.0,
                depth_map=depth_map,
            )
            if inst is not None:
                ann_ids[str(inst.id)] = int(ann["id"])
                instances.append(inst)
        twin = DigitalTwin(
            source=Source(kind="image", name=str(im.get("file_name", image_id)), width=w, height=h),
            models=Models(segmenter="oracle:coco", labeller="oracle:coco", depth=getattr(depth, "name", None)),
            frames=[Frame(index=0, time=0.0, instances=instances)],
            meta={"oracle": "coco", "image_id": image_id, "annotation_ids": ann_ids},
        )
        twin.validate_all()
        return twin


def oracle_from_coco(instances_json: str | os.PathLike, image_id: int) -> DigitalTwin:
    """Oracle twin of one image of a COCO instances JSON (see :class:`CocoOracle` for many images)."""
    return CocoOracle(instances_json).twin(image_id)
