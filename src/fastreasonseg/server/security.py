"""Who may call the server: a Host allow-list, same-origin writes, and an optional bearer token.

Three independent checks, all configured in :class:`~fastreasonseg.server.config.ServerConfig`:

* **Host allow-list** (:class:`HostOriginGuard`, every request): the ``Host`` header must name one of
  ``allowed_hosts`` (loopback names by default; an IP address too with ``allow_ip_hosts``), else ``400``. A web
  page on another site can point its own domain name at ``127.0.0.1`` (DNS rebinding) and would then be "same
  origin" with this server; its requests still carry its own domain in ``Host``, so they are refused.
* **Same-origin writes** (:class:`HostOriginGuard`, ``POST``/``PUT``/``PATCH``/``DELETE``): a request whose
  ``Origin`` is neither the server's own nor one of ``allowed_origins`` gets ``403``, as does one a browser marks
  ``Sec-Fetch-Site: cross-site``; so another site's page cannot upload, ask or delete through the user's browser.
  Clients that send no ``Origin`` (curl, Python) are not browsers and pass. No CORS headers are sent unless
  ``allowed_origins`` lists origins.
* **Bearer token** (:func:`require_token`, every API route; the page, its files, ``/health`` and the OpenAPI
  docs are open): with ``token`` set, a request must carry ``Authorization: Bearer <token>`` or the
  ``fastreasonseg_token`` cookie that ``POST /auth`` sets for the web page (``HttpOnly``, ``SameSite=Strict``),
  else ``401``. Tokens are compared in constant time.

:func:`bind_problem` is the rule ``fastreasonseg serve`` applies before it starts: listening on a non-loopback
address needs a token, or an explicit ``--no-auth``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from fastreasonseg.server.config import LOOPBACK_HOSTS, ServerConfig

TOKEN_COOKIE = "fastreasonseg_token"
"""Cookie that carries the token for the web page (set by ``POST /auth``)."""
TOKEN_ENV = "FASTREASONSEG_TOKEN"
"""Environment variable ``fastreasonseg serve`` reads the token from when ``--token`` is not given."""
MIN_TOKEN_CHARS = 16
"""Shortest token accepted (a token is a password anyone on the network may try)."""
WILDCARD_BINDS = ("0.0.0.0", "::", "")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer_scheme = HTTPBearer(
    auto_error=False,
    description=(
        "Needed when the server was started with a token (`--token` or FASTREASONSEG_TOKEN): send "
        "`Authorization: Bearer <token>`. The web page uses a cookie set by `POST /auth` instead."
    ),
)


# ---------------------------------------------------------------------------------------------- rules
def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address to listen on) is this machine's loopback interface only."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be the server's token (``None`` = it can)."""
    if len(token) < MIN_TOKEN_CHARS:
        return f"the token must have at least {MIN_TOKEN_CHARS} characters, this one has {len(token)}"
    if not all(33 <= ord(c) < 127 for c in token):
        return "the token may only hold printable ASCII characters without spaces (it is sent in an HTTP header)"
    return None


def bind_problem(host: str, token: str | None, no_auth: bool) -> str | None:
    """Why the server must not start listening on ``host`` (``None`` = it may)."""
    if token is not None:
        if no_auth:
            return "--token and --no-auth contradict each other: give one of them"
        return token_problem(token)
    if no_auth or is_loopback(host):
        return None
    return (
        f"refusing to listen on {host} without a token: anyone who can reach this address could read, upload and "
        f"delete twins. Pass --token TOKEN (or set {TOKEN_ENV}), e.g. --token \"$(python -c 'import secrets; "
        f"print(secrets.token_urlsafe(24))')\", or --no-auth to serve without one on purpose."
    )


