"""ReasonSeg (LISA): ``<root>/<split>/X.jpg`` + ``X.json``.

Each JSON (labelme-like) holds ``text`` (a list of queries about the same target), ``is_sentence`` (long sentence vs
short phrase) and ``shapes`` (``{label, points}`` polygons in pixels). The mask follows LISA's ``get_mask_from_json``:
shapes labelled ``flag`` are skipped, the remaining polygons are drawn (outline and interior) from the largest area to
the smallest, with value 255 ("ignore", excluded from the metrics) when the label contains ``ignore`` and 1 otherwise.
Points are truncated to integer pixels as LISA does. Rasterisation uses PIL instead of OpenCV; edge pixels of a
polygon can differ by one pixel from LISA's masks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fastreasonseg.data.base import CorruptSample, DatasetReader, Sample, image_size
from fastreasonseg.errors import InputError

IGNORE_VALUE = 255


def _polygon_points(shape: dict, where: str) -> list[tuple[int, int]]:
    pts = shape.get("points")
    if not isinstance(pts, list) or len(pts) < 1:
        raise CorruptSample(f"{where}: shape {shape.get('label')!r} has no points")
    try:
        return [(int(float(x)), int(float(y))) for x, y in pts]  # truncation toward zero, like np.int32(points)
    except (TypeError, ValueError) as exc:
        raise CorruptSample(f"{where}: shape {shape.get('label')!r} has malformed points ({exc})") from None


def _draw(mask: Image.Image, points: list[tuple[int, int]], value: int) -> None:
    draw = ImageDraw.Draw(mask)
    if len(points) >= 3:
        draw.polygon(points, fill=value, outline=value)
    elif len(points) == 2:
        draw.line(points, fill=value)
    else:
        draw.point(points, fill=value)


def mask_from_shapes(shapes: list, height: int, width: int, where: str = "") -> np.ndarray:
    """LISA's ReasonSeg mask: ``uint8`` (H, W) with 0 background, 1 target, 255 ignore (see the module docstring)."""
    if not isinstance(shapes, list):
        raise CorruptSample(f"{where}: 'shapes' must be a list")
    polys: list[tuple[int, str, list[tuple[int, int]]]] = []
    for shape in shapes:
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str):
            raise CorruptSample(f"{where}: every shape needs a string 'label'")
        label = shape["label"]
        if label.lower() == "flag":  # deprecated annotations, ignored by LISA
            continue
        pts = _polygon_points(shape, where)
        tmp = Image.new("L", (width, height), 0)
        _draw(tmp, pts, 1)
        polys.append((int(np.count_nonzero(np.asarray(tmp))), label, pts))
    polys.sort(key=lambda p: -p[0])  # largest first: smaller (and ignore) regions drawn on top
    canvas = Image.new("L", (width, height), 0)
    for _, label, pts in polys:
        _draw(canvas, pts, IGNORE_VALUE if "ignore" in label.lower() else 1)
    return np.asarray(canvas, dtype=np.uint8).copy()


class ReasonSegReader(DatasetReader):
    """ReasonSeg ``train`` / ``val`` / ``test`` split: one sample per image, its ``text`` list as the queries.

    LISA's validation scores the first query of each image; benchmarks may score every query (see ``queries``).
    """

    name = "reasonseg"

    def __init__(self, root: str | os.PathLike, split: str = "val") -> None:
        super().__init__(root, split)
        self.dir = self.root / split
        if not self.dir.is_dir():
            splits = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise InputError(
                f"ReasonSeg split folder not found: {self.dir} (expected <root>/<split>/X.jpg + X.json; "
                f"folders here: {splits})"
            )
        self._images = sorted(p for p in self.dir.iterdir() if p.suffix.lower() == ".jpg")
        if not self._images:
            raise InputError(f"no .jpg images in the ReasonSeg split folder {self.dir} (expected X.jpg + X.json)")

    def _entries(self) -> list[Path]:
        return self._images

    def _entry_id(self, entry: Path) -> str:
        return entry.stem

    def _load(self, image: Path) -> list[Sample]:
        jpath = image.with_suffix(".json")
        where = str(jpath)
        if not jpath.is_file():
            raise CorruptSample(f"annotation not found: {jpath}")
        try:
            anno = json.loads(jpath.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptSample(f"malformed JSON {jpath}: {exc}") from None
        if not isinstance(anno, dict):
            raise CorruptSample(f"{where}: expected a JSON object")
        text = anno.get("text")
        if isinstance(text, str):
            text = [text]
        if not isinstance(text, list) or not text or not all(isinstance(t, str) for t in text):
            raise CorruptSample(f"{where}: 'text' must be a non-empty list of strings")
        is_sentence = anno.get("is_sentence")
        if is_sentence is not None and not isinstance(is_sentence, bool):
            raise CorruptSample(f"{where}: 'is_sentence' must be true or false")
        h, w = image_size(image)
        mask = mask_from_shapes(anno.get("shapes", []), h, w, where)
        return [
            Sample(
                id=image.stem,
                dataset=self.name,
                split=self.split,
                queries=list(text),
                image=image,
                mask=mask,
                is_sentence=is_sentence,
            )
        ]
