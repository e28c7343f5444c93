"""``/health`` (open, for liveness checks) and ``/auth`` (how the web page proves it has the token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from fastreasonseg.server.deps import ConfigDep, EngineDep
from fastreasonseg.server.models import AuthRequest, AuthStatus, ErrorResponse, Health
from fastreasonseg.server.security import TOKEN_COOKIE, bearer_scheme, request_authenticated, token_matches

router = APIRouter(tags=["server"])
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


@router.get("/health")
async def health(engine: EngineDep) -> Health:
    """Liveness and queue depths (no token needed)."""
    return Health(**engine.stats())


@router.get("/auth")
async def auth_status(request: Request, config: ConfigDep, credentials: Credentials) -> AuthStatus:
    """Whether the server needs a token and whether this request carries it."""
    return AuthStatus(required=bool(config.token), authenticated=request_authenticated(request, credentials))


@router.post("/auth", status_code=204, responses={401: {"model": ErrorResponse, "description": "Wrong token."}})
async def log_in(body: AuthRequest, request: Request, config: ConfigDep) -> Response:
    """Check a token and keep it in an ``HttpOnly``, ``SameSite=Strict`` cookie, so the web page's requests
    (including its images and videos) carry it."""
    if config.token and not token_matches(body.token, config.token):
        raise HTTPException(401, "wrong token")
    response = Response(status_code=204)
    if config.token:
        secure = request.url.scheme == "https"
        response.set_cookie(TOKEN_COOKIE, body.token, httponly=True, samesite="strict", secure=secure, path="/")
    return response


@router.delete("/auth", status_code=204)
async def log_out() -> Response:
    """Forget the cookie."""
    response = Response(status_code=204)
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    return response
