"""The Python API: build a twin once (heavy), ask many questions about it (light).

>>> from fastreasonseg import FastReasonSeg                       # doctest: +SKIP
>>> frs = FastReasonSeg()                                         # offline default: SmolLM2-135M + student LoRA
>>> twin = frs.build_twin("kitchen.jpg")                          # SAM-2 + Depth-Anything + OWLv2
>>> result = frs.ask(twin, "the thing I'd use for hot drinks")
>>> result.ids, result.masks[0].shape                             # ids and {frame index: (H, W) mask}
>>> result.save("out/")                                           # mask PNGs, overlay, result.json
>>> frs.segment("clip.mp4", "the dog that runs away from the camera").save("out2/")
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastreasonseg.config import PerceptionConfig
from fastreasonseg.errors import InputError
from fastreasonseg.reasoning.config import ReasonerConfig
from fastreasonseg.reasoning.executor import Reasoner, RolloutResult
from fastreasonseg.reasoning.runtimes import Runtime, load_runtime, resolve_spec
from fastreasonseg.reasoning.tools import ToolContext
from fastreasonseg.twin import DigitalTwin, load_twin
from fastreasonseg.twin.io import write_text_atomic
from fastreasonseg.visualize import label_image, masks_to_overlays, save_mask_png, save_overlay_png, write_video

EXAMPLE_TWIN = "example"
"""Name that stands for the example twin shipped with the package (a hand-annotated real photo)."""


def example_twin_path() -> Path:
    """Path of the example twin JSON shipped with the package (its photo lies beside it)."""
    from fastreasonseg.assets import asset_path

    return asset_path("example/coffee.twin.json")


def resolve_reasoner_spec(spec: str | None) -> str:
    """The runtime spec to load: ``None`` = the default (``student``), the aliases ``student`` / ``base`` expanded,
    anything else as given (:func:`fastreasonseg.reasoning.runtimes.resolve_spec`)."""
    return resolve_spec(spec)


class SourceFrames(Mapping[int, np.ndarray]):
    """The source frames of a twin, read lazily (only when a tool or an overlay needs pixels).

    Looks for the source in ``twin.meta["source_path"]`` (set by :meth:`FastReasonSeg.build_twin`),
    then ``twin.meta["image"]`` or ``twin.source.name`` next to the twin file. Frames are read once, at
    the indices the twin lists, and checked against the twin's frame size.
    """

    def __init__(self, twin: DigitalTwin, path: Path) -> None:
        self.twin = twin
        self.path = path
        self._frames: dict[int, np.ndarray] | None = None

    @classmethod
    def find(cls, twin: DigitalTwin, twin_file: str | os.PathLike | None = None) -> SourceFrames | None:
        candidates: list[Path] = []
        if twin.meta.get("source_path"):
            candidates.append(Path(str(twin.meta["source_path"])))
        if twin_file is not None:
            base = Path(twin_file).resolve().parent
            for name in (twin.meta.get("image"), twin.source.name):
                if name:
                    candidates.append(base / str(name))
        for c in candidates:
            if c.exists():
                return cls(twin, c)
        return None

    def _load(self) -> dict[int, np.ndarray]:
        if self._frames is None:
            from fastreasonseg.perception.media import open_media

            wanted = {f.index for f in self.twin.frames}
            media = open_media(self.path)
            frames: dict[int, np.ndarray] = {}
            h, w = self.twin.size
            for index, frame in media.frames():
                if index in wanted and frame.shape[:2] == (h, w):
                    frames[index] = frame
                if index >= max(wanted):
                    break
            self._frames = frames
        return self._frames

    def __getitem__(self, index: int) -> np.ndarray:
        return self._load()[index]

    def __iter__(self) -> Iterator[int]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


@dataclass
class SegmentationResult:
    """The answer to one question: ids, a mask per frame, the rollout and its timings."""

    query: str
    ids: list[int]
    no_target: bool
    masks: dict[int, np.ndarray]
    """``{frame index: boolean (H, W) mask}`` (all-False masks when there is no target)."""
    rollout: RolloutResult
    twin: DigitalTwin = field(repr=False)
    """The (possibly tool-refined) twin the ids refer to."""
    frames: Mapping[int, np.ndarray] | None = field(default=None, repr=False)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_rollout(
        cls, rollout: RolloutResult, twin: DigitalTwin, frames: Mapping[int, np.ndarray] | None = None
    ) -> SegmentationResult:
        """Wrap an executor result: masks come from the refined twin the ids refer to."""
        refined = rollout.twin or twin
        return cls(
            query=rollout.query,
            ids=list(rollout.ids),
            no_target=rollout.no_target,
            masks=refined.masks(rollout.ids),
            rollout=rollout,
            twin=refined,
            frames=frames,
        )

    @property
    def reasoning(self) -> str:
        """The full rollout text (reasoning, tool calls, results, answer)."""
        return self.rollout.rollout

    @property
    def labels(self) -> dict[int, str]:
        """Label of each answered id (from the first frame it appears in)."""
        out: dict[int, str] = {}
        for fr in self.twin.frames:
            for inst in fr.instances:
                if inst.id in self.ids and inst.id not in out:
                    out[inst.id] = inst.label
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: ids, labels, rollout, diagnostics, tokens and timings (no masks)."""
        r = self.rollout.to_dict()
        return {
            "query": self.query,
            "ids": self.ids,
            "labels": {str(k): v for k, v in self.labels.items()},
            "no_target": self.no_target,
            "diagnostic": r.get("diagnostic", ""),
            "rollout": self.rollout.rollout,
            "format_ok": r.get("format_ok"),
            "rounds": r.get("rounds"),
            "tool_calls": r.get("tool_calls"),
            "notes": r.get("notes"),
            "tokens": r.get("tokens"),
            "timings_ms": {**r.get("timings", {}), **self.timings_ms},
            "source": self.twin.source.model_dump(),
            "frames": sorted(self.masks),
            "mask_pixels": {str(k): int(v.sum()) for k, v in self.masks.items()},
        }

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``masks/<frame>.png`` (255 = object), an overlay (``overlay.png`` for an image,
        ``overlay.mp4`` for a video) and ``result.json`` into ``directory``.

        Refuses to overwrite an existing ``result.json`` unless ``overwrite`` is true.
        """
        out = Path(directory)
        if out.exists() and not out.is_dir():
            raise InputError(f"output path {out} exists and is not a directory")
        if (out / "result.json").exists() and not overwrite:
            raise InputError(f"{out / 'result.json'} already exists; choose another directory or allow overwriting")
        (out / "masks").mkdir(parents=True, exist_ok=True)
        for idx, m in self.masks.items():
            save_mask_png(m, out / "masks" / f"{idx:05d}.png")
        overlays = masks_to_overlays(self.frames, self.masks, self.twin.size)
        title = f"{self.query[:60]} -> " + (
            ", ".join(f"{i} {self.labels.get(i, '')}" for i in self.ids) if self.ids else "no target"
        )
        if self.twin.is_video and len(overlays) > 1:
            write_video(
                (label_image(overlays[i], title) for i in sorted(overlays)), out / "overlay.mp4", self.twin.source.fps
            )
        else:
            first = sorted(overlays)[0]
            save_overlay_png(label_image(overlays[first], title), out / "overlay.png")
        info = self.to_dict()
        info["overlay_on_source"] = bool(self.frames)
        write_text_atomic(out / "result.json", json.dumps(info, indent=2))
        return out


class FastReasonSeg:
    """Reasoning segmentation: perception builds twins, a small LLM answers questions about them.

    ``reasoner`` is a runtime spec (see :func:`fastreasonseg.reasoning.runtimes.load_runtime`; default: SmolLM2-135M
    on llama.cpp, offline; ``"student"``: the shipped student adapter) or a ready
    :class:`~fastreasonseg.reasoning.runtimes.Runtime`. Models load lazily: asking about a saved twin never loads the
    vision models, building a twin never loads the LLM.
    """

    def __init__(
        self,
        reasoner: str | Runtime | None = None,
        *,
        perception: PerceptionConfig | None = None,
        reasoner_config: ReasonerConfig | None = None,
    ) -> None:
        self.perception_config = perception or PerceptionConfig()
        self.reasoner_config = reasoner_config or ReasonerConfig()
        self._reasoner_spec = reasoner if isinstance(reasoner, str) or reasoner is None else None
        self._runtime: Runtime | None = None if isinstance(reasoner, str) or reasoner is None else reasoner
        self._reasoner: Reasoner | None = None
        self._builder = None
        # (source path, frame indices) -> frames read once and reused across questions
        self._frames: dict[tuple[str, tuple[int, ...]], SourceFrames] = {}

    # ------------------------------------------------------------------ lazy components
    @property
    def reasoner(self) -> Reasoner:
        if self._reasoner is None:
            if self._runtime is None:
                self._runtime = load_runtime(resolve_reasoner_spec(self._reasoner_spec))
            self._reasoner = Reasoner(self._runtime, self.reasoner_config)
        return self._reasoner

    @property
    def builder(self):  # -> TwinBuilder (imported lazily: perception pulls in the vision stack)
        if self._builder is None:
            from fastreasonseg.perception.builder import TwinBuilder

            self._builder = TwinBuilder(self.perception_config)
        return self._builder

    # ------------------------------------------------------------------ the three verbs
    def build_twin(self, source: Any, *, progress: bool = False) -> DigitalTwin:
        """Run perception on an image/video path, a folder of frames or arrays (heavy: do it once)."""
        twin = self.builder.build(source, progress=progress)
        if isinstance(source, (str, Path)):
            twin.meta["source_path"] = str(Path(source).resolve())
        return twin

    def load_twin(self, path: str | os.PathLike) -> DigitalTwin:
        """Load a twin JSON (``"example"`` = the example twin shipped with the package)."""
        p = example_twin_path() if str(path) == EXAMPLE_TWIN else Path(path)
        twin = load_twin(p)
        frames = SourceFrames.find(twin, p)
        if frames is not None:
            twin.meta["source_path"] = str(frames.path.resolve())
        return twin

    def _source_frames(self, twin: DigitalTwin) -> SourceFrames | None:
        frames = SourceFrames.find(twin)
        if frames is None:
            return None
        key = (str(frames.path), tuple(f.index for f in twin.frames))
        if key in self._frames:
            return self._frames[key]
        self._frames[key] = frames
        return frames

    def ask(self, twin: DigitalTwin | str | os.PathLike, query: str) -> SegmentationResult:
        """Answer ``query`` about ``twin`` (a twin, a twin JSON path, or ``"example"``)."""
        if not isinstance(twin, DigitalTwin):
            twin = self.load_twin(twin)
        frames = self._source_frames(twin)
        perception = None
        if frames is not None and self._builder is not None:
            perception = self._builder.perception
        context = ToolContext(frames=frames, perception=perception)
        return SegmentationResult.from_rollout(self.reasoner.ask(twin, query, context), twin, frames)

    def segment(self, source: Any, query: str, *, progress: bool = False) -> SegmentationResult:
        """Build the twin of ``source`` and answer ``query`` in one call."""
        from fastreasonseg.reasoning.prompt import check_query

        check_query(query, self.reasoner_config.max_query_chars)  # fail fast, before perception runs
        twin = self.build_twin(source, progress=progress)
        result = self.ask(twin, query)
        result.timings_ms["perception_ms"] = float(twin.meta.get("timings_ms", {}).get("total", 0.0))
        return result
