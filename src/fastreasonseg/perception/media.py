"""Reading images, videos, folders of frames and arrays into RGB ``uint8`` frames.

Everything the perception stage consumes goes through :func:`open_media`, which returns a
:class:`Media`: the source's metadata (kind, name, size, fps, frame count) and a *generator* of
``(index, frame)`` pairs, so a long video is decoded one frame at a time and memory stays flat.

Conversions (all to ``(H, W, 3)`` ``uint8`` RGB):

* grayscale, grayscale+alpha, palette, CMYK, RGBA: converted by PIL, alpha dropped;
* 16-bit images (PNG ``I;16``, TIFF ``uint16``): scaled by ``255 / 65535`` (not clipped);
* 32-bit integer images: scaled by their own maximum when it exceeds 255;
* float images: values in [0, 1] are scaled by 255, others by their maximum;
* EXIF orientation is applied.

Large images are decoded in full (PIL's decompression-bomb limit is raised to
:data:`MAX_IMAGE_PIXELS`, about a gigapixel); :func:`fit_to_side` makes the smaller copy the models see.
Every failure is an :class:`~fastreasonseg.errors.InputError` with one clear message.
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fastreasonseg.errors import InputError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".webm", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
MAX_IMAGE_PIXELS = 512_000_000
"""Decompression-bomb guard: PIL refuses images above twice this many pixels (about 1 gigapixel).
A 12000x9000 photo (108 MP) loads; a crafted 50000x50000 file does not."""


@dataclass
class Media:
    """A source of frames.

    ``kind`` is ``"image"`` or ``"video"`` (a folder of frames and a stack of arrays are videos);
    ``num_frames`` is the number of frames in the source (before stride / max_frames; for some video
    containers an estimate until :meth:`frames` has run to the end, then exact); ``fps`` is 0.0 when
    unknown (images, folders, arrays unless given).
    """

    kind: str
    name: str
    width: int
    height: int
    fps: float
    num_frames: int
    _iter: Callable[[], Iterator[tuple[int, np.ndarray]]]
    stride: int = 1
    max_frames: int | None = None

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index in source, RGB uint8 frame)`` for every ``stride``-th frame, at most ``max_frames``."""
        stride = max(1, int(self.stride))
        produced = 0
        last = -1
        for index, frame in self._iter():
            last = index
            if index % stride:
                continue
            if self.max_frames is not None and produced >= self.max_frames:
                break
            if frame.shape[:2] != (self.height, self.width):
                raise InputError(
                    f"{self.name}: frame {index} is {frame.shape[1]}x{frame.shape[0]} but the first frame is "
                    f"{self.width}x{self.height}; every frame of a video must have the same size"
                )
            produced += 1
            yield index, frame
        if last + 1 > self.num_frames:
            self.num_frames = last + 1


