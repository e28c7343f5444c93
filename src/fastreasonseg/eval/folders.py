"""Score a DAVIS-layout folder of predicted masks against ground truth (J, F, J&F per sequence).

Layout of both folders: ``<dir>/<sequence>/<frame>.png``. A pixel is foreground when its value is non-zero (DAVIS-2016
masks are 0/255; palette PNGs of DAVIS-2017 are read as their indices, so every object counts as foreground, and the
ground truth's void index 255 is excluded from scoring as in the DAVIS evaluation).
The ground-truth folder may also be a DAVIS root (``<root>/Annotations/480p`` is then used).

The frames scored are the ground truth's. A predicted frame that is missing, unreadable or of the wrong size is
scored as an empty mask and reported (``missing`` / ``invalid``), so one bad file never loses the whole run. Every
frame of a sequence is scored (also the first and last, unlike the semi-supervised DAVIS protocol, which excludes
them because the first mask is given).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fastreasonseg.errors import InputError
from fastreasonseg.eval.metrics import boundary_prf, davis_statistics, region_j

VOID = 255  # DAVIS-2017 palette index of "void" pixels

__all__ = ["FolderReport", "SequenceReport", "read_mask_png", "resolve_gt_dir", "score_mask_folders"]


def read_mask_png(path: Path) -> np.ndarray:
    """A PNG as a 2-D integer array (palette indices for ``P`` images, grey levels otherwise).

    Raises ``OSError``/``ValueError`` with the reason when the file cannot be decoded.
    """
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("P", "L", "1", "I", "I;16"):
                a = np.asarray(im)
            else:
                a = np.asarray(im.convert("L"))
    except UnidentifiedImageError as exc:
        raise ValueError(f"not an image ({exc})") from None
    if a.ndim != 2:
        raise ValueError(f"expected a single-channel mask, got shape {a.shape}")
    return a


def _read_gt(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(foreground, void) of a ground-truth PNG; palette index 255 is DAVIS-2017's void (excluded from scoring)."""
    with Image.open(path) as im:
        palette = im.mode == "P"
    a = read_mask_png(path)
    if palette:
        void = a == VOID
        return (a != 0) & ~void, (void if void.any() else None)
    return a != 0, None


def resolve_gt_dir(gt: str | os.PathLike) -> Path:
    """The folder holding ``<sequence>/*.png``: ``gt`` itself or ``gt/Annotations/480p`` for a DAVIS root."""
    g = Path(gt)
    if not g.exists():
        raise InputError(f"ground-truth folder not found: {g} (expected <dir>/<sequence>/<frame>.png)")
    if not g.is_dir():
        raise InputError(f"ground truth must be a folder of <sequence>/<frame>.png, got a file: {g}")
    nested = g / "Annotations" / "480p"
    if nested.is_dir():
        return nested
    return g


@dataclass
class SequenceReport:
    """Per-frame scores and problems of one sequence."""

    name: str
    frames: list[str] = field(default_factory=list)
    j: list[float] = field(default_factory=list)
    f: list[float] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)

    @property
    def J(self) -> float:
        return float(np.mean(self.j)) if self.j else float("nan")

    @property
    def F(self) -> float:
        return float(np.mean(self.f)) if self.f else float("nan")

    @property
    def JF(self) -> float:
        return (self.J + self.F) / 2

    def as_dict(self) -> dict:
        js = davis_statistics(self.j)
        fs = davis_statistics(self.f)
        return {
            "J": self.J,
            "F": self.F,
            "J&F": self.JF,
            "J_recall": js.recall,
            "J_decay": js.decay,
            "F_recall": fs.recall,
            "F_decay": fs.decay,
            "frames": len(self.frames),
            "missing_frames": len(self.missing),
            "invalid_frames": len(self.invalid),
        }


