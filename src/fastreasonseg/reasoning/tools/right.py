"""``right(A, B)``: the objects of A whose centre is right of the centre of B."""

from fastreasonseg.reasoning.tools.kinds import relation_tool

TOOL = relation_tool("right", "right of", lambda a, b, s: a.cx > b.cx + 0.03 * s, "A right of B")
