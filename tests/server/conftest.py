"""Fixtures for the server tests: the real ``fastreasonseg serve`` process on loopback.

Every server here is ``python -m fastreasonseg serve`` started as a subprocess on a free port, with
tiny random perception models (``make_tiny_models``) and the real offline reasoner (the default spec),
talked to over HTTP with httpx.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """One ``fastreasonseg serve`` subprocess; ``url`` is its base URL."""

    def __init__(self, store: Path, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.store = store
        self.args = args
        self.log_path = log
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> ServerProcess:
        cmd = [sys.executable, "-m", "fastreasonseg", "serve", "--port", str(self.port), "--store", str(self.store)]
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([*cmd, *self.args], stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not become ready in {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def client(self, timeout: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def wait_ready(self, client: httpx.Client, twin_id: str, timeout: float = 90.0) -> dict:
        """Poll the twin's status until it is ready or failed; returns the last status."""
        deadline = time.time() + timeout
        seen = []
        while time.time() < deadline:
            st = client.get(f"/twins/{twin_id}").json()
            seen.append((st["status"], st.get("progress")))
            if st["status"] in ("ready", "failed"):
                st["_seen"] = seen
                return st
            time.sleep(0.1)
        raise AssertionError(f"twin {twin_id} not built in {timeout} s; statuses {seen[-5:]}\n{self.log()}")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, str]:
    from fastreasonseg.perception.testing import make_tiny_models

    return make_tiny_models(tmp_path_factory.mktemp("server-models"))


@pytest.fixture(scope="session")
def photo(tmp_path_factory) -> Path:
    """A real photo (scikit-image's astronaut) as a JPEG, 256 px."""
    skdata = pytest.importorskip("skimage.data")
    p = tmp_path_factory.mktemp("server-media") / "astronaut.jpg"
    Image.fromarray(skdata.astronaut()).resize((256, 256)).save(p, quality=90)
    return p


def make_video(path: Path, frames: int, fps: int = 10, size: int = 64) -> Path:
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        base = (rng.random((size, size, 3)) * 255).astype(np.uint8)
        for i in range(frames):
            img = np.roll(base, i * 2, axis=1)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def model_args(models: dict[str, str]) -> list[str]:
    return [
        "--segmenter",
        models["segmenter"],
        "--depth",
        models["depth"],
        "--labeller",
        models["labeller"],
        "--box-threshold",
        "0.0",
        "--max-instances",
        "4",
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_models):
    """A server with tiny perception models and small limits (1 MiB uploads, 2 s videos, 0.4 MP frames)."""
    root = tmp_path_factory.mktemp("server")
    srv = ServerProcess(
        root / "store",
        [
            *model_args(tiny_models),
            "--max-upload-mb",
            "1",
            "--max-pixels",
            "400000",
            "--max-video-seconds",
            "2",
            "--ask-workers",
            "2",
            "--max-queued-asks",
            "6",
            "--log-level",
            "warning",
        ],
        root / "server.log",
    )
    srv.start()
    yield srv
    srv.stop()


# ---------------------------------------------------------------------------------------------- in-process app
class GatedRuntime:
    """A reasoner runtime that answers object 1 (``#1`` as the plan, ``{"ids": [1]}``) once :attr:`gate` is set
    (set by default).

    Clear the gate to hold every question inside the model call: the queue then fills deterministically.
    """

    name = "gated"
    n_ctx = 4096

    def __init__(self) -> None:
        import threading

        self.gate = threading.Event()
        self.gate.set()
        self.calls = 0
        self.prompts: list = []

    def complete(self, prompt, assistant_prefix, *, stop, max_tokens, **_kw):
        from fastreasonseg.reasoning.runtimes.base import Completion

        self.calls += 1
        self.prompts.append(prompt)
        if not self.gate.wait(120):
            raise RuntimeError("the test never opened the gate")
        if assistant_prefix.endswith("<reason>") and "</reason>" in stop:
            text = "the first object</reason>"
        elif assistant_prefix.endswith("<plan>"):
            text = "#1</plan>"  # the plan language's "object 1"
        elif assistant_prefix.rstrip().endswith("["):
            text = "1]}</answer>"
        else:  # a runtime asked for the whole turn at once
            text = ("" if assistant_prefix.endswith("<reason>") else "<reason>") + "the first object</reason>\n"
            text += '<answer>{"ids": [1]}</answer>'
        on = next((s for s in stop if text.endswith(s)), None)
        return Completion(text=text, finish_reason="stop", stopped_on=on, prompt_tokens=100, completion_tokens=12)

    def count_tokens(self, text: str) -> int:
        return (len(text) + 2) // 3


@pytest.fixture
def make_client(tmp_path):
    """``make_client(**ServerConfig fields)`` → a started ``TestClient`` on ``http://localhost`` (closed after the
    test); the reasoner is a :class:`GatedRuntime` unless ``reasoner=`` is given."""
    from fastapi.testclient import TestClient

    from fastreasonseg.server import ServerConfig, create_app

    clients = []

    def make(base_url: str = "http://localhost", **fields):
        fields.setdefault("reasoner", GatedRuntime())
        fields.setdefault("store", tmp_path / f"store{len(clients)}")
        client = TestClient(create_app(ServerConfig(**fields)), base_url=base_url, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)
