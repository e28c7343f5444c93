"""The plan language: one expression over the twin's objects, parsed, printed and evaluated exactly.

::

    expr   := "all" | names | "#" id | op "(" arg ("," arg)* ")"
    names  := name ("|" name)*             cup|mug: objects called so (label, alternative labels, synonyms,
                                            category words, a close sentence embedding: reasoning/grounding.py)
    arg    := expr | 1..9 | a word of the operator's choices | a name (detect) | names (relabel)

Examples: ``nearest(shirt|sock)`` (the wearable thing nearest the camera), ``on(all, dryer)``,
``leftmost(on(book, cart), 2)`` (the second book from the left on the cart), ``exclude(dog|cat, on(all, table))``,
``union(cart, near(person, cart))``, ``appears_first(enters(person))``. The operators are the files of
:mod:`fastreasonseg.reasoning.tools` (docs/design.md, "The plan language").

:func:`parse_program` never raises: it returns the expression or a message naming what is wrong (an unknown
operator, a wrong number of arguments, a bad ordinal or place word, a plan that nests too deep).
:func:`evaluate` never raises either: errors of the plan or of the twin (an ambiguous anchor, a track operator
on an image) come back as :class:`Outcome.error`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from fastreasonseg.reasoning.tools.base import MAX_VARIADIC, Param, Selection, Tool, ToolContext, ToolError

if TYPE_CHECKING:
    from fastreasonseg.reasoning.tools.registry import ToolRegistry

MAX_DEPTH = 6
"""Most nested operator calls in one plan."""
MAX_NODES = 24
"""Most operator calls and name lists in one plan."""
MAX_NAMES = 8
"""Most names in one ``a|b|c`` list."""
MAX_NAME_CHARS = 40
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9' .&-]*$")


@dataclass(frozen=True)
class Names:
    """``cup|mug``: the objects called by any of these names."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class AllObjects:
    """``all``: every object (without detector junk and background surfaces)."""


@dataclass(frozen=True)
class Ref:
    """``#3``: the object with id 3."""

    id: int


@dataclass(frozen=True)
class Call:
    op: str
    args: tuple[Union[Expr, int, str, None], ...]  # noqa: UP007  (a forward reference)


Expr = Union[Names, AllObjects, Ref, Call]  # noqa: UP007


