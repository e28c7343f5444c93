"""``slowest(A[, k])``: the video object of A that moves slowest (centre path per second)."""

from fastreasonseg.reasoning.tools.kinds import superlative_tool, track_key

TOOL = superlative_tool("slowest", track_key(lambda o, s: o.track.speed), "A's slowest", video_only=True)
