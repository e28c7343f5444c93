"""The rollout grammar (DESIGN §3): parsing, validation, the format reward and GBNF grammars.

A rollout is::

    <reason>…free text…</reason>
    <plan>[{"tool": "detect", "args": {"text": "mug"}}]</plan>     (optional, repeatable)
    <results>{…written by the executor, never by the model…}</results>
    <answer>{"ids": [3]}</answer>                                  ({"ids": []} = no such object)

:func:`parse_rollout` never raises: it returns the segments in order, the answer ids (or ``None``)
and every problem found, each tagged with a *kind*:

``structure``
    tags unbalanced, nested, out of order (the order is reason → (plan → results)* → answer),
    stray text between tags, a ``<results>`` the model wrote itself, text after the answer.
``reason``
    the ``<reason>`` is empty.
``plan``
    a plan that is not a JSON list of ``{"tool": name, "args": {...}}`` objects, or names an unknown tool.
``answer``
    no answer, more than one, or an answer that is not ``{"ids": [non-negative integers]}``.

:func:`format_ok` (no problem at all) and :func:`format_score` (partial credit per kind, 1.0 exactly
when :func:`format_ok`) are the format reward that training reuses.

:func:`rollout_gbnf` and :func:`continuation_gbnf` are GBNF grammars (llama.cpp's
``LlamaGrammar.from_string``; xgrammar compiles the same text) that force the model's part of a
rollout to parse. The executor stops generation at ``</plan>`` and at ``</answer>``, so a grammar
covers one *model turn*: ``rollout_gbnf`` the first one (reason, then a plan or the answer),
``continuation_gbnf`` each one after ``</results>`` (a plan or the answer; the answer only once the
tool rounds are spent).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

TAGS = ("reason", "plan", "results", "answer")
STOP_STRINGS = ("</plan>", "</answer>")
"""Where the executor stops generation: after a plan (to run it) and after the answer."""

DEFAULT_TOOL_NAMES = ("detect", "relabel", "relation", "attributes", "motion")
"""The tool set of :mod:`fastreasonseg.reasoning.tools` (a test keeps the two in sync)."""

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


@dataclass(frozen=True)
class ToolCall:
    """One call of a plan, as the model wrote it (``args`` unvalidated: the tool registry validates)."""

    tool: str
    args: dict[str, Any]


@dataclass
class ParsedRollout:
    """What :func:`parse_rollout` found."""

    segments: list[Segment] = field(default_factory=list)
    answer_ids: list[int] | None = None
    """The ids of the (last) valid answer, duplicates removed, in order; ``None`` without a valid answer."""
    plans: list[list[ToolCall] | None] = field(default_factory=list)
    """One entry per ``<plan>``: its calls, or ``None`` when the plan is not valid."""
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


def parse_plan(
    body: str, tools: Collection[str] | None = DEFAULT_TOOL_NAMES
) -> tuple[list[ToolCall] | None, str | None]:
    """Parse a plan body: (calls, None) or (None, what is wrong). ``tools=None`` accepts any tool name."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return None, f"the plan is not valid JSON ({type(exc).__name__})"
    if isinstance(data, dict):  # a single call without the list brackets
        return None, 'the plan must be a JSON list of calls: [{"tool": name, "args": {...}}]'
    if not isinstance(data, list) or not data:
        return None, 'the plan must be a non-empty JSON list of calls: [{"tool": name, "args": {...}}]'
    calls = []
    for k, item in enumerate(data):
        if not isinstance(item, dict) or set(item) - {"tool", "args"} or "tool" not in item:
            return None, f'plan call {k + 1} must be {{"tool": name, "args": {{...}}}}'
        name, args = item["tool"], item.get("args", {})
        if not isinstance(name, str):
            return None, f"plan call {k + 1}: the tool name must be a string"
        if not isinstance(args, dict):
            return None, f"plan call {k + 1}: args must be a JSON object"
        if tools is not None and name not in tools:
            return None, f"plan call {k + 1}: unknown tool {_short(name, 30)!r} (tools: {', '.join(tools)})"
        calls.append(ToolCall(name, args))
    return calls, None


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
    tools: Collection[str] | None = DEFAULT_TOOL_NAMES,
    partial: bool = False,
    allow_results: bool = True,
) -> ParsedRollout:
    """Parse and validate a rollout. Never raises.

    ``tools``: the known tool names (``None`` accepts any name). ``partial=True`` checks a rollout in
    progress (no answer required yet: the executor uses it between turns). ``allow_results=False``
    flags every ``<results>`` (use it on text the model generated: only the executor writes results).
    """
    if not isinstance(text, str):
        return ParsedRollout(problems=[Problem("structure", f"the rollout is not text ({type(text).__name__})")])
    segments, problems = split_segments(text)
    out = ParsedRollout(segments=segments, problems=problems)
    tags = [s.tag for s in segments]

    # order: reason (plan results)* answer
    if not segments:
        if not partial or text.strip():
            problems.append(Problem("structure", "no <reason> segment"))
    elif tags[0] != "reason":
        problems.append(Problem("structure", f"the rollout must start with <reason>, not <{tags[0]}>"))
    expect_results = False
    answers = 0
    for k, s in enumerate(segments):
        if s.tag == "results" and not allow_results:
            problems.append(Problem("structure", "the model wrote <results> itself (only the executor writes results)"))
        if expect_results:
            if s.tag != "results":
                problems.append(Problem("structure", f"<plan> must be followed by <results>, not <{s.tag}>"))
            expect_results = False
            if s.tag == "results":
                continue
        if s.tag == "reason" and k > 0:
            problems.append(Problem("structure", "more than one <reason>"))
        elif s.tag == "plan":
            expect_results = True
        elif s.tag == "results" and allow_results:
            problems.append(Problem("structure", "<results> without a <plan> before it"))
        elif s.tag == "answer":
            answers += 1
            if k != len(segments) - 1:
                problems.append(Problem("structure", "the answer is not at the end"))
    if expect_results and not partial:
        problems.append(Problem("structure", "the last <plan> has no <results>"))

    # contents
    for s in segments:
        if s.tag == "reason" and s.closed and not s.body.strip():
            problems.append(Problem("reason", "the <reason> is empty"))
        elif s.tag == "plan":
            calls, err = parse_plan(s.body, tools) if s.closed else (None, None)
            out.plans.append(calls)
            if err:
                problems.append(Problem("plan", err))
        elif s.tag == "answer" and s.closed:
            ids, err = parse_answer(s.body)
            if err:
                problems.append(Problem("answer", err))
            else:
                out.answer_ids = ids
    if answers > 1:
        problems.append(Problem("answer", f"{answers} answers (exactly one is allowed)"))
    if answers == 0 and not partial:
        problems.append(Problem("answer", "no <answer>"))
    return out


