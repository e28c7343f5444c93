"""OpenAI-compatible HTTP runtime (vLLM, llama.cpp ``llama-server``, hosted APIs), with ``httpx`` directly.

Two modes:

``completions`` (default)
    The client renders the chat template itself (the same rendering as the local runtimes, see :mod:`.template`)
    and posts ``rendered prompt + assistant prefix`` to ``/v1/completions``. The server continues the assistant
    turn exactly as a local runtime would, and can reuse its own prefix cache across questions on one twin.
``chat``
    Posts the messages to ``/v1/chat/completions`` with the assistant prefix as a final assistant message and
    vLLM's ``continue_final_message=true, add_generation_prompt=false``; the prefix is stripped from the reply when
    the server echoes it.

Grammars go in the field(s) named by ``grammar_field``: ``"grammar"`` (llama.cpp server), ``"structured_outputs"``
(vLLM >= 0.10, ``{"structured_outputs": {"grammar": ...}}``), ``"guided_grammar"`` (older vLLM), ``"auto"`` (the
first two; each server ignores the other's field) or ``None`` (never send one).

Every failure (unreachable endpoint, timeout, HTTP error status, a body that is not the expected JSON) raises
:class:`~fastreasonseg.reasoning.runtimes.base.RuntimeUnavailableError` naming the URL; every request has a timeout.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from fastreasonseg.errors import InputError
from fastreasonseg.reasoning.runtimes.base import ChatPrompt, Completion, RuntimeUnavailableError
from fastreasonseg.reasoning.runtimes.registry import Option, RuntimeKind
from fastreasonseg.reasoning.runtimes.template import CHATML_TEMPLATE, ChatTemplate, find_stop
from fastreasonseg.reasoning.runtimes.tokens import TokenCountUnavailable

GRAMMAR_FIELDS = ("auto", "grammar", "structured_outputs", "guided_grammar")
_RETRY_STATUS = {429, 502, 503, 504}


def normalise_base_url(base_url: str) -> str:
    """``http://host:8000`` → ``http://host:8000/v1``; a URL with a path is kept as given (minus a trailing /)."""
    if not base_url or "://" not in base_url:
        raise InputError(f"not an http(s) URL: {base_url!r} (expected e.g. http://localhost:8000/v1)")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"not an http(s) URL: {base_url!r} (expected e.g. http://localhost:8000/v1)")
    path = parts.path.rstrip("/")
    if not path:
        path = "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class OpenAIRuntime:
    """A model behind an OpenAI-compatible endpoint.

    Args:
        base_url: e.g. ``http://localhost:8000/v1`` (``/v1`` is added to a bare host).
        model: the served model name (``--served-model-name`` in vLLM; any name for llama.cpp server).
        api_key: bearer token; default ``$OPENAI_API_KEY`` (none sent when unset).
        timeout: seconds allowed for each phase of a request (connect, send, and each wait for bytes).
        mode: ``"completions"`` or ``"chat"`` (see the module docstring).
        max_retries: extra attempts after a connection failure or a 429/502/503/504 answer (not after a timeout).
        chat_template: the model's Jinja2 chat template for ``completions`` mode (default: ChatML, which SmolLM2
            and Qwen3 use); pass the model's own when it differs.
        grammar_field: where a GBNF grammar goes (see the module docstring).
        include_stop: ask the server to keep the stop string in the text (vLLM's ``include_stop_str_in_output``)
            so :attr:`Completion.stopped_on` is exact; servers that ignore it report ``stop_reason`` instead.
        context_size: the served model's context length, if known (``n_ctx``, used to fit the twin view).
        extra_body: more JSON fields for every request (e.g. ``{"top_k": 20}``).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        mode: Literal["completions", "chat"] = "completions",
        max_retries: int = 1,
        *,
        chat_template: str | None = None,
        grammar_field: str | None = "auto",
        include_stop: bool = True,
        context_size: int | None = None,
        extra_body: dict[str, Any] | None = None,
        transport: Any = None,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - httpx is a dependency of the extra
            raise InputError(
                "the OpenAI-compatible runtime needs httpx (`pip install 'fastreasonseg[openai]'`)"
            ) from exc
        if mode not in ("completions", "chat"):
            raise InputError(f"mode must be 'completions' or 'chat', got {mode!r}")
        if grammar_field is not None and grammar_field not in GRAMMAR_FIELDS:
            raise InputError(f"grammar_field must be one of {', '.join(GRAMMAR_FIELDS)} or None, got {grammar_field!r}")
        if not model:
            raise InputError("the OpenAI-compatible runtime needs a model name (e.g. ?model=Qwen/Qwen3-0.6B)")
        if timeout <= 0:
            raise InputError(f"timeout must be positive, got {timeout}")
        self._httpx = httpx
        self.base_url = normalise_base_url(base_url)
        self.model = model
        self.mode = mode
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.grammar_field = grammar_field
        self.include_stop = include_stop
        self.n_ctx = context_size
        self.extra_body = dict(extra_body or {})
        self.template = ChatTemplate(chat_template or CHATML_TEMPLATE)
        self.name = f"openai:{self.model}@{self.base_url}"
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(self.timeout), transport=transport)
        self._tokenize_ok: str | bool | None = None
        """The tokenizer route that answered, ``False`` when none did, ``None`` before asking."""

    # ---------------------------------------------------------------- HTTP
    def _post(self, path: str, body: dict[str, Any], *, retries: int | None = None) -> dict[str, Any]:
        httpx = self._httpx
        url = self.base_url + path
        attempts = 1 + (self.max_retries if retries is None else retries)
        last = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(2.0, 0.25 * 2**attempt))
            try:
                r = self._client.post(url, json=body)
            except httpx.TimeoutException as exc:
                raise RuntimeUnavailableError(
                    f"no answer from {url} within {self.timeout:g} s ({type(exc).__name__}); "
                    f"is the server overloaded? raise the timeout (timeout=...)"
                ) from exc
            except httpx.TransportError as exc:
                last = f"cannot reach {url}: {exc or type(exc).__name__}; is the server running?"
                continue
            if r.status_code in _RETRY_STATUS:
                last = f"{url} answered HTTP {r.status_code}: {_snippet(r.text)}"
                continue
            if r.status_code >= 400:
                raise RuntimeUnavailableError(f"{url} answered HTTP {r.status_code}: {_snippet(r.text)}")
            try:
                data = r.json()
            except (ValueError, json.JSONDecodeError) as exc:
                raise RuntimeUnavailableError(f"{url} did not answer JSON: {_snippet(r.text)}") from exc
            if not isinstance(data, dict):
                raise RuntimeUnavailableError(f"{url} answered JSON that is not an object: {_snippet(r.text)}")
            return data
        raise RuntimeUnavailableError(last + (f" (after {attempts} attempts)" if attempts > 1 else ""))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ requests
    def render(self, prompt: ChatPrompt, assistant_prefix: str = "") -> str:
        return self.template.render_text(prompt, assistant_prefix)

    def _grammar_fields(self, grammar: str) -> dict[str, Any]:
        f = self.grammar_field
        if f is None:
            return {}
        out: dict[str, Any] = {}
        if f in ("auto", "grammar"):
            out["grammar"] = grammar
        if f in ("auto", "structured_outputs"):
            out["structured_outputs"] = {"grammar": grammar}
        if f == "guided_grammar":
            out["guided_grammar"] = grammar
        return out

    def complete(
        self,
        prompt: ChatPrompt,
        assistant_prefix: str,
        *,
        stop: list[str],
        max_tokens: int,
        grammar: str | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
        cache_prefix: str | None = None,
    ) -> Completion:
        """Continue ``assistant_prefix`` on the server (``cache_prefix`` is accepted and ignored: servers cache
        prefixes themselves, e.g. vLLM's automatic prefix caching)."""
        if max_tokens <= 0:
            raise InputError(f"max_tokens must be positive, got {max_tokens}")
        stop = [s for s in stop if s]
        body: dict[str, Any] = {"model": self.model, "max_tokens": int(max_tokens), "temperature": float(temperature)}
        if stop:
            body["stop"] = stop
            if self.include_stop:
                body["include_stop_str_in_output"] = True
        if seed is not None:
            body["seed"] = int(seed)
        if grammar:
            body.update(self._grammar_fields(grammar))
        body.update(self.extra_body)
        t0 = time.perf_counter()
        if self.mode == "completions":
            body["prompt"] = self.render(prompt, assistant_prefix)
            data = self._post("/completions", body)
            choice = _first_choice(data, self.base_url + "/completions")
            text = choice.get("text")
        else:
            messages = []
            if prompt.system:
                messages.append({"role": "system", "content": prompt.system})
            messages.append({"role": "user", "content": prompt.user})
            if assistant_prefix:
                messages.append({"role": "assistant", "content": assistant_prefix})
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
            body["messages"] = messages
            data = self._post("/chat/completions", body)
            choice = _first_choice(data, self.base_url + "/chat/completions")
            msg = choice.get("message")
            text = msg.get("content") if isinstance(msg, dict) else None
            if isinstance(text, str) and assistant_prefix and text.startswith(assistant_prefix):
                text = text[len(assistant_prefix) :]
        total_ms = (time.perf_counter() - t0) * 1000.0
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise RuntimeUnavailableError(f"{self.base_url}: the answer's text is not a string: {_snippet(str(data))}")
        return self._completion(text, choice, data, stop, max_tokens, total_ms, assistant_prefix)

    def _completion(
        self,
        text: str,
        choice: dict[str, Any],
        data: dict[str, Any],
        stop: list[str],
        max_tokens: int,
        total_ms: float,
        assistant_prefix: str = "",
    ) -> Completion:
        reason = choice.get("finish_reason")
        text, stopped_on, notes = _restore_stop(text, choice, stop, assistant_prefix)
        if stopped_on is not None:
            reason = "stop"
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        details = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), dict) else {}
        timings = data.get("timings") if isinstance(data.get("timings"), dict) else {}
        completion_tokens = _int(usage.get("completion_tokens"))
        finish = "stop" if reason == "stop" else "length" if reason == "length" else None
        if finish is None:
            finish = "length" if completion_tokens >= max_tokens else "stop"
        cached = _int(details.get("cached_tokens")) or _int(timings.get("cache_n"))
        return Completion(
            text=text,
            finish_reason=finish,  # type: ignore[arg-type]
            stopped_on=stopped_on,
            prompt_tokens=_int(usage.get("prompt_tokens")),
            cached_tokens=cached,
            completion_tokens=completion_tokens,
            prefill_ms=_float(timings.get("prompt_ms")),
            decode_ms=_float(timings.get("predicted_ms")),
            total_ms=total_ms,
            notes=notes,
        )

    def count_tokens(self, text: str) -> int:
        """Tokens by the server's tokenizer endpoint: ``/tokenize`` (vLLM, llama.cpp ``llama-server``) or
        ``/extras/tokenize/count`` (llama-cpp-python's server). Raises
        :class:`~fastreasonseg.reasoning.runtimes.tokens.TokenCountUnavailable` when the server has neither (asked
        once); :class:`~fastreasonseg.reasoning.runtimes.tokens.TokenCounter` then estimates and says so."""
        if not text:
            return 0
        if self._tokenize_ok is False:
            raise TokenCountUnavailable(self._no_tokenizer)
        for path, body in self._tokenize_routes(text):
            if self._tokenize_ok not in (None, path):
                continue
            n = self._tokenize(path, body)
            if n is not None:
                self._tokenize_ok = path
                return n
        self._tokenize_ok = False
        raise TokenCountUnavailable(self._no_tokenizer)

    @property
    def _no_tokenizer(self) -> str:
        return f"{self.name} has no tokenizer endpoint (/tokenize, /extras/tokenize/count)"

    def _tokenize_routes(self, text: str) -> list[tuple[str, dict[str, Any]]]:
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        return [
            (root + "/tokenize", {"model": self.model, "prompt": text, "content": text}),
            (root + "/extras/tokenize/count", {"input": text}),
        ]

    def _tokenize(self, url: str, body: dict[str, Any]) -> int | None:
        """The count one tokenizer route answers, or ``None`` (no such route, an error, an unexpected body)."""
        try:
            r = self._client.post(url, json=body, timeout=min(self.timeout, 10.0))
            data = r.json() if r.status_code == 200 else None
        except (self._httpx.HTTPError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        if isinstance(data.get("count"), int):
            return int(data["count"])
        if isinstance(data.get("tokens"), list):
            return len(data["tokens"])
        return None

    def __repr__(self) -> str:
        return f"OpenAIRuntime({self.base_url!r}, model={self.model!r}, mode={self.mode!r})"


def _restore_stop(
    text: str, choice: dict[str, Any], stop: list[str], assistant_prefix: str
) -> tuple[str, str | None, tuple[str, ...]]:
    """``(text ending with its stop string, the stop string or None, notes)`` from what the server sent.

    The executor needs the stop string that ended a turn (``</plan>`` runs the tools, ``</answer>`` ends the
    rollout). Servers differ: vLLM keeps it on request (``include_stop_str_in_output``) or names it
    (``stop_reason``), llama.cpp's ``llama-server`` names it (``stopping_word``); the OpenAI API and
    llama-cpp-python's server strip it and name nothing. Then, when the turn ended on ``stop`` and the text leaves a
    tag open whose closing tag is a stop string (the rollout grammar's next token is that closing tag), it is
    restored, and a note says so. A server that names no stop string although it sent the field (vLLM's
    ``stop_reason: null``: the end-of-sequence token) is taken at its word.
    """
    hit = find_stop(text, stop)
    if hit is not None:  # the server kept the stop string (or ignored `stop`): cut just after it
        return text[: hit[0]], hit[1], ()
    if choice.get("finish_reason") != "stop":
        return text, None, ()
    named = [choice[k] for k in ("stop_reason", "stopping_word") if k in choice]
    for sr in named:
        if isinstance(sr, str) and sr in stop:
            return text + sr, sr, ()
    if named:
        return text, None, ()
    closer = open_tag_closer(assistant_prefix + text, stop)
    if closer is None:
        return text, None, ()
    note = f"the server did not return the stop string; {closer} restored after the open {closer.replace('/', '')}"
    return text + closer, closer, (note,)


def open_tag_closer(text: str, stop: list[str]) -> str | None:
    """The stop string that closes the tag ``text`` leaves open last (``</answer>`` after ``<answer>{"ids": [1]}``),
    among the stop strings of the form ``</tag>``; ``None`` when no such tag is open."""
    best: tuple[int, str] | None = None
    for s in stop:
        if not (s.startswith("</") and s.endswith(">")):
            continue
        opened = text.rfind("<" + s[2:])
        if opened >= 0 and opened > text.rfind(s) and (best is None or opened > best[0]):
            best = (opened, s)
    return None if best is None else best[1]


def _first_choice(data: dict[str, Any], url: str) -> dict[str, Any]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        err = data.get("error")
        if err:
            raise RuntimeUnavailableError(f"{url} answered an error: {_snippet(json.dumps(err))}")
        raise RuntimeUnavailableError(f"{url} answered without choices: {_snippet(json.dumps(data))}")
    return choices[0]


def _snippet(text: str, n: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "…"


def _int(v: object) -> int:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0


def _float(v: object) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0


def _from_spec(target: str | None, o: dict[str, Any]) -> OpenAIRuntime:
    assert target is not None  # the registry checks it (target="required")
    return OpenAIRuntime(target, **o)


RUNTIME = RuntimeKind(
    name="openai",
    usage="openai:URL?model=NAME",
    build=_from_spec,
    target="required",
    target_help="a URL",
    options={
        "model": Option(str, "the served model name", required=True, metavar="NAME"),
        "api_key": Option(str, "bearer token (default $OPENAI_API_KEY)"),
        "timeout": Option(float, "seconds per request phase"),
        "mode": Option(str, "completions or chat"),
        "max_retries": Option(int, "extra attempts after a connection failure or 429/502/503/504"),
        "chat_template": Option(str, "the model's Jinja2 chat template (completions mode)"),
        "grammar_field": Option(str, "auto, grammar, structured_outputs or guided_grammar"),
        "include_stop": Option(bool, "ask the server to keep the stop string"),
        "context_size": Option(int, "the served model's context length"),
    },
    example="openai:http://localhost:8000/v1?model=M",
)
"""The registry's declaration of this runtime (see :mod:`.registry`)."""
