"""HTTP server and web page: ``fastreasonseg serve`` (FastAPI + uvicorn, the ``server`` extra).

>>> from fastreasonseg.server import ServerConfig, create_app     # doctest: +SKIP
>>> app = create_app(ServerConfig(store="store/", max_upload_bytes=50 << 20))
>>> # uvicorn.run(app, host="127.0.0.1", port=8000)

See :mod:`fastreasonseg.server.app` for the endpoints and :mod:`fastreasonseg.server.store` for the
store's layout and what happens to twins that were being built when the server stopped.
"""

from __future__ import annotations

from typing import Any

from fastreasonseg.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]


def create_app(config: ServerConfig | None = None) -> Any:
    """The FastAPI application (imports FastAPI lazily: install the ``server`` extra)."""
    from fastreasonseg.server.app import create_app as _create

    return _create(config)
