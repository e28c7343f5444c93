"""``approaches(A)``: the video objects of A that come toward the camera (mean depth falls by 0.05 or more)."""

from fastreasonseg.reasoning.tools.kinds import track_tool
from fastreasonseg.reasoning.tools.motion import depth_change


def _approaches(o, scene, s: float) -> bool:
    d = depth_change(o)
    return d is not None and d < -0.05 * s


TOOL = track_tool("approaches", _approaches, "A coming closer", "come toward the camera")
