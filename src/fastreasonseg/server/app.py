"""The HTTP API and the web page (FastAPI). OpenAPI description at ``/openapi.json``, docs at ``/docs``.

Endpoints (JSON unless noted; the bodies are the models of :mod:`fastreasonseg.server.models`):

==========================================  ==================================================================
``GET /``                                    the web page (HTML + JS + CSS, no build step)
``GET /health``                              ``{"status": "ok"}`` + queue depths
``GET|POST|DELETE /auth``                    whether a token is needed; check it and set the page's cookie; forget it
``POST /twins``                              upload an image / video (multipart ``file``, or the raw body with
                                             its Content-Type) → ``202`` with the twin id, built in the
                                             background; a twin JSON → ``201``, ready at once
``GET /twins``                               every twin's status, newest first
``GET /twins/{id}``                          status: ``queued|building|ready|failed``, ``progress`` 0..1, ``error``
``DELETE /twins/{id}``                       ``204``; a running build stops at its next frame
``GET /twins/{id}/view``                     the text the LLM reads + the instance list (labels, boxes, depth)
``GET /twins/{id}/twin.json``                the twin file; ``GET /twins/{id}/source``: the uploaded file
``POST /twins/{id}/ask``                     ``{"query": "..."}`` → ids, labels, rollout, tool calls, mask PNG
                                             URLs, overlay URL, timings
``GET /twins/{id}/results``                  earlier answers about this twin
``POST /segment``                            one shot: multipart ``file`` + ``query`` → build, then ask
``GET /results/{id}/{result id}/{file}``     result files: ``overlay.png|mp4``, ``masks/00000.png``, ``result.json``
==========================================  ==================================================================

Errors are ``{"detail": "message"}``: 400 Host not allowed, 401 token missing or wrong, 403 cross-origin write,
404 unknown twin or file (any malformed id or path too), 409 twin not ready, 413 too large, 415 not a supported
image/video, 422 bad request (malformed JSON or twin, empty query, video too long), 503 queue full (with
``Retry-After``), 504 ask timed out. Access control: :mod:`fastreasonseg.server.security`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fastreasonseg.server.config import ServerConfig
from fastreasonseg.server.engine import Engine
from fastreasonseg.server.errors import install_error_handlers
from fastreasonseg.server.models import AskRequest
from fastreasonseg.server.routers import ALL
from fastreasonseg.server.security import install_guard


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The FastAPI application serving ``config.store`` (started by ``fastreasonseg serve``)."""
    config = config or ServerConfig()
    engine = Engine(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        engine.start()
        yield
        engine.shutdown()

    app = FastAPI(
        title="FastReasonSeg",
        description="Reasoning segmentation over digital twins: upload an image or video once, ask many questions.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by routers.page from the package's own Swagger UI files (works offline)
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.config = config
    install_error_handlers(app, config.retry_after_s)
    for router in ALL:
        app.include_router(router)
    install_guard(app, config)
    return app


__all__ = ["AskRequest", "create_app"]
