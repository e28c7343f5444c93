"""``fastreasonseg serve``: the HTTP API and web page on one local port.

Access (docs/server.md): on loopback (the default) anyone on this machine may call it unless ``--token`` /
``FASTREASONSEG_TOKEN`` is set; any other address needs a token, or ``--no-auth`` on purpose. Only loopback host
names (plus the bound address and ``--allowed-host``) are answered, and browsers may only write from the
server's own page (plus ``--allow-origin``)."""

from __future__ import annotations

from pathlib import Path

import typer

from fastreasonseg.cli.common import REASONER_HELP, console, fail


def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 = every interface: needs --token or --no-auth)."
    ),
    port: int = typer.Option(8000, "--port", min=0, max=65535),
    store: Path = typer.Option(
        Path("fastreasonseg-store"), "--store", help="Directory of the twin store (kept across restarts)."
    ),
    reasoner: str | None = typer.Option(None, "--reasoner", help=REASONER_HELP),
    segmenter: str | None = typer.Option(None, "--segmenter", help="SAM-2 hub id or local directory."),
    depth: str | None = typer.Option(None, "--depth", help="Depth-Anything-V2 hub id or local directory."),
    labeller: str | None = typer.Option(None, "--labeller", help="OWLv2 hub id or local directory."),
    device: str = typer.Option("cpu", "--device", help="torch device of the perception models."),
    stride: int = typer.Option(1, "--stride", min=1, help="Process every N-th video frame."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="Most video frames processed."),
    box_threshold: float | None = typer.Option(None, "--box-threshold", help="OWLv2 detection score threshold."),
    max_instances: int | None = typer.Option(None, "--max-instances", min=1, help="Most instances per frame."),
    max_upload_mb: float = typer.Option(200.0, "--max-upload-mb", min=0.0, help="Largest upload (413 above)."),
    max_pixels: int = typer.Option(40_000_000, "--max-pixels", min=1, help="Largest frame, width x height (413)."),
    max_video_seconds: float = typer.Option(120.0, "--max-video-seconds", min=0.0, help="Longest video (422)."),
    max_video_frames: int = typer.Option(3000, "--max-video-frames", min=1, help="Most frames in a video (422)."),
    no_video: bool = typer.Option(False, "--no-video", help="Refuse video uploads (415)."),
    perception_workers: int = typer.Option(1, "--perception-workers", min=1, help="Twins built at once."),
    ask_workers: int = typer.Option(2, "--ask-workers", min=1, help="Ask threads (model calls are serialised)."),
    max_queued_builds: int = typer.Option(8, "--max-queued-builds", min=1, help="Build queue cap (503 above)."),
    max_queued_asks: int = typer.Option(16, "--max-queued-asks", min=1, help="Ask queue cap (503 above)."),
    ask_timeout: float = typer.Option(120.0, "--ask-timeout", min=0.1, help="Seconds before an ask gets 504."),
    build_timeout: float = typer.Option(3600.0, "--build-timeout", min=1.0, help="Seconds before a build fails."),
    no_requeue: bool = typer.Option(
        False, "--no-requeue", help="On restart, mark twins that were being built as failed instead of rebuilding."
    ),
    no_example: bool = typer.Option(False, "--no-example", help="Do not add the example twin to the store."),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="FASTREASONSEG_TOKEN",
        show_envvar=True,
        help="Bearer token every API request must carry (at least 16 characters); the web page asks for it once.",
    ),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Serve a non-loopback address without a token (anyone who reaches it may use it)."
    ),
    allowed_host: list[str] = typer.Option(
        [], "--allowed-host", help="Another Host name to answer to (repeatable; '*' = any). Loopback names always."
    ),
    allow_origin: list[str] = typer.Option(
        [], "--allow-origin", help="A web origin allowed to call the API from a browser (CORS; repeatable)."
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the HTTP API (docs at /docs) and the web page (at /) from a local twin store."""
    try:
        import uvicorn

        from fastreasonseg.server.app import create_app
    except ImportError as exc:
        fail(f"the server needs FastAPI and uvicorn: pip install 'fastreasonseg[server]' ({exc})")
    from fastreasonseg.config import PerceptionConfig
    from fastreasonseg.server.config import ServerConfig
    from fastreasonseg.server.security import WILDCARD_BINDS, allowed_hosts_for, bind_problem, is_loopback

    token = token or None
    problem = bind_problem(host, token, no_auth)
    if problem is not None:
        fail(problem)

    perception = PerceptionConfig(stride=stride, max_frames=max_frames, device=device)
    for name, value in (("segmenter", segmenter), ("depth", depth), ("labeller", labeller)):
        if value is not None:
            setattr(perception, name, value)
    if box_threshold is not None:
        perception.box_threshold = box_threshold
    if max_instances is not None:
        perception.max_instances = max_instances
    cfg = ServerConfig(
        store=store,
        reasoner=reasoner,
        perception=perception,
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        max_pixels=max_pixels,
        max_video_seconds=max_video_seconds,
        max_video_frames=max_video_frames,
        perception_workers=perception_workers,
        ask_workers=ask_workers,
        max_queued_builds=max_queued_builds,
        max_queued_asks=max_queued_asks,
        ask_timeout_s=ask_timeout,
        build_timeout_s=build_timeout,
        requeue_on_restart=not no_requeue,
        example=not no_example,
        token=token,
        allowed_hosts=allowed_hosts_for(host, allowed_host),
        allow_ip_hosts=host in WILDCARD_BINDS,
        allowed_origins=tuple(allow_origin),
    )
    if no_video:
        cfg.video_types = ()
    app = create_app(cfg)
    shown = "localhost" if host in ("127.0.0.1", "::1", *WILDCARD_BINDS) else host
    shown = f"[{shown}]" if ":" in shown else shown
    page = f"http://{shown}:{port}/" + (f"#token={token}" if token else "")
    console.print(f"fastreasonseg: store {cfg.store.resolve()}, web page {page}", highlight=False, soft_wrap=True)
    if token is None and not is_loopback(host):
        console.print(
            f"fastreasonseg: no token (--no-auth): anyone who reaches {host}:{port} may use it", style="yellow"
        )
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
