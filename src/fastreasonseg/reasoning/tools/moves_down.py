"""``moves_down(A)``: the video objects of A whose centre ends up lower in the picture (5% of the height)."""

from fastreasonseg.reasoning.tools.kinds import track_tool
from fastreasonseg.reasoning.tools.motion import displacement

TOOL = track_tool("moves_down", lambda o, sc, s: displacement(o)[1] > 0.05 * s, "A moving down", "move down")
