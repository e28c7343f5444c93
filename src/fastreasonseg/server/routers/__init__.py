"""One router per resource (FastAPI's "bigger applications" layout): the page and docs, access, twins, asks and
result files. Every API router depends on :func:`~fastreasonseg.server.security.require_token`."""

from fastreasonseg.server.routers import access, asks, page, results, twins

ALL = (page.router, access.router, twins.router, asks.router, results.router)

__all__ = ["ALL"]
