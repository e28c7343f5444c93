"""The rollout grammar (docs/design.md, "The rollout"): parsing, validation, the format reward and GBNF grammars.

A rollout is::

    <reason>…free text: what the words of the question mean…</reason>
    <plan>nearest(shirt|sock)</plan>                 (a query in the plan language: reasoning/program.py)
    <results>{"ids": [13], "objects": "13 sock", "why": "nearest of 2"}</results>     (written by the executor)
    <answer>{"ids": [13]}</answer>                   ({"ids": []} = no such object)

The plan is required: ids come from the executor's results, never from the model's memory of the view.
:func:`parse_rollout` never raises: it returns the segments in order, the answer ids (or ``None``) and every
problem found, each tagged with a *kind*:

``structure``
    tags unbalanced, nested, out of order (the order is reason → (plan → results)+ → answer), stray text
    between tags, a ``<results>`` the model wrote itself, text after the answer.
``reason``
    the ``<reason>`` is empty.
``plan``
    no plan, or a plan that does not parse in the plan language (unknown operator, wrong arguments...).
``answer``
    no answer, more than one, or an answer that is not ``{"ids": [non-negative integers]}``.

:func:`format_ok` (no problem at all) and :func:`format_score` (partial credit per kind, 1.0 exactly
when :func:`format_ok`) are the format reward that training reuses.

The executor writes every fixed piece itself (``<reason>``, ``\n<plan>``, ``<results>…`` and
``\n<answer>{"ids": [``) and lets the model write only the free parts, each as one model turn with its own GBNF
grammar (llama.cpp's ``LlamaGrammar.from_string``): :func:`reason_gbnf` (text up to ``</reason>``),
:func:`plan_gbnf` (one expression of the registry's operators, up to ``</plan>``) and :func:`answer_gbnf` (ids
from the results, then ``]}</answer>``). The model never spends a decoding step on a token it cannot choose.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from fastreasonseg.reasoning.program import Expr
    from fastreasonseg.reasoning.tools.registry import ToolRegistry

TAGS = ("reason", "plan", "results", "answer")
STOP_STRINGS = ("</reason>", "</plan>", "</answer>")
"""Where a model turn ends: after the reason, after the plan (to run it) and after the answer."""
PLAN_OPEN = "\n<plan>"
ANSWER_OPEN = '\n<answer>{"ids": ['
"""What the executor writes after the results: the model writes only the ids and ``]}</answer>``."""

ProblemKind = Literal["structure", "reason", "plan", "answer"]
KIND_WEIGHTS: dict[str, float] = {"structure": 0.4, "answer": 0.3, "plan": 0.2, "reason": 0.1}
"""Partial credit of :func:`format_score`: the weight of every kind that has no problem is earned."""

_TAG_RE = re.compile(r"<(/?)(reason|plan|results|answer)>")


@dataclass(frozen=True)
class Problem:
    """One format problem: its kind (see the module docstring) and a short message."""

    kind: ProblemKind
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Segment:
    """One tagged segment: ``body`` is the text between ``<tag>`` and ``</tag>``; ``closed`` is False for a
    segment cut off by the end of the text. ``start``/``end`` are offsets of the whole segment in the text."""

    tag: str
    body: str
    start: int
    end: int
    closed: bool = True


@dataclass
class ParsedRollout:
    """What :func:`parse_rollout` found."""

    segments: list[Segment] = field(default_factory=list)
    answer_ids: list[int] | None = None
    """The ids of the (last) valid answer, duplicates removed, in order; ``None`` without a valid answer."""
    plans: list[Expr | None] = field(default_factory=list)
    """One entry per ``<plan>``: its expression, or ``None`` when the plan does not parse."""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}

    def messages(self) -> list[str]:
        return [p.message for p in self.problems]

    @property
    def reason(self) -> str | None:
        """The text of the first ``<reason>``."""
        for s in self.segments:
            if s.tag == "reason":
                return s.body
        return None


# ---------------------------------------------------------------------------------------------- parsing
def _short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def parse_answer(body: str) -> tuple[list[int] | None, str | None]:
    """Parse an answer body ``{"ids": [...]}``: (ids without duplicates, None) or (None, what is wrong)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return None, f'the answer is not valid JSON ({type(exc).__name__}): expected {{"ids": [...]}}'
    if not isinstance(data, dict) or set(data) != {"ids"}:
        return None, 'the answer must be a JSON object with exactly one key, "ids"'
    ids = data["ids"]
    if not isinstance(ids, list):
        return None, 'the answer\'s "ids" must be a list'
    out: list[int] = []
    for v in ids:
        if isinstance(v, bool) or not isinstance(v, int):
            return None, f"answer ids must be integers, got {json.dumps(v)[:20]}"
        if v < 0:
            return None, f"answer ids must be non-negative, got {v}"
        if v not in out:
            out.append(v)
    return out, None


