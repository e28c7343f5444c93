"""Rewards of the paper, as TRL reward functions (``f(prompts, completions, **columns) -> list[float]``).

* :class:`FormatReward` — the rollout grammar's format score (:func:`fastreasonseg.reasoning.grammar.format_score`,
  partial credit, 1.0 exactly for a well-formed rollout) or its binary ``format_ok``.
* :class:`AccuracyReward` — IoU of the answer's mask against the ground truth: the union of the answer ids' masks in
  the twin vs the target's masks, per frame for videos (mean over frames; a frame where both are empty scores 1),
  so a correct "no target" answer (``{"ids": []}`` for an empty target) scores 1. No valid answer scores 0.
* :class:`ReasoningReward` — a judge comparing the student's chain with the teacher's (column ``reference``):
  :class:`EmbeddingJudge` (offline default: cosine similarity of all-MiniLM-L6-v2 sentence embeddings),
  or any runtime as judge, :class:`RuntimeJudge` (the same runtimes and specs as ``--reasoner``;
  :class:`OpenAIJudge` and :class:`TransformersJudge` are its OpenAI-endpoint and local-model forms). A judge failure
  (timeout, bad reply) gives 0 for that sample and is counted.

Every reward is wrapped so that an exception on one sample gives that sample 0, is counted in
:attr:`BaseReward.failures` and logged (the first few times) — a training run never crashes on a reward.

Dataset columns the rewards read (see :mod:`fastreasonseg.training.data`): ``twin`` (twin JSON text),
``target_ids`` (list of ints), ``sample_id`` (cache key), ``reference`` (teacher chain text).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastreasonseg.reasoning.grammar import format_ok, format_score, parse_rollout
from fastreasonseg.twin.schema import DigitalTwin

log = logging.getLogger(__name__)

__all__ = [
    "AccuracyReward",
    "BaseReward",
    "EmbeddingJudge",
    "FormatReward",
    "Judge",
    "JudgeError",
    "OpenAIJudge",
    "ReasoningReward",
    "RuntimeJudge",
    "TransformersJudge",
    "answer_iou",
    "build_rewards",
    "chain_text",
    "completion_text",
    "make_judge",
    "twin_from_column",
]


class JudgeError(RuntimeError):
    """A judge could not score a pair (endpoint down, timeout, unparsable reply)."""


# ---------------------------------------------------------------------------------------------- helpers
def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string (standard format) or a list of messages (conversational)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    return str(completion)


_RESULTS_RE = re.compile(r"<results>.*?</results>", re.S)


def chain_text(rollout: str) -> str:
    """The model's own reasoning in a rollout: ``<reason>`` and ``<plan>`` bodies (the executor's results and the
    answer are left out; the answer is judged by the accuracy reward)."""
    parsed = parse_rollout(rollout, tools=None)
    parts = [s.body.strip() for s in parsed.segments if s.tag in ("reason", "plan") and s.body.strip()]
    if parts:
        return "\n".join(parts)
    return _RESULTS_RE.sub("", rollout).strip()


_TWIN_CACHE: OrderedDict[str, DigitalTwin] = OrderedDict()
_TWIN_CACHE_SIZE = 256


def twin_from_column(value: Any, key: str | None = None) -> DigitalTwin:
    """A twin from a dataset column: JSON text, a dict, a path, or a twin (cached by ``key`` or the text's hash)."""
    if isinstance(value, DigitalTwin):
        return value
    if key is None:
        key = str(hash(value if isinstance(value, str) else json.dumps(value, sort_keys=True)))
    twin = _TWIN_CACHE.get(key)
    if twin is not None:
        _TWIN_CACHE.move_to_end(key)
        return twin
    if isinstance(value, dict):
        twin = DigitalTwin.from_dict(value)
    elif isinstance(value, str) and value.lstrip().startswith("{"):
        twin = DigitalTwin.from_dict(json.loads(value))
    elif isinstance(value, (str, os.PathLike)):
        twin = DigitalTwin.load(value)
    else:
        raise TypeError(f"cannot read a twin from a {type(value).__name__}")
    _TWIN_CACHE[key] = twin
    while len(_TWIN_CACHE) > _TWIN_CACHE_SIZE:
        _TWIN_CACHE.popitem(last=False)
    return twin


def answer_iou(twin: DigitalTwin, answer_ids: Sequence[int] | None, target_ids: Sequence[int]) -> float:
    """Mean over the twin's frames of IoU(mask of ``answer_ids``, mask of ``target_ids``); an empty union scores 1.
    ``None`` (no valid answer) scores 0. Ids not in the twin contribute nothing."""
    if answer_ids is None:
        return 0.0
    pred, gt = set(int(i) for i in answer_ids), set(int(i) for i in target_ids)
    if pred == gt:
        return 1.0
    scores = []
    for fr in twin.frames:
        p = twin.mask(fr.index, pred)
        g = twin.mask(fr.index, gt)
        union = int(np.logical_or(p, g).sum())
        scores.append(1.0 if union == 0 else int(np.logical_and(p, g).sum()) / union)
    return float(np.mean(scores)) if scores else 0.0


def _column(kwargs: dict[str, Any], name: str, n: int) -> list[Any]:
    v = kwargs.get(name)
    if v is None:
        return [None] * n
    return list(v)


def _cell(columns: dict[str, list[Any]], name: str, index: int) -> Any:
    col = columns.get(name)
    return col[index] if col is not None and index < len(col) else None


# ---------------------------------------------------------------------------------------------- base
class BaseReward:
    """A TRL reward function that never raises: a sample whose scoring fails gets 0 and is counted."""

    name = "reward"
    max_logged_failures = 5

    def __init__(self) -> None:
        self.failures = 0
        self.calls = 0
        self.__name__ = self.name  # TRL logs rewards by __name__

    def score(self, completion: str, index: int, columns: dict[str, list[Any]]) -> float:
        raise NotImplementedError

    def _fail(self, exc: BaseException, index: int) -> float:
        self.failures += 1
        if self.failures <= self.max_logged_failures:
            what = f"{type(exc).__name__}: {exc}"
            log.warning("%s reward failed on sample %d (%s); it scores 0", self.name, index, what)
        elif self.failures == self.max_logged_failures + 1:
            log.warning("%s reward: more failures, no longer logged (see the failures counter)", self.name)
        return 0.0

    def __call__(self, prompts: list[Any] | None = None, completions: list[Any] | None = None, **kwargs: Any):
        completions = list(completions or [])
        n = len(completions)
        skip = ("trainer_state", "completion_ids", "log_extra", "log_metric")
        columns = {k: _column(kwargs, k, n) for k in kwargs if k not in skip}
        out = []
        for i, c in enumerate(completions):
            self.calls += 1
            try:
                r = float(self.score(completion_text(c), i, columns))
                if not math.isfinite(r):
                    raise ValueError(f"non-finite reward {r}")
            except Exception as exc:
                r = self._fail(exc, i)
            out.append(r)
        return out


class FormatReward(BaseReward):
    """The rollout grammar's format reward: ``format_score`` (partial credit) or ``format_ok`` (binary)."""

    name = "format"

    def __init__(self, mode: str = "score", tools: Sequence[str] | None = None) -> None:
        super().__init__()
        if mode not in ("score", "binary"):
            raise ValueError(f"format reward mode must be 'score' or 'binary', got {mode!r}")
        self.mode = mode
        self.tools = tuple(tools) if tools is not None else None

    def score(self, completion: str, index: int, columns: dict[str, list[Any]]) -> float:
        kw = {} if self.tools is None else {"tools": self.tools}
        if self.mode == "binary":
            return 1.0 if format_ok(completion, **kw) else 0.0
        return format_score(completion, **kw)


class AccuracyReward(BaseReward):
    """IoU of the answer's mask against the target's (columns ``twin``, ``target_ids``, optional ``sample_id``)."""

    name = "accuracy"

    def score(self, completion: str, index: int, columns: dict[str, list[Any]]) -> float:
        twin_value = _cell(columns, "twin", index)
        if twin_value is None:
            raise KeyError("the dataset has no 'twin' column")
        target = _cell(columns, "target_ids", index)
        if target is None:
            raise KeyError("the dataset has no 'target_ids' column")
        key = _cell(columns, "sample_id", index)
        twin = twin_from_column(twin_value, None if key is None else str(key))
        ids = parse_rollout(completion, tools=None).answer_ids
        return answer_iou(twin, ids, target)


# ---------------------------------------------------------------------------------------------- judges
class Judge:
    """Scores how well a student's chain matches the teacher's, in [0, 1]."""

    name = "judge"

    def score_pairs(self, student: list[str], teacher: list[str]) -> list[float]:
        raise NotImplementedError


class EmbeddingJudge(Judge):
    """Offline judge: cosine similarity of mean-pooled sentence embeddings (all-MiniLM-L6-v2 by default), clipped to
    [0, 1]. It rewards chains that say what the teacher's says; it cannot check the logic itself."""

    name = "embedding"

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, max_length: int = 256) -> None:
        from fastreasonseg.reasoning.embeddings import SentenceEmbedder

        self.encoder = SentenceEmbedder(model_dir, max_length)
        self.model_dir = self.encoder.model_dir
        self.max_length = max_length

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.embed(texts)

    def score_pairs(self, student: list[str], teacher: list[str]) -> list[float]:
        if not student:
            return []
        emb = self.embed(list(student) + list(teacher))
        a, b = emb[: len(student)], emb[len(student) :]
        return [float(max(0.0, min(1.0, x))) for x in (a * b).sum(1)]


