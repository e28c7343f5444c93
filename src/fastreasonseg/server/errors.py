"""How the server's own exceptions become responses: ``{"detail": ...}`` with the documented status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fastreasonseg.errors import FastReasonSegError
from fastreasonseg.server.engine import QueueFull, TwinNotReady


def install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    """``QueueFull`` → 503 + ``Retry-After``; ``TwinNotReady`` → 409; any user error → 422."""

    @app.exception_handler(QueueFull)
    async def _queue_full(_r: Request, exc: QueueFull) -> JSONResponse:
        return JSONResponse({"detail": f"the server is busy: {exc}"}, 503, headers={"Retry-After": str(retry_after_s)})

    @app.exception_handler(TwinNotReady)
    async def _not_ready(_r: Request, exc: TwinNotReady) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "status": exc.status.get("status")}, 409)

    @app.exception_handler(FastReasonSegError)
    async def _user_error(_r: Request, exc: FastReasonSegError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 422)
