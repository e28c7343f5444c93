"""Rewards on hand-built rollouts and twins."""

from __future__ import annotations

import json
import logging

import httpx
import numpy as np
import pytest

from fastreasonseg.errors import InputError
from fastreasonseg.reasoning.grammar import render_rollout
from fastreasonseg.reasoning.runtimes.base import ChatPrompt, Completion
from fastreasonseg.reasoning.runtimes.openai import OpenAIRuntime
from fastreasonseg.training.config import RewardSettings
from fastreasonseg.training.rewards import (
    AccuracyReward,
    EmbeddingJudge,
    FormatReward,
    JudgeError,
    OpenAIJudge,
    ReasoningReward,
    RuntimeJudge,
    answer_iou,
    build_rewards,
    chain_text,
    make_judge,
)

from .conftest import make_twin, make_video_twin, planned

TWIN = make_twin([(1, "mug", (0, 0, 10, 10)), (2, "table", (5, 0, 15, 10)), (3, "lamp", (40, 20, 50, 30))])
GOOD = planned("A mug holds drinks.", [1])


def cols(twin=TWIN, target=(1,), n=1, **extra):
    d = {"twin": [twin.model_dump_json()] * n, "target_ids": [list(target)] * n, "sample_id": ["t"] * n}
    d.update({k: [v] * n for k, v in extra.items()})
    return d


def test_format_reward_scores_and_binary():
    f = FormatReward()
    bad_answer = "<reason>x</reason><answer>{ids: 1}</answer>"
    out = f(prompts=None, completions=[GOOD, "nonsense", bad_answer, '<reason></reason><answer>{"ids": []}</answer>'])
    assert out[0] == 1.0
    assert out[1] < out[2] < 1.0
    assert out[3] == pytest.approx(0.7)  # an empty reason (0.1) and no plan (0.2) cost their weights
    assert FormatReward("binary")(completions=[GOOD, bad_answer]) == [1.0, 0.0]


def test_format_reward_accepts_conversational_completions():
    assert FormatReward()(completions=[[{"role": "assistant", "content": GOOD}]]) == [1.0]


def test_accuracy_reward_iou():
    acc = AccuracyReward()
    # exact, partial overlap (mug 100 px vs mug∪table 150 px), wrong, no answer
    rollouts = [GOOD, planned("r", [1, 2]), planned("r", [3]), "<reason>r</reason>"]
    out = acc(completions=rollouts, **cols(n=4))
    assert out[0] == 1.0
    assert out[1] == pytest.approx(100 / 150)
    assert out[2] == 0.0
    assert out[3] == 0.0
    assert acc.failures == 0


def test_accuracy_empty_vs_empty_scores_one():
    acc = AccuracyReward()
    assert acc(completions=[planned("nothing", [])], **cols(target=())) == [1.0]
    assert acc(completions=[planned("nothing", [])], **cols(target=(1,))) == [0.0]
    assert acc(completions=[GOOD], **cols(target=())) == [0.0]


def test_accuracy_video_is_per_frame_mean():
    v = make_video_twin()
    # cat (id 2) is absent in frame 2: answering dog+cat for target dog scores IoU<1 on frames 0,1 and 1 on frame 2
    pred = v.masks([1, 2])
    gt = v.masks([1])
    expect = np.mean([(pred[f] & gt[f]).sum() / (pred[f] | gt[f]).sum() for f in (0, 1, 2)])
    assert answer_iou(v, [1, 2], [1]) == pytest.approx(expect)
    assert answer_iou(v, [2], [2]) == 1.0
    # frame 2 has no cat and no prediction: an empty union scores 1 (DAVIS J convention)
    assert answer_iou(v, [99], [2]) == pytest.approx(1 / 3)


def test_reward_that_raises_scores_zero_and_is_counted(caplog, monkeypatch):
    # another test's logging set-up (a dictConfig) may have disabled existing loggers: this test checks our message
    monkeypatch.setattr(logging.getLogger("fastreasonseg.training.rewards"), "disabled", False)
    caplog.set_level(logging.WARNING, logger="fastreasonseg.training.rewards")
    acc = AccuracyReward()
    out = acc(completions=[GOOD, GOOD], twin=["{not json", TWIN.model_dump_json()], target_ids=[[1], [1]])
    assert out == [0.0, 1.0]
    assert acc.failures == 1
    assert "accuracy reward failed" in caplog.text
    # a missing column is also a per-sample failure, not a crash
    assert AccuracyReward()(completions=[GOOD]) == [0.0]


def test_chain_text_drops_results_and_answer():
    r = render_rollout("Look at the mug.", [1], rounds=[("#1", {"ids": [1]}), ("mug", {"ids": [1]})])
    t = chain_text(r)
    assert "Look at the mug." in t and "#1" in t and '"x"' not in t and "ids" not in t


