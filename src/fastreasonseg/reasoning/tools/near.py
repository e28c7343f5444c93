"""``near(A, B)``: the objects of A next to B: the boxes' gap is under a quarter of the larger box's side, and
their depths (when known) differ by under 0.2."""

from fastreasonseg.reasoning.tools.geometry import box_gap
from fastreasonseg.reasoning.tools.kinds import relation_tool


def _near(a, b, s: float) -> bool:
    size = max(a.w, a.h, b.w, b.h)
    if box_gap(a, b) > 0.25 * size / s:
        return False
    return a.depth is None or b.depth is None or abs(a.depth - b.depth) < 0.2 / s


TOOL = relation_tool("near", "near", _near, "A next to B")