class PlanSyntaxError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------- parsing
class _Parser:
    def __init__(self, text: str, registry: ToolRegistry) -> None:
        self.s = text
        self.k = 0
        self.reg = registry
        self.nodes = 0

    def fail(self, msg: str) -> PlanSyntaxError:
        return PlanSyntaxError(msg)

    def ws(self) -> None:
        while self.k < len(self.s) and self.s[self.k] in " \t\n":
            self.k += 1

    def peek(self) -> str:
        self.ws()
        return self.s[self.k] if self.k < len(self.s) else ""

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            got = self.s[self.k : self.k + 12] or "the end"
            raise self.fail(f"expected {ch!r} at {got!r}")
        self.k += 1

    def word(self) -> str:
        """Raw text up to the next ``( ) , |`` (stripped)."""
        self.ws()
        j = self.k
        while self.k < len(self.s) and self.s[self.k] not in "(),|":
            self.k += 1
        return " ".join(self.s[j : self.k].split())

    def count(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(f"the plan is too long (more than {MAX_NODES} operators and name lists)")

    def name(self, w: str) -> str:
        if not w:
            raise self.fail("an empty name")
        if len(w) > MAX_NAME_CHARS:
            raise self.fail(f"the name {w[:20]!r}... is longer than {MAX_NAME_CHARS} characters")
        if not NAME_RE.match(w):
            raise self.fail(f"bad name {w[:20]!r}: letters, digits, spaces, ' - . & only")
        return w.lower()

    def expr(self, depth: int) -> Expr:
        if self.peek() == "#":
            self.k += 1
            w = self.word()
            if not (w.isascii() and w.isdigit()) or len(w) > 7:
                raise self.fail(f"bad object reference #{w[:10]}: expected #<id>")
            self.count()
            return Ref(int(w))
        w = self.word()
        if self.peek() == "(":
            return self.call(w, depth)
        if w.lower() == "all" and self.peek() != "|":
            return AllObjects()
        names = [self.name(w)]
        while self.peek() == "|":
            self.k += 1
            names.append(self.name(self.word()))
            if len(names) > MAX_NAMES:
                raise self.fail(f"more than {MAX_NAMES} names in one list")
        self.count()
        return Names(tuple(dict.fromkeys(names)))

    def call(self, op: str, depth: int) -> Call:
        if op not in self.reg:
            shown = op[:30] if op else "(nothing)"
            raise self.fail(f"unknown operator {shown!r}; operators: {', '.join(self.reg.names)}")
        if depth >= MAX_DEPTH:
            raise self.fail(f"the plan nests more than {MAX_DEPTH} operators deep")
        self.count()
        tool = self.reg[op]
        self.expect("(")
        raw: list[Expr | int | str] = []
        while True:
            param = _param_at(tool, len(raw))
            if param is None:
                raise self.fail(f"too many arguments for {tool.signature()}")
            raw.append(self.arg(param, depth + 1, tool))
            if self.peek() == ",":
                self.k += 1
                continue
            self.expect(")")
            break
        return Call(op, _check_args(tool, raw))

    def arg(self, p: Param, depth: int, tool: Tool) -> Expr | int | str:
        if p.kind == "set":
            return self.expr(depth)
        if p.kind == "names":
            names = [self.name(self.word())]
            while self.peek() == "|":
                self.k += 1
                names.append(self.name(self.word()))
            return "|".join(names[:MAX_NAMES])
        w = self.word()
        if p.kind == "ordinal":
            if not (w.isascii() and w.isdigit() and 1 <= int(w) <= 9):
                raise self.fail(f"{tool.name}: the ordinal must be 1..9, got {w[:10]!r}")
            return int(w)
        if p.kind == "choice":
            if w.lower() not in p.choices:
                raise self.fail(f"{tool.name}: {p.name} must be one of {', '.join(p.choices)}, got {w[:20]!r}")
            return w.lower()
        return self.name(w)  # text

    def parse(self) -> Expr:
        e = self.expr(0)
        if self.peek():
            raise self.fail(f"unexpected text after the expression: {self.s[self.k : self.k + 20]!r}")
        return e


def _param_at(tool: Tool, k: int) -> Param | None:
    if k < len(tool.params):
        return tool.params[k]
    if tool.variadic and k < len(tool.params) + MAX_VARIADIC - 2:
        return tool.params[-1]
    return None


def _check_args(tool: Tool, raw: list) -> tuple:
    """Fill optional parameters left out; a variadic operator keeps its extra sets."""
    required = [p for p in tool.params if not p.optional]
    if len(raw) < len(required):
        raise PlanSyntaxError(f"{tool.name} needs {len(required)} arguments: {tool.signature()}")
    if tool.variadic:
        return tuple(raw)
    return tuple(raw) + (None,) * (len(tool.params) - len(raw))


def parse_program(text: str, registry: ToolRegistry | None = None) -> tuple[Expr | None, str | None]:
    """(expression, None) or (None, what is wrong). ``registry``: the operators (default: all of them)."""
    from fastreasonseg.reasoning.tools.registry import default_registry

    if not isinstance(text, str) or not text.strip():
        return None, "the plan is empty"
    try:
        return _Parser(text, registry or default_registry()).parse(), None
    except PlanSyntaxError as exc:
        return None, str(exc)
    except RecursionError:
        return None, "the plan nests too deep"


def format_program(e: Expr | int | str | None) -> str:
    """The canonical text of an expression (what a plan writes: no spaces but after commas)."""
    if isinstance(e, Names):
        return "|".join(e.names)
    if isinstance(e, AllObjects):
        return "all"
    if isinstance(e, Ref):
        return f"#{e.id}"
    if isinstance(e, Call):
        args = [format_program(a) for a in e.args if a is not None]
        return f"{e.op}({', '.join(args)})"
    return str(e)


def operators_of(e: Expr | int | str | None) -> list[str]:
    """The operator names an expression uses, outermost first."""
    if isinstance(e, Call):
        return [e.op, *(op for a in e.args for op in operators_of(a))]
    return []


# ---------------------------------------------------------------------------------------------- evaluation
@dataclass
class Outcome:
    """What a plan evaluated to: a selection, or an error for the model."""

    selection: Selection | None
    error: str | None = None


def _value(e: Expr | int | str | None, ctx: ToolContext, reg: ToolRegistry) -> Selection | int | str | None:
    if isinstance(e, Names):
        if ctx.matcher is None:
            raise ToolError("no name matcher: the executor did not set one up")
        return ctx.matcher.match(ctx.scene, e.names)
    if isinstance(e, AllObjects):
        things = ctx.scene.things
        return Selection.of(things, "" if things else "the twin has no objects")
    if isinstance(e, Ref):
        if e.id not in ctx.scene.objects:
            raise ToolError(f"no object with id {e.id}")
        return Selection.of([e.id])
    if isinstance(e, Call):
        tool = reg[e.op]
        other = tool.rewrite(ctx, e.args) if tool.rewrite else None
        if isinstance(other, Call) and other.op in reg:
            return _value(other, ctx, reg)
        if tool.video_only and not ctx.scene.is_video:
            raise ToolError(f"{tool.name} needs a video; this twin is a single image")
        if tool.image_only and ctx.scene.is_video:
            raise ToolError(f"{tool.name} works on images only")
        return tool.run(ctx, *(_value(a, ctx, reg) for a in e.args))
    return e


def evaluate(e: Expr, ctx: ToolContext, registry: ToolRegistry | None = None) -> Outcome:
    """Evaluate an expression on ``ctx.twin``. Never raises (a failing operator is reported, with its name)."""
    from fastreasonseg.reasoning.tools.registry import default_registry

    reg = registry or default_registry()
    try:
        value = _value(e, ctx, reg)
    except ToolError as exc:
        return Outcome(None, str(exc))
    except Exception as exc:  # a failing model (detect) or a bug must not end the rollout
        return Outcome(None, f"the plan failed: {type(exc).__name__}: {str(exc)[:120]}")
    if not isinstance(value, Selection):
        return Outcome(None, "the plan must select objects (a name, all, #id or an operator)")
    return Outcome(value)
