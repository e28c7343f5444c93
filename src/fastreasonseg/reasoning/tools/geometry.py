"""Box geometry the spatial operators share (boxes in fractions of the frame: :class:`~.scene.Geom`)."""

from __future__ import annotations

import math

from fastreasonseg.reasoning.tools.scene import Geom


def x_overlap(a: Geom, b: Geom) -> float:
    """Horizontal overlap of two boxes as a share of the narrower one (0 = side by side, 1 = one spans the other)."""
    inter = min(a.x1, b.x1) - max(a.x0, b.x0)
    narrow = min(a.w, b.w)
    return max(0.0, inter) / narrow if narrow > 0 else 0.0


def box_gap(a: Geom, b: Geom) -> float:
    """Distance between two boxes (0 when they touch or overlap)."""
    dx = max(0.0, max(a.x0, b.x0) - min(a.x1, b.x1))
    dy = max(0.0, max(a.y0, b.y0) - min(a.y1, b.y1))
    return math.hypot(dx, dy)


def inside_fraction(a: Geom, b: Geom) -> float:
    """Share of ``a``'s box that lies inside ``b``'s box."""
    iw = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    ih = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    area = a.w * a.h
    return iw * ih / area if area > 0 else 0.0


def centre_distance(a: Geom, b: Geom) -> float:
    return math.hypot(a.cx - b.cx, a.cy - b.cy)
