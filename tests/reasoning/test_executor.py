import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastreasonseg.errors import InputError
from fastreasonseg.reasoning import Reasoner, ReasonerConfig, format_ok, run_rollout
from fastreasonseg.reasoning.runtimes.base import Completion
from fastreasonseg.reasoning.tools import ToolContext

from .helpers import ScriptedRuntime, empty_twin, image_twin, video_twin

R = "<reason>The mug holds drinks.</reason>\n"


def ask(script, twin=None, query="something to drink from", **cfg):
    rt = ScriptedRuntime(list(script))
    res = run_rollout(rt, twin or image_twin(), query, config=ReasonerConfig(**cfg))
    return res, rt


def test_direct_answer():
    res, rt = ask([R + '<answer>{"ids": [1]}</answer>'])
    assert res.ids == [1] and not res.no_target and res.diagnostic == ""
    assert res.format_ok and res.rounds == 0 and res.model_calls == 1
    assert len(rt.calls) == 1 and rt.calls[0].prefix == ""
    assert rt.calls[0].stop == ["</plan>", "</answer>"]
    assert rt.calls[0].grammar and "<reason>" in rt.calls[0].grammar  # constrained by default
    m = res.masks()
    assert set(m) == {0} and m[0].dtype == bool and m[0].sum() == image_twin().frames[0].get(1).area
    d = res.to_dict()
    json.dumps(d)
    assert d["ids"] == [1] and d["tokens"]["completion_tokens"] > 0 and "total_ms" in d["timings"]


def test_multi_round_plan_results_answer():
    script = [
        R + '<plan>[{"tool": "relation", "args": {"a": 1, "b": 7}}]</plan>',
        '<plan>[{"tool": "attributes", "args": {"id": 1}}, {"tool": "attributes", "args": {"id": 9}}]</plan>',
        '<answer>{"ids": [1]}</answer>',
    ]
    res, rt = ask(script)
    assert res.ids == [1] and res.rounds == 2 and res.format_ok, res.problems
    assert [c.tool for c in res.tool_calls] == ["relation", "attributes", "attributes"]
    assert "left of" in res.tool_calls[0].result["a_is"]
    assert res.rollout.count("<results>") == 2
    # each later turn resumes from the rollout so far, which ends with the executor's results
    assert rt.calls[1].prefix.rstrip().endswith("</results>")
    assert '"attributes_2"' in res.rollout
    # the last turn may only answer: rounds are spent
    assert "plan ::=" not in rt.calls[2].grammar and "plan ::=" in rt.calls[1].grammar
    assert res.prompt_tokens == 360 and res.cached_tokens == 200 and res.tools_ms >= 0
    assert res.decode_ms > 0 and res.total_ms >= res.tools_ms


def test_plan_after_rounds_spent_gets_error_then_answer():
    script = [
        R + '<plan>[{"tool": "attributes", "args": {"id": 1}}]</plan>',
        '<plan>[{"tool": "attributes", "args": {"id": 2}}]</plan>',
        '<answer>{"ids": [2]}</answer>',
    ]
    res, _ = ask(script, max_rounds=1, constrained=False)
    assert res.ids == [2] and res.rounds == 1 and len(res.tool_calls) == 1
    assert "no more tool rounds" in res.rollout


def test_keeps_planning_after_rounds_spent():
    plan = '<plan>[{"tool": "attributes", "args": {"id": 1}}]</plan>'
    res, _ = ask([R + plan, plan, plan], max_rounds=1, constrained=False)
    assert res.no_target and "kept planning" in res.diagnostic


@pytest.mark.parametrize(
    ("plan", "fragment"),
    [
        ('[{"tool": "teleport", "args": {"id": 1}}]', "unknown tool"),
        ('[{"tool": "attributes", "args": {"idx": 1}}]', "bad args for attributes"),
        ('[{"tool": "attributes", "args": {"id": "1"}}]', "bad args for attributes"),
        ('[{"tool": "relation", "args": {"a": 1}}]', "bad args for relation"),
        ('[{"tool": "attributes", "args": {"id": 42}}]', "no object with id 42"),
        ('[{"tool": "attributes", "args": {"id": 1}', "not valid JSON"),
        ('[{"tool": "motion", "args": {"id": 1}}]', "motion needs a video"),
        ('[{"tool": "detect", "args": {"text": "cup"}}]', "loaded without them"),
    ],
)
def test_tool_errors_go_inside_results(plan, fragment):
    res, _ = ask([R + f"<plan>{plan}</plan>", '<answer>{"ids": [1]}</answer>'], constrained=False)
    results = res.rollout.split("<results>")[1].split("</results>")[0]
    assert fragment in results, results
    assert json.loads(results)  # still JSON
    assert res.ids == [1]  # a bad call does not void a good answer


