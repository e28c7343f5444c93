"""``nearest(A[, k])``: the object of A nearest the camera (smallest mean depth)."""

from fastreasonseg.reasoning.tools.kinds import superlative_tool

TOOL = superlative_tool("nearest", lambda o, s: o.mean("depth"), "A's nearest to the camera", need="depth")
