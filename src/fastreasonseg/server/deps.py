"""FastAPI dependencies shared by the routers: the engine and config of the app, and a twin looked up by id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request

from fastreasonseg.server.config import ServerConfig
from fastreasonseg.server.engine import Engine
from fastreasonseg.server.store import valid_id


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_config(request: Request) -> ServerConfig:
    return request.app.state.config


EngineDep = Annotated[Engine, Depends(get_engine)]
ConfigDep = Annotated[ServerConfig, Depends(get_config)]


def shown_id(value: str) -> str:
    """An id from a URL as an error message quotes it (escaped, cut to 64 characters)."""
    return repr(value if len(value) <= 64 else value[:64] + "...")


def twin_status(
    twin_id: Annotated[str, Path(description="A twin id (returned by `POST /twins`), or `example`.")],
    engine: EngineDep,
) -> dict[str, Any]:
    """The stored status of the twin in the path; ``404`` for an unknown or malformed id."""
    st = engine.store.read_status(twin_id) if valid_id(twin_id) else None
    if st is None:
        raise HTTPException(404, f"no twin with id {shown_id(twin_id)}")
    return st


TwinStatusDep = Annotated[dict[str, Any], Depends(twin_status)]
