"""``moves_right(A)``: the video objects of A whose centre ends up right of where it started (5% of the width)."""

from fastreasonseg.reasoning.tools.kinds import track_tool
from fastreasonseg.reasoning.tools.motion import displacement

TOOL = track_tool("moves_right", lambda o, sc, s: displacement(o)[0] > 0.05 * s, "A moving right", "move right")
