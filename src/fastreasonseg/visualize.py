"""Pictures a person can look at: mask PNGs, overlays on the source image, masked videos."""

from __future__ import annotations

import colorsys
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fastreasonseg.errors import InputError


def palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` well-separated saturated colours (golden-ratio hues), the same for the same ``n``."""
    out = []
    for k in range(n):
        r, g, b = colorsys.hsv_to_rgb((0.08 + 0.618034 * k) % 1.0, 0.85, 1.0)
        out.append((int(r * 255), int(g * 255), int(b * 255)))
    return out


def overlay(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    color: tuple[int, int, int] = (255, 40, 40),
    alpha: float = 0.55,
    dim: float = 0.55,
    outline: bool = True,
) -> np.ndarray:
    """The image with ``mask`` tinted and outlined and everything else dimmed (uint8 RGB)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    m = np.asarray(mask, dtype=bool)
    if m.shape != img.shape[:2]:
        raise InputError(f"mask {m.shape} and image {img.shape[:2]} differ in size")
    out = img * dim
    out[m] = img[m] * (1 - alpha) + np.asarray(color, np.float32) * alpha
    if outline and m.any():
        edge = m & ~(
            np.pad(m, 1)[2:, 1:-1] & np.pad(m, 1)[:-2, 1:-1] & np.pad(m, 1)[1:-1, 2:] & np.pad(m, 1)[1:-1, :-2]
        )
        edge = edge | np.pad(edge, 1)[2:, 1:-1] | np.pad(edge, 1)[1:-1, 2:]  # 2 px wide
        out[edge] = color
    return np.clip(out, 0, 255).astype(np.uint8)


def label_image(image: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` in a dark band at the top of the image."""
    im = Image.fromarray(image)
    draw = ImageDraw.Draw(im)
    band = 14 if im.height >= 100 else 10
    draw.rectangle([0, 0, im.width, band], fill=(0, 0, 0))
    draw.text((3, 1), text[:120], fill=(255, 255, 255))
    return np.asarray(im)


def save_mask_png(mask: np.ndarray, path: str | os.PathLike) -> None:
    """A mask as an 8-bit PNG: 255 = object, 0 = background (DAVIS style: non-zero = object)."""
    Image.fromarray(np.asarray(mask, dtype=bool).astype(np.uint8) * 255).save(path)


def write_video(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float) -> None:
    """Encode RGB frames to an H.264 MP4 with PyAV (even sizes are padded as the codec needs)."""
    import av

    container = av.open(str(path), "w")
    stream = None
    try:
        for frame in frames:
            h, w = frame.shape[:2]
            if stream is None:
                stream = container.add_stream("libx264", rate=max(1, round(fps or 10)))
                stream.width, stream.height = w + w % 2, h + h % 2
                stream.pix_fmt = "yuv420p"
            if w % 2 or h % 2:
                frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    finally:
        container.close()


def blank_frame(height: int, width: int) -> np.ndarray:
    """A mid-grey frame, used when the source image is not at hand."""
    return np.full((height, width, 3), 96, dtype=np.uint8)


def masks_to_overlays(
    frames: Mapping[int, np.ndarray] | None, masks: Mapping[int, np.ndarray], size: tuple[int, int]
) -> dict[int, np.ndarray]:
    """Overlay each frame's mask on its image (or on grey when ``frames`` lacks it)."""
    out = {}
    for idx, m in masks.items():
        img = frames.get(idx) if frames else None
        out[idx] = overlay(img if img is not None else blank_frame(*size), m)
    return out


def save_overlay_png(image: np.ndarray, path: str | os.PathLike) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
