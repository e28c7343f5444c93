"""The sample type shared by every dataset reader, the reader base class and the ``open_dataset`` registry.

A reader indexes its annotation files when it is opened (a missing file or folder, or a wrong layout, raises
:class:`~fastreasonseg.errors.InputError` naming what is missing and what was expected) and decodes the masks of one
sample at a time while it is iterated. A sample that cannot be used (an unreadable image, a corrupt mask, a malformed
JSON entry) is skipped and recorded in ``reader.skipped`` with the reason, so one bad file never loses a whole run.

Image samples carry their ground truth in ``mask`` (``(H, W)``; boolean, or ``uint8`` 0/1/255 for ReasonSeg where 255
is "ignore"). Video samples decode frame masks on demand with :meth:`Sample.mask_at` / :meth:`Sample.masks`.

*Twin datasets* (``synthetic``, ``devset``) have no pixels: each sample carries its own digital twin (``twin``) and
the ids of its target instances (``target_ids``, ``[]`` = nothing in the scene answers the query); the ground-truth
mask of a frame is the union of those instances' masks. Their readers say so with ``has_pixels = False``.
"""

from __future__ import annotations

import importlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from fastreasonseg.errors import InputError

if TYPE_CHECKING:
    from fastreasonseg.twin.schema import DigitalTwin

__all__ = [
    "CorruptSample",
    "DatasetReader",
    "Sample",
    "Skipped",
    "available_datasets",
    "open_dataset",
]


class CorruptSample(InputError):
    """Raised inside a reader for a sample that cannot be used; the reader skips it and records the reason."""


@dataclass
class Sample:
    """One evaluation sample: a query set over an image (``image``) or a video (``frames``) and its ground truth.

    ``queries`` are the texts that all refer to the ground truth (ReasonSeg and RefCOCOg give several per target;
    each is scored as its own sample by the benchmarks). ``is_sentence`` is ReasonSeg's long (True) / short (False)
    query flag. ``extra`` keeps dataset-specific fields (e.g. ``answer``, ``obj_id``, ``type_id``). Twin datasets set
    ``twin`` and ``target_ids`` instead of pixels (see the module docstring); ``tags`` adds breakdown keys of the
    dataset's own (e.g. the synthetic split's ``novelty``).
    """

    id: str
    dataset: str
    split: str
    queries: list[str]
    image: Path | None = None
    frames: list[Path] = field(default_factory=list)
    mask: np.ndarray | None = None
    is_sentence: bool | None = None
    category: str | None = None
    level: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    twin: DigitalTwin | None = None
    """Twin datasets: the scene itself (the sample has no image or frames)."""
    target_ids: list[int] | None = None
    """Twin datasets: the ids of the instances that answer the query (``[]`` = none)."""
    tags: dict[str, str] = field(default_factory=dict)
    _mask_loader: Callable[[int], np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def is_video(self) -> bool:
        if self.twin is not None:
            return self.twin.is_video
        return bool(self.frames)

    @property
    def num_frames(self) -> int:
        if self.twin is not None:
            return self.twin.source.num_frames
        return len(self.frames) if self.frames else 1

    @property
    def targets(self) -> str | None:
        """``none`` / ``single`` / ``multi`` target instances (twin datasets; ``None`` when the ids are unknown)."""
        if self.target_ids is None:
            return None
        return "none" if not self.target_ids else "single" if len(self.target_ids) == 1 else "multi"

    @property
    def groups(self) -> dict[str, str]:
        """Keys for per-group metric breakdowns (``IoUAccumulator.add(..., groups=sample.groups)``)."""
        g = {"dataset": self.dataset, "split": self.split}
        if self.is_sentence is not None:
            g["query"] = "long" if self.is_sentence else "short"
        if self.category is not None:
            g["category"] = self.category
        if self.level is not None:
            g["level"] = self.level
        if self.targets is not None:
            g["targets"] = self.targets
        return g | self.tags

    def load_image(self, index: int = 0) -> np.ndarray:
        """The RGB image (or video frame ``index``) as ``(H, W, 3)`` uint8."""
        path = self.frames[index] if self.frames else self.image
        if path is None:
            raise InputError(f"sample {self.id} has no image")
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError) as exc:
            raise InputError(f"cannot read image {path}: {exc}") from None

    def mask_at(self, index: int = 0) -> np.ndarray:
        """Ground-truth mask of frame ``index`` (the image mask for image samples), decoded now.

        Twin datasets: the union of the target instances' masks in the twin frame whose source index is ``index``.
        """
        if self.twin is not None:
            return self.twin.mask(index, self.target_ids or [])
        if self._mask_loader is None:
            if self.mask is None:
                raise InputError(f"sample {self.id} has no ground-truth mask")
            if index != 0:
                raise IndexError(f"sample {self.id} is an image; frame {index} does not exist")
            return self.mask
        if not 0 <= index < len(self.frames):
            raise IndexError(f"sample {self.id} has {len(self.frames)} frames; frame {index} does not exist")
        return self._mask_loader(index)

    def masks(self) -> np.ndarray:
        """All ground-truth masks ``(T, H, W)`` (``(1, H, W)`` for an image)."""
        return np.stack([self.mask_at(i) for i in range(self.num_frames)])


