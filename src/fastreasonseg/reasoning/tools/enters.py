"""``enters(A)``: the video objects of A that come into view after the video starts (absent from the first frame)."""

from fastreasonseg.reasoning.tools.kinds import track_tool


def _enters(o, scene, s: float) -> bool:
    return o.track.first_frame != scene.frame_indices[0]


TOOL = track_tool("enters", _enters, "A coming into view later", "appear after the start")
