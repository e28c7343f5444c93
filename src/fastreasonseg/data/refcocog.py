"""RefCOCOg (UMD split): ``<root>/refs(umd).p`` + ``<root>/instances.json`` + COCO train2014 images.

``refs(umd).p`` is a pickled list of refs ``{ref_id, ann_id, image_id, split, sentences: [{sent, ...}], ...}``;
``instances.json`` is COCO's (``images``, ``annotations`` with polygon or RLE ``segmentation``, ``categories``).
One sample per ref: every sentence is a query about the ref's object (benchmarks score each sentence as a sample, as
LISA does). The mask is the annotation's segmentation decoded with pycocotools.

The pickle is read with an unpickler that refuses every class or function (refs are plain lists, dicts and strings),
so a tampered file cannot run code. Python-2 pickles (the original release) are supported.

Images: ``images=`` folder, else the first of ``<root>/images``, ``<root>/train2014``,
``<root>/../images/mscoco/images/train2014`` (LISA's layout) that exists.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from fastreasonseg.data.base import CorruptSample, DatasetReader, Sample, load_json
from fastreasonseg.errors import InputError


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # pragma: no cover - only reached by a malicious file
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a refs file (plain data only)")


def load_refs(path: Path) -> list[dict]:
    """Read a ``refs(*).p`` file (list of dicts) safely."""
    if not path.is_file():
        raise InputError(f"RefCOCOg refs file not found: {path} (expected <root>/refs(umd).p next to instances.json)")
    for encoding in ("ASCII", "latin1"):
        try:
            with open(path, "rb") as fh:
                refs = _DataOnlyUnpickler(fh, encoding=encoding).load()
            break
        except UnicodeDecodeError:
            continue
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
            raise InputError(f"cannot read RefCOCOg refs {path}: {exc}") from None
    else:
        raise InputError(f"cannot read RefCOCOg refs {path}: undecodable strings")
    if not isinstance(refs, list):
        raise InputError(f"{path}: expected a pickled list of refs, got {type(refs).__name__}")
    return refs


def segmentation_mask(segm, height: int, width: int) -> np.ndarray:
    """COCO ``segmentation`` (polygon list, uncompressed or compressed RLE) → boolean (H, W)."""
    if isinstance(segm, list):
        if not segm or not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in segm):
            raise CorruptSample("polygon segmentation needs lists of >= 3 (x, y) points")
        rles = mask_utils.frPyObjects(segm, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(segm, dict) and "counts" in segm and "size" in segm:
        if [int(v) for v in segm["size"]] != [height, width]:
            raise CorruptSample(f"RLE size {segm['size']} differs from the image's {[height, width]}")
        if isinstance(segm["counts"], list):
            rle = mask_utils.frPyObjects(segm, height, width)
        else:
            counts = segm["counts"]
            rle = {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        raise CorruptSample("segmentation is neither polygons nor RLE")
    return mask_utils.decode(rle).astype(bool)


class RefCOCOgReader(DatasetReader):
    name = "refcocog"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "val",
        images: str | os.PathLike | None = None,
        refs_file: str = "refs(umd).p",
    ) -> None:
        super().__init__(root, split)
        inst_path = self.root / "instances.json"
        refs = load_refs(self.root / refs_file)
        if not inst_path.is_file():
            raise InputError(f"COCO instances file not found: {inst_path} (expected next to {refs_file})")
        inst = load_json(inst_path, "COCO instances file")
        if not isinstance(inst, dict) or not {"images", "annotations"} <= set(inst):
            raise InputError(f"{inst_path}: expected COCO instances with 'images' and 'annotations'")
        self._imgs = {im["id"]: im for im in inst["images"] if isinstance(im, dict) and "id" in im}
        self._anns = {a["id"]: a for a in inst["annotations"] if isinstance(a, dict) and "id" in a}
        self._cats = {c["id"]: c.get("name") for c in inst.get("categories", []) if isinstance(c, dict) and "id" in c}
        self._refs = [r for r in refs if isinstance(r, dict) and r.get("split") == split]
        if not self._refs:
            splits = sorted({str(r.get("split")) for r in refs if isinstance(r, dict)})
            raise InputError(f"no refs with split {split!r} in {self.root / refs_file} (splits there: {splits})")
        if images is not None:
            self.images = Path(images)
            if not self.images.is_dir():
                raise InputError(f"RefCOCOg images folder not found: {self.images}")
        else:
            candidates = [
                self.root / "images",
                self.root / "train2014",
                self.root.parent / "images" / "mscoco" / "images" / "train2014",
            ]
            self.images = next((c for c in candidates if c.is_dir()), candidates[0])

    def _entries(self) -> list[dict]:
        return self._refs

    def _entry_id(self, ref: dict) -> str:
        return str(ref.get("ref_id", f"ann{ref.get('ann_id')}"))

    def _load(self, ref: dict) -> list[Sample]:
        ann = self._anns.get(ref.get("ann_id"))
        if ann is None:
            raise CorruptSample(f"annotation {ref.get('ann_id')} not in instances.json")
        img = self._imgs.get(ref.get("image_id", ann.get("image_id")))
        if img is None:
            raise CorruptSample(f"image {ref.get('image_id')} not in instances.json")
        sents = [s.get("sent") for s in ref.get("sentences", []) if isinstance(s, dict)]
        sents = [s for s in sents if isinstance(s, str) and s.strip()]
        if not sents:
            raise CorruptSample("ref has no sentences")
        h, w = int(img["height"]), int(img["width"])
        path = self.images / img["file_name"]
        if not path.is_file():
            raise CorruptSample(f"image not found: {path}")
        mask = segmentation_mask(ann.get("segmentation"), h, w)
        return [
            Sample(
                id=self._entry_id(ref),
                dataset=self.name,
                split=self.split,
                queries=sents,
                image=path,
                mask=mask,
                category=self._cats.get(ann.get("category_id")),
                extra={"ann_id": ann["id"], "image_id": img["id"]},
            )
        ]
