"""The digital twin, version 1 (docs/design.md §2): a typed, validated model of a scene.

A twin is a list of frames; an image is a video of one frame. Each frame lists instances; an
instance ``id`` is a *track id*: the same physical object keeps its id in every frame it appears in.

Loading validates everything and reports **every** problem, each message naming the frame, the
instance id and the field, e.g. ``frame 3 (index 6), instance id 2, field 'box': ...``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from fastreasonseg.errors import TwinValidationError
from fastreasonseg.twin.labels import label_problem
from fastreasonseg.twin.masks import decode_mask, encode_mask, mask_box, rle_area, union_rles

TWIN_VERSION = 1


def _check_label(text: str) -> str:
    problem = label_problem(text)
    if problem is not None:
        raise PydanticCustomError("invalid_label", problem)
    return text


Label = Annotated[str, AfterValidator(_check_label)]
"""An object name: checked by :func:`fastreasonseg.twin.labels.label_problem` (labels are untrusted text)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class Source(_Strict):
    """Where the twin came from. ``width``/``height`` are the full-resolution frame size in pixels."""

    kind: Literal["image", "video"]
    name: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    fps: float = Field(default=0.0, ge=0.0)
    num_frames: int = Field(default=1, ge=1)


class Models(_Strict):
    """Which models (hub id, local directory, or a note such as ``"oracle:davis"``) made the twin."""

    segmenter: str | None = None
    depth: str | None = None
    labeller: str | None = None


class DepthStats(_Strict):
    """Relative depth of an instance's pixels in one frame, in [0, 1], 0 = nearest to the camera."""

    mean: float = Field(ge=0.0, le=1.0)
    std: float = Field(ge=0.0, le=1.0)
    min: float = Field(ge=0.0, le=1.0)
    max: float = Field(ge=0.0, le=1.0)

    @classmethod
    def from_map(cls, depth_map: np.ndarray, mask: np.ndarray) -> DepthStats | None:
        """Statistics of ``depth_map`` (relative depth in [0, 1], 0 = nearest) over ``mask``; ``None`` if empty."""
        vals = np.asarray(depth_map, dtype=np.float64)[np.asarray(mask, dtype=bool)]
        if vals.size == 0:
            return None
        vals = np.clip(vals, 0.0, 1.0)
        r = lambda v: round(float(v), 4)  # noqa: E731 - four decimals keep the JSON small
        return cls(mean=r(vals.mean()), std=r(vals.std()), min=r(vals.min()), max=r(vals.max()))


class RLE(_Strict):
    """COCO run-length encoding of a full-frame mask (pycocotools' compressed string)."""

    size: tuple[int, int]  # (height, width)
    counts: str

    def to_dict(self) -> dict:
        return {"size": [self.size[0], self.size[1]], "counts": self.counts}

    def decode(self) -> np.ndarray:
        """Boolean ``(H, W)`` mask."""
        return decode_mask(self.to_dict())

    @property
    def area(self) -> int:
        return rle_area(self.to_dict())


