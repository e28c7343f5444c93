"""Item sources of the runner: a dataset split as :class:`EvalItem`\\ s (one query of one sample) with their twins.

Every dataset comes through :func:`~fastreasonseg.data.base.open_dataset`. One *item* is one query of one sample;
its key is ``<sample id>#<query index>``.

Twins (``EvalConfig.twins``)
    ``oracle``: samples of a twin dataset (``synthetic``, ``devset``) use their own twin, and their ground truth is
    the union of the target ids' masks. For a real dataset the oracle twin is built from the sample's ground-truth
    mask(s) alone: **one instance** (id 1, labelled with the sample's category, e.g. the DAVIS-2016 object name or
    the RefCOCOg class, else ``object``) in each scored frame where the target is visible. The annotations name no
    other object, so the twin holds only the target: the reasoner only has to decide between "id 1" and "no
    target", which tests the plumbing, the output format and the metrics, not the reasoning. Use
    ``twins="perception"`` for real measurements: :class:`~fastreasonseg.perception.builder.TwinBuilder` builds the
    twin from the pixels (once per sample, shared by its queries); the tools then get the frames and the perception
    models. Twin datasets have no pixels, so they refuse ``perception``.

Samples a reader cannot use are yielded as :class:`SkippedItem` where they occur, so a run reports them in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastreasonseg.errors import InputError
from fastreasonseg.eval.config import EvalConfig
from fastreasonseg.twin.schema import DigitalTwin, Frame, Instance, Models, Source

__all__ = [
    "EvalItem",
    "ItemSource",
    "LazyTwin",
    "SkippedItem",
    "frame_indices",
    "gt_foreground",
    "open_items",
    "oracle_twin_from_sample",
]


@dataclass
class EvalItem:
    """One query of one sample, ready to predict and score."""

    key: str
    sample_id: str
    query_index: int
    query: str
    dataset: str
    split: str
    media: str
    groups: dict[str, str]
    gt_ids: list[int] | None
    gt_mask: Callable[[int], np.ndarray]
    """Ground-truth mask of a source frame index (``(H, W)``; bool, or uint8 with 255 = ignore)."""
    twin: LazyTwin
    """The twin (built on first call, shared by the queries of a sample)."""
    context: Callable[[], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SkippedItem:
    """A sample (or line) that could not be used, and why."""

    id: str
    reason: str


class LazyTwin:
    """A sample's twin, built on the first call and kept (or its build error, raised again on every call).

    ``built`` is True for a twin perception built in this process; ``consumed`` marks that its perception timings
    went to the sample's first item already.
    """

    def __init__(self, build: Callable[[], DigitalTwin], *, built: bool = False) -> None:
        self._build = build
        self._value: DigitalTwin | None = None
        self._error: Exception | None = None
        self.done = False
        self.built = built
        self.consumed = False

    def __call__(self) -> DigitalTwin:
        if not self.done:
            self.done = True
            try:
                self._value = self._build()
            except Exception as exc:  # kept and raised to every query of the sample; the runner decides what skips
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


@dataclass
class ItemSource:
    """The items of a split, and how many there will be when the reader knows it without loading."""

    items: Iterator[EvalItem | SkippedItem]
    total: int | None


def frame_indices(num_frames: int, stride: int, max_frames: int | None) -> list[int]:
    idx = list(range(0, max(1, num_frames), max(1, stride)))
    return idx[:max_frames] if max_frames else idx


def gt_foreground(gt: np.ndarray) -> np.ndarray:
    """Foreground of a ground-truth mask (boolean, or uint8 where 0 is background and 255 is ignore)."""
    g = np.asarray(gt)
    return g if g.dtype == bool else (g != 0) & (g != 255)


def oracle_twin_from_sample(sample: Any, *, stride: int = 1, max_frames: int | None = None) -> DigitalTwin:
    """Oracle twin of a dataset :class:`~fastreasonseg.data.base.Sample` from its ground truth alone.

    One instance, id 1, labelled ``sample.category`` (else ``object``), in each scored frame where the target is
    visible (ignore pixels excluded). Only the annotated target exists in it: see the module docstring.
    """
    label = str(sample.category or "object").strip() or "object"
    indices = frame_indices(sample.num_frames, stride, max_frames) if sample.is_video else [0]
    frames, h, w = [], 0, 0
    fps = float(sample.extra.get("fps", 24.0)) if sample.is_video else 0.0
    for i in indices:
        fg = gt_foreground(sample.mask_at(i))
        h, w = fg.shape
        inst = Instance.from_mask(1, label, fg, score=1.0)
        frames.append(
            Frame(index=i, time=round(i / fps, 4) if fps else 0.0, instances=[inst] if inst is not None else [])
        )
    twin = DigitalTwin(
        source=Source(
            kind="video" if sample.is_video else "image",
            name=str(sample.id),
            width=w,
            height=h,
            fps=fps,
            num_frames=sample.num_frames,
        ),
        models=Models(segmenter=f"oracle:{sample.dataset}", labeller=f"oracle:{sample.dataset}"),
        frames=frames,
        meta={"oracle": sample.dataset, "note": "ground-truth target only; no other object is annotated"},
    )
    twin.validate_all()
    return twin


class _LazyFrames(Mapping):
    """Source frames for the tools, read on access (``ToolContext.frames``)."""

    def __init__(self, sample: Any, indices: list[int]) -> None:
        self.sample = sample
        self.indices = indices
        self._cache: dict[int, np.ndarray] = {}

    def __getitem__(self, index: int) -> np.ndarray:
        if index not in self.indices:
            raise KeyError(index)
        if index not in self._cache:
            if len(self._cache) >= 8:
                self._cache.pop(next(iter(self._cache)))
            self._cache[index] = self.sample.load_image(index)
        return self._cache[index]

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _perception_source(sample: Any) -> Any:
    if not sample.is_video:
        return sample.image
    folder = sample.frames[0].parent
    listed = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if all(p.parent == folder for p in sample.frames) and listed == list(sample.frames):
        return folder
    return [sample.load_image(i) for i in range(sample.num_frames)]


def _twin_and_context(cfg: EvalConfig, sample: Any, builder: Any) -> tuple[LazyTwin, Callable[[], Any] | None]:
    """How a sample's items get their twin (and, for perception twins, the tools' frames and models)."""
    if sample.twin is not None:
        return LazyTwin(lambda: sample.twin), None
    if cfg.twins == "oracle":
        return LazyTwin(lambda: oracle_twin_from_sample(sample, stride=cfg.stride, max_frames=cfg.max_frames)), None
    fps = {"fps": 24.0} if sample.is_video else {}
    twin = LazyTwin(lambda: builder.build(_perception_source(sample), name=str(sample.id), **fps), built=True)
    indices = frame_indices(sample.num_frames, cfg.stride, cfg.max_frames) if sample.is_video else [0]

    def context() -> Any:
        from fastreasonseg.reasoning.tools import ToolContext

        return ToolContext(frames=_LazyFrames(sample, indices), perception=builder.perception)

    return twin, context


def _gt_ids(cfg: EvalConfig, sample: Any) -> list[int] | None:
    if sample.twin is not None:
        return list(sample.target_ids or [])
    return [1] if cfg.twins == "oracle" else None  # perception twins: no ground-truth ids, only masks


def _sample_items(cfg: EvalConfig, sample: Any, builder: Any) -> Iterator[EvalItem | SkippedItem]:
    if not sample.queries:
        yield SkippedItem(str(sample.id), "the sample has no text query")
        return
    twin, context = _twin_and_context(cfg, sample, builder)
    media = "video" if sample.is_video else "image"
    groups = {k: v for k, v in sample.groups.items() if k != "dataset"} | {"media": media}
    for q, text in enumerate(sample.queries):
        yield EvalItem(
            key=f"{sample.id}#{q}",
            sample_id=str(sample.id),
            query_index=q,
            query=text,
            dataset=sample.dataset,
            split=sample.split,
            media=media,
            groups=groups,
            gt_ids=_gt_ids(cfg, sample),
            gt_mask=sample.mask_at,
            twin=twin,
            context=context,
            extra=dict(sample.extra),
        )


def _reader_items(cfg: EvalConfig, reader: Any, builder: Any) -> Iterator[EvalItem | SkippedItem]:
    reported = 0
    for sample in reader:
        for s in reader.skipped[reported:]:  # entries the reader left out before this sample, in order
            yield SkippedItem(str(s.id), s.reason)
        reported = len(reader.skipped)
        yield from _sample_items(cfg, sample, builder)
    for s in reader.skipped[reported:]:
        yield SkippedItem(str(s.id), s.reason)


def open_items(cfg: EvalConfig, builder: Any = None) -> ItemSource:
    """The items of the configured split; raises InputError for a bad path, layout or twin source (before any model
    loads). ``builder`` is the :class:`~fastreasonseg.perception.builder.TwinBuilder` of ``twins="perception"``."""
    from fastreasonseg.data.base import open_dataset

    reader = open_dataset(cfg.dataset, cfg.root, cfg.split, **cfg.dataset_options)
    if cfg.twins == "perception" and not reader.has_pixels:
        raise InputError(f"{reader.name} samples have no pixels: evaluate them with --twins oracle (their own twins)")
    if cfg.twins == "perception" and builder is None:
        raise InputError("twins='perception' needs a twin builder")
    return ItemSource(_reader_items(cfg, reader, builder), reader.query_count())
