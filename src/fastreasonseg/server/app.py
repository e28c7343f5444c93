"""The HTTP API and the web page (FastAPI). OpenAPI docs at ``/docs``.

Endpoints (JSON unless noted):

==========================================  ==================================================================
``GET /``                                    the web page (HTML + JS + CSS, no build step)
``GET /health``                              ``{"status": "ok"}`` + queue depths
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

Errors are ``{"detail": "message"}``: 404 unknown twin, 409 twin not ready, 413 too large, 415 not a
supported image/video, 422 bad request (malformed JSON, empty query, video too long), 503 queue full
(with ``Retry-After``), 504 ask timed out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from fastreasonseg.errors import FastReasonSegError, TwinValidationError
from fastreasonseg.server.config import ServerConfig
from fastreasonseg.server.engine import Engine, QueueFull, TwinNotReady, check_query_text
from fastreasonseg.server.store import new_id, valid_id
from fastreasonseg.server.uploads import Upload, receive_upload

log = logging.getLogger("fastreasonseg.server")

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "video/*": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object", "description": "a digital twin (version 1)"}},
        },
    }
}
_SEGMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}, "query": {"type": "string"}},
                    "required": ["file", "query"],
                }
            }
        },
    }
}


class AskRequest(BaseModel):
    query: str = Field(description="The question, e.g. 'what would I drink coffee from?'")


def web_dir() -> Path:
    from fastreasonseg.assets import asset_path

    return asset_path("web")


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The FastAPI application serving ``config.store`` (started by ``fastreasonseg serve``)."""
    config = config or ServerConfig()
    engine = Engine(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        engine.start()
        yield
        engine.shutdown()

    app = FastAPI(
        title="FastReasonSeg",
        description="Reasoning segmentation over digital twins: upload an image or video once, ask many questions.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.engine = engine

    # ------------------------------------------------------------------ errors
    @app.exception_handler(QueueFull)
    async def _queue_full(_r: Request, exc: QueueFull) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the server is busy: {exc}"}, 503, headers={"Retry-After": str(config.retry_after_s)}
        )

    @app.exception_handler(TwinNotReady)
    async def _not_ready(_r: Request, exc: TwinNotReady) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "status": exc.status.get("status")}, 409)

    @app.exception_handler(FastReasonSegError)
    async def _user_error(_r: Request, exc: FastReasonSegError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 422)

    def status_of(twin_id: str) -> dict[str, Any]:
        st = engine.store.read_status(twin_id) if valid_id(twin_id) else None
        if st is None:
            raise HTTPException(404, f"no twin with id {twin_id!r}")
        return _with_urls(st)

    # ------------------------------------------------------------------ page + health
    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse((web_dir() / "index.html").read_text(encoding="utf-8"))

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        p = web_dir() / name
        if "/" in name or name.startswith(".") or not p.is_file():
            raise HTTPException(404, "not found")
        return FileResponse(p, headers={"Cache-Control": "no-cache"})

    @app.get("/health", tags=["server"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", **engine.stats()}

    # ------------------------------------------------------------------ twins
    @app.post("/twins", status_code=202, tags=["twins"], openapi_extra=_UPLOAD_BODY)
    async def upload_twin(request: Request) -> JSONResponse:
        """Upload an image or video (built in the background: poll ``GET /twins/{id}``) or a ready twin JSON."""
        engine.reserve_build()
        handed_over = False
        upload: Upload | None = None
        try:
            upload = await receive_upload(request, engine.store.temp_path(".upload"), config, allow_json=True)
            if upload.kind == "twin":
                st = await run_in_threadpool(_store_twin_json, engine, upload)
                return JSONResponse(_with_urls(st), 201)
            st = await run_in_threadpool(_store_media, engine, upload)
            engine.submit_build(st["id"])
            handed_over = True
            return JSONResponse(_with_urls(st), 202, headers={"Location": f"/twins/{st['id']}"})
        finally:
            if upload is not None:
                upload.discard()  # no-op once the file was moved into the store
            if not handed_over:
                engine.release_build()

    @app.get("/twins", tags=["twins"])
    async def list_twins() -> list[dict[str, Any]]:
        return [_with_urls(s) for s in await run_in_threadpool(engine.store.list)]

    @app.get("/twins/{twin_id}", tags=["twins"])
    async def get_twin(twin_id: str) -> dict[str, Any]:
        """Status of a twin: ``queued``, ``building`` (with ``progress`` 0..1), ``ready`` or ``failed`` (``error``)."""
        return status_of(twin_id)

    @app.delete("/twins/{twin_id}", status_code=204, tags=["twins"])
    async def delete_twin(twin_id: str) -> Response:
        status_of(twin_id)
        await run_in_threadpool(engine.delete, twin_id)
        return Response(status_code=204)

    @app.get("/twins/{twin_id}/view", tags=["twins"])
    async def twin_view_route(twin_id: str) -> dict[str, Any]:
        """The compact text the reasoner reads, and the instance list (labels, boxes, area, depth)."""
        status_of(twin_id)
        twin, _ = await run_in_threadpool(engine.load, twin_id)
        return _view(twin)

    @app.get("/twins/{twin_id}/twin.json", tags=["twins"])
    async def twin_file(twin_id: str) -> FileResponse:
        st = status_of(twin_id)
        if st.get("status") != "ready":
            raise TwinNotReady(st)
        return FileResponse(engine.store.twin_path(twin_id), media_type="application/json")

    @app.get("/twins/{twin_id}/source", tags=["twins"])
    async def twin_source(twin_id: str) -> FileResponse:
        status_of(twin_id)
        src = engine.store.source_path(twin_id)
        if src is None:
            raise HTTPException(404, f"twin {twin_id} has no source file (it was uploaded as a twin JSON)")
        return FileResponse(src)

    @app.get("/twins/{twin_id}/results", tags=["ask"])
    async def twin_results(twin_id: str) -> list[dict[str, Any]]:
        status_of(twin_id)
        return [_result_urls(r) for r in await run_in_threadpool(engine.store.list_results, twin_id)]

    @app.post("/twins/{twin_id}/ask", tags=["ask"])
    async def ask(twin_id: str, body: AskRequest) -> dict[str, Any]:
        """Answer a question about a ready twin: ids, labels, the reasoning chain, mask and overlay URLs."""
        status_of(twin_id)
        query = check_query_text(body.query, config.reasoner_config.max_query_chars)
        return await _ask(engine, config, twin_id, query)

    @app.post("/segment", tags=["ask"], openapi_extra=_SEGMENT_BODY)
    async def segment(request: Request) -> dict[str, Any]:
        """One shot: upload an image or video with a ``query`` field; builds the twin (kept in the store) and asks."""
        engine.reserve_build()
        handed_over = False
        upload: Upload | None = None
        try:
            upload = await receive_upload(request, engine.store.temp_path(".upload"), config, allow_json=False)
            query = check_query_text(upload.fields.get("query"), config.reasoner_config.max_query_chars)
            st = await run_in_threadpool(_store_media, engine, upload)
            fut = engine.submit_build(st["id"])
            handed_over = True
            try:
                await asyncio.wait_for(asyncio.wrap_future(fut), config.build_timeout_s + 5)
            except TimeoutError:
                raise HTTPException(504, f"building the twin took longer than {config.build_timeout_s:g} s") from None
            st = status_of(st["id"])
            if st["status"] != "ready":
                raise HTTPException(422, f"building the twin failed: {st.get('error')}")
            out = await _ask(engine, config, st["id"], query)
            out["twin"] = st
            return out
        finally:
            if upload is not None:
                upload.discard()
            if not handed_over:
                engine.release_build()

    @app.get("/results/{twin_id}/{result_id}/{path:path}", tags=["ask"])
    async def result_file(twin_id: str, result_id: str, path: str) -> FileResponse:
        """A file of an answer: ``overlay.png`` / ``overlay.mp4``, ``masks/<frame>.png``, ``result.json``."""
        if not (valid_id(twin_id) and valid_id(result_id)):
            raise HTTPException(404, "not found")
        base = (engine.store.results_dir(twin_id) / result_id).resolve()
        p = (base / path).resolve()
        if base not in p.parents or not p.is_file():
            raise HTTPException(404, f"no result file {path!r}")
        return FileResponse(p)

    return app


# ---------------------------------------------------------------------- helpers
async def _ask(engine: Engine, config: ServerConfig, twin_id: str, query: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    fut = engine.submit_ask(twin_id, query)
    try:
        info = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), config.ask_timeout_s)
    except TimeoutError:
        fut.cancel()  # dropped if it has not started; a running rollout finishes and is kept in results/
        raise HTTPException(504, f"the question was not answered within {config.ask_timeout_s:g} s") from None
    except KeyError:
        raise HTTPException(404, f"no twin with id {twin_id!r}") from None
    info = _result_urls(info)
    info.setdefault("timings_ms", {})["server_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return info


def _with_urls(st: dict[str, Any]) -> dict[str, Any]:
    tid = st["id"]
    st = dict(st)
    st["url"] = f"/twins/{tid}"
    if st.get("status") == "ready":
        st["ask_url"] = f"/twins/{tid}/ask"
        st["view_url"] = f"/twins/{tid}/view"
    if st.get("kind") in ("image", "video"):
        st["source_url"] = f"/twins/{tid}/source"
    return st


def _result_urls(info: dict[str, Any]) -> dict[str, Any]:
    tid, rid = info["twin_id"], info["result_id"]
    base = f"/results/{tid}/{rid}"
    info = dict(info)
    info["result_url"] = f"{base}/result.json"
    info["mask_urls"] = {str(f): f"{base}/masks/{int(f):05d}.png" for f in info.get("frames", [])}
    video = info.get("source", {}).get("kind") == "video" and len(info.get("frames", [])) > 1
    info["overlay_url"] = f"{base}/overlay.mp4" if video else f"{base}/overlay.png"
    return info


def _probe(engine: Engine, upload: Upload) -> dict[str, Any]:
    """Read the upload's header: kind, size, frames, fps. Raises ``HTTPException`` for the limits."""
    from fastreasonseg.perception.media import open_media

    config = engine.config
    if upload.suffix and upload.path.suffix != upload.suffix:  # the readers pick the decoder by extension
        named = upload.path.with_suffix(upload.suffix)
        os.replace(upload.path, named)
        upload.path = named
    try:
        media = open_media(upload.path)
    except FastReasonSegError as exc:
        msg = str(exc).replace(str(upload.path), upload.filename)
        raise HTTPException(415, f"cannot read {upload.filename!r} as an image or video: {msg}") from None
    pixels = media.width * media.height
    if pixels > config.max_pixels:
        raise HTTPException(
            413,
            f"{upload.filename}: {media.width}x{media.height} is {pixels:,} pixels per frame, above the limit "
            f"of {config.max_pixels:,} (max_pixels)",
        )
    info = {"kind": media.kind, "width": media.width, "height": media.height}
    if media.kind == "video":
        seconds = media.num_frames / media.fps if media.fps > 0 else 0.0
        if media.num_frames > config.max_video_frames:
            raise HTTPException(
                422,
                f"{upload.filename}: the video has {media.num_frames} frames, above the limit of "
                f"{config.max_video_frames} (max_video_frames)",
            )
        if seconds > config.max_video_seconds:
            raise HTTPException(
                422,
                f"{upload.filename}: the video lasts {seconds:.1f} s, above the limit of "
                f"{config.max_video_seconds:g} s (max_video_seconds)",
            )
        info.update(fps=media.fps, num_frames=media.num_frames, seconds=round(seconds, 3))
    return info


def _store_media(engine: Engine, upload: Upload) -> dict[str, Any]:
    """Check an uploaded image or video and put it in the store as a queued twin."""
    info = _probe(engine, upload)
    twin_id = new_id()
    return engine.store.create(
        twin_id,
        {
            "status": "queued",
            "kind": info["kind"],
            "filename": upload.filename,
            "content_type": upload.media_type,
            "size_bytes": upload.size,
            "media": info,
        },
        source=upload.path,
        source_suffix=upload.suffix,
    )


def _store_twin_json(engine: Engine, upload: Upload) -> dict[str, Any]:
    """Validate an uploaded twin JSON and put it in the store, ready."""
    import json

    from fastreasonseg.twin import DigitalTwin

    try:
        data = json.loads(upload.path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(422, f"{upload.filename}: not valid JSON: {exc}") from None
    try:
        twin = DigitalTwin.from_dict(data, source=upload.filename)
    except TwinValidationError as exc:
        raise HTTPException(422, str(exc)) from None
    twin.meta.pop("source_path", None)
    twin_id = new_id()
    return engine.store.create(
        twin_id,
        {
            "status": "ready",
            "progress": 1.0,
            "kind": "twin",
            "filename": upload.filename,
            "content_type": "application/json",
            "size_bytes": upload.size,
            "source": twin.source.model_dump(),
            "num_instances": twin.num_instances(),
            "num_frames": len(twin.frames),
        },
        twin_json=json.dumps(twin.to_dict(), separators=(",", ":")),
    )


def _view(twin: Any) -> dict[str, Any]:
    from fastreasonseg.reasoning.prompt import approx_tokens
    from fastreasonseg.twin.view import twin_view

    text = twin_view(twin)
    seen: dict[int, dict[str, Any]] = {}
    for fr in twin.frames:
        for inst in fr.instances:
            row = seen.get(inst.id)
            if row is None:
                row = seen[inst.id] = {
                    "id": inst.id,
                    "label": inst.label,
                    "score": inst.score,
                    "alt_labels": [list(a) for a in (inst.alt_labels or [])],
                    "box": list(inst.box),
                    "area": inst.area,
                    "depth": inst.depth.mean if inst.depth is not None else None,
                    "first_frame": fr.index,
                    "frames": 0,
                }
            row["frames"] += 1
            row["last_frame"] = fr.index
    return {
        "view": text,
        "view_tokens_approx": approx_tokens(text),
        "source": twin.source.model_dump(),
        "instances": sorted(seen.values(), key=lambda r: r["id"]),
    }


__all__ = ["AskRequest", "create_app"]
