"""Building a digital twin from an image, a video, a folder of frames or arrays.

>>> twin = TwinBuilder(PerceptionConfig(segmenter="models/sam2", depth=None)).build("kitchen.jpg")  # doctest: +SKIP

Frames are streamed (a long video never sits in memory); each one goes through
:class:`~fastreasonseg.perception.pipeline.Perception`. The twin's ``meta`` records:

* ``timings_ms``: milliseconds spent per stage over the whole build (``labeller``, ``segmenter``,
  ``depth``, ``tracking``, ``load``, ``total``) and ``timings_ms["per_frame"]``, the same divided by
  the number of processed frames (``load`` excluded);
* ``scale``: working resolution / source resolution (1.0 unless the source exceeds ``max_side``)
  and ``processing_size`` ``[H, W]`` the models saw;
* ``mode``, ``stride``, ``keyframe_interval``, ``vocabulary_size``, ``box_threshold``, ``backend``,
  ``precision``;
* ``perception_notes``: what the backends reported while loading (the runtime each image encoder ran
  on, whether its export was cached or made now, and any fallback with its reason).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from fastreasonseg.config import PerceptionConfig
from fastreasonseg.perception.media import open_media
from fastreasonseg.perception.pipeline import STAGES, Perception
from fastreasonseg.twin.schema import DigitalTwin, Frame, Instance, Models, Source


class TwinBuilder:
    """Runs perception over a source and returns a validated :class:`DigitalTwin`."""

    def __init__(self, config: PerceptionConfig | None = None, *, perception: Perception | None = None) -> None:
        self.config = config or (perception.config if perception is not None else PerceptionConfig())
        self.perception = perception or Perception(self.config)

    def build(
        self,
        source: Any,
        *,
        progress: bool = False,
        name: str | None = None,
        fps: float | None = None,
    ) -> DigitalTwin:
        """Build the twin of ``source`` (image file, video file, folder of frames, array or list of arrays).

        ``fps`` overrides the video's frame rate (or supplies one for folders / arrays; without it
        their frames all have ``time`` 0). Raises :class:`~fastreasonseg.errors.InputError` for bad
        inputs and :class:`~fastreasonseg.errors.ModelLoadError` for models that cannot be loaded.
        """
        cfg = self.config
        t_start = time.perf_counter()
        media = open_media(source, stride=cfg.stride, max_frames=cfg.max_frames, fps=fps, max_pixels=cfg.max_pixels)
        is_video = media.kind == "video"
        perc = self.perception
        load_before = perc.timings_ms.get("load", 0.0)
        perc.load(video=is_video)
        if is_video:
            perc.start_video()
        before = dict(perc.timings_ms)
        t_frames = time.perf_counter()

        frames: list[Frame] = []
        scale = 1.0
        expected = self._expected_frames(media.num_frames) if is_video else 1
        with _progress(progress, media.name, expected) as advance:
            for k, (index, image) in enumerate(media.frames()):
                scale = min(1.0, cfg.max_side / max(image.shape[:2])) if cfg.max_side > 0 else 1.0
                if is_video:
                    objs = perc.track(image, keyframe=k % max(1, cfg.keyframe_interval) == 0)
                else:
                    objs = perc.perceive(image)
                    for i, o in enumerate(objs):
                        o.id = i
                del image
                instances: list[Instance] = []
                for o in objs:
                    inst = o.to_instance()
                    if inst is not None:
                        instances.append(inst)
                t = index / media.fps if (is_video and media.fps > 0) else 0.0
                frames.append(Frame(index=index, time=round(t, 6), instances=instances))
                advance()
        n = max(1, len(frames))
        elapsed = (time.perf_counter() - t_frames) * 1000.0
        stage = {s: perc.timings_ms.get(s, 0.0) - before.get(s, 0.0) for s in STAGES}
        timings: dict[str, Any] = {s: round(v, 2) for s, v in stage.items()}
        timings["load"] = round(perc.timings_ms.get("load", 0.0) - load_before, 2)
        timings["frames"] = round(elapsed, 2)
        timings["total"] = round((time.perf_counter() - t_start) * 1000.0, 2)
        timings["per_frame"] = {s: round(v / n, 2) for s, v in stage.items()} | {"total": round(elapsed / n, 2)}

        num_frames = max(media.num_frames, (frames[-1].index + 1) if frames else 1)
        h, w = media.height, media.width
        source_meta = Source(
            kind="video" if is_video else "image",
            name=name or _source_name(source, media.name),
            width=w,
            height=h,
            fps=float(media.fps) if is_video else 0.0,
            num_frames=num_frames if is_video else 1,
        )
        if not frames:  # e.g. max_frames / stride left nothing: keep a valid, empty first frame
            frames = [Frame(index=0, time=0.0, instances=[])]
        twin = DigitalTwin(
            source=source_meta,
            models=Models(**perc.model_ids()),
            frames=frames,
            meta={
                "timings_ms": timings,
                "scale": round(scale, 6),
                "processing_size": [max(1, round(h * scale)), max(1, round(w * scale))],
                "num_processed_frames": len(frames),
                "mode": cfg.mode,
                "stride": cfg.stride,
                "keyframe_interval": cfg.keyframe_interval if is_video else None,
                "box_threshold": cfg.box_threshold,
                "vocabulary_size": len(perc.vocabulary),
                "backend": cfg.backend,
                "precision": cfg.precision,
                "builder": "fastreasonseg.perception.TwinBuilder",
            },
        )
        notes = list(dict.fromkeys(perc.notes))
        if notes:
            twin.meta["perception_notes"] = notes
        twin.validate_all()
        return twin

    def _expected_frames(self, num_frames: int) -> int:
        n = math.ceil(num_frames / max(1, self.config.stride))
        return min(n, self.config.max_frames) if self.config.max_frames else n


def _source_name(source: Any, fallback: str) -> str:
    if isinstance(source, (str, Path)):
        return Path(source).name or str(source)
    return fallback


class _progress:
    """A rich progress bar when enabled, a no-op otherwise; yields an ``advance()`` callable."""

    def __init__(self, enabled: bool, name: str, total: int) -> None:
        self.enabled = enabled
        self.name = name
        self.total = total
        self._bar: Any = None

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[bold]perception[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._bar.__enter__()
        task = self._bar.add_task(self.name, total=max(1, self.total))
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def build_twin(source: Any, config: PerceptionConfig | None = None, **kw: Any) -> DigitalTwin:
    """One call: ``TwinBuilder(config).build(source, **kw)`` (``progress``, ``name``, ``fps``)."""
    return TwinBuilder(config).build(source, **kw)
