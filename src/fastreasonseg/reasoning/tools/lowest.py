"""``lowest(A[, k])``: the object of A whose centre is lowest in the picture."""

from fastreasonseg.reasoning.tools.kinds import superlative_tool

TOOL = superlative_tool("lowest", lambda o, s: -o.mean("cy"), "A's lowest")
