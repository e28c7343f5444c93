"""``/results/{twin}/{result}/{file}``: the files of an answer (overlay, masks, result.json)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse

from fastreasonseg.server.deps import EngineDep, shown_id
from fastreasonseg.server.models import ERRORS
from fastreasonseg.server.security import require_token
from fastreasonseg.server.store import valid_id

router = APIRouter(prefix="/results", tags=["ask"], dependencies=[Depends(require_token)], responses=ERRORS)

_RESULT_FILE = re.compile(r"^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}/){0,3}[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")
"""A relative path of plain names (no ``..``, no dot files, no odd characters), at most four deep."""


@router.get(
    "/{twin_id}/{result_id}/{path:path}",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}, "video/mp4": {}, "application/json": {}}}},
)
async def result_file(twin_id: str, result_id: str, path: str, engine: EngineDep) -> FileResponse:
    """A file of an answer: ``overlay.png`` / ``overlay.mp4``, ``masks/<frame>.png``, ``result.json``."""
    if not (valid_id(twin_id) and valid_id(result_id)):
        raise HTTPException(404, f"no result {shown_id(result_id)} of twin {shown_id(twin_id)}")
    if not _RESULT_FILE.match(path):
        raise HTTPException(404, f"no result file {shown_id(path)}")
    base = engine.store.results_dir(twin_id) / result_id
    p = base / path
    try:
        found = p.is_file() and base.resolve() in p.resolve().parents
    except (OSError, ValueError):  # a name too long for the file system, and the like
        found = False
    if not found:
        raise HTTPException(404, f"no result file {shown_id(path)}")
    return FileResponse(p)
