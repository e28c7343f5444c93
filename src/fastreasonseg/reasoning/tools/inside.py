"""``inside(A, B)``: the objects of A whose box lies (at least 80%) inside B's box, B being the larger."""

from fastreasonseg.reasoning.tools.geometry import inside_fraction
from fastreasonseg.reasoning.tools.kinds import relation_tool


def _inside(a, b, s: float) -> bool:
    return a.area < b.area and inside_fraction(a, b) >= 0.7 + 0.1 * s


TOOL = relation_tool("inside", "inside", _inside, "A inside B")
