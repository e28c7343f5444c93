"""The server's request and response bodies (pydantic), so ``/openapi.json`` documents every field.

The builders at the end turn what the store keeps (``status.json``, ``result.json``) into these models and add
the URLs a client follows (``ask_url``, ``mask_urls``, ``overlay_url``...).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fastreasonseg.twin.schema import Source

TwinState = Literal["queued", "building", "ready", "failed"]


class _Open(BaseModel):
    """A response that may carry fields added after this version (they are passed through as they are)."""

    model_config = ConfigDict(extra="allow")


class ErrorResponse(BaseModel):
    """Every error: ``{"detail": "what went wrong and what to do"}``."""

    detail: str | list[Any] = Field(description="The message (a list of field errors for a malformed request).")


class NotReadyResponse(ErrorResponse):
    """``409``: the twin exists but is not ready (still building, or failed)."""

    status: TwinState | None = None


class AskRequest(BaseModel):
    query: str = Field(description="The question, e.g. 'what would I drink coffee from?'")


class AuthRequest(BaseModel):
    token: str = Field(description="The server's token (the one `fastreasonseg serve` was started with).")


class AuthStatus(BaseModel):
    required: bool = Field(description="Whether this server needs a token.")
    authenticated: bool = Field(description="Whether this request carries it (header or cookie).")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    pending_builds: int = Field(description="Twins queued or being built.")
    pending_asks: int = Field(description="Questions queued or being answered.")
    perception_workers: int
    ask_workers: int
    max_queued_builds: int
    max_queued_asks: int
    uptime_s: float


class MediaInfo(_Open):
    """What the upload's header showed (before the twin is built)."""

    kind: Literal["image", "video"]
    width: int
    height: int
    fps: float | None = None
    num_frames: int | None = None
    seconds: float | None = None


class TwinStatus(_Open):
    """A twin in the store: its build state, what it was made from, and where to go next."""

    id: str
    status: TwinState
    progress: float = Field(0.0, description="Fraction of the frames processed, 0..1.")
    stage: str | None = Field(None, description="What the build is doing, e.g. 'frame 3/10'.")
    error: str | None = Field(None, description="Why the build failed (status 'failed').")
    note: str | None = None
    kind: Literal["image", "video", "twin"] | None = Field(None, description="What was uploaded.")
    filename: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    media: MediaInfo | None = None
    source: Source | None = Field(None, description="The twin's source (once it is ready).")
    num_instances: int | None = None
    num_frames: int | None = None
    created_at: float | None = Field(None, description="Unix time.")
    updated_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    build_ms: float | None = None
    url: str = Field(description="This status.")
    ask_url: str | None = Field(None, description="Where to POST questions (once ready).")
    view_url: str | None = Field(None, description="The text view and instances (once ready).")
    source_url: str | None = Field(None, description="The uploaded image or video.")


class InstanceRow(BaseModel):
    """One object (a track, in a video) as the view lists it, from the first frame it appears in."""

    id: int
    label: str
    score: float | None
    alt_labels: list[tuple[str, float]]
    box: tuple[float, float, float, float] = Field(description="x0, y0, x1, y1 in pixels.")
    area: int = Field(description="Pixels.")
    depth: float | None = Field(description="Mean relative depth, 0 = nearest.")
    first_frame: int
    last_frame: int
    frames: int = Field(description="Frames the object appears in.")


class TwinView(BaseModel):
    view: str = Field(description="The compact text the reasoner reads.")
    view_tokens_approx: int
    source: Source
    instances: list[InstanceRow]


class AskResult(_Open):
    """The answer to one question: ids, labels, the reasoning chain, and where the masks and overlay are."""

    twin_id: str
    result_id: str
    query: str
    ids: list[int] = Field(description="Ids of the target objects ([] = no target).")
    labels: dict[str, str] = Field(default_factory=dict, description="Label of each answered id.")
    no_target: bool
    diagnostic: str = ""
    rollout: str = Field("", description="The full reasoning chain: reason, plans, results, answer.")
    format_ok: bool | None = None
    rounds: int | None = None
    tool_calls: list[Any] | None = Field(None, description="What each plan asked and what the executor answered.")
    notes: list[Any] | None = Field(None, description="What changed the result: truncations, fallbacks taken.")
    tokens: dict[str, Any] | None = Field(None, description="prompt_tokens, cached_tokens, completion_tokens.")
    timings_ms: dict[str, Any] = Field(default_factory=dict, description="Milliseconds per stage.")
    source: Source | None = None
    frames: list[int] = Field(default_factory=list, description="Frame indices with a mask.")
    mask_pixels: dict[str, int] = Field(default_factory=dict)
    overlay_on_source: bool | None = Field(None, description="Whether the overlay is drawn on the source frames.")
    created_at: float | None = None
    result_url: str
    mask_urls: dict[str, str] = Field(description="Mask PNG of each frame index (255 = object).")
    overlay_url: str


