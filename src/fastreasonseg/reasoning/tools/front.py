"""``front(A, B)``: the objects of A nearer the camera than B (mean depth smaller by 0.05)."""

from fastreasonseg.reasoning.tools.kinds import relation_tool


def _front(a, b, s: float) -> bool:
    return a.depth is not None and b.depth is not None and a.depth < b.depth - 0.05 * s


TOOL = relation_tool("front", "in front of", _front, "A in front of B")
