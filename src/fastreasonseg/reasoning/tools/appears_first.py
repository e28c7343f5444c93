"""``appears_first(A[, k])``: the video object of A seen earliest (the k-th to appear with k)."""

from fastreasonseg.reasoning.tools.kinds import superlative_tool, track_key

TOOL = superlative_tool(
    "appears_first", track_key(lambda o, s: o.track.first_frame), "A's first to appear", video_only=True
)
