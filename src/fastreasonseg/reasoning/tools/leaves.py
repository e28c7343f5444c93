"""``leaves(A)``: the video objects of A that leave the view before the video ends (absent from the last frame)."""

from fastreasonseg.reasoning.tools.kinds import track_tool


def _leaves(o, scene, s: float) -> bool:
    return o.track.last_frame != scene.frame_indices[-1]


TOOL = track_tool("leaves", _leaves, "A leaving the view", "leave before the end")
