"""``farthest(A[, k])``: the object of A farthest from the camera (largest mean depth)."""

from fastreasonseg.reasoning.tools.kinds import superlative_tool


def _key(o, s):
    d = o.mean("depth")
    return None if d is None else -d


TOOL = superlative_tool("farthest", _key, "A's farthest from the camera", need="depth")
