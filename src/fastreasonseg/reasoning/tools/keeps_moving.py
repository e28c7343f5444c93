"""``keeps_moving(A)``: the video objects of A still moving at the end (the last third of their frames covers 3%
of the frame or more)."""

from fastreasonseg.reasoning.tools.kinds import track_tool
from fastreasonseg.reasoning.tools.motion import path_length, tail

TOOL = track_tool(
    "keeps_moving",
    lambda o, sc, s: path_length(tail(o)) >= 0.03 * s,
    "A still moving at the end",
    "still moving at the end",
)