def format_ok(text: str, *, tools: Collection[str] | None = DEFAULT_TOOL_NAMES) -> bool:
    """True when ``text`` is a complete, well-formed rollout (the binary format reward)."""
    return parse_rollout(text, tools=tools).ok


def format_score(text: str, *, tools: Collection[str] | None = DEFAULT_TOOL_NAMES) -> float:
    """Format reward in [0, 1]: the sum of :data:`KIND_WEIGHTS` over the problem kinds that do *not* occur.

    1.0 exactly when :func:`format_ok`; a rollout with only an empty reason scores 0.9, one without an
    answer at most 0.7, and so on, so that RL gets a gradient before the format is right.
    """
    kinds = parse_rollout(text, tools=tools).kinds()
    return round(sum(w for k, w in KIND_WEIGHTS.items() if k not in kinds), 6)


def dump_json(obj: Any, *, compact: bool = False) -> str:
    """JSON for a rollout segment: ``<`` and ``>`` escaped (``\\u003c``), so no string can fake a tag."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":") if compact else None)
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


def render_rollout(
    reason: str,
    answer_ids: Iterable[int],
    rounds: Iterable[tuple[list[Mapping[str, Any]], Mapping[str, Any]]] = (),
) -> str:
    """Write a well-formed rollout: ``rounds`` is a list of (plan calls, results object)."""
    parts = [f"<reason>{reason}</reason>"]
    for calls, results in rounds:
        parts.append(f"<plan>{dump_json(list(calls))}</plan>")
        parts.append(f"<results>{dump_json(dict(results), compact=True)}</results>")
    parts.append(f"<answer>{json.dumps({'ids': list(answer_ids)})}</answer>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------- GBNF
def gbnf_literal(s: str) -> str:
    """A GBNF string literal matching ``s`` exactly."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _alternatives(values: Iterable[str]) -> str:
    return "(" + " | ".join(gbnf_literal(v) for v in values) + ")"


