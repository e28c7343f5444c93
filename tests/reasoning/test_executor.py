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

REASON = "a mug holds drinks</reason>"


def ask(script, twin=None, query="something to drink from", **cfg):
    rt = ScriptedRuntime(list(script))
    res = run_rollout(rt, twin or image_twin(), query, config=ReasonerConfig(**cfg))
    return res, rt


def test_reason_plan_results_answer():
    res, rt = ask([REASON, "mug</plan>", "1]}</answer>"])
    assert res.ids == [1] and not res.no_target and res.diagnostic == ""
    assert res.format_ok and res.rounds == 1 and res.model_calls == 3
    # the executor writes the fixed pieces; the model only the free ones
    assert [c.prefix for c in rt.calls] == [
        "<reason>",
        "<reason>" + REASON + "\n<plan>",
        "<reason>" + REASON + '\n<plan>mug</plan>\n<results>{"ids": [1], "objects": "1 mug"}</results>'
        '\n<answer>{"ids": [',
    ]
    assert res.rollout.endswith('<answer>{"ids": [1]}</answer>')
    assert all(c.stop == ["</reason>", "</plan>", "</answer>"] for c in rt.calls)
    # one grammar per turn: the reason, the plan language, the ids the plan selected
    assert rt.calls[0].grammar.startswith("root ::= [^<")
    assert "nearest(" in rt.calls[1].grammar and "expr ::=" in rt.calls[1].grammar
    assert rt.calls[2].grammar.endswith('id ::= ("1")')
    assert res.tool_calls[0].tool == "plan" and res.tool_calls[0].args == "mug"
    m = res.masks()
    assert set(m) == {0} and m[0].sum() == image_twin().frames[0].get(1).area
    d = res.to_dict()
    json.dumps(d)
    assert d["ids"] == [1] and d["tokens"]["completion_tokens"] > 0 and "total_ms" in d["timings"]


def test_operator_plan_grounds_and_computes():
    res, _ = ask(["the thing on the table</reason>", "on(all, table)</plan>", "9]}</answer>"])
    assert res.ids == [9] and res.tool_calls[0].result["why"] == "on 2 table"
    res, _ = ask(["nearest cup</reason>", "nearest(cup|person)</plan>", "1]}</answer>"])
    assert res.ids == [1]  # "cup" is the mug's alternative label


def test_answer_ids_outside_the_results_are_dropped():
    res, _ = ask([REASON, "mug</plan>", "1, 7]}</answer>"], constrained=False)
    assert res.ids == [1] and "did not select: [7]" in res.diagnostic


def test_empty_results_mean_no_target_with_the_reason():
    res, rt = ask(["a laptop</reason>", "laptop</plan>", "]}</answer>"])
    assert res.no_target and res.format_ok
    assert "no object called 'laptop'" in res.diagnostic
    assert rt.calls[2].grammar == 'root ::= "]}</answer>"'  # nothing selected: only the empty answer


@pytest.mark.parametrize(
    ("plan", "fragment"),
    [
        ("teleport(mug)", "unknown operator 'teleport'"),
        ("nearest(mug, 0)", "ordinal must be 1..9"),
        ("left(mug)", "needs 2 arguments"),
        ("at(mug, upstairs)", "place must be one of"),
        ("#42", "no object with id 42"),
        ("moves_left(all)", "needs a video"),
        ("detect(lamp)", "loaded without them"),
        ("nearest(mug", "expected ')'"),
    ],
)
def test_plan_errors_go_inside_results(plan, fragment):
    res, _ = ask([REASON, plan + "</plan>", plan + "</plan>", "]}</answer>"], constrained=False)
    results = res.rollout.split("<results>")[1].split("</results>")[0]
    assert fragment in json.loads(results)["error"], results
    assert res.no_target and not res.ids


def test_failed_plan_may_be_replanned_once():
    res, rt = ask([REASON, "laptop(all)</plan>", "mug</plan>", "1]}</answer>"])
    assert res.ids == [1] and res.rounds == 2 and res.rollout.count("<results>") == 2
    assert rt.calls[2].prefix.endswith("</results>\n<plan>")
    # the same failing plan twice ends the rounds
    res, _ = ask([REASON, "laptop(all)</plan>", "laptop(all)</plan>", "]}</answer>"], max_rounds=3)
    assert res.rounds == 2 and any("repeated a failing plan" in n for n in res.notes)
    # no rounds left: the answer follows the error
    res, _ = ask([REASON, "laptop(all)</plan>", "]}</answer>"], max_rounds=1)
    assert res.rounds == 1 and res.no_target