@dataclass(frozen=True)
class Skipped:
    """A sample left out by a reader, and why."""

    id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.id}: {self.reason}"


class DatasetReader(ABC):
    """Base of the readers. Subclasses index their files in ``__init__`` and build samples in ``_load``.

    Iterating yields the usable samples in a stable order; ``skipped`` then lists the samples left out (it is reset
    at the start of each pass). ``len(reader)`` is the number of indexed entries, skipped ones included.
    """

    name: ClassVar[str] = ""
    has_pixels: ClassVar[bool] = True
    """False for twin datasets: their samples can only be evaluated on their own twins."""

    def __init__(self, root: str | os.PathLike, split: str) -> None:
        self.root = Path(root)
        self.split = split
        self.skipped: list[Skipped] = []
        if not self.root.exists():
            raise InputError(f"{self.name} root not found: {self.root}")

    @abstractmethod
    def _entries(self) -> list[Any]:
        """The indexed entries (cheap: no mask decoding)."""

    @abstractmethod
    def _entry_id(self, entry: Any) -> str:
        """A stable id for an entry, used in ``skipped`` even when the entry is corrupt."""

    @abstractmethod
    def _load(self, entry: Any) -> list[Sample]:
        """Build the sample(s) of one entry; raise :class:`CorruptSample` (or a decoding error) when unusable."""

    def __len__(self) -> int:
        return len(self._entries())

    def query_count(self) -> int | None:
        """Number of queries the reader will yield (skipped entries included), when it is known without loading."""
        return None

    def __iter__(self) -> Iterator[Sample]:
        self.skipped = []
        for entry in self._entries():
            try:
                samples = self._load(entry)
            except (CorruptSample, OSError, ValueError, KeyError, TypeError, IndexError, UnidentifiedImageError) as e:
                reason = str(e) if isinstance(e, CorruptSample) else f"{type(e).__name__}: {e}"
                self.skipped.append(Skipped(self._entry_id(entry), reason))
                continue
            yield from samples

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r})"


# --------------------------------------------------------------------------------------------------- helpers


def load_json(path: Path, what: str) -> Any:
    """Read an index JSON; missing or malformed → InputError naming the file."""
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {what} {path}: {exc}") from None


def image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image from its header; raises CorruptSample when missing or unreadable."""
    if not path.is_file():
        raise CorruptSample(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            w, h = im.size
            im.verify()
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise CorruptSample(f"unreadable image {path}: {exc}") from None
    return h, w


# --------------------------------------------------------------------------------------------------- registry

_REGISTRY: dict[str, str] = {
    "reasonseg": "fastreasonseg.data.reasonseg:ReasonSegReader",
    "llmseg40k": "fastreasonseg.data.llmseg:LLMSeg40KReader",
    "refcocog": "fastreasonseg.data.refcocog:RefCOCOgReader",
    "revos": "fastreasonseg.data.rvos:ReVOSReader",
    "mevis": "fastreasonseg.data.rvos:MeViSReader",
    "davis": "fastreasonseg.data.davis:DavisReader",
    "synthetic": "fastreasonseg.data.synthetic_split:SyntheticSplitReader",
    "devset": "fastreasonseg.data.devset:DevsetReader",
}
_ALIASES = {
    "reason_seg": "reasonseg",
    "llm-seg40k": "llmseg40k",
    "llmseg": "llmseg40k",
    "llm_seg40k": "llmseg40k",
    "davis2016": "davis",
    "davis2017": "davis",
    "davis-2016": "davis",
    "davis-2017": "davis",
}


def available_datasets() -> list[str]:
    return sorted(_REGISTRY)


def open_dataset(name: str, root: str | os.PathLike, split: str, **options: Any) -> DatasetReader:
    """Open a dataset reader by name (``reasonseg``, ``llmseg40k``, ``refcocog``, ``revos``, ``mevis``, ``davis``,
    and the twin datasets ``synthetic`` and ``devset``).

    ``options`` go to the reader (e.g. ``images=`` for RefCOCOg / LLM-Seg40K, ``resolution=`` for DAVIS).
    """
    key = name.lower().replace(" ", "")
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise InputError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")
    module, cls = _REGISTRY[key].split(":")
    reader_cls = getattr(importlib.import_module(module), cls)
    return reader_cls(root, split, **options)
