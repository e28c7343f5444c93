"""``below(A, B)``: the objects of A under B: centre below B's lower quarter, boxes overlapping horizontally."""

from fastreasonseg.reasoning.tools.geometry import x_overlap
from fastreasonseg.reasoning.tools.kinds import relation_tool


def _below(a, b, s: float) -> bool:
    return a.cy > b.y1 - 0.25 * b.h + 0.02 * s and x_overlap(a, b) >= 0.2 * s


TOOL = relation_tool("below", "below", _below, "A under B")
