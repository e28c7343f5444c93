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

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
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


def twin_path(path: str | os.PathLike) -> Path:
    """The twin file ``path`` names: ``"example"`` is the example twin shipped with the package."""
    return example_twin_path() if str(path) == EXAMPLE_TWIN else Path(path)


def resolve_reasoner_spec(spec: str | None) -> str:
    """The runtime spec to load: ``None`` = the default (``student``), the aliases ``student`` / ``base`` expanded,
    anything else as given (:func:`fastreasonseg.reasoning.runtimes.resolve_spec`)."""
    return resolve_spec(spec)


def _first_frame_size(folder: Path) -> tuple[int, int] | None:
    """``(H, W)`` of the first image of a folder of frames (read from its header), None when there is none."""
    from PIL import Image

    from fastreasonseg.perception.media import list_frame_files

    try:
        files = list_frame_files(folder)
        if not files:
            return None
        with Image.open(files[0]) as im:
            return im.height, im.width
    except OSError:
        return None


def _is_pil_image(obj: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - PIL is a dependency
        return False
    return isinstance(obj, Image.Image)


def pil_to_array(image: Any) -> np.ndarray:
    """A ``PIL.Image.Image`` as an RGB uint8 array (palette, grey, 16-bit and alpha images converted, EXIF rotation
    not applied: the pixels as stored)."""
    from fastreasonseg.perception.media import to_rgb_uint8

    try:
        image.load()
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            return to_rgb_uint8(np.asarray(image), name="PIL image")
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))
    except OSError as exc:
        raise InputError(f"cannot read the PIL image: {exc}") from None


class _MemoryFrames(Mapping[int, np.ndarray]):
    """The frames of an in-memory source, converted to RGB uint8 when a frame is used."""

    def __init__(self, frames: Sequence[Any]) -> None:
        self._frames = frames

    def __getitem__(self, index: int) -> np.ndarray:
        from fastreasonseg.perception.media import to_rgb_uint8

        if not 0 <= index < len(self._frames):
            raise KeyError(index)
        f = self._frames[index]
        return pil_to_array(f) if _is_pil_image(f) else to_rgb_uint8(f, name=f"frame {index}")

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self._frames)))

    def __len__(self) -> int:
        return len(self._frames)


def memory_frames(source: Any) -> Mapping[int, np.ndarray] | None:
    """``{frame index: RGB frame}`` of an in-memory source (a ``PIL`` image, an image array, a ``(T, H, W, C)`` array
    or a list of frames); ``None`` for paths (:class:`SourceFrames` reads those)."""
    if _is_pil_image(source):
        return {0: pil_to_array(source)}
    if isinstance(source, np.ndarray):
        return _MemoryFrames(source) if source.ndim == 4 else _MemoryFrames([source])
    if isinstance(source, (list, tuple)) and source:
        return _MemoryFrames(source)
    return None


