"""``fastest(A[, k])``: the video object of A that moves fastest (centre path per second)."""

from fastreasonseg.reasoning.tools.kinds import superlative_tool, track_key

TOOL = superlative_tool("fastest", track_key(lambda o, s: -o.track.speed), "A's fastest", video_only=True)
