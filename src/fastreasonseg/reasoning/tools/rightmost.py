"""``rightmost(A[, k])``: the object of A whose centre is farthest right."""

from fastreasonseg.reasoning.tools.kinds import superlative_tool

TOOL = superlative_tool("rightmost", lambda o, s: -o.mean("cx"), "A's rightmost")
