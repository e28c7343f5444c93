"""``smallest(A[, k])``: the object of A covering the least of the frame (mask area)."""

from fastreasonseg.reasoning.tools.kinds import superlative_tool

TOOL = superlative_tool("smallest", lambda o, s: o.mean("area"), "A's smallest")
