"""``/twins``: upload an image, video or twin JSON; list, inspect and delete twins; read their view and files."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from fastreasonseg.server.deps import EngineDep, TwinStatusDep
from fastreasonseg.server.engine import TwinNotReady
from fastreasonseg.server.intake import store_media, store_twin_json, upload_slot
from fastreasonseg.server.models import ERRORS, NOT_READY, UPLOAD_ERRORS, TwinStatus, TwinView, twin_status, view_of
from fastreasonseg.server.security import require_token

router = APIRouter(prefix="/twins", tags=["twins"], dependencies=[Depends(require_token)], responses=ERRORS)

UPLOAD_BODY = {
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


@router.post(
    "",
    status_code=202,
    response_model_exclude_none=True,
    responses={201: {"model": TwinStatus, "description": "A twin JSON, stored ready."}, **UPLOAD_ERRORS},
    openapi_extra=UPLOAD_BODY,
)
async def upload_twin(request: Request, response: Response, engine: EngineDep) -> TwinStatus:
    """Upload an image or video (``202``, built in the background: poll ``GET /twins/{id}``) or a ready twin JSON
    (``201``). Multipart ``file``, or the raw body with its Content-Type (``?filename=`` names it)."""
    async with upload_slot(request, engine, allow_json=True) as slot:
        assert slot.upload is not None
        if slot.upload.kind == "twin":
            st = await run_in_threadpool(store_twin_json, engine, slot.upload)
            response.status_code = 201
            return twin_status(st)
        st = await run_in_threadpool(store_media, engine, slot.upload)
        slot.submit(st["id"])
        response.headers["Location"] = f"/twins/{st['id']}"
        return twin_status(st)


@router.get("", response_model_exclude_none=True)
async def list_twins(engine: EngineDep) -> list[TwinStatus]:
    """Every twin's status, newest first."""
    return [twin_status(s) for s in await run_in_threadpool(engine.store.list)]


@router.get("/{twin_id}", response_model_exclude_none=True)
async def get_twin(st: TwinStatusDep) -> TwinStatus:
    """Status of a twin: ``queued``, ``building`` (with ``progress`` 0..1), ``ready`` or ``failed`` (``error``)."""
    return twin_status(st)


@router.delete("/{twin_id}", status_code=204)
async def delete_twin(st: TwinStatusDep, engine: EngineDep) -> Response:
    """Delete a twin and its results; a running build stops at its next frame."""
    await run_in_threadpool(engine.delete, st["id"])
    return Response(status_code=204)


@router.get("/{twin_id}/view", responses=NOT_READY)
async def get_view(st: TwinStatusDep, engine: EngineDep) -> TwinView:
    """The compact text the reasoner reads, and the instance list (labels, boxes, area, depth)."""
    twin, _ = await run_in_threadpool(engine.load, st["id"])
    return view_of(twin)


@router.get(
    "/{twin_id}/twin.json",
    response_class=FileResponse,
    responses={200: {"content": {"application/json": {}}, "description": "The twin file."}, **NOT_READY},
)
async def twin_file(st: TwinStatusDep, engine: EngineDep) -> FileResponse:
    """The digital twin (JSON, version 1)."""
    if st.get("status") != "ready":
        raise TwinNotReady(st)
    return FileResponse(engine.store.twin_path(st["id"]), media_type="application/json")


@router.get(
    "/{twin_id}/source",
    response_class=FileResponse,
    responses={200: {"content": {"image/*": {}, "video/*": {}}, "description": "The uploaded file."}},
)
async def twin_source(st: TwinStatusDep, engine: EngineDep) -> FileResponse:
    """The uploaded image or video (``404`` for a twin uploaded as JSON)."""
    src = engine.store.source_path(st["id"])
    if src is None:
        raise HTTPException(404, f"twin {st['id']} has no source file (it was uploaded as a twin JSON)")
    return FileResponse(src)
