"""Settings of the HTTP server: where the store lives, which models, who may call it, and every limit.

Every field is also a ``fastreasonseg serve`` flag (see :mod:`fastreasonseg.cli.serve`). The defaults
suit one CPU machine: one perception worker (building twins is heavy and memory-hungry), two ask
workers whose model calls are serialised on one lock (the llama.cpp runtime is not thread-safe),
and bounded queues so a burst of requests waits its turn or gets ``503`` instead of exhausting memory.
Access (:mod:`fastreasonseg.server.security`): an optional bearer token, a Host allow-list of loopback
names, and no cross-origin requests unless an origin is listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastreasonseg.config import PerceptionConfig
from fastreasonseg.reasoning.config import ReasonerConfig
from fastreasonseg.reasoning.runtimes.base import Runtime

DEFAULT_IMAGE_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/bmp",
    "image/gif",
    "image/tiff",
)
DEFAULT_VIDEO_TYPES = (
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/x-matroska",
    "video/x-msvideo",
    "video/avi",
    "video/mpeg",
)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Host names a server on the loopback interface answers to (the default Host allow-list)."""


@dataclass
class ServerConfig:
    """Everything the server needs; build one in Python or let the CLI fill it from flags."""

    store: Path = Path("fastreasonseg-store")
    """Directory of the twin store (created if missing); survives restarts."""
    reasoner: str | Runtime | None = None
    """Reasoner spec (``None`` = the offline default, see :func:`fastreasonseg.api.resolve_reasoner_spec`), or a
    ready :class:`~fastreasonseg.reasoning.runtimes.Runtime` (embedding the server, tests)."""
    perception: PerceptionConfig = field(default_factory=PerceptionConfig)
    reasoner_config: ReasonerConfig = field(default_factory=ReasonerConfig)

    # ---------------------------------------------------------------- uploads
    max_upload_bytes: int = 200 * 1024 * 1024
    """Largest accepted upload (image, video or twin JSON); larger bodies get ``413`` as soon as the
    limit is crossed while streaming (or at once, from ``Content-Length``)."""
    image_types: tuple[str, ...] = DEFAULT_IMAGE_TYPES
    """Accepted image content types; the bytes are sniffed too (a declared type that lies gets ``415``)."""
    video_types: tuple[str, ...] = DEFAULT_VIDEO_TYPES
    """Accepted video content types (``()`` to refuse videos)."""
    max_pixels: int | None = None
    """Largest frame (width x height) of an image or video: ``413`` above it. ``None``: the perception
    config's ``max_pixels`` (the one limit the CLI and the Python API use); a value given here is copied
    into ``perception`` so uploads and builds refuse the same frames."""
    max_video_seconds: float = 120.0
    """Longest video (duration): ``422`` above it."""
    max_video_frames: int = 3000
    """Most frames in a video: ``422`` above it."""

    # ---------------------------------------------------------------- work
    perception_workers: int = 1
    """Twins built at the same time (each holds the vision models' activations)."""
    ask_workers: int = 2
    """Threads that run asks; model calls are serialised on one lock, mask decoding and writing
    the result files run in parallel."""
    max_queued_builds: int = 8
    """Builds waiting or running at once; more uploads get ``503`` with ``Retry-After``."""
    max_queued_asks: int = 16
    """Asks waiting or running at once; more get ``503`` with ``Retry-After``."""
    ask_timeout_s: float = 120.0
    """An ask that has not finished after this long gets ``504`` (it is dropped if it has not started)."""
    build_timeout_s: float = 3600.0
    """A build running longer than this fails (checked between frames)."""
    twin_cache: int = 8
    """Loaded twins kept in memory (least recently used are dropped)."""
    requeue_on_restart: bool = True
    """A twin that was queued or building when the server stopped is built again on restart when its
    source file is in the store (else it is marked failed with a message saying so)."""
    example: bool = True
    """Put the example twin shipped with the package in the store (id ``example``)."""
    retry_after_s: int = 5
    """``Retry-After`` seconds sent with ``503``."""

    # ---------------------------------------------------------------- access
    token: str | None = None
    """Bearer token every API request must carry (``Authorization: Bearer <token>``, or the cookie the web page
    gets from ``POST /auth``); ``None`` = no token. ``fastreasonseg serve`` takes it from ``--token`` or the
    ``FASTREASONSEG_TOKEN`` environment variable, and refuses to listen on a non-loopback address without one
    unless ``--no-auth`` is given."""
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    """Host names the server answers to (the ``Host`` header, port ignored); any other gets ``400``. This is
    what stops a web page on another site from reaching the server through DNS rebinding. ``"*"`` = any host."""
    allow_ip_hosts: bool = False
    """Also answer to any IP address in the ``Host`` header (DNS rebinding needs a host *name*, so an IP is
    safe); ``fastreasonseg serve`` turns it on when listening on every interface (``0.0.0.0`` / ``::``)."""
    allowed_origins: tuple[str, ...] = ()
    """Web origins (``https://app.example.com``) other than the server's own that may call the API from a
    browser (CORS). Empty by default: a cross-origin ``POST`` / ``DELETE`` (an upload from another site's page)
    gets ``403``, and no CORS headers are sent."""

    def __post_init__(self) -> None:
        if self.max_pixels is None:
            self.max_pixels = self.perception.max_pixels
        elif self.max_pixels != self.perception.max_pixels:
            from dataclasses import replace

            self.perception = replace(self.perception, max_pixels=self.max_pixels)

    def allowed_types(self) -> tuple[str, ...]:
        return tuple(self.image_types) + tuple(self.video_types)