class SegmentResult(AskResult):
    """``POST /segment``: the answer plus the status of the twin built for it (kept in the store)."""

    twin: TwinStatus


# ---------------------------------------------------------------------------------------------- builders
def twin_status(st: dict[str, Any]) -> TwinStatus:
    """A stored status with the URLs a client follows."""
    tid = st["id"]
    out = dict(st)
    out["url"] = f"/twins/{tid}"
    if st.get("status") == "ready":
        out["ask_url"] = f"/twins/{tid}/ask"
        out["view_url"] = f"/twins/{tid}/view"
    if st.get("kind") in ("image", "video"):
        out["source_url"] = f"/twins/{tid}/source"
    return TwinStatus.model_validate(out)


def result_with_urls(info: dict[str, Any]) -> dict[str, Any]:
    """A stored ``result.json`` with ``result_url``, ``mask_urls`` and ``overlay_url``."""
    tid, rid = info["twin_id"], info["result_id"]
    base = f"/results/{tid}/{rid}"
    out = dict(info)
    out["result_url"] = f"{base}/result.json"
    out["mask_urls"] = {str(f): f"{base}/masks/{int(f):05d}.png" for f in info.get("frames", [])}
    video = (info.get("source") or {}).get("kind") == "video" and len(info.get("frames", [])) > 1
    out["overlay_url"] = f"{base}/overlay.mp4" if video else f"{base}/overlay.png"
    return out


def view_of(twin: Any) -> TwinView:
    """The text view of a loaded twin and its instance list."""
    from fastreasonseg.reasoning.prompt import approx_tokens
    from fastreasonseg.twin.view import twin_view as render_view

    text = render_view(twin)
    rows: dict[int, dict[str, Any]] = {}
    for fr in twin.frames:
        for inst in fr.instances:
            row = rows.get(inst.id)
            if row is None:
                row = rows[inst.id] = {
                    "id": inst.id,
                    "label": inst.label,
                    "score": inst.score,
                    "alt_labels": [tuple(a) for a in (inst.alt_labels or [])],
                    "box": tuple(inst.box),
                    "area": inst.area,
                    "depth": inst.depth.mean if inst.depth is not None else None,
                    "first_frame": fr.index,
                    "frames": 0,
                }
            row["frames"] += 1
            row["last_frame"] = fr.index
    return TwinView(
        view=text,
        view_tokens_approx=approx_tokens(text),
        source=twin.source,
        instances=[InstanceRow(**r) for r in sorted(rows.values(), key=lambda r: r["id"])],
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "The server has a token and the request does not carry it."},
    404: {"model": ErrorResponse, "description": "No such twin (or result file)."},
}
"""``responses=`` of the routes that take a twin id."""
NOT_READY: dict[int | str, dict[str, Any]] = {409: {"model": NotReadyResponse, "description": "The twin is not ready."}}
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    401: ERRORS[401],
    413: {"model": ErrorResponse, "description": "The upload or its frames are over a limit."},
    415: {"model": ErrorResponse, "description": "Not a supported image, video or twin JSON."},
    422: {"model": ErrorResponse, "description": "Malformed request, invalid twin JSON, or a video over a limit."},
    503: {"model": ErrorResponse, "description": "Too many builds queued: retry after `Retry-After` seconds."},
}
ASK_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "Missing, empty or non-text query."},
    503: {"model": ErrorResponse, "description": "Too many questions queued: retry after `Retry-After` seconds."},
    504: {"model": ErrorResponse, "description": "The question was not answered in time (`--ask-timeout`)."},
}
