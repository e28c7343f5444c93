"""Questions: ``POST /twins/{id}/ask``, earlier answers, and ``POST /segment`` (build and ask in one request)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from fastreasonseg.server.deps import ConfigDep, EngineDep, TwinStatusDep, twin_status
from fastreasonseg.server.engine import Engine, check_query_text
from fastreasonseg.server.intake import store_media, upload_slot
from fastreasonseg.server.models import (
    ASK_ERRORS,
    ERRORS,
    NOT_READY,
    UPLOAD_ERRORS,
    AskRequest,
    AskResult,
    SegmentResult,
    result_with_urls,
)
from fastreasonseg.server.models import twin_status as status_model
from fastreasonseg.server.security import require_token

router = APIRouter(tags=["ask"], dependencies=[Depends(require_token)], responses=ERRORS)

SEGMENT_BODY = {
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


async def answer(engine: Engine, twin_id: str, query: str) -> dict[str, Any]:
    """Queue the question, wait at most ``ask_timeout_s``; the stored result with its URLs and the server time."""
    timeout = engine.config.ask_timeout_s
    t0 = time.perf_counter()
    fut = engine.submit_ask(twin_id, query)
    try:
        info = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), timeout)
    except TimeoutError:
        fut.cancel()  # dropped if it has not started; a running rollout finishes and is kept in results/
        raise HTTPException(504, f"the question was not answered within {timeout:g} s") from None
    except KeyError:
        raise HTTPException(404, f"no twin with id {twin_id!r}") from None
    info = result_with_urls(info)
    info.setdefault("timings_ms", {})["server_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return info


@router.post("/twins/{twin_id}/ask", responses={**NOT_READY, **ASK_ERRORS}, response_model_exclude_none=True)
async def ask(st: TwinStatusDep, body: AskRequest, engine: EngineDep, config: ConfigDep) -> AskResult:
    """Answer a question about a ready twin: ids, labels, the reasoning chain, mask and overlay URLs."""
    query = check_query_text(body.query, config.reasoner_config.max_query_chars)
    return AskResult.model_validate(await answer(engine, st["id"], query))


@router.get("/twins/{twin_id}/results", response_model_exclude_none=True)
async def results(st: TwinStatusDep, engine: EngineDep) -> list[AskResult]:
    """Earlier answers about this twin, oldest first."""
    stored = await run_in_threadpool(engine.store.list_results, st["id"])
    return [AskResult.model_validate(result_with_urls({"twin_id": st["id"], **r})) for r in stored]


@router.post(
    "/segment",
    responses={**UPLOAD_ERRORS, **ASK_ERRORS},
    openapi_extra=SEGMENT_BODY,
    response_model_exclude_none=True,
)
async def segment(request: Request, engine: EngineDep, config: ConfigDep) -> SegmentResult:
    """One shot: upload an image or video with a ``query`` field; builds the twin (kept in the store) and asks."""
    async with upload_slot(request, engine, allow_json=False) as slot:
        assert slot.upload is not None
        query = check_query_text(slot.upload.fields.get("query"), config.reasoner_config.max_query_chars)
        st = await run_in_threadpool(store_media, engine, slot.upload)
        fut = slot.submit(st["id"])
    try:
        await asyncio.wait_for(asyncio.wrap_future(fut), config.build_timeout_s + 5)
    except TimeoutError:
        raise HTTPException(504, f"building the twin took longer than {config.build_timeout_s:g} s") from None
    st = twin_status(st["id"], engine)
    if st["status"] != "ready":
        raise HTTPException(422, f"building the twin failed: {st.get('error')}")
    out = await answer(engine, st["id"], query)
    return SegmentResult.model_validate({**out, "twin": status_model(st)})