class FakeJudge:
    def score_pairs(self, student, teacher):
        return [1.0 if s == t else 0.25 for s, t in zip(student, teacher, strict=True)]


def test_reasoning_reward_with_reference_and_missing():
    rr = ReasoningReward(FakeJudge())
    out = rr(completions=[GOOD, planned("other", [1]), GOOD], reference=[GOOD, GOOD, ""])
    assert out == [1.0, 0.25, 0.0]


def test_embedding_judge_orders_similarity():
    j = EmbeddingJudge()
    s = j.score_pairs(
        ["A mug is used to drink hot coffee.", "The giraffe runs across the savanna."],
        ["You drink coffee from a mug.", "You drink coffee from a mug."],
    )
    assert 0.0 <= s[1] < s[0] <= 1.0
    assert s[0] > 0.5


def test_openai_judge_parses_score_and_timeout_is_counted():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.read().decode()
        seen.append((request.url.path, body))
        if "slow" in body:
            raise httpx.ReadTimeout("timed out", request=request)
        if "garbage" in body:
            return httpx.Response(200, json={"choices": [{"message": {"content": "no idea"}}]})
        return httpx.Response(200, json={"choices": [{"message": {"content": "8"}}]})

    judge = OpenAIJudge("http://judge.invalid/v1", "m", timeout=0.1, transport=httpx.MockTransport(handler))
    assert isinstance(judge.runtime, OpenAIRuntime) and judge.runtime.mode == "chat"
    assert judge.score_one("a", "b") == pytest.approx(0.8)
    path, body = seen[-1]
    sent = json.loads(body)
    assert path == "/v1/chat/completions" and sent["model"] == "m" and sent["max_tokens"] == 8
    assert [m["role"] for m in sent["messages"]] == ["user"]
    assert "Student reasoning:\na" in sent["messages"][0]["content"]
    with pytest.raises(JudgeError, match=r"the judge openai:m@http://judge.invalid/v1 failed: no answer"):
        judge.score_one("slow", "b")
    rr = ReasoningReward(judge)
    out = rr(
        completions=[GOOD, planned("slow", [1]), planned("garbage", [1])],
        reference=[GOOD, GOOD, GOOD],
    )
    assert out == [pytest.approx(0.8), 0.0, 0.0]
    assert rr.failures == 2


class ScriptedRuntime:
    name = "scripted"

    def __init__(self, replies):
        self.replies = list(replies)
        self.prompts = []

    def complete(self, prompt, assistant_prefix, *, stop, max_tokens, grammar=None, temperature=0.0, seed=None):
        self.prompts.append((prompt, assistant_prefix, max_tokens, temperature))
        reply = self.replies.pop(0)
        if reply is None:
            return Completion(text="", finish_reason="error", error="the model crashed")
        return Completion(text=reply, finish_reason="stop")

    def count_tokens(self, text):
        return len(text.split())


def test_any_runtime_judges_and_its_failures_are_judge_errors():
    rt = ScriptedRuntime([" 7 out of 10", None, "10"])
    judge = RuntimeJudge(rt, prompt="S={student} T={teacher}", max_tokens=5)
    assert judge.score_pairs(["x"], ["y"]) == [pytest.approx(0.7)]
    assert rt.prompts[0] == (ChatPrompt(system="", user="S=x T=y"), "", 5, 0.0)
    with pytest.raises(JudgeError, match="the judge scripted failed: the model crashed"):
        judge.score_one("x", "y")
    assert judge.score_one("x", "y") == 1.0


def test_make_judge_takes_a_reasoner_spec():
    judge = make_judge("openai:http://127.0.0.1:9/v1?model=judge&timeout=2")
    assert isinstance(judge, RuntimeJudge) and judge.runtime.model == "judge" and judge.runtime.timeout == 2.0
    assert make_judge("none") is None
    with pytest.raises(InputError, match="unknown judge 'gpt5'"):
        make_judge("gpt5")
    with pytest.raises(InputError, match=r"needs rewards\.judge_url"):
        make_judge("openai")


def test_build_rewards_weights():
    funcs, w = build_rewards(RewardSettings(), reasoning=False)
    assert [f.__name__ for f in funcs] == ["format", "accuracy"] and w == [1.0, 1.0]
    funcs, w = build_rewards(RewardSettings(), reasoning=True, judge=FakeJudge())
    assert [f.__name__ for f in funcs] == ["format", "accuracy", "reasoning"] and w == [1.0, 1.0, 0.5]
    funcs, w = build_rewards(RewardSettings(judge="none"), reasoning=True)
    assert len(funcs) == 2
