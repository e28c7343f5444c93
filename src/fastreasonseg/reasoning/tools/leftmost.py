"""``leftmost(A[, k])``: the object of A whose centre is farthest left (``leftmost(A, 2)``: second from the left)."""

from fastreasonseg.reasoning.tools.kinds import superlative_tool

TOOL = superlative_tool("leftmost", lambda o, s: o.mean("cx"), "A's leftmost (k: k-th from the left)")
