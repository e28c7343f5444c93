"""``appears_last(A[, k])``: the video object of A that comes into view last."""

from fastreasonseg.reasoning.tools.kinds import superlative_tool, track_key

TOOL = superlative_tool(
    "appears_last", track_key(lambda o, s: -o.track.first_frame), "A's last to appear", video_only=True
)