JUDGE_PROMPT = """You grade the reasoning of a student model against a teacher's reference reasoning for the same \
question about a scene. Judge logic, completeness and correctness of the student's reasoning compared with the \
reference. Reply with a single integer from 0 (unrelated or wrong) to 10 (as good as the reference), nothing else.

Reference reasoning:
{teacher}

Student reasoning:
{student}

Score (0-10):"""


def parse_judge_score(text: str) -> float:
    m = re.search(r"-?\d+(?:\.\d+)?", text or "")
    if not m:
        raise JudgeError(f"the judge's reply has no score: {text[:60]!r}")
    v = float(m.group(0))
    return max(0.0, min(1.0, v / 10.0))


class RuntimeJudge(Judge):
    """Any :class:`~fastreasonseg.reasoning.runtimes.base.Runtime` as judge: the judge prompt as the user turn,
    greedy, a few tokens, the score parsed from the reply. A runtime failure (unreachable endpoint, timeout, error
    status) or a reply without a score raises :class:`JudgeError`, which :class:`ReasoningReward` turns into 0 for
    that sample and counts."""

    name = "runtime"

    def __init__(self, runtime: Any, prompt: str = JUDGE_PROMPT, max_tokens: int = 8) -> None:
        self.runtime = runtime
        self.prompt = prompt
        self.max_tokens = max_tokens

    def score_one(self, student: str, teacher: str) -> float:
        from fastreasonseg.reasoning.runtimes.base import ChatPrompt, RuntimeUnavailableError

        who = getattr(self.runtime, "name", type(self.runtime).__name__)
        user = self.prompt.format(student=student, teacher=teacher)
        try:
            comp = self.runtime.complete(ChatPrompt(system="", user=user), "", stop=[], max_tokens=self.max_tokens)
        except RuntimeUnavailableError as exc:
            raise JudgeError(f"the judge {who} failed: {exc}") from exc
        if comp.finish_reason == "error":
            raise JudgeError(f"the judge {who} failed: {comp.error or 'unknown error'}")
        return parse_judge_score(comp.text)

    def score_pairs(self, student: list[str], teacher: list[str]) -> list[float]:
        return [self.score_one(s, t) for s, t in zip(student, teacher, strict=True)]