def _image_size(path: Path) -> tuple[int, int] | None:
    """``(W, H)`` from the file's header; None when it cannot be read (the builder then says why)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def check_video_folder(folder: Path) -> None:
    """A folder of frames is one video: its images must share one size, else say how to segment them one by one."""
    from fastreasonseg.perception.media import list_frame_files

    sizes: dict[tuple[int, int], str] = {}
    for f in list_frame_files(folder):
        size = _image_size(f)
        if size is not None and size not in sizes:
            sizes[size] = f.name
            if len(sizes) > 1:
                shown = ", ".join(f"{n} {w}x{h}" for (w, h), n in sizes.items())
                raise InputError(
                    f"{folder}: a folder is read as the frames of one video, but its images differ in size ({shown}); "
                    f"to segment each image on its own pass --images (Python: segment_images / build_twins)"
                )


def _independent_images(images: str | os.PathLike | Sequence[Any]) -> list[tuple[str, Any]]:
    """``(name, source)`` of each independent image: the image files of a folder, or the items of a sequence."""
    from fastreasonseg.perception.media import list_frame_files

    if isinstance(images, (str, os.PathLike)):
        folder = Path(images)
        if not folder.is_dir():
            raise InputError(f"{folder}: not a folder of images")
        files = list_frame_files(folder)
        if not files:
            raise InputError(f"{folder}: the folder contains no image files")
        return [(f.name, f) for f in files]
    items = list(images)
    if not items:
        raise InputError("no images were given")
    out = []
    for k, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            name = Path(item).name
        elif _is_pil_image(item) and getattr(item, "filename", ""):
            name = Path(item.filename).name
        else:
            name = f"image_{k}"
        out.append((name, item))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):  # e.g. two folders' a.jpg: keep every result apart
        out = [(f"{k:04d}_{n}", src) for k, (n, src) in enumerate(out)]
    return out


class SourceFrames(Mapping[int, np.ndarray]):
    """The source frames of a twin, read lazily (only when a tool or an overlay needs pixels).

    Looks for the source in ``twin.meta["source_path"]`` (set by :meth:`FastReasonSeg.build_twin`), then
    ``twin.meta["image"]`` or ``twin.source.name`` next to the twin file, then, for a DAVIS oracle twin
    (``twin oracle``), the sequence's frames under ``twin.meta["davis_root"]``. Frames are read once, at the indices
    the twin lists, and checked against the twin's frame size.
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
        if twin.meta.get("oracle") == "davis" and twin.meta.get("davis_root") and twin.meta.get("sequence"):
            root = Path(str(twin.meta["davis_root"]))
            roots = [root] + ([Path(twin_file).resolve().parent / root] if twin_file and not root.is_absolute() else [])
            for r in roots:
                for res in ("480p", "Full-Resolution", "1080p"):
                    d = r / "JPEGImages" / res / str(twin.meta["sequence"])
                    if d.is_dir() and _first_frame_size(d) == twin.size:  # the resolution the annotations have
                        candidates.append(d)
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


# --------------------------------------------------------------------------------------------- result folders
RESULT_WRITER = "fastreasonseg"
"""``result.json["written_by"]``: marks the files listed in ``result.json["files"]`` as fastreasonseg's own output."""

COCO_FILE = "masks.coco.json"
"""The answer's masks in the COCO results format (see :meth:`SegmentationResult.to_coco`), written by ``save``."""
_OUTPUT_NAME = re.compile(r"result\.json|masks\.coco\.json|overlay\.png|overlay\.mp4|twin\.json|masks/\d{5,}\.png")
_SHOW_FILES = 5


