"""``still(A)``: the video objects of A that never move (centre path under 4% of the frame)."""

from fastreasonseg.reasoning.tools.kinds import track_tool
from fastreasonseg.reasoning.tools.motion import centres, path_length

TOOL = track_tool("still", lambda o, sc, s: path_length(centres(o)) < 0.04 / s, "A never moving", "never move")