class OpenAIJudge(RuntimeJudge):
    """An OpenAI-compatible chat endpoint as judge (vLLM, llama.cpp server, a hosted API): a
    :class:`RuntimeJudge` over :class:`~fastreasonseg.reasoning.runtimes.openai.OpenAIRuntime` in ``chat`` mode, one
    request of ``timeout`` seconds per pair (``transport``: an ``httpx`` transport, for tests)."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        prompt: str = JUDGE_PROMPT,
        transport: Any = None,
    ) -> None:
        from fastreasonseg.reasoning.runtimes.openai import OpenAIRuntime

        rt = OpenAIRuntime(base_url, model, api_key=api_key, timeout=timeout, mode="chat", transport=transport)
        super().__init__(rt, prompt, max_tokens=8)


class TransformersJudge(RuntimeJudge):
    """A local causal LM (hub id or directory) as judge: a :class:`RuntimeJudge` over
    :class:`~fastreasonseg.reasoning.runtimes.transformers.TransformersRuntime`."""

    name = "transformers"

    def __init__(self, model: str, prompt: str = JUDGE_PROMPT, max_new_tokens: int = 4) -> None:
        from fastreasonseg.reasoning.runtimes.transformers import TransformersRuntime

        super().__init__(TransformersRuntime(model), prompt, max_tokens=max_new_tokens)


def make_judge(
    kind: str,
    model: str | None = None,
    url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    timeout: float = 30.0,
) -> Judge | None:
    """A judge by kind: ``embedding`` (default, offline), ``openai`` (``url`` + ``model``), ``transformers``
    (``model``), ``none``, or any reasoner spec (``openai:URL?model=M``, ``transformers:DIR``, ``student``...), whose
    runtime then judges (:class:`RuntimeJudge`)."""
    from fastreasonseg.errors import InputError

    if kind in ("none", "", None):
        return None
    if kind == "embedding":
        return EmbeddingJudge(model)
    if kind == "openai":
        if not url or not model:
            raise InputError("the openai judge needs rewards.judge_url and rewards.judge_model")
        return OpenAIJudge(url, model, api_key=os.environ.get(api_key_env), timeout=timeout)
    if kind == "transformers":
        if not model:
            raise InputError("the transformers judge needs rewards.judge_model (a local model directory)")
        return TransformersJudge(model)
    from fastreasonseg.reasoning.runtimes import default_registry

    registry = default_registry()
    if kind.partition("?")[0].partition(":")[0].strip().lower() in (*registry.kinds, *registry.aliases):
        return RuntimeJudge(registry.load(kind))
    raise InputError(f"unknown judge {kind!r} (embedding, openai, transformers, none, or a reasoner spec)")


class ReasoningReward(BaseReward):
    """The judge's score of the student's chain against the teacher's (column ``reference``: the teacher's rollout).

    Samples without a reference, or without any reasoning in the completion, score 0. A judge that fails on a
    sample gives 0 for it (counted in :attr:`failures`); if it fails on the whole batch, each pair is retried alone
    so that one bad pair does not zero the others.
    """

    name = "reasoning"

    def __init__(self, judge: Judge) -> None:
        super().__init__()
        self.judge = judge

    def __call__(self, prompts: list[Any] | None = None, completions: list[Any] | None = None, **kwargs: Any):
        completions = [completion_text(c) for c in (completions or [])]
        n = len(completions)
        refs = _column(kwargs, "reference", n)
        out = [0.0] * n
        todo: list[int] = []
        students, teachers = [], []
        for i, (c, ref) in enumerate(zip(completions, refs, strict=True)):
            self.calls += 1
            try:
                if not ref:
                    continue
                s = chain_text(c)
                if not s:
                    continue
                todo.append(i)
                students.append(s)
                teachers.append(chain_text(str(ref)))
            except Exception as exc:
                self._fail(exc, i)
        if not todo:
            return out
        try:
            scores = self.judge.score_pairs(students, teachers)
            for i, s in zip(todo, scores, strict=True):
                out[i] = float(s) if math.isfinite(s) else self._fail(ValueError("non-finite judge score"), i)
        except Exception:
            for i, s, t in zip(todo, students, teachers, strict=True):
                try:
                    out[i] = float(self.judge.score_pairs([s], [t])[0])
                except Exception as exc:
                    out[i] = self._fail(exc, i)
        return out


def build_rewards(
    settings: Any, *, reasoning: bool, judge: Judge | None = None
) -> tuple[list[BaseReward], list[float]]:
    """Reward functions and weights from :class:`~fastreasonseg.training.config.RewardSettings`: format + accuracy
    (teacher), plus the reasoning judge (student RL) when ``reasoning`` and the judge is not ``none``."""
    funcs: list[BaseReward] = [FormatReward(settings.format_mode), AccuracyReward()]
    weights = [float(settings.format_weight), float(settings.accuracy_weight)]
    if reasoning:
        if judge is None:
            judge = make_judge(
                settings.judge,
                settings.judge_model,
                settings.judge_url,
                settings.judge_api_key_env,
                settings.judge_timeout,
            )
        if judge is not None:
            funcs.append(ReasoningReward(judge))
            weights.append(float(settings.reasoning_weight))
    return funcs, weights


def failure_counts(funcs: Sequence[BaseReward]) -> dict[str, int]:
    return {f.name: f.failures for f in funcs}