def parse_plan(body: str, tools: ToolRegistry | None = None) -> tuple[Expr | None, str | None]:
    """Parse a plan body in the plan language: (expression, None) or (None, what is wrong).

    ``tools``: the operators (default: every operator of :mod:`fastreasonseg.reasoning.tools`)."""
    from fastreasonseg.reasoning.program import parse_program

    return parse_program(body, tools)


def split_segments(text: str) -> tuple[list[Segment], list[Problem]]:
    """Split ``text`` into tagged segments; report nesting, unbalanced tags and stray text (kind ``structure``)."""
    segments: list[Segment] = []
    problems: list[Problem] = []
    open_tag: str | None = None
    open_at = body_at = 0
    pos = 0
    for m in _TAG_RE.finditer(text):
        closing, tag = m.group(1) == "/", m.group(2)
        if open_tag is None:
            stray = text[pos : m.start()]
            if stray.strip():
                problems.append(Problem("structure", f"text outside tags: {_short(stray)!r}"))
            if closing:
                problems.append(Problem("structure", f"</{tag}> without <{tag}>"))
                pos = m.end()
            else:
                open_tag, open_at, body_at = tag, m.start(), m.end()
        elif closing and tag == open_tag:
            segments.append(Segment(tag, text[body_at : m.start()], open_at, m.end()))
            open_tag = None
            pos = m.end()
        else:
            problems.append(Problem("structure", f"<{m.group(1)}{tag}> inside <{open_tag}>"))
    if open_tag is not None:
        problems.append(Problem("structure", f"<{open_tag}> is never closed"))
        segments.append(Segment(open_tag, text[body_at:], open_at, len(text), closed=False))
    else:
        stray = text[pos:]
        if stray.strip():
            problems.append(Problem("structure", f"text outside tags: {_short(stray)!r}"))
    return segments, problems


def parse_rollout(
    text: str,
    *,
    tools: ToolRegistry | None = None,
    partial: bool = False,
    allow_results: bool = True,
) -> ParsedRollout:
    """Parse and validate a rollout. Never raises.

    ``tools``: the operators plans may use (default: all of them). ``partial=True`` checks a rollout in
    progress (no plan or answer required yet: the executor uses it between turns). ``allow_results=False``
    flags every ``<results>`` (use it on text the model generated: only the executor writes results).
    """
    if not isinstance(text, str):
        return ParsedRollout(problems=[Problem("structure", f"the rollout is not text ({type(text).__name__})")])
    segments, problems = split_segments(text)
    out = ParsedRollout(segments=segments, problems=problems)
    tags = [s.tag for s in segments]

    problems += _order_problems(text, segments, partial=partial, allow_results=allow_results)
    answers = _read_contents(out, tools)
    if answers > 1:
        problems.append(Problem("answer", f"{answers} answers (exactly one is allowed)"))
    if answers == 0 and not partial:
        problems.append(Problem("answer", "no <answer>"))
    if not partial and "plan" not in tags:
        problems.append(Problem("plan", "no <plan>: the answer's ids must come from the executor's results"))
    return out


def _order_problems(text: str, segments: list[Segment], *, partial: bool, allow_results: bool) -> list[Problem]:
    """The order reason -> (plan -> results)+ -> answer (kind ``structure``)."""
    problems: list[Problem] = []
    if not segments:
        if not partial or text.strip():
            problems.append(Problem("structure", "no <reason> segment"))
    elif segments[0].tag != "reason":
        problems.append(Problem("structure", f"the rollout must start with <reason>, not <{segments[0].tag}>"))
    expect_results = False
    for k, s in enumerate(segments):
        if s.tag == "results" and not allow_results:
            problems.append(Problem("structure", "the model wrote <results> itself (only the executor writes results)"))
        if expect_results:
            expect_results = False
            if s.tag == "results":
                continue
            problems.append(Problem("structure", f"<plan> must be followed by <results>, not <{s.tag}>"))
        if s.tag == "reason" and k > 0:
            problems.append(Problem("structure", "more than one <reason>"))
        elif s.tag == "plan":
            expect_results = True
        elif s.tag == "results" and allow_results:
            problems.append(Problem("structure", "<results> without a <plan> before it"))
        elif s.tag == "answer" and k != len(segments) - 1:
            problems.append(Problem("structure", "the answer is not at the end"))
    if expect_results and not partial:
        problems.append(Problem("structure", "the last <plan> has no <results>"))
    return problems


def _read_contents(out: ParsedRollout, tools: ToolRegistry | None) -> int:
    """Check each segment's body (kinds ``reason``, ``plan``, ``answer``); fills the plans and answer ids of
    ``out`` and returns how many answers there are."""
    answers = 0
    for s in out.segments:
        if s.tag == "reason" and s.closed and not s.body.strip():
            out.problems.append(Problem("reason", "the <reason> is empty"))
        elif s.tag == "plan":
            expr, err = parse_plan(s.body, tools) if s.closed else (None, None)
            out.plans.append(expr)
            if err:
                out.problems.append(Problem("plan", err))
        elif s.tag == "answer":
            answers += 1
            if s.closed:
                ids, err = parse_answer(s.body)
                if err:
                    out.problems.append(Problem("answer", err))
                else:
                    out.answer_ids = ids
    return answers


