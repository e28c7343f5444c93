"""Binary masks <-> COCO run-length encoding (via pycocotools), and the geometry derived from masks.

Boxes are ``(x0, y0, x1, y1)`` in pixels with exclusive upper corners: a mask covering the whole
``W x H`` frame has the box ``(0, 0, W, H)``; a single pixel at column 5, row 7 has ``(5, 7, 6, 8)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pycocotools import mask as mask_utils

Box = tuple[float, float, float, float]


def encode_mask(mask: np.ndarray) -> dict:
    """Encode a 2-D boolean mask ``(H, W)`` as a JSON-ready COCO RLE ``{"size": [H, W], "counts": str}``."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"a mask must be 2-D (H, W), got shape {m.shape}")
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8, copy=False)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _coco(rle: dict) -> dict:
    counts = rle["counts"]
    return {
        "size": list(rle["size"]),
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }


def decode_mask(rle: dict) -> np.ndarray:
    """Decode a COCO RLE (compressed string or uncompressed count list) to a boolean ``(H, W)`` array."""
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE as found in some COCO annotations
        h, w = rle["size"]
        rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    return mask_utils.decode(_coco(rle)).astype(bool)


def rle_area(rle: dict) -> int:
    """Number of foreground pixels of an RLE, computed without decoding it."""
    return int(mask_utils.area(_coco(rle)))


def rle_is_valid(rle: dict) -> str | None:
    """Return ``None`` when the RLE decodes to exactly ``size`` pixels, else a short reason."""
    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle["counts"]
        if isinstance(counts, str):
            # pycocotools does not check compressed strings; decode the run lengths and sum them.
            total = sum(_runs_from_string(counts))
        else:
            total = sum(int(c) for c in counts)
    except (ValueError, TypeError, KeyError) as exc:
        return f"undecodable counts ({exc})"
    if total != h * w:
        return f"counts cover {total} pixels but size {h}x{w} has {h * w}"
    return None


def _runs_from_string(s: str) -> list[int]:
    """Decode the LEB128-like string of COCO's compressed RLE into run lengths (pycocotools' rleFrString)."""
    runs: list[int] = []
    p = 0
    n = len(s)
    while p < n:
        x = 0
        k = 0
        more = True
        while more:
            if p >= n:
                raise ValueError("truncated counts string")
            c = ord(s[p]) - 48
            if c < 0 or c > 63:
                raise ValueError(f"invalid character {s[p]!r} in counts")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            raise ValueError("negative run length in counts")
        runs.append(x)
    return runs


def mask_box(mask: np.ndarray) -> Box | None:
    """Tight box ``(x0, y0, x1, y1)`` (exclusive upper corner) of a mask, or ``None`` if it is empty."""
    m = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def rle_box(rle: dict) -> Box | None:
    """Tight box of an RLE (``None`` if empty), computed by pycocotools without a full decode."""
    if rle_area(rle) == 0:
        return None
    x, y, w, h = (float(v) for v in mask_utils.toBbox(_coco(rle)))
    return (x, y, x + w, y + h)


def union_rles(rles: Iterable[dict], size: tuple[int, int]) -> np.ndarray:
    """Boolean union of several RLEs of the same ``(H, W)`` size (all-False if none)."""
    rles = [_coco(r) for r in rles]
    if not rles:
        return np.zeros(size, dtype=bool)
    return mask_utils.decode(mask_utils.merge(rles, intersect=False)).astype(bool)


def box_iou(a: Box, b: Box) -> float:
    """IoU of two ``(x0, y0, x1, y1)`` boxes (0.0 when both are empty)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
