"""What the track operators measure on a video object: its centre path, split into parts, and its depth trend."""

from __future__ import annotations

import itertools
import math

from fastreasonseg.reasoning.tools.scene import Obj, Scene


def centres(o: Obj) -> list[tuple[float, float]]:
    return [(g.cx, g.cy) for _, g in sorted(o.frames.items())]


def path_length(points: list[tuple[float, float]]) -> float:
    return sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(points))


def displacement(o: Obj) -> tuple[float, float]:
    pts = centres(o)
    return (pts[-1][0] - pts[0][0], pts[-1][1] - pts[0][1])


def tail(o: Obj, share: float = 1 / 3) -> list[tuple[float, float]]:
    """The centres of the last ``share`` of the object's frames (at least two)."""
    pts = centres(o)
    n = max(2, math.ceil(len(pts) * share))
    return pts[-n:]


def head(o: Obj, share: float = 2 / 3) -> list[tuple[float, float]]:
    pts = centres(o)
    n = max(2, math.ceil(len(pts) * share))
    return pts[:n]


def depth_change(o: Obj) -> float | None:
    """Last mean depth minus first (negative: coming closer); from the area when the twin has no depth."""
    depths = [g.depth for _, g in sorted(o.frames.items()) if g.depth is not None]
    if len(depths) >= 2:
        return depths[-1] - depths[0]
    areas = [g.area for _, g in sorted(o.frames.items())]
    if len(areas) >= 2 and areas[0] > 0 and areas[-1] > 0:
        return -0.1 * math.log(areas[-1] / areas[0])  # four times the area ~ 0.14 closer
    return None


def position(scene: Scene, frame: int) -> int:
    """Position of a frame index in the video (0 = first frame)."""
    return scene.frame_indices.index(frame)
