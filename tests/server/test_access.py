"""Access control against the real ``fastreasonseg serve`` process on loopback: token, Host allow-list, Origin,
and the refusal to listen on every interface without a token."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from .conftest import ServerProcess, free_port

pytestmark = pytest.mark.slow

TOKEN = "process-test-token-0123456789"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    """A server whose token comes from the FASTREASONSEG_TOKEN environment variable."""
    root = tmp_path_factory.mktemp("access")
    srv = ServerProcess(
        root / "store", ["--log-level", "warning"], root / "server.log", env={"FASTREASONSEG_TOKEN": TOKEN}
    )
    srv.start()
    yield srv
    srv.stop()


def _example_bytes() -> bytes:
    from fastreasonseg.api import example_twin_path

    return example_twin_path().read_bytes()


def test_token_host_and_origin_on_the_real_server(token_server):
    auth = {"authorization": f"Bearer {TOKEN}"}
    with token_server.client() as c:
        assert c.get("/health").json()["status"] == "ok"  # liveness is open
        r = c.get("/twins")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.get("/twins", headers={"authorization": "Bearer not-the-token-000000"}).status_code == 401
        assert c.delete("/twins/example").status_code == 401
        assert c.get("/twins/example", headers=auth).json()["status"] == "ready"  # not deleted
        r = c.post("/twins/example/ask", json={"query": "the spoon"}, headers=auth)
        assert r.status_code == 200, r.text
        assert c.get(r.json()["overlay_url"]).status_code == 401
        assert c.get(r.json()["overlay_url"], headers=auth).status_code == 200

        # DNS rebinding: another name for 127.0.0.1 is refused, with or without the token
        for headers in ({"host": "evil.example.com"}, {"host": "evil.example.com:80", **auth}):
            r = c.get("/twins/example", headers=headers)
            assert r.status_code == 400 and "evil.example.com" in r.json()["detail"]
        assert c.get("/twins/example", headers={"host": f"localhost:{token_server.port}", **auth}).status_code == 200

        # a cross-origin upload is refused even with the token; the page's own origin may upload
        files = {"file": ("x.json", _example_bytes(), "application/json")}
        r = c.post("/twins", files=files, headers={"origin": "http://evil.example.com", **auth})
        assert r.status_code == 403
        own = f"http://127.0.0.1:{token_server.port}"
        r = c.post("/twins", files=files, headers={"origin": own, **auth})
        assert r.status_code == 201, r.text

        # the web page signs in once with the token and then uses a cookie
        assert c.post("/auth", json={"token": TOKEN}, headers={"origin": own}).status_code == 204
        assert c.get("/twins").status_code == 200


def test_the_page_and_docs_load_without_the_token(token_server):
    with token_server.client() as c:
        assert "FastReasonSeg" in c.get("/").text
        assert c.get("/static/app.js").status_code == 200
        assert "/docs/assets/swagger-ui-bundle.js" in c.get("/docs").text
        assert c.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
        assert c.get("/auth").json() == {"required": True, "authenticated": False}


def _serve(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    cmd = [sys.executable, "-m", "fastreasonseg", "serve", "--port", str(free_port()), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def test_every_interface_needs_a_token(tmp_path):
    proc = _serve("--host", "0.0.0.0", "--store", str(tmp_path / "s"), env={"FASTREASONSEG_TOKEN": ""})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "refusing to listen on 0.0.0.0 without a token" in proc.stderr and "--no-auth" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "s").exists()  # refused before anything started
    proc = _serve("--token", "short", "--store", str(tmp_path / "s"))
    assert proc.returncode == 1 and "at least 16 characters" in proc.stderr
    proc = _serve("--token", TOKEN, "--no-auth", "--store", str(tmp_path / "s"))
    assert proc.returncode == 1 and "contradict" in proc.stderr


def test_openapi_of_the_real_server(token_server):
    spec = httpx.get(token_server.url + "/openapi.json", timeout=30).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert json.dumps(spec).count("AskResult") >= 2
