"""Video reasoning / referring segmentation sets in the Ref-YouTube-VOS style: ReVOS and MeViS.

Files: ``JPEGImages/<vid>/<frame>.jpg``, ``meta_expressions.json``
``{videos: {vid: {frames: [names], expressions: {id: {exp, obj_id, anno_id, type_id}}}}}`` and ``mask_dict.json``
``{anno_id: [COCO RLE | null per frame]}`` (null = object absent in that frame). One sample per expression
(id ``<vid>/<exp id>``); its frame masks are decoded on demand. ``anno_id`` may be a list (MeViS: several objects
for one expression; ReVOS as well) and the mask is then the union.

Layouts searched (``split`` is e.g. ``valid_u``, ``valid``, ``train``):

* MeViS: ``<root>/<split>/{JPEGImages, meta_expressions.json, mask_dict.json}``
* ReVOS: ``<root>/{JPEGImages, meta_expressions_<split>_.json | meta_expressions_<split>.json, mask_dict.json}``
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fastreasonseg.data.base import CorruptSample, DatasetReader, Sample, image_size, load_json
from fastreasonseg.errors import InputError
from fastreasonseg.twin.masks import decode_mask, rle_is_valid

_FRAME_EXTS = (".jpg", ".jpeg", ".png")


class _RVOSReader(DatasetReader):
    def __init__(self, root: str | os.PathLike, split: str) -> None:
        super().__init__(root, split)
        base, meta_path, mask_path = self._locate()
        self.base = base
        self.frames_dir = base / "JPEGImages"
        if not self.frames_dir.is_dir():
            raise InputError(f"{self.name} frames folder not found: {self.frames_dir} (expected JPEGImages/<vid>/)")
        meta = load_json(meta_path, f"{self.name} expressions file")
        videos = meta.get("videos") if isinstance(meta, dict) else None
        if not isinstance(videos, dict):
            raise InputError(f"{meta_path}: expected {{'videos': {{vid: {{frames, expressions}}}}}}")
        self.meta_path = meta_path
        self.mask_path = mask_path
        self._videos = videos
        masks = load_json(mask_path, f"{self.name} mask file")
        if not isinstance(masks, dict):
            raise InputError(f"{mask_path}: expected {{anno_id: [RLE | null per frame]}}")
        self._masks = masks
        self._index: list[tuple[str, str]] = []
        for vid in sorted(videos):
            v = videos[vid]
            exps = v.get("expressions") if isinstance(v, dict) else None
            if isinstance(exps, dict) and exps:
                self._index.extend((vid, eid) for eid in sorted(exps, key=_natural))
            else:
                self._index.append((vid, ""))

    def _layouts(self) -> list[tuple[Path, Path, Path]]:
        r, s = self.root, self.split
        return [
            (r / s, r / s / "meta_expressions.json", r / s / "mask_dict.json"),
            (r, r / f"meta_expressions_{s}_.json", r / "mask_dict.json"),
            (r, r / f"meta_expressions_{s}.json", r / "mask_dict.json"),
        ]

    def _locate(self) -> tuple[Path, Path, Path]:
        layouts = self._layouts()
        for base, meta, masks in layouts:
            if meta.is_file():
                if not masks.is_file():
                    raise InputError(
                        f"{self.name} mask file not found: {masks} (needed next to {meta.name}; "
                        f"split {self.split!r} may have no public ground truth)"
                    )
                return base, meta, masks
        tried = ", ".join(str(m) for _, m, _ in layouts)
        raise InputError(f"{self.name} expressions file not found for split {self.split!r}; looked for {tried}")

    def _entries(self) -> list[tuple[str, str]]:
        return self._index

    def _entry_id(self, entry: tuple[str, str]) -> str:
        return f"{entry[0]}/{entry[1]}" if entry[1] else entry[0]

    def _frame_path(self, vid: str, name: str) -> Path:
        d = self.frames_dir / vid
        for ext in _FRAME_EXTS:
            p = d / f"{name}{ext}"
            if p.is_file():
                return p
        raise CorruptSample(f"frame {name} of video {vid} not found in {d}")

    def _load(self, entry: tuple[str, str]) -> list[Sample]:
        vid, eid = entry
        v = self._videos[vid]
        if not eid:
            raise CorruptSample(f"video {vid} has no expressions")
        frames = v.get("frames")
        if not isinstance(frames, list) or not frames:
            raise CorruptSample(f"video {vid} has no 'frames' list")
        exp = v["expressions"][eid]
        if not isinstance(exp, dict) or not isinstance(exp.get("exp"), str):
            raise CorruptSample("expression without an 'exp' string")
        anno = exp.get("anno_id")
        anno_ids = anno if isinstance(anno, list) else [anno]
        if not anno_ids or any(a is None for a in anno_ids):
            raise CorruptSample("expression without 'anno_id'")
        tracks = []
        size: tuple[int, int] | None = None
        for a in anno_ids:
            track = self._masks.get(str(a))
            if track is None:
                raise CorruptSample(f"anno_id {a} not in {self.mask_path.name}")
            if not isinstance(track, list) or len(track) != len(frames):
                n = len(track) if isinstance(track, list) else "no"
                raise CorruptSample(f"anno_id {a} has {n} masks for {len(frames)} frame(s)")
            for t, rle in enumerate(track):
                if rle is None:
                    continue
                if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
                    raise CorruptSample(f"anno_id {a}, frame {t}: not a COCO RLE")
                problem = rle_is_valid(rle)
                if problem:
                    raise CorruptSample(f"anno_id {a}, frame {t}: corrupt RLE ({problem})")
                hw = (int(rle["size"][0]), int(rle["size"][1]))
                if size is None:
                    size = hw
                elif hw != size:
                    raise CorruptSample(f"anno_id {a}, frame {t}: RLE size {list(hw)} differs from {list(size)}")
            tracks.append(track)
        paths = [self._frame_path(vid, str(f)) for f in frames]
        if size is None:  # the object never appears: take the frame size
            size = image_size(paths[0])
        obj = exp.get("obj_id")
        type_id = exp.get("type_id")
        return [
            Sample(
                id=f"{vid}/{eid}",
                dataset=self.name,
                split=self.split,
                queries=[exp["exp"]],
                frames=paths,
                category=None if type_id is None else str(type_id),
                extra={"video": vid, "expression_id": eid, "obj_id": obj, "anno_id": anno, "type_id": type_id},
                _mask_loader=_track_loader(tracks, size),
            )
        ]


def _track_loader(tracks: list[list], size: tuple[int, int]) -> Callable[[int], np.ndarray]:
    def load(t: int) -> np.ndarray:
        out = np.zeros(size, dtype=bool)
        for track in tracks:
            rle = track[t]
            if rle is not None:
                out |= decode_mask(rle)
        return out

    return load


def _natural(key: str):
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


class ReVOSReader(_RVOSReader):
    """ReVOS (``meta_expressions_<split>_.json``). ``category`` is the expression's ``type_id`` as a string."""

    name = "revos"

    def __init__(self, root: str | os.PathLike, split: str = "valid") -> None:
        super().__init__(root, split)


class MeViSReader(_RVOSReader):
    """MeViS (``<split>/meta_expressions.json``; ``valid_u`` has ground truth, ``valid`` does not)."""

    name = "mevis"

    def __init__(self, root: str | os.PathLike, split: str = "valid_u") -> None:
        super().__init__(root, split)
