"""``left(A, B)``: the objects of A whose centre is left of the centre of B."""

from fastreasonseg.reasoning.tools.kinds import relation_tool

TOOL = relation_tool("left", "left of", lambda a, b, s: a.cx < b.cx - 0.03 * s, "A left of B")