def test_unknown_answer_ids_dropped():
    res, _ = ask([R + '<answer>{"ids": [1, 55, 9]}</answer>'], constrained=False)
    assert res.ids == [1, 9] and "55" in res.diagnostic and not res.no_target
    res, _ = ask([R + '<answer>{"ids": [55]}</answer>'], constrained=False)
    assert res.ids == [] and res.no_target and "not in the twin" in res.diagnostic


def test_empty_answer_is_no_target():
    res, _ = ask([R + '<answer>{"ids": []}</answer>'])
    assert res.no_target and res.format_ok and "no object matches" in res.diagnostic


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        (['<answer>{"ids": [1]}</answer>'], "start with <reason>"),  # missing reason
        ([R + '<results>{"fake": 1}</results><answer>{"ids": [1]}</answer>'], "wrote <results> itself"),
        ([R + '<answer>{"ids": [1.0]}</answer>'], "integers"),
        ([R + '<answer>{"ids": ["1"]}</answer>'], "integers"),
        ([R + "<answer>ids: 1</answer>"], "not valid JSON"),
        ([R + "I think it is the mug."], "without an answer"),  # no answer, model stopped
        ([R], "without an answer"),
        (["<reason>" + "blah " * 500], "token cap"),  # endless output
        ([R + "<reason>again</reason><answer>" + '{"ids": [1]}</answer>'], "more than one <reason>"),
        ([R + 'text <answer>{"ids": [1]}</answer>'], "outside tags"),
        ([Completion(text="", finish_reason="error", error="boom")], "runtime failed: boom"),
    ],
)
def test_malformed_rollouts_are_graceful(script, fragment):
    res, _ = ask(script, constrained=False)
    assert res.ids == [] and res.no_target
    assert fragment in res.diagnostic, res.diagnostic
    assert not res.format_ok
    json.dumps(res.to_dict())


def test_repeated_answer_and_answer_not_at_end():
    # a runtime that ignores stop strings (returns more than asked): the executor cuts at the first stop
    rt = ScriptedRuntime(
        [Completion(text=R + '<answer>{"ids": [1]}</answer><answer>{"ids": [2]}</answer>', finish_reason="stop")]
    )
    res = run_rollout(rt, image_twin(), "q", config=ReasonerConfig(constrained=False))
    assert res.ids == [1] and res.rollout.endswith("</answer>")
    # answers inside a turn that ends with a plan: the plan is never run and the answer is not at the end
    res, _ = ask([R + '<answer>{"ids": [1]}</answer>x<plan>[]</plan>'], constrained=False)
    assert res.ids == [1]  # stop at the first </answer>
    res, _ = ask(
        [R + '<plan>[{"tool": "attributes", "args": {"id": 1}}]<answer>{"ids": [1]}</answer>'], constrained=False
    )
    assert res.no_target and "inside <plan>" in res.diagnostic


def test_total_token_budget():
    plan = '<plan>[{"tool": "attributes", "args": {"id": 1}}]</plan>'
    res, rt = ask([R + plan, "<plan>" + "x" * 400], max_total_tokens=40, max_rounds=3, constrained=False)
    assert res.no_target and ("token" in res.diagnostic)
    assert rt.calls[1].max_tokens < 40


def test_lenient_mode_accepts_answer_despite_structure():
    res, _ = ask(['<answer>{"ids": [1]}</answer>'], constrained=False, strict=False)
    assert res.ids == [1] and not res.format_ok and res.problems


def test_empty_query_raises_and_no_model_call():
    rt = ScriptedRuntime([])
    for q in ("", "   \n\t"):
        with pytest.raises(InputError, match="the query is empty"):
            run_rollout(rt, image_twin(), q)
    assert rt.calls == []