def allowed_hosts_for(bind: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The Host allow-list of a server listening on ``bind``: loopback names, ``bind`` itself (unless it is a
    wildcard address) and ``extra``."""
    names = list(LOOPBACK_HOSTS)
    if bind not in WILDCARD_BINDS:
        names.append(bind)
    names.extend(extra)
    out: list[str] = []
    for n in names:
        n = _normalise_host(n)
        if n and n not in out:
            out.append(n)
    return tuple(out)


def _normalise_host(name: str) -> str:
    return name.strip().lower().rstrip(".").strip("[]")


def host_name(header: str) -> str:
    """The host name of a ``Host`` header, without port or IPv6 brackets, lower case (``"[::1]:8000"`` → ``::1``)."""
    h = header.strip()
    if h.startswith("["):
        end = h.find("]")
        return _normalise_host(h[1:end] if end > 0 else h)
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return _normalise_host(h)


def _netloc(value: str) -> str:
    """``host[:port]`` of an origin or Host header, lower case, default ports dropped."""
    v = value.strip().lower()
    for default in (":80", ":443"):
        if v.endswith(default):
            v = v[: -len(default)]
    return v


# ---------------------------------------------------------------------------------------------- middleware
class HostOriginGuard:
    """ASGI middleware: refuses a ``Host`` not in the allow-list (400) and cross-origin writes (403)."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Iterable[str],
        *,
        allow_ip_hosts: bool = False,
        allowed_origins: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.allowed_hosts = {_normalise_host(h) for h in allowed_hosts}
        self.any_host = "*" in self.allowed_hosts
        self.allow_ip_hosts = allow_ip_hosts
        self.allowed_origins = {o.strip().rstrip("/").lower() for o in allowed_origins}

    def host_allowed(self, header: str) -> bool:
        if self.any_host:
            return True
        name = host_name(header)
        if name in self.allowed_hosts:
            return True
        if self.allow_ip_hosts:
            try:
                ipaddress.ip_address(name)
                return True
            except ValueError:
                return False
        return False

    def origin_problem(self, headers: Headers, host: str) -> str | None:
        origin = headers.get("origin")
        if origin is not None:
            o = origin.strip().rstrip("/").lower()
            if o in self.allowed_origins:
                return None
            parts = urlsplit(o)
            if parts.scheme in ("http", "https") and parts.netloc and _netloc(parts.netloc) == _netloc(host):
                return None
            return (
                f"cross-origin request from {origin!r} refused: this server only accepts uploads, questions and "
                f"deletions from its own web page (list other origins with --allow-origin)"
            )
        if headers.get("sec-fetch-site") == "cross-site":
            return "cross-site request refused: this server only accepts writes from its own web page"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.host_allowed(host):
            shown = host_name(host) or "(none)"
            await _refuse(
                send,
                400,
                f"Host {shown!r} is not served here (allowed: {', '.join(sorted(self.allowed_hosts))}); if this is "
                f"the server's own name, start it with --allowed-host {shown}",
            )
            return
        if scope["type"] == "http" and scope.get("method", "GET") not in SAFE_METHODS:
            problem = self.origin_problem(headers, host)
            if problem is not None:
                await _refuse(send, 403, problem)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------------------------- token
def token_matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def request_authenticated(request: Request, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """Whether the request carries the server's token (always true when the server has none)."""
    token = request.app.state.config.token
    if not token:
        return True
    if credentials is not None and token_matches(credentials.credentials, token):
        return True
    return token_matches(request.cookies.get(TOKEN_COOKIE), token)


async def require_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)
) -> None:
    """Dependency of every API route: ``401`` unless the request carries the token (when the server has one)."""
    if not request_authenticated(request, credentials):
        raise HTTPException(
            401,
            "this server needs a token: send 'Authorization: Bearer <token>', or open the web page with the link "
            "fastreasonseg serve printed (or enter the token there)",
            headers={"WWW-Authenticate": "Bearer"},
        )


def install_guard(app: FastAPI, config: ServerConfig) -> None:
    """Add the Host / Origin checks to ``app`` (outermost), and CORS for ``allowed_origins`` when there are any."""
    if config.allowed_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.allowed_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=False,
        )
    app.add_middleware(
        HostOriginGuard,
        allowed_hosts=config.allowed_hosts,
        allow_ip_hosts=config.allow_ip_hosts,
        allowed_origins=config.allowed_origins,
    )


__all__ = [
    "TOKEN_COOKIE",
    "TOKEN_ENV",
    "HostOriginGuard",
    "allowed_hosts_for",
    "bind_problem",
    "install_guard",
    "is_loopback",
    "require_token",
    "token_problem",
]
