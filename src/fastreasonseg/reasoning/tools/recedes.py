"""``recedes(A)``: the video objects of A that move away from the camera (mean depth rises by 0.05 or more)."""

from fastreasonseg.reasoning.tools.kinds import track_tool
from fastreasonseg.reasoning.tools.motion import depth_change


def _recedes(o, scene, s: float) -> bool:
    d = depth_change(o)
    return d is not None and d > 0.05 * s


TOOL = track_tool("recedes", _recedes, "A moving away", "move away from the camera")