class Instance(_Strict):
    """One object in one frame."""

    id: int = Field(ge=0)
    label: Label
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    alt_labels: list[tuple[Label, float]] = Field(default_factory=list)
    box: tuple[float, float, float, float]
    area: int = Field(ge=0)
    depth: DepthStats | None = None
    mask: RLE

    @classmethod
    def from_mask(
        cls,
        id: int,
        label: str,
        mask: np.ndarray,
        *,
        score: float | None = None,
        alt_labels: list[tuple[str, float]] | None = None,
        depth_map: np.ndarray | None = None,
    ) -> Instance | None:
        """Build an instance from a full-frame boolean mask (box, area and RLE derived from it).

        Returns ``None`` for an empty mask: an object with no pixels is not in the frame.
        """
        m = np.asarray(mask, dtype=bool)
        box = mask_box(m)
        if box is None:
            return None
        return cls(
            id=int(id),
            label=label,
            score=None if score is None else round(float(min(max(score, 0.0), 1.0)), 4),
            alt_labels=[(a, round(float(min(max(s, 0.0), 1.0)), 4)) for a, s in (alt_labels or [])],
            box=box,
            area=int(m.sum()),
            depth=None if depth_map is None else DepthStats.from_map(depth_map, m),
            mask=RLE(**encode_mask(m)),
        )

    @field_validator("box")
    @classmethod
    def _box_finite_ordered(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        if not all(math.isfinite(c) for c in v):
            raise ValueError("box coordinates must be finite numbers")
        if v[2] < v[0] or v[3] < v[1]:
            raise ValueError(f"box must be [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1, got {list(v)}")
        return v


class Frame(_Strict):
    """A frame: its position ``index`` in the source video, its ``time`` in seconds, its instances."""

    index: int = Field(ge=0)
    time: float = Field(default=0.0, ge=0.0)
    instances: list[Instance] = Field(default_factory=list)

    def get(self, instance_id: int) -> Instance | None:
        for inst in self.instances:
            if inst.id == instance_id:
                return inst
        return None

    @property
    def ids(self) -> list[int]:
        return [inst.id for inst in self.instances]


@dataclass(frozen=True)
class TrackSummary:
    """What one track (an instance id) does over a video, in the units the text view uses.

    Positions are box centres normalised to [0, 1] by the frame size; ``displacement`` is
    (last centre - first centre); ``speed`` is the centre's path length per second (per frame
    when the video has no fps); ``depth_trend`` is last mean depth - first mean depth
    (negative = approaching the camera).
    """

    id: int
    label: str
    first_frame: int
    last_frame: int
    num_frames: int
    first_center: tuple[float, float]
    last_center: tuple[float, float]
    displacement: tuple[float, float]
    speed: float
    mean_area: float
    depth_first: float | None
    depth_last: float | None

    @property
    def depth_trend(self) -> float | None:
        if self.depth_first is None or self.depth_last is None:
            return None
        return self.depth_last - self.depth_first


class DigitalTwin(_Strict):
    """A scene as the reasoner sees it. Load with :meth:`load` / :meth:`from_dict`, which validate."""

    version: Literal[1] = TWIN_VERSION
    source: Source
    models: Models = Field(default_factory=Models)
    frames: list[Frame]
    meta: dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form provenance: per-stage timings, processing scale, annotation notes.",
    )

    # ------------------------------------------------------------------ construction / validation
    @classmethod
    def from_dict(cls, data: Any, *, source: str | None = None) -> DigitalTwin:
        """Validate a parsed JSON object. Raises :class:`TwinValidationError` listing every problem."""
        from fastreasonseg.twin.validation import check_twin, describe_pydantic_errors

        if not isinstance(data, dict):
            raise TwinValidationError([f"the top level must be a JSON object, got {type(data).__name__}"], source)
        try:
            twin = cls.model_validate(data)
        except ValidationError as exc:
            raise TwinValidationError(describe_pydantic_errors(exc, data), source) from None
        problems = check_twin(twin)
        if problems:
            raise TwinValidationError(problems, source)
        return twin

    def validate_all(self) -> None:
        """Re-run the cross-field checks (useful after building a twin in code)."""
        from fastreasonseg.twin.validation import check_twin

        problems = check_twin(self)
        if problems:
            raise TwinValidationError(problems, self.source.name)

    @classmethod
    def load(cls, path: Any) -> DigitalTwin:
        """Read and validate a twin JSON file."""
        from fastreasonseg.twin.io import load_twin

        return load_twin(path)

    def save(self, path: Any, *, overwrite: bool = True) -> None:
        """Write the twin as JSON (atomically: a crash never leaves a half-written file)."""
        from fastreasonseg.twin.io import save_twin

        save_twin(self, path, overwrite=overwrite)

    def to_dict(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)

    # ------------------------------------------------------------------ queries
    @property
    def is_video(self) -> bool:
        return self.source.kind == "video"

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of every frame."""
        return (self.source.height, self.source.width)

    @property
    def track_ids(self) -> list[int]:
        """Every instance id in the twin, sorted."""
        return sorted({inst.id for fr in self.frames for inst in fr.instances})

    def frame(self, index: int) -> Frame:
        """The frame whose source ``index`` is ``index`` (not its list position)."""
        for fr in self.frames:
            if fr.index == index:
                return fr
        raise KeyError(f"no frame with index {index} (frames: {[f.index for f in self.frames][:10]}...)")

    def instances_of(self, track_id: int) -> list[tuple[Frame, Instance]]:
        """Every (frame, instance) pair of one track, in frame order."""
        out = []
        for fr in self.frames:
            inst = fr.get(track_id)
            if inst is not None:
                out.append((fr, inst))
        return out

    def mask(self, frame_index: int, ids: list[int] | tuple[int, ...] | set[int]) -> np.ndarray:
        """Boolean ``(H, W)`` union of the masks of ``ids`` in frame ``frame_index`` (ids absent there are skipped)."""
        fr = self.frame(frame_index)
        wanted = set(ids)
        return union_rles([i.mask.to_dict() for i in fr.instances if i.id in wanted], self.size)

    def masks(self, ids: list[int] | tuple[int, ...] | set[int]) -> dict[int, np.ndarray]:
        """``{frame index: union mask of ids}`` for every frame."""
        return {fr.index: self.mask(fr.index, ids) for fr in self.frames}

    def instance_mask(self, frame_index: int, instance_id: int) -> np.ndarray:
        inst = self.frame(frame_index).get(instance_id)
        if inst is None:
            raise KeyError(f"instance {instance_id} is not in frame {frame_index}")
        return inst.mask.decode()

    def track_summary(self, track_id: int) -> TrackSummary:
        """Motion and depth summary of one track over the whole twin."""
        pairs = self.instances_of(track_id)
        if not pairs:
            raise KeyError(f"no instance with id {track_id}")
        h, w = self.size
        centers = [((i.box[0] + i.box[2]) / 2 / w, (i.box[1] + i.box[3]) / 2 / h) for _, i in pairs]
        path = sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(centers))
        first, last = pairs[0][0], pairs[-1][0]
        if self.source.fps > 0:
            duration = last.time - first.time
        else:
            duration = float(last.index - first.index)
        # labels can change along a track (relabelling); the most frequent one names it
        labels: dict[str, int] = {}
        for _, i in pairs:
            labels[i.label] = labels.get(i.label, 0) + 1
        depths = [i.depth.mean for _, i in pairs if i.depth is not None]
        return TrackSummary(
            id=track_id,
            label=max(labels.items(), key=lambda kv: kv[1])[0],
            first_frame=first.index,
            last_frame=last.index,
            num_frames=len(pairs),
            first_center=centers[0],
            last_center=centers[-1],
            displacement=(centers[-1][0] - centers[0][0], centers[-1][1] - centers[0][1]),
            speed=path / duration if duration > 0 else 0.0,
            mean_area=float(np.mean([i.area for _, i in pairs])) / (h * w),
            depth_first=depths[0] if depths else None,
            depth_last=depths[-1] if depths else None,
        )

    def track_summaries(self) -> list[TrackSummary]:
        return [self.track_summary(t) for t in self.track_ids]

    def num_instances(self) -> int:
        return sum(len(fr.instances) for fr in self.frames)