def test_ambiguous_anchor_is_reported_not_guessed():
    twin = image_twin()
    extra = twin.frames[0].instances[0].model_copy(update={"id": 11, "label": "table"})
    twin.frames[0].instances.append(extra)
    res, _ = ask(["on the table</reason>", "on(all, table)</plan>", "on(all, table)</plan>", "]}</answer>"], twin)
    assert "ambiguous anchor: 2 objects (2 table, 11 table)" in res.rollout
    assert res.no_target and "ambiguous anchor" in res.diagnostic


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        (["mug<plan>x</plan>"], "wrote </plan> where </reason> was expected"),
        ([REASON, '<results>{"fake": 1}</results>'], "wrote <results> itself"),
        (["blah " * 500], "token cap"),
        ([REASON], "stopped without writing </plan>"),
        ([REASON, "mug</plan>", "1"], "stopped without writing </answer>"),
        ([Completion(text="", finish_reason="error", error="boom")], "runtime failed: boom"),
    ],
)
def test_malformed_rollouts_are_graceful(script, fragment):
    res, _ = ask(script, constrained=False)
    assert res.ids == [] and res.no_target
    assert fragment in res.diagnostic, res.diagnostic
    assert not res.format_ok
    json.dumps(res.to_dict())


def test_total_token_budget():
    res, rt = ask([REASON, "x" * 400], max_total_tokens=40, constrained=False)
    assert res.no_target and "token" in res.diagnostic
    assert rt.calls[1].max_tokens < 40


def test_empty_query_raises_and_no_model_call():
    rt = ScriptedRuntime([])
    for q in ("", "   \n\t"):
        with pytest.raises(InputError, match="the query is empty"):
            run_rollout(rt, image_twin(), q)
    assert rt.calls == []


def test_long_query_truncated_with_note():
    res, _rt = ask([REASON, "mug</plan>", "1]}</answer>"], query="cup " * 1000)
    assert any("truncated" in n for n in res.notes) and 1990 <= len(res.query) <= 2000
    assert res.ids == [1]


def test_empty_twin_no_model_call():
    rt = ScriptedRuntime([REASON])
    res = run_rollout(rt, empty_twin(), "the mug")
    assert rt.calls == [] and res.no_target and "no objects" in res.diagnostic and res.model_calls == 0


def test_id_zero():
    twin = image_twin()
    for inst in twin.frames[0].instances:
        if inst.id == 1:
            inst.id = 0
    res, rt = ask([REASON, "mug</plan>", "0]}</answer>"], twin)
    assert res.ids == [0] and '"ids": [0]' in res.rollout and rt.calls[2].grammar.endswith('id ::= ("0")')


def test_grammar_restricts_refs_to_twin():
    _res, rt = ask([REASON, "#1</plan>", "1]}</answer>"])
    assert 'ref ::= ("1" | "2" | "7" | "9")' in rt.calls[1].grammar
    _, rt = ask([REASON, "#1</plan>", "1]}</answer>"], restrict_ids=False)
    assert "[0-9]" in rt.calls[1].grammar.split("ref ::=")[1]
    _, rt = ask([REASON, "mug</plan>", "1]}</answer>"], constrained=False)
    assert all(c.grammar is None for c in rt.calls)


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
    rt = ScriptedRuntime(["a lamp</reason>", "detect(lamp)</plan>", "10]}</answer>"])
    ctx = ToolContext(frames={0: np.zeros((120, 160, 3), np.uint8)}, perception=FakePerception())
    res = Reasoner(rt, ReasonerConfig()).ask(twin, "the lamp", ctx)
    assert twin.to_dict() == before
    assert res.ids == [10] and res.tool_calls[0].result["ids"] == [10]
    assert res.masks()[0].sum() == 200
    assert any("added 10" in n for n in res.notes)


def test_video_rollout():
    res, _ = ask(["the car driving right</reason>", "moves_right(all)</plan>", "3]}</answer>"], video_twin())
    assert res.ids == [3] and res.tool_calls[0].result["why"] == "move right"
    assert set(res.masks()) == {0, 1, 2, 3, 4}


def test_rollout_text_is_format_ok():
    res, _ = ask([REASON, "mug</plan>", "1]}</answer>"])
    assert format_ok(res.rollout)


_pieces = st.sampled_from(
    ["</reason>", "</plan>", "</answer>", "<results>", "mug", "nearest(", "all", ")", "|", ", ", "1", "]}", "#", "x("]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_pieces, max_size=10).map("".join), min_size=1, max_size=5), st.booleans())
def test_executor_never_raises_on_model_output(turns, strict):
    twin = image_twin()
    res = run_rollout(ScriptedRuntime(list(turns)), twin, "q", config=ReasonerConfig(constrained=False, strict=strict))
    assert set(res.ids) <= set(twin.track_ids)
    assert res.no_target == (not res.ids)
    if res.no_target:
        assert res.diagnostic
    json.dumps(res.to_dict())
