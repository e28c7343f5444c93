"""DAVIS folders: ``<root>/JPEGImages/<res>/<seq>/*.jpg`` + ``<root>/Annotations/<res>/<seq>/*.png``.

DAVIS-2016 masks are single-object 0/255 grey PNGs: one sample per sequence (id ``<seq>``). DAVIS-2017 masks are
palette PNGs whose indices are object ids (255 = void): one sample per object (id ``<seq>/<obj>``), with the object's
id in ``extra["obj_id"]``. DAVIS has no text queries; DAVIS-2016 samples get the object's name (e.g. ``swan``) as
their one query when it is known, others none.

``split``: when ``<root>/ImageSets/<year>/<split>.txt`` exists (year 2017 first, then 2016) it lists the sequences;
otherwise every annotated sequence is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fastreasonseg.data.base import CorruptSample, DatasetReader, Sample
from fastreasonseg.errors import InputError

VOID = 255


def _label_map(path: Path) -> tuple[np.ndarray, bool]:
    """(labels, is_palette) of an annotation PNG; raises CorruptSample if unreadable."""
    try:
        with Image.open(path) as im:
            palette = im.mode == "P"
            a = np.asarray(im) if palette else np.asarray(im.convert("L"))
    except (OSError, UnidentifiedImageError) as exc:
        raise CorruptSample(f"unreadable annotation {path}: {exc}") from None
    return a, palette


class DavisReader(DatasetReader):
    name = "davis"

    def __init__(self, root: str | os.PathLike, split: str = "val", resolution: str = "480p") -> None:
        super().__init__(root, split)
        self.frames_dir = self.root / "JPEGImages" / resolution
        self.annos_dir = self.root / "Annotations" / resolution
        for d, what in ((self.frames_dir, "frames"), (self.annos_dir, "annotations")):
            if not d.is_dir():
                raise InputError(
                    f"DAVIS {what} folder not found: {d} (expected <root>/JPEGImages/{resolution}/<seq>/*.jpg and "
                    f"<root>/Annotations/{resolution}/<seq>/*.png)"
                )
        self._seqs = self._sequences()
        if not self._seqs:
            raise InputError(f"no sequences in {self.annos_dir}")

    def _sequences(self) -> list[str]:
        for year in ("2017", "2016"):
            listing = self.root / "ImageSets" / year / f"{self.split}.txt"
            if listing.is_file():
                return [s.strip() for s in listing.read_text().splitlines() if s.strip()]
        return sorted(p.name for p in self.annos_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _entries(self) -> list[str]:
        return self._seqs

    def _entry_id(self, seq: str) -> str:
        return seq

    def _load(self, seq: str) -> list[Sample]:
        fdir, adir = self.frames_dir / seq, self.annos_dir / seq
        if not fdir.is_dir():
            raise CorruptSample(f"frames folder not found: {fdir}")
        if not adir.is_dir():
            raise CorruptSample(f"annotations folder not found: {adir}")
        frames = sorted(p for p in fdir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        if not frames:
            raise CorruptSample(f"no .jpg frames in {fdir}")
        annos = [adir / f"{p.stem}.png" for p in frames]
        missing = [a.name for a in annos if not a.is_file()]
        if missing:
            raise CorruptSample(f"{len(missing)} annotation(s) missing in {adir}: {', '.join(missing[:5])}")
        # Read every annotation once: validates the files and finds the object ids (objects may enter late).
        labels = []
        palette = False
        for a in annos:
            lab, pal = _label_map(a)
            if labels and lab.shape != labels[0].shape:
                raise CorruptSample(
                    f"annotation {a} is {lab.shape[1]}x{lab.shape[0]}, others are "
                    f"{labels[0].shape[1]}x{labels[0].shape[0]}"
                )
            labels.append(lab)
            palette = palette or pal
        stack = np.stack(labels)
        if not palette:  # DAVIS-2016: 0/255 single object
            from fastreasonseg.perception.oracle import DAVIS2016_LABELS

            name = DAVIS2016_LABELS.get(seq)
            return [
                Sample(
                    id=seq,
                    dataset=self.name,
                    split=self.split,
                    queries=[name] if name else [],
                    frames=frames,
                    category=name,
                    extra={"sequence": seq, "obj_id": 1},
                    _mask_loader=_loader(stack, None),
                )
            ]
        ids = [int(v) for v in np.unique(stack) if v not in (0, VOID)]
        return [
            Sample(
                id=f"{seq}/{obj}",
                dataset=self.name,
                split=self.split,
                queries=[],
                frames=frames,
                extra={"sequence": seq, "obj_id": obj},
                _mask_loader=_loader(stack, obj),
            )
            for obj in ids
        ]


def _loader(stack: np.ndarray, obj: int | None) -> Callable[[int], np.ndarray]:
    if obj is None:
        return lambda t: stack[t] != 0
    return lambda t: stack[t] == obj