def result_files(twin: DigitalTwin, *, with_twin: bool = False) -> list[str]:
    """The files (paths relative to the output folder) that saving an answer about ``twin`` writes."""
    files = [f"masks/{fr.index:05d}.png" for fr in twin.frames]
    files.append("overlay.mp4" if twin.is_video and len(twin.frames) > 1 else "overlay.png")
    files.append(COCO_FILE)
    if with_twin:
        files.append("twin.json")
    files.append("result.json")
    return files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _checksum(info: Mapping[str, Any]) -> str:
    body = {k: v for k, v in info.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def previous_result_files(directory: str | os.PathLike) -> dict[str, str]:
    """The files of the result fastreasonseg saved in ``directory`` that nobody changed since:
    ``{path relative to the folder: sha256}``, ``result.json`` included; empty when the folder holds no such result
    (no ``result.json``, one not written by fastreasonseg, or one edited since)."""
    out = Path(directory)
    try:
        info = json.loads((out / "result.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(info, dict) or info.get("written_by") != RESULT_WRITER or info.get("checksum") != _checksum(info):
        return {}
    files = info.get("files")
    own = {"result.json": ""}
    for rel, digest in files.items() if isinstance(files, dict) else ():
        if not (isinstance(rel, str) and isinstance(digest, str) and _OUTPUT_NAME.fullmatch(rel)):
            continue
        f = out / rel
        if f.is_file() and not f.is_symlink() and _sha256(f) == digest:
            own[rel] = digest
    return own


def _existing_outputs(out: Path) -> list[str]:
    """Files in ``out`` with the names a result uses (any frame's mask)."""
    names = ("result.json", "masks.coco.json", "overlay.png", "overlay.mp4", "twin.json")
    found = [n for n in names if _taken(out / n)]
    masks = out / "masks"
    if masks.is_dir():
        found += sorted(f"masks/{p.name}" for p in masks.iterdir() if _OUTPUT_NAME.fullmatch(f"masks/{p.name}"))
    return found


def _taken(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _cannot_write(path: Path, exc: OSError) -> InputError:
    """The error for a folder or file that cannot be written: names the path and why."""
    anc = path
    while not _taken(anc) and anc.parent != anc:
        anc = anc.parent
    if _taken(anc) and not anc.is_dir() and anc != path:
        reason = f"{anc} is a file, not a folder"
    elif anc == path:
        reason = exc.strerror or type(exc).__name__
    else:
        reason = f"cannot create {path.relative_to(anc)} in {anc} ({exc.strerror or type(exc).__name__})"
    return InputError(f"cannot write to {path}: {reason}")


def ensure_writable_dir(d: Path) -> None:
    """Create ``d`` (and its parents) and check a file can be created in it; a clear error when not."""
    if _taken(d) and not d.is_dir():
        raise InputError(f"cannot write to {d}: it is a file, not a folder")
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".fastreasonseg-", suffix=".probe", dir=d)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _cannot_write(d, exc) from None


def prepare_output_dir(
    directory: str | os.PathLike, files: Sequence[str] | None = None, *, overwrite: bool = False
) -> dict[str, str]:
    """Make ``directory`` ready to receive ``files`` (relative paths; ``None``: whatever a result may write).

    Creates the folder and checks it can be written (an :class:`InputError` naming the path and the reason when not).
    A file that would be replaced must be fastreasonseg's own unchanged output from an earlier save into the same
    folder (see :func:`previous_result_files`); any other file, e.g. one of the user's, is never replaced unless
    ``overwrite`` is true: an :class:`InputError` lists them. Returns :func:`previous_result_files`.
    """
    out = Path(directory)
    if _taken(out) and not out.is_dir():
        raise InputError(f"cannot write to {out}: it is a file, not a folder")
    own = previous_result_files(out) if out.is_dir() else {}
    candidates = list(files) if files is not None else _existing_outputs(out) if out.is_dir() else []
    foreign = [f for f in candidates if _taken(out / f) and f not in own]
    masks = out / "masks"
    if any(f.startswith("masks/") for f in candidates) and _taken(masks) and not masks.is_dir():
        raise InputError(f"cannot write the masks to {masks}: it is a file, not a folder")
    if foreign and not overwrite:
        more = len(foreign) - _SHOW_FILES
        shown = ", ".join(foreign[:_SHOW_FILES]) + (f" and {more} more" if more > 0 else "")
        raise InputError(
            f"{out} already holds {len(foreign)} file(s) this result would replace ({shown}) that fastreasonseg did "
            f"not write there or that changed since; they are kept: choose another folder or pass --force "
            f"(overwrite=True) to replace them"
        )
    ensure_writable_dir(out)
    if files is None or any(f.startswith("masks/") for f in candidates):
        ensure_writable_dir(masks)
    return own


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix) that replaces ``path`` when the block succeeds: a crash never
    leaves a half-written file, and a symbolic link at ``path`` is replaced, never written through."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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

    def to_coco(self, image_id: int | Mapping[int, int] | None = None, category_id: int = 1) -> list[dict[str, Any]]:
        """The answer in the COCO results format (what ``pycocotools.coco.COCO.loadRes`` reads): one entry per answered
        instance per frame it appears in, ``{"image_id", "category_id", "segmentation": {"size": [H, W], "counts":
        RLE string}, "score"}`` plus ``"instance_id"``, ``"label"`` and ``"frame"`` (extra keys COCO tools ignore).

        ``image_id``: the COCO image id of the image (an int, for a one-frame result), a ``{frame index: image id}``
        mapping (a video), or ``None``: the frame index. ``score`` is the instance's detection score (1.0 for twins
        without one, e.g. oracle twins). The union of a frame's entries is exactly its mask in :attr:`masks`.
        """
        from pycocotools import mask as mask_utils

        if isinstance(image_id, int) and len(self.masks) != 1:
            raise InputError(f"one image_id was given for a result with {len(self.masks)} frames: give a mapping")
        out: list[dict[str, Any]] = []
        for fr in self.twin.frames:
            if isinstance(image_id, Mapping):
                if fr.index not in image_id:
                    raise InputError(f"image_id has no entry for frame {fr.index}")
                img = int(image_id[fr.index])
            else:
                img = fr.index if image_id is None else int(image_id)
            for inst in fr.instances:
                if inst.id not in self.ids:
                    continue
                m = self.twin.instance_mask(fr.index, inst.id)
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                out.append(
                    {
                        "image_id": img,
                        "category_id": int(category_id),
                        "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()},
                        "score": float(inst.score) if inst.score is not None else 1.0,
                        "instance_id": inst.id,
                        "label": inst.label,
                        "frame": fr.index,
                    }
                )
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

    def files(self, *, with_twin: bool = False) -> list[str]:
        """The files :meth:`save` writes, relative to its folder."""
        return result_files(self.twin, with_twin=with_twin)

    def save(self, directory: str | os.PathLike, *, overwrite: bool = False, with_twin: bool = False) -> Path:
        """Write ``masks/<frame>.png`` (255 = object), an overlay (``overlay.png`` for an image, ``overlay.mp4`` for
        a video), ``masks.coco.json`` (:meth:`to_coco`), ``twin.json`` when ``with_twin``, and ``result.json`` into
        ``directory``.

        Saving again into the same folder replaces the earlier result when its files are fastreasonseg's own and
        unchanged (``result.json`` lists them with their checksums; files of it that this result does not write are
        removed). Any other file it would replace, e.g. one of the user's, raises an :class:`InputError` unless
        ``overwrite`` is true; so does a folder that cannot be written (the error says why).
        """
        out = Path(directory)
        files = self.files(with_twin=with_twin)
        own = prepare_output_dir(out, files, overwrite=overwrite)
        written: dict[str, str] = {}

        def write(rel: str, writer) -> None:
            target = out / rel
            try:
                with _atomic_path(target) as tmp:
                    writer(tmp)
            except OSError as exc:
                raise _cannot_write(target, exc) from None
            written[rel] = _sha256(target)

        for idx, m in self.masks.items():
            write(f"masks/{idx:05d}.png", lambda p, m=m: save_mask_png(m, p))
        overlays = masks_to_overlays(self.frames, self.masks, self.twin.size)
        title = f"{self.query[:60]} -> " + (
            ", ".join(f"{i} {self.labels.get(i, '')}" for i in self.ids) if self.ids else "no target"
        )
        if self.twin.is_video and len(overlays) > 1:
            frames = (label_image(overlays[i], title) for i in sorted(overlays))
            write("overlay.mp4", lambda p: write_video(frames, p, self.twin.source.fps))
        else:
            first = sorted(overlays)[0]
            write("overlay.png", lambda p: save_overlay_png(label_image(overlays[first], title), p))
        coco = json.dumps(self.to_coco(), separators=(",", ":"))
        write(COCO_FILE, lambda p: p.write_text(coco, encoding="utf-8"))
        if with_twin:
            write("twin.json", lambda p: self.twin.save(p))
        for rel in own:
            if rel not in files:  # the earlier result's own files this one does not replace
                with contextlib.suppress(OSError):
                    (out / rel).unlink()
        info = self.to_dict()
        info["overlay_on_source"] = bool(self.frames)
        info["written_by"] = RESULT_WRITER
        info["files"] = written
        info["checksum"] = _checksum(info)
        try:
            write_text_atomic(out / "result.json", json.dumps(info, indent=2))
        except OSError as exc:
            raise _cannot_write(out / "result.json", exc) from None
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
        """Run perception (heavy: do it once) on an image or video file, a folder of frames (one video), a
        ``PIL.Image.Image``, or numpy arrays (``(H, W[, C])`` an image; ``(T, H, W, C)`` or a list of them a video).

        A folder whose images differ in size is not a video: :class:`InputError`, pointing to
        :meth:`segment_images` / :meth:`build_twins` (one twin per image).
        """
        name = None
        if _is_pil_image(source):
            name = Path(source.filename).name if getattr(source, "filename", "") else None
            source = pil_to_array(source)
        elif isinstance(source, (str, Path)) and Path(source).is_dir():
            check_video_folder(Path(source))
        twin = self.builder.build(source, progress=progress, name=name)
        if isinstance(source, (str, Path)):
            twin.meta["source_path"] = str(Path(source).resolve())
        return twin

    def build_twins(
        self, images: str | os.PathLike | Sequence[Any], *, progress: bool = False
    ) -> dict[str, DigitalTwin]:
        """One twin per image: of every image file in a folder (in natural order), or of each item of a sequence
        (paths, ``PIL`` images or arrays). Keys are the file names (``"image_<k>"`` for in-memory images)."""
        return {name: self.build_twin(src, progress=progress) for name, src in _independent_images(images)}

    def load_twin(self, path: str | os.PathLike) -> DigitalTwin:
        """Load a twin JSON (``"example"`` = the example twin shipped with the package)."""
        p = twin_path(path)
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

    def ask(
        self,
        twin: DigitalTwin | str | os.PathLike,
        query: str,
        *,
        frames: Mapping[int, np.ndarray] | None = None,
        perception: Any | None = None,
    ) -> SegmentationResult:
        """Answer ``query`` about ``twin`` (a twin, a twin JSON path, or ``"example"``).

        ``frames`` (the source frames the tools and the overlay use) and ``perception`` (the models ``detect`` and
        ``relabel`` call) default to the source found beside the twin and this object's perception once it is loaded;
        the server passes its own.
        """
        if not isinstance(twin, DigitalTwin):
            twin = self.load_twin(twin)
        if frames is None:
            frames = self._source_frames(twin)
        if perception is None and frames is not None and self._builder is not None:
            perception = self._builder.perception
        context = ToolContext(frames=frames, perception=perception)
        return SegmentationResult.from_rollout(self.reasoner.ask(twin, query, context), twin, frames)

    def segment(self, source: Any, query: str, *, progress: bool = False) -> SegmentationResult:
        """Build the twin of ``source`` (anything :meth:`build_twin` takes) and answer ``query`` in one call.
        In-memory sources (``PIL`` images, arrays) are also the frames the tools and the overlay use."""
        from fastreasonseg.reasoning.prompt import check_query

        check_query(query, self.reasoner_config.max_query_chars)  # fail fast, before perception runs
        twin = self.build_twin(source, progress=progress)
        result = self.ask(twin, query, frames=memory_frames(source))
        result.timings_ms["perception_ms"] = float(twin.meta.get("timings_ms", {}).get("total", 0.0))
        return result

    def segment_images(
        self, images: str | os.PathLike | Sequence[Any], query: str, *, progress: bool = False
    ) -> dict[str, SegmentationResult]:
        """Answer ``query`` about each image on its own (a folder of independent images, or a sequence of paths,
        ``PIL`` images or arrays; see :meth:`build_twins`): ``{image name: result}``, one twin per image."""
        from fastreasonseg.reasoning.prompt import check_query

        check_query(query, self.reasoner_config.max_query_chars)
        items = _independent_images(images)  # an empty or unreadable folder fails before any model loads
        return {name: self.segment(src, query, progress=progress) for name, src in items}
