"""``moves_up(A)``: the video objects of A whose centre ends up higher in the picture (5% of the height)."""

from fastreasonseg.reasoning.tools.kinds import track_tool
from fastreasonseg.reasoning.tools.motion import displacement

TOOL = track_tool("moves_up", lambda o, sc, s: displacement(o)[1] < -0.05 * s, "A moving up", "move up")
