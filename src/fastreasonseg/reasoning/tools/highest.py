"""``highest(A[, k])``: the object of A whose centre is highest up in the picture."""

from fastreasonseg.reasoning.tools.kinds import superlative_tool

TOOL = superlative_tool("highest", lambda o, s: o.mean("cy"), "A's highest up")