def format_ok(text: str, *, tools: ToolRegistry | None = None) -> bool:
    """True when ``text`` is a complete, well-formed rollout (the binary format reward)."""
    return parse_rollout(text, tools=tools).ok


def format_score(text: str, *, tools: ToolRegistry | None = None) -> float:
    """Format reward in [0, 1]: the sum of :data:`KIND_WEIGHTS` over the problem kinds that do *not* occur.

    1.0 exactly when :func:`format_ok`; a rollout with only an empty reason scores 0.9, one without an
    answer at most 0.7, and so on, so that RL gets a gradient before the format is right.
    """
    kinds = parse_rollout(text, tools=tools).kinds()
    return round(sum(w for k, w in KIND_WEIGHTS.items() if k not in kinds), 6)


def dump_json(obj: Any, *, compact: bool = False) -> str:
    """JSON for a rollout segment: ``<`` and ``>`` escaped (``\\u003c``), so no string can fake a tag."""
    sep = (", ", ": ") if compact else None
    text = json.dumps(obj, ensure_ascii=False, separators=sep)
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


def render_rollout(reason: str, answer_ids: Iterable[int], rounds: Iterable[tuple[str, dict[str, Any]]] = ()) -> str:
    """Write a well-formed rollout: ``rounds`` is a list of (plan text, results object), in order."""
    parts = [f"<reason>{reason}</reason>"]
    for plan, results in rounds:
        parts.append(f"<plan>{plan}</plan>")
        parts.append(f"<results>{dump_json(dict(results), compact=True)}</results>")
    parts.append(f"<answer>{json.dumps({'ids': list(answer_ids)})}</answer>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------- GBNF
def gbnf_literal(s: str) -> str:
    """A GBNF string literal matching ``s`` exactly."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def id_rule(ids: Iterable[int] | None) -> str:
    """GBNF body of one id: one of ``ids`` (longest first, so no id is a dead prefix), or any integer."""
    if ids is None:
        return '("0" | [1-9] [0-9]{0,5})'
    vals = sorted({str(int(i)) for i in ids}, key=lambda v: (-len(v), v))
    if not vals:
        return '"0"'
    return "(" + " | ".join(gbnf_literal(v) for v in vals) + ")"


def reason_gbnf(max_chars: int = 160) -> str:
    """The reason turn: 1..``max_chars`` characters without ``<``, then ``</reason>``."""
    return f'root ::= [^<\\n]{{1,{max(1, int(max_chars))}}} "</reason>"'


_NAME = r"[a-z0-9] [a-z0-9' .&-]{0,39}"


def plan_gbnf(tools: ToolRegistry | None = None, *, ids: Iterable[int] | None = None) -> str:
    """The plan turn: one expression of the plan language (the registry's operators), then ``</plan>``.

    ``ids`` limits ``#id`` references to the twin's ids (``None``: any integer)."""
    from fastreasonseg.reasoning.tools.base import MAX_VARIADIC
    from fastreasonseg.reasoning.tools.registry import default_registry

    reg = tools if tools is not None else default_registry()
    alts, rules = [], []
    for k, t in enumerate(reg):
        args = []
        for p in t.params:
            if p.kind == "set":
                a = "expr"
            elif p.kind == "ordinal":
                a = "[1-9]"
            elif p.kind == "choice":
                a = "(" + " | ".join(gbnf_literal(c) for c in sorted(p.choices, key=len, reverse=True)) + ")"
            elif p.kind == "text":
                a = "name"
            else:
                a = "names"
            args.append((a, p.optional))
        body = ' ", " '.join(a for a, opt in args if not opt)
        if t.variadic:
            body += f' ( ", " expr ){{0,{MAX_VARIADIC - len(t.params)}}}'
        for a, opt in args:
            if opt:
                body += f' ( ", " {a} )?'
        rules.append(f'op{k} ::= {gbnf_literal(t.name + "(")} {body} ")"')
        alts.append(f"op{k}")
    lines = [
        'root ::= expr "</plan>"',
        'expr ::= "all" | names | "#" ref | call',
        f"call ::= {' | '.join(alts)}" if alts else 'call ::= "all"',
        'names ::= name ( "|" name ){0,7}',
        f"name ::= {_NAME}",
        f"ref ::= {id_rule(ids)}",
        *rules,
    ]
    return "\n".join(lines)


def answer_gbnf(ids: Sequence[int], max_ids: int = 16) -> str:
    """The answer turn, after ``{"ids": [`` (written by the executor): some of ``ids`` (the results'), then
    ``]}</answer>``. With no ids only the empty answer is possible."""
    if not ids:
        return 'root ::= "]}</answer>"'
    more = max(0, min(int(max_ids), len(ids)) - 1)
    return f'root ::= ( id ( ", " id ){{0,{more}}} )? "]}}</answer>"\nid ::= {id_rule(ids)}'