def id_rule(ids: Iterable[int] | None) -> str:
    """GBNF body of one id: one of ``ids`` (longest first, so no id is a dead prefix), or any integer."""
    if ids is None:
        return '("0" | [1-9] [0-9]{0,5})'
    vals = sorted({str(int(i)) for i in ids}, key=lambda s: (-len(s), s))
    if not vals:
        return '"0"'  # never used: a twin without ids gets no model call
    return _alternatives(vals)


GENERIC_ARGS_RULE = r'"{" ( jstr ": " jval ( ", " jstr ": " jval ){0,3} )? "}"'
_BASE_RULES = r"""
sep ::= "\n"?
jstr ::= "\"" [^"\\<>\n]{1,40} "\""
jint ::= "-"? ("0" | [1-9] [0-9]{0,5})
jval ::= jstr | jint | id | "[" ( (jstr | jint) ( ", " (jstr | jint) ){0,7} )? "]"
"""


def _tool_rules(tool_args: Mapping[str, str | None]) -> tuple[str, list[str]]:
    """``call`` alternatives (one per tool) and extra rules; a ``None`` args rule means any small JSON object."""
    alts, rules = [], []
    for k, (name, args) in enumerate(tool_args.items()):
        rule = f"args{k}"
        rules.append(f"{rule} ::= {args or GENERIC_ARGS_RULE}")
        alts.append(f'"{{\\"tool\\": " {gbnf_literal(json.dumps(name))} ", \\"args\\": " {rule} "}}"')
    return " | ".join(alts), rules


def _grammar(
    first: bool,
    *,
    tool_args: Mapping[str, str | None] | Collection[str] | None,
    ids: Iterable[int] | None,
    reason_chars: int,
    allow_plan: bool,
    max_calls: int,
    max_ids: int,
) -> str:
    if tool_args is None:
        from fastreasonseg.reasoning.tools import default_registry

        tool_args = default_registry().gbnf_args()
    elif not isinstance(tool_args, Mapping):
        tool_args = dict.fromkeys(tool_args)
    allow_plan = allow_plan and bool(tool_args)
    step = "(plan | answer)" if allow_plan else "answer"
    lines = [f"root ::= reason sep {step}" if first else f"root ::= sep {step}"]
    if first:
        lines.append(f'reason ::= "<reason>" [^<]{{1,{max(1, int(reason_chars))}}} "</reason>"')
    more = max(0, int(max_ids) - 1)
    lines.append(f'answer ::= "<answer>{{\\"ids\\": [" ( id ( ", " id ){{0,{more}}} )? "]}}</answer>"')
    lines.append(f"id ::= {id_rule(ids)}")
    if allow_plan:
        calls, rules = _tool_rules(tool_args)
        lines.append(f'plan ::= "<plan>[" call ( ", " call ){{0,{max(0, int(max_calls) - 1)}}} "]</plan>"')
        lines.append(f"call ::= {calls}")
        lines += rules
    return "\n".join(lines) + _BASE_RULES


def rollout_gbnf(
    tool_args: Mapping[str, str | None] | Collection[str] | None = None,
    *,
    ids: Iterable[int] | None = None,
    reason_chars: int = 300,
    allow_plan: bool = True,
    max_calls: int = 3,
    max_ids: int = 16,
) -> str:
    """GBNF for the model's first turn: ``<reason>`` (1..``reason_chars`` characters, no ``<``), then a
    ``<plan>`` or the ``<answer>``.

    ``tool_args`` maps tool names to the GBNF body of their args object (``ToolRegistry.gbnf_args``), or
    lists tool names (any small JSON object as args); ``None`` = the default tool set. ``ids``
    restricts ids (answer and id-valued args) to the twin's ids; ``None`` allows any integer.
    """
    return _grammar(
        True,
        tool_args=tool_args,
        ids=ids,
        reason_chars=reason_chars,
        allow_plan=allow_plan,
        max_calls=max_calls,
        max_ids=max_ids,
    )


def continuation_gbnf(
    tool_args: Mapping[str, str | None] | Collection[str] | None = None,
    *,
    ids: Iterable[int] | None = None,
    allow_plan: bool = True,
    max_calls: int = 3,
    max_ids: int = 16,
) -> str:
    """GBNF for a model turn after ``</results>``: another ``<plan>`` (if ``allow_plan``) or the ``<answer>``."""
    return _grammar(
        False,
        tool_args=tool_args,
        ids=ids,
        reason_chars=1,
        allow_plan=allow_plan,
        max_calls=max_calls,
        max_ids=max_ids,
    )
