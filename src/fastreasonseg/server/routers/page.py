"""The web page (``/``, ``/static/...``) and the OpenAPI docs (``/docs``), served from the package: no CDN, so both
work on a machine without internet access. Open to everyone: they hold no data (the page asks for the token when
the server has one)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter(include_in_schema=False)

_FILE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")
DOCS_ASSETS = "/docs/assets"


def web_dir() -> Path:
    """The web page's files (``fastreasonseg/assets/web``)."""
    from fastreasonseg.assets import asset_path

    return asset_path("web")


def swagger_dir() -> Path | None:
    """Swagger UI's files from the ``swagger-ui-bundle-v2`` package (the ``server`` extra), if it is installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return Path(swagger_ui_path)


def serve_file(directory: Path, name: str) -> FileResponse:
    """``directory/name`` for a plain file name (no path, no dot file, no odd characters); else ``404``."""
    if not _FILE_NAME.match(name):
        raise HTTPException(404, "not found")
    p = directory / name
    if not p.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(p, headers={"Cache-Control": "no-cache"})


@router.get("/")
async def index() -> HTMLResponse:
    return HTMLResponse((web_dir() / "index.html").read_text(encoding="utf-8"))


@router.get("/static/{name}")
async def static(name: str) -> FileResponse:
    return serve_file(web_dir(), name)


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI on ``/openapi.json`` with its script and style from the package (``/docs/assets``)."""
    title = f"{request.app.title} - API docs"
    if swagger_dir() is None:
        return HTMLResponse(
            f"<!doctype html><title>{title}</title><p>The interactive docs need the <code>swagger-ui-bundle-v2</code> "
            f"package (<code>pip install 'fastreasonseg[server]'</code>). The API description is at "
            f"<a href='{request.app.openapi_url}'>{request.app.openapi_url}</a>.</p>"
        )
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=title,
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
    )


@router.get(DOCS_ASSETS + "/{name}")
async def docs_asset(name: str) -> FileResponse:
    directory = swagger_dir()
    if directory is None:
        raise HTTPException(404, "not found")
    return serve_file(directory, name)
