"""The rollout executor: generate, run the plans' tools, resume, check the answer (DESIGN §3).

::

    prompt ─► model turn ──</plan>──► validate + run tools on a working copy of the twin
                 ▲                          │
                 └──── <results>{json}</results> appended, at most max_rounds times
              model turn ──</answer>──► parse, drop unknown ids ─► RolloutResult

Nothing the model writes raises: unknown tools, bad args and unknown ids are answered with errors
inside ``<results>``; a rollout without a usable answer (missing or repeated tags, a ``<results>``
written by the model, no answer, the token cap) gives ``ids=[]``, ``no_target=True`` and a
``diagnostic``. Errors of the caller (an empty query) raise :class:`~fastreasonseg.errors.InputError`;
a runtime that raises (a model that cannot load) propagates; a runtime that reports
``finish_reason="error"`` gives a no-target result.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from fastreasonseg.reasoning.config import ReasonerConfig
from fastreasonseg.reasoning.grammar import (
    STOP_STRINGS,
    continuation_gbnf,
    dump_json,
    parse_plan,
    parse_rollout,
    rollout_gbnf,
)
from fastreasonseg.reasoning.prompt import BuiltPrompt, build_prompt, check_query, context_size, scene_prefix
from fastreasonseg.reasoning.runtimes.base import ChatPrompt, Runtime
from fastreasonseg.reasoning.tools import ToolContext, ToolRegistry, default_registry
from fastreasonseg.twin.schema import DigitalTwin

__all__ = ["Reasoner", "RolloutResult", "ToolCallRecord", "run_rollout"]


@dataclass
class ToolCallRecord:
    """One tool call of a rollout: what the model asked and what the executor answered."""

    round: int
    tool: str
    args: Any
    result: dict
    ms: float = 0.0


@dataclass
class RolloutResult:
    """The outcome of one question on one twin."""

    ids: list[int]
    """Ids of the target objects (in the refined twin), ``[]`` when there is no target."""
    no_target: bool
    diagnostic: str = ""
    """Why there is no target, or what went wrong on the way (empty for a clean rollout)."""
    rollout: str = ""
    """The full assistant text: the model's turns and the executor's ``<results>``."""
    rounds: int = 0
    """Tool rounds run (plans executed)."""
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    format_ok: bool = False
    problems: list[str] = field(default_factory=list)
    """Format problems of the rollout (see :func:`~fastreasonseg.reasoning.grammar.parse_rollout`)."""
    notes: list[str] = field(default_factory=list)
    """Non-fatal notes: a truncated query, a view that lists only part of a large twin, twin changes."""
    query: str = ""
    model_calls: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    prefill_ms: float = 0.0
    decode_ms: float = 0.0
    tools_ms: float = 0.0
    total_ms: float = 0.0
    twin: DigitalTwin | None = field(default=None, repr=False, compare=False)
    """The refined twin the ids refer to (the input twin when no tool changed it)."""

    def masks(self, twin: DigitalTwin | None = None) -> dict[int, np.ndarray]:
        """``{frame index: boolean (H, W) mask}`` of the answer on ``twin`` (default: the refined twin)."""
        t = twin if twin is not None else self.twin
        if t is None:
            raise ValueError("masks() needs a twin: this result carries none")
        return t.masks(self.ids)

    def to_dict(self) -> dict:
        """JSON-serialisable summary (without the twin)."""
        d = asdict(self)
        d.pop("twin", None)
        d["timings"] = {k: round(d.pop(k), 3) for k in ("prefill_ms", "decode_ms", "tools_ms", "total_ms")}
        d["tokens"] = {k: d.pop(k) for k in ("prompt_tokens", "cached_tokens", "completion_tokens")}
        return d


def _cut_at_stop(text: str) -> tuple[str, str | None]:
    """Text up to and including the first stop string, and which one (a runtime may overshoot)."""
    best = None
    for s in STOP_STRINGS:
        k = text.find(s)
        if k >= 0 and (best is None or k < best[0]):
            best = (k, s)
    if best is None:
        return text, None
    return text[: best[0] + len(best[1])], best[1]


def _last_plan_body(text: str) -> str:
    start, end = text.rfind("<plan>"), text.rfind("</plan>")
    return text[start + len("<plan>") : end] if 0 <= start < end else ""


class Reasoner:
    """A runtime, a config and a tool set: ask questions about twins.

    >>> reasoner = Reasoner(runtime)                       # doctest: +SKIP
    >>> result = reasoner.ask(twin, "the cup on the left")  # doctest: +SKIP
    >>> result.ids, result.masks()                          # doctest: +SKIP
    """

    def __init__(
        self, runtime: Runtime, config: ReasonerConfig | None = None, registry: ToolRegistry | None = None
    ) -> None:
        self.runtime = runtime
        self.config = config or ReasonerConfig()
        if registry is None:
            registry = default_registry()
            if self.config.tools is not None:
                registry = registry.subset(list(self.config.tools))
        self.registry = registry
        try:
            params = inspect.signature(runtime.complete).parameters
            self._takes_cache_prefix = "cache_prefix" in params or any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
            )
        except (TypeError, ValueError):
            self._takes_cache_prefix = False

    # ------------------------------------------------------------------ helpers
    def _count(self) -> Callable[[str], int] | None:
        fn = getattr(self.runtime, "count_tokens", None)
        if not callable(fn):
            return None

        def count(text: str) -> int:
            try:
                return int(fn(text))
            except Exception:
                return (len(text) + 2) // 3

        return count

    def prompt(self, twin: DigitalTwin, query: str) -> BuiltPrompt:
        """The :class:`~fastreasonseg.reasoning.prompt.BuiltPrompt` this reasoner sends for ``query``."""
        return build_prompt(
            twin,
            query,
            config=self.config,
            registry=self.registry,
            count=self._count(),
            context_tokens=context_size(self.runtime, self.config.context_tokens),
        )

    # ------------------------------------------------------------------ main loop
    def ask(self, twin: DigitalTwin, query: str, context: ToolContext | None = None) -> RolloutResult:
        """Answer ``query`` on ``twin``. ``context`` brings source frames and perception for the tools."""
        t_start = time.perf_counter()
        cfg = self.config
        q, query_notes = check_query(query, cfg.max_query_chars)  # raises InputError before any work
        if twin.num_instances() == 0:
            return RolloutResult(
                ids=[],
                no_target=True,
                diagnostic="the twin has no objects (perception found nothing): no model call was made",
                query=q,
                notes=query_notes,
                twin=twin,
                total_ms=(time.perf_counter() - t_start) * 1000,
            )
        built = self.prompt(twin, q)
        work = twin.model_copy(deep=True)
        # the tools refine a private copy: the caller's twin is never mutated
        ctx = ToolContext(twin=work) if context is None else replace(context, twin=work, log=[])
        res = RolloutResult(ids=[], no_target=True, query=built.query, notes=query_notes + built.notes, twin=work)
        try:
            self._loop(built.prompt, ctx, res, built.max_total_tokens)
        finally:
            res.notes += ctx.log
            res.total_ms = (time.perf_counter() - t_start) * 1000
        return res

    def _grammar(self, first: bool, allow_plan: bool, twin: DigitalTwin) -> str | None:
        cfg = self.config
        if not cfg.constrained:
            return None
        ids = twin.track_ids if cfg.restrict_ids else None
        kw = {
            "ids": ids,
            "allow_plan": allow_plan and bool(self.registry.names),
            "max_calls": cfg.max_calls_per_plan,
            "max_ids": cfg.max_answer_ids,
        }
        if first:
            return rollout_gbnf(self.registry.gbnf_args(), reason_chars=cfg.reason_chars, **kw)
        return continuation_gbnf(self.registry.gbnf_args(), **kw)

    def _loop(self, prompt: ChatPrompt, ctx: ToolContext, res: RolloutResult, total_cap: int) -> None:
        cfg = self.config
        names = self.registry.names
        text = ""
        fatal: str | None = None
        planned_over = False  # the model planned after its rounds were spent
        while True:
            allow_plan = res.rounds < cfg.max_rounds
            budget = total_cap - res.completion_tokens
            if budget <= 0:
                fatal = f"the rollout used its {total_cap}-token budget without answering"
                break
            grammar = self._grammar(not text, allow_plan, ctx.twin)
            extra = {"cache_prefix": scene_prefix(prompt.user)} if self._takes_cache_prefix else {}
            comp = self.runtime.complete(
                prompt,
                text,
                stop=list(STOP_STRINGS),
                max_tokens=min(cfg.max_new_tokens, budget),
                grammar=grammar,
                temperature=cfg.temperature,
                seed=cfg.seed,
                **extra,
            )
            res.model_calls += 1
            res.prompt_tokens += comp.prompt_tokens
            res.cached_tokens += comp.cached_tokens
            res.completion_tokens += comp.completion_tokens
            res.prefill_ms += comp.prefill_ms
            res.decode_ms += comp.decode_ms
            chunk, stopped = _cut_at_stop(comp.text or "")
            if "<results>" in chunk or "</results>" in chunk:
                text += chunk
                fatal = "the model wrote <results> itself (only the executor writes results)"
                break
            text += chunk
            if comp.finish_reason == "error":
                fatal = f"the runtime failed: {comp.error or 'unknown error'}"
                break
            if stopped == "</answer>":
                break
            if stopped != "</plan>":
                if comp.finish_reason == "length" or comp.completion_tokens >= min(cfg.max_new_tokens, budget):
                    fatal = f"generation hit the token cap ({min(cfg.max_new_tokens, budget)} tokens) before </answer>"
                else:
                    fatal = "the model stopped without an answer"
                break
            # a plan: check the structure so far, then run it
            sofar = parse_rollout(text, tools=names, partial=True)
            structural = [p.message for p in sofar.problems if p.kind == "structure"]
            if structural and cfg.strict:
                fatal = "malformed rollout: " + "; ".join(structural[:3])
                break
            if planned_over:
                fatal = f"the model kept planning after the {cfg.max_rounds} allowed tool rounds"
                break
            body = _last_plan_body(text)
            if not allow_plan:
                results: dict[str, Any] = {"error": f"no more tool rounds ({cfg.max_rounds} used): answer now"}
                planned_over = True
            else:
                res.rounds += 1
                results = self._run_plan(body, ctx, res)
            text += "\n<results>" + dump_json(results, compact=True) + "</results>\n"
        res.rollout = text
        self._finish(text, fatal, ctx.twin, res)

    def _run_plan(self, body: str, ctx: ToolContext, res: RolloutResult) -> dict[str, Any]:
        calls, err = parse_plan(body, tools=None)  # unknown tools get their own error below
        if err:
            return {"error": err}
        out: dict[str, Any] = {}
        for k, call in enumerate(calls or []):
            key = call.tool if call.tool not in out else f"{call.tool}_{k + 1}"
            if k >= self.config.max_calls_per_plan:
                out[key] = {"error": f"at most {self.config.max_calls_per_plan} calls per plan"}
                continue
            t0 = time.perf_counter()
            result = self.registry.call(call.tool, call.args, ctx)
            ms = (time.perf_counter() - t0) * 1000
            res.tools_ms += ms
            res.tool_calls.append(ToolCallRecord(res.rounds, call.tool, call.args, result, round(ms, 3)))
            out[key] = result
        return out

    def _finish(self, text: str, fatal: str | None, twin: DigitalTwin, res: RolloutResult) -> None:
        parsed = parse_rollout(text, tools=self.registry.names)
        res.format_ok = parsed.ok and fatal is None
        res.problems = parsed.messages()
        diag: list[str] = []
        if fatal:
            diag.append(fatal)
        blocking = [p.message for p in parsed.problems if p.kind == "answer"]
        if self.config.strict:
            blocking += [p.message for p in parsed.problems if p.kind == "structure"]
        if fatal is None and blocking:
            diag.append("no valid answer: " + "; ".join(dict.fromkeys(blocking[:4])))
        if fatal is None and not blocking and parsed.answer_ids is not None:
            known = set(twin.track_ids)
            ids = [i for i in parsed.answer_ids if i in known]
            dropped = [i for i in parsed.answer_ids if i not in known]
            if dropped:
                diag.append(f"dropped answer ids not in the twin: {dropped}")
            res.ids = ids
            if not parsed.answer_ids:
                diag.append("the model answered that no object matches")
            elif not ids:
                diag.append("no answer id is in the twin")
        soft = [p.message for p in parsed.problems if p.kind in ("plan", "reason")]
        if soft:
            diag.append("format: " + "; ".join(soft[:3]))
        res.no_target = not res.ids
        res.diagnostic = "; ".join(diag)


def run_rollout(
    runtime: Runtime,
    twin: DigitalTwin,
    query: str,
    *,
    config: ReasonerConfig | None = None,
    context: ToolContext | None = None,
    registry: ToolRegistry | None = None,
) -> RolloutResult:
    """One question on one twin (see :class:`Reasoner`)."""
    return Reasoner(runtime, config, registry).ask(twin, query, context)
