"""``above(A, B)``: the objects of A over B: centre above B's upper quarter, boxes overlapping horizontally.

An object up and to the side of B is not "above" it (a picture on the wall is not above the cat beside it).
"""

from fastreasonseg.reasoning.tools.geometry import x_overlap
from fastreasonseg.reasoning.tools.kinds import relation_tool


def _above(a, b, s: float) -> bool:
    return a.cy < b.y0 + 0.25 * b.h - 0.02 * s and x_overlap(a, b) >= 0.2 * s


TOOL = relation_tool("above", "above", _above, "A over B")
