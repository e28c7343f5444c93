"""``on(A, B)``: the objects of A resting on B: the bottom edge on B's upper half with the centre over B, or the
box (mostly) inside B's box while smaller than B (things on a tray, a shelf, a cart, seen from the front)."""

from fastreasonseg.reasoning.tools.geometry import inside_fraction
from fastreasonseg.reasoning.tools.kinds import relation_tool


def resting_on(a, b, s: float) -> bool:
    """``a`` rests on ``b`` in one frame (the definition above; ``holds`` is the same relation read backwards)."""
    if a.area >= b.area:
        return False
    over = b.x0 + 0.02 * s <= a.cx <= b.x1 - 0.02 * s
    resting = b.y0 - 0.06 * b.h / s <= a.y1 <= b.y0 + 0.5 * b.h and a.cy < b.cy
    return over and (resting or inside_fraction(a, b) >= 0.7 + 0.1 * s)


TOOL = relation_tool("on", "on", resting_on, "A on B")
