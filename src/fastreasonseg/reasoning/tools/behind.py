"""``behind(A, B)``: the objects of A farther from the camera than B (mean depth larger by 0.05)."""

from fastreasonseg.reasoning.tools.kinds import relation_tool


def _behind(a, b, s: float) -> bool:
    return a.depth is not None and b.depth is not None and a.depth > b.depth + 0.05 * s


TOOL = relation_tool("behind", "behind", _behind, "A behind B")
