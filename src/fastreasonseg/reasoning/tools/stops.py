"""``stops(A)``: the video objects of A that move and then stay put: the first two thirds of their frames cover
6% of the frame or more, the last third under 2%."""

from fastreasonseg.reasoning.tools.kinds import track_tool
from fastreasonseg.reasoning.tools.motion import head, path_length, tail


def _stops(o, scene, s: float) -> bool:
    return path_length(head(o)) >= 0.06 * s and path_length(tail(o)) < 0.02 / s


TOOL = track_tool("stops", _stops, "A moving, then stopping", "move, then stop")