# --------------------------------------------------------------------------------------------- arrays
def to_rgb_uint8(arr: Any, *, name: str = "array") -> np.ndarray:
    """Convert one image array (``(H, W)``, ``(H, W, 1|3|4)``; uint8/uint16/int/float/bool) to RGB uint8."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] in (1, 3, 4):
        pass
    elif a.ndim == 2:
        a = a[:, :, None]
    else:
        raise InputError(
            f"{name}: unsupported image array shape {a.shape}; expected (H, W), (H, W, 3) or (H, W, 4) "
            f"(or (T, H, W, 3) / a list of frames for a video)"
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"{name}: empty image array of shape {a.shape}")
    a = _to_uint8(a, name)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def _to_uint8(a: np.ndarray, name: str) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint16:
        return np.round(a.astype(np.float32) * (255.0 / 65535.0)).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        if a.size and a.min() < 0:
            raise InputError(f"{name}: negative pixel values in an integer image ({a.dtype})")
        top = float(a.max()) if a.size else 0.0
        if top <= 255:
            return a.astype(np.uint8)
        scale = 65535.0 if top <= 65535 else top
        return np.round(a.astype(np.float64) * (255.0 / scale)).clip(0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise InputError(f"{name}: image array contains NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0:
            raise InputError(f"{name}: negative pixel values in a float image (range {lo:.3g}..{hi:.3g})")
        scale = 255.0 if hi <= 1.0 else 255.0 / hi
        return np.round(a * scale).clip(0, 255).astype(np.uint8)
    raise InputError(f"{name}: unsupported image dtype {a.dtype}")


def _array_media(source: Any, fps: float | None) -> Media:
    if isinstance(source, np.ndarray):
        if source.ndim == 4:
            frames: Sequence[Any] = source
            kind = "video"
        else:
            first = to_rgb_uint8(source)
            h, w = first.shape[:2]
            return Media("image", "array", w, h, 0.0, 1, lambda: iter([(0, first)]))
    else:
        frames = list(source)
        kind = "video"
        if not frames:
            raise InputError("an empty list of frames was given")
    first = to_rgb_uint8(frames[0], name="frame 0")
    h, w = first.shape[:2]

    def gen() -> Iterator[tuple[int, np.ndarray]]:
        for i, f in enumerate(frames):
            yield i, (first if i == 0 else to_rgb_uint8(f, name=f"frame {i}"))

    return Media(kind, "array", w, h, float(fps or 0.0), len(frames), gen)


# --------------------------------------------------------------------------------------------- images
@contextlib.contextmanager
def _bomb_limit() -> Iterator[None]:
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _pil_to_rgb(img: Image.Image, name: str) -> np.ndarray:
    img = ImageOps.exif_transpose(img) or img
    if img.mode == "RGB":
        return np.asarray(img, dtype=np.uint8).copy()
    if img.mode.startswith("I") or img.mode == "F":  # 16/32-bit integer or float: scale, never clip
        return to_rgb_uint8(np.asarray(img), name=name)
    # L, LA, P (with or without transparency), 1, CMYK, YCbCr, RGBA, ...: PIL knows the conversion
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def read_image(path: str | Path) -> np.ndarray:
    """Read one image file as ``(H, W, 3)`` RGB uint8 (see the module docstring for conversions)."""
    p = _existing_file(path)
    with _bomb_limit():
        try:
            with Image.open(p) as img:
                img.load()
                return _pil_to_rgb(img, p.name)
        except Image.DecompressionBombError:
            raise InputError(
                f"{p}: image is larger than the {2 * MAX_IMAGE_PIXELS / 1e6:.0f}-megapixel safety limit"
            ) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            pil_reason = str(exc) or type(exc).__name__
    # PIL cannot read some valid files (e.g. 16-bit RGB TIFF); try tifffile / imageio before giving up
    arr = _fallback_read(p)
    if arr is None:
        raise InputError(f"{p}: cannot read the image (corrupt or unsupported format: {pil_reason})")
    return to_rgb_uint8(arr, name=p.name)


def _fallback_read(p: Path) -> np.ndarray | None:
    if p.suffix.lower() in (".tif", ".tiff"):
        try:
            import tifffile

            arr = tifffile.imread(str(p))
            if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
                arr = np.moveaxis(arr, 0, -1)
            return arr
        except Exception:
            pass
    try:
        import imageio.v3 as iio

        return iio.imread(str(p))
    except Exception:
        return None


def _image_media(p: Path) -> Media:
    with _bomb_limit():
        try:
            with Image.open(p) as img:
                w, h = img.size
                if (img.getexif() or {}).get(0x0112, 1) in (5, 6, 7, 8):
                    w, h = h, w
        except Image.DecompressionBombError:
            raise InputError(
                f"{p}: image is larger than the {2 * MAX_IMAGE_PIXELS / 1e6:.0f}-megapixel safety limit"
            ) from None
        except Exception:
            w = h = 0  # let read_image produce the error (or succeed through a fallback reader)
    if w == 0:
        frame = read_image(p)
        h, w = frame.shape[:2]
        return Media("image", p.name, w, h, 0.0, 1, lambda: iter([(0, frame)]))
    return Media("image", p.name, w, h, 0.0, 1, lambda: iter([(0, read_image(p))]))


# --------------------------------------------------------------------------------------------- folders
def _natural_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | Path) -> list[Path]:
    """Image files of a folder, in natural order (``2.jpg`` before ``10.jpg``); hidden files skipped."""
    d = Path(folder)
    files = [
        f for f in d.iterdir() if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_EXTENSIONS
    ]
    return sorted(files, key=lambda f: _natural_key(f.name))


def _folder_media(d: Path, fps: float | None) -> Media:
    files = list_frame_files(d)
    if not files:
        raise InputError(f"{d}: the folder contains no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    first = read_image(files[0])
    h, w = first.shape[:2]

    def gen() -> Iterator[tuple[int, np.ndarray]]:
        for i, f in enumerate(files):
            yield i, (first if i == 0 else read_image(f))

    return Media("video", d.name, w, h, float(fps or 0.0), len(files), gen)


# --------------------------------------------------------------------------------------------- videos
def _video_media(p: Path, fps: float | None) -> Media:
    import av

    try:
        container = av.open(str(p))
    except Exception as exc:
        raise InputError(f"{p}: cannot open the video (corrupt or unsupported: {_short(exc)})") from None
    try:
        if not container.streams.video:
            raise InputError(f"{p}: the file has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        vfps = float(rate) if rate else 0.0
        count = int(stream.frames or 0)
        if count <= 0 and stream.duration is not None and stream.time_base is not None and vfps > 0:
            count = int(math.floor(float(stream.duration * stream.time_base) * vfps + 0.5))
        if count <= 0 and container.duration and vfps > 0:
            count = int(math.floor(container.duration / 1_000_000 * vfps + 0.5))
        # decode the first frame now: a file that opens but cannot be decoded fails here, clearly
        try:
            first_frame = next(container.decode(stream))
        except StopIteration:
            raise InputError(f"{p}: the video contains no decodable frames") from None
        except Exception as exc:
            raise InputError(f"{p}: cannot decode the video ({_short(exc)})") from None
        w, h = first_frame.width, first_frame.height
    finally:
        container.close()

    def gen() -> Iterator[tuple[int, np.ndarray]]:
        c = av.open(str(p))
        try:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            i = 0
            try:
                for fr in c.decode(s):
                    yield i, fr.to_ndarray(format="rgb24")
                    i += 1
            except av.error.FFmpegError as exc:
                if i == 0:
                    raise InputError(f"{p}: cannot decode the video ({_short(exc)})") from None
                # a truncated tail: keep the frames decoded so far
        finally:
            c.close()

    return Media("video", p.name, w, h, float(fps) if fps else vfps, max(count, 1), gen)


def _short(exc: BaseException) -> str:
    s = str(exc).strip().splitlines()
    return s[0] if s else type(exc).__name__


# --------------------------------------------------------------------------------------------- entry
def _existing_file(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{p}: no such file or directory")
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty (0 bytes)")
    return p


def open_media(
    source: Any,
    *,
    stride: int = 1,
    max_frames: int | None = None,
    fps: float | None = None,
    max_pixels: int | None = None,
) -> Media:
    """Open an image file, video file, folder of frames, or numpy array(s).

    Arrays: ``(H, W)``, ``(H, W, 3|4)`` is an image; ``(T, H, W, 3)`` or a list of ``(H, W[, C])``
    arrays is a video. ``fps`` overrides (videos) or supplies (folders, arrays) the frame rate.
    ``max_pixels`` refuses sources whose frames are larger (width x height), from the file's header,
    before anything is decoded (:func:`check_pixels`).
    """
    if stride < 1:
        raise InputError(f"stride must be >= 1, got {stride}")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"max_frames must be >= 1 or None, got {max_frames}")
    if isinstance(source, (np.ndarray, list, tuple)):
        media = _array_media(source, fps)
    elif isinstance(source, (str, Path)):
        p = _existing_file(source)
        if p.is_dir():
            media = _folder_media(p, fps)
        else:
            ext = p.suffix.lower()
            if ext in VIDEO_EXTENSIONS:
                media = _video_media(p, fps)
            elif ext in IMAGE_EXTENSIONS:
                media = _image_media(p)
            else:
                media = _sniff(p, fps)
    else:
        raise InputError(
            f"unsupported input of type {type(source).__name__}: give a path (image, video or folder of frames) "
            f"or a numpy array"
        )
    media.stride = stride
    media.max_frames = max_frames
    if max_pixels is not None:
        check_pixels(media.name, media.width, media.height, max_pixels)
    return media


def check_pixels(name: str, width: int, height: int, max_pixels: int) -> None:
    """:class:`InputError` when a ``width`` x ``height`` frame exceeds ``max_pixels``, saying how to proceed."""
    pixels = int(width) * int(height)
    if pixels <= max_pixels:
        return
    f = math.sqrt(max_pixels / pixels)
    w, h = max(1, int(width * f)), max(1, int(height * f))
    raise InputError(
        f"{name}: {width}x{height} is {pixels:,} pixels per frame, above the limit of {max_pixels:,} "
        f"(PerceptionConfig.max_pixels; --max-pixels on the command line). Downscale it first (e.g. to {w}x{h}, "
        f"the models see at most max_side pixels on the long side anyway) or raise the limit."
    )


def _sniff(p: Path, fps: float | None) -> Media:
    """Unknown extension: try it as an image, then as a video."""
    with _bomb_limit():
        try:
            with Image.open(p) as img:
                img.verify()
            return _image_media(p)
        except Exception:
            pass
    try:
        return _video_media(p, fps)
    except InputError:
        raise InputError(f"{p}: not a readable image or video (unknown extension {p.suffix!r})") from None


# --------------------------------------------------------------------------------------------- resizing
def fit_to_side(frame: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale ``frame`` so its longest side is at most ``max_side``; return it and the scale (<= 1).

    Coordinates on the small frame times ``1 / scale`` are full-resolution coordinates.
    """
    h, w = frame.shape[:2]
    longest = max(h, w)
    if max_side <= 0 or longest <= max_side:
        return frame, 1.0
    scale = max_side / longest
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = np.asarray(Image.fromarray(frame).resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=3.0))
    return small, scale


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a boolean mask to ``size = (H, W)``."""
    m = np.asarray(mask, dtype=bool)
    if m.shape == tuple(size):
        return m
    img = Image.fromarray(m.astype(np.uint8) * 255)
    return np.asarray(img.resize((size[1], size[0]), Image.Resampling.NEAREST)) > 127
