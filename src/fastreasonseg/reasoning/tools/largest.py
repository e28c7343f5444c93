"""``largest(A[, k])``: the object of A covering the most of the frame (mask area)."""

from fastreasonseg.reasoning.tools.kinds import superlative_tool

TOOL = superlative_tool("largest", lambda o, s: -o.mean("area"), "A's biggest")