@dataclass
class FolderReport:
    """Scores of a prediction folder: per sequence, and the means over sequences."""

    pred_dir: Path
    gt_dir: Path
    sequences: dict[str, SequenceReport] = field(default_factory=dict)
    missing_sequences: list[str] = field(default_factory=list)
    extra_sequences: list[str] = field(default_factory=list)

    def _mean(self, attr: str) -> float:
        vals = [getattr(s, attr) for s in self.sequences.values() if s.frames]
        return float(np.mean(vals)) if vals else float("nan")

    @property
    def J(self) -> float:
        return self._mean("J")

    @property
    def F(self) -> float:
        return self._mean("F")

    @property
    def JF(self) -> float:
        return (self.J + self.F) / 2

    @property
    def num_frames(self) -> int:
        return sum(len(s.frames) for s in self.sequences.values())

    @property
    def missing_frames(self) -> list[str]:
        """Paths of predicted frames that were not found (including those of missing sequences)."""
        return [p for s in self.sequences.values() for p in s.missing]

    @property
    def invalid_frames(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of predicted frames that could not be used (unreadable, wrong size)."""
        return [p for s in self.sequences.values() for p in s.invalid]

    def as_dict(self) -> dict:
        return {
            "J": self.J,
            "F": self.F,
            "J&F": self.JF,
            "sequences": {name: s.as_dict() for name, s in self.sequences.items()},
            "num_sequences": len(self.sequences),
            "num_frames": self.num_frames,
            "missing_sequences": list(self.missing_sequences),
            "missing_frames": len(self.missing_frames),
            "invalid_frames": [{"file": p, "reason": r} for p, r in self.invalid_frames],
            "extra_sequences": list(self.extra_sequences),
            "pred": str(self.pred_dir),
            "gt": str(self.gt_dir),
        }


def _list_sequences(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))


def score_mask_folders(
    pred: str | os.PathLike,
    gt: str | os.PathLike,
    sequences: Iterable[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> FolderReport:
    """Score ``pred/<seq>/<frame>.png`` against ``gt/<seq>/<frame>.png`` (see the module docstring).

    ``sequences`` restricts the scoring to those ground-truth sequences. ``progress(sequence, frames done, frames in
    all)`` is called after each frame. Raises :class:`InputError` for a missing/empty ground truth, an unknown
    sequence or an unreadable ground-truth frame; problems with predictions are recorded in the report instead.
    """
    gt_dir = resolve_gt_dir(gt)
    pred_dir = Path(pred)
    if not pred_dir.is_dir():
        raise InputError(f"prediction folder not found: {pred_dir} (expected <dir>/<sequence>/<frame>.png)")
    available = _list_sequences(gt_dir)
    if not available:
        raise InputError(f"no sequence folders in the ground truth {gt_dir} (expected <dir>/<sequence>/<frame>.png)")
    if sequences:
        wanted = list(dict.fromkeys(sequences))
        unknown = [s for s in wanted if s not in available]
        if unknown:
            raise InputError(f"sequence(s) not in the ground truth {gt_dir}: {', '.join(unknown)}")
    else:
        wanted = available
    report = FolderReport(pred_dir=pred_dir, gt_dir=gt_dir)
    pred_seqs = set(_list_sequences(pred_dir))
    report.extra_sequences = sorted(pred_seqs - set(available))
    listed = {seq: sorted(p for p in (gt_dir / seq).iterdir() if p.suffix.lower() == ".png") for seq in wanted}
    total = sum(len(v) for v in listed.values())
    done = 0
    for seq in wanted:
        gt_frames = listed[seq]
        if not gt_frames:
            raise InputError(f"no PNG masks in the ground-truth sequence folder {gt_dir / seq}")
        if seq not in pred_seqs:
            report.missing_sequences.append(seq)
        rep = SequenceReport(seq)
        for gpath in gt_frames:
            try:
                g, void = _read_gt(gpath)
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot read ground-truth mask {gpath}: {exc}") from None
            ppath = pred_dir / seq / gpath.name
            p = None
            if not ppath.is_file():
                rep.missing.append(str(ppath))
            else:
                try:
                    a = read_mask_png(ppath)
                    if a.shape != g.shape:
                        raise ValueError(
                            f"size {a.shape[1]}x{a.shape[0]} does not match the ground truth's "
                            f"{g.shape[1]}x{g.shape[0]}"
                        )
                    p = a != 0
                except (OSError, ValueError) as exc:
                    rep.invalid.append((str(ppath), str(exc)))
            if p is None:
                p = np.zeros_like(g)
            rep.frames.append(gpath.name)
            rep.j.append(float(region_j(p, g, void)))
            rep.f.append(boundary_prf(p, g, void=void)[2])
            done += 1
            if progress is not None:
                progress(seq, done, total)
        report.sequences[seq] = rep
    return report