def test_long_query_truncated_with_note():
    res, _rt = ask([R + '<answer>{"ids": [1]}</answer>'], query="cup " * 1000)
    assert any("truncated" in n for n in res.notes) and 1990 <= len(res.query) <= 2000
    assert res.ids == [1]


def test_empty_twin_no_model_call():
    rt = ScriptedRuntime([R + '<answer>{"ids": [1]}</answer>'])
    res = run_rollout(rt, empty_twin(), "the mug")
    assert rt.calls == [] and res.no_target and "no objects" in res.diagnostic and res.model_calls == 0


def test_grammar_restricts_ids_to_twin():
    _res, rt = ask([R + '<answer>{"ids": [1]}</answer>'])
    g = rt.calls[0].grammar
    assert 'id ::= ("1" | "2" | "7" | "9")' in g
    _, rt = ask([R + '<answer>{"ids": [1]}</answer>'], restrict_ids=False)
    assert "[0-9]" in rt.calls[0].grammar.split("id ::=")[1]
    _, rt = ask([R + '<answer>{"ids": [1]}</answer>'], constrained=False)
    assert rt.calls[0].grammar is None


def test_caller_twin_not_mutated_and_refined_twin_used():
    class FakePerception:
        def detect(self, image, phrases, threshold):
            from fastreasonseg.perception.protocols import Detection

            m = np.zeros(image.shape[:2], bool)
            m[10:20, 10:30] = True
            return [(Detection((10, 10, 30, 20), phrases[0], 0.8), m, None)]

        def classify(self, image, boxes, candidates):
            return [[(c, 0.5) for c in candidates]]

    twin = image_twin()
    before = twin.to_dict()
    script = [R + '<plan>[{"tool": "detect", "args": {"text": "lamp"}}]</plan>', '<answer>{"ids": [10]}</answer>']
    rt = ScriptedRuntime(script)
    ctx = ToolContext(frames={0: np.zeros((120, 160, 3), np.uint8)}, perception=FakePerception())
    res = Reasoner(rt, ReasonerConfig()).ask(twin, "the lamp", ctx)
    assert twin.to_dict() == before
    assert res.ids == [10] and res.tool_calls[0].result["new"] == [10]
    assert res.masks()[0].sum() == 200
    # the continuation grammar knows the new id
    assert '"10"' in rt.calls[1].grammar
    assert any("added 10" in n for n in res.notes)


def test_video_rollout():
    script = [R + '<plan>[{"tool": "motion", "args": {"id": 3}}]</plan>', '<answer>{"ids": [3]}</answer>']
    res, _ = ask(script, twin=video_twin(), query="the car driving right")
    assert res.ids == [3] and res.tool_calls[0].result["dir"] == "right"
    assert set(res.masks()) == {0, 1, 2, 3, 4}


def test_rollout_text_is_format_ok_with_results():
    res, _ = ask([R + '<plan>[{"tool": "attributes", "args": {"id": 1}}]</plan>', '\n<answer>{"ids": [1]}</answer>'])
    assert format_ok(res.rollout)


_pieces = st.sampled_from(
    [
        "<reason>",
        "</reason>",
        "<plan>",
        "</plan>",
        "<results>",
        "</results>",
        "<answer>",
        "</answer>",
        '{"ids": [1, 7]}',
        '{"ids": [99]}',
        '[{"tool": "relation", "args": {"a": 1, "b": 7}}]',
        '[{"tool": "detect", "args": {"text": "cup"}}]',
        '[{"tool": "attributes", "args": {"id": "x"}}]',
        "[]",
        "{",
        "mug ",
        "\n",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_pieces, max_size=12).map("".join), min_size=1, max_size=4), st.booleans())
def test_executor_never_raises_on_model_output(turns, strict):
    twin = image_twin()
    res = run_rollout(ScriptedRuntime(list(turns)), twin, "q", config=ReasonerConfig(constrained=False, strict=strict))
    assert set(res.ids) <= set(twin.track_ids)
    assert res.no_target == (not res.ids)
    if res.no_target:
        assert res.diagnostic
    json.dumps(res.to_dict())
