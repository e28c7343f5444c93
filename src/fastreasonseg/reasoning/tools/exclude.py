"""``exclude(A, B)``: the objects of A that are not in B ("the pets that are not on the table")."""

from __future__ import annotations

from fastreasonseg.reasoning.tools.base import ANCHOR, SET, Selection, Tool, ToolContext


def _run(ctx: ToolContext, a: Selection, b: Selection) -> Selection:
    drop = set(b.ids)
    ids = [i for i in a.ids if i not in drop]
    if not ids:
        return Selection((), a.why if not a.ids else "all of them are excluded")
    return Selection.of(ids, f"{len(a.ids) - len(ids)} excluded" if drop & set(a.ids) else "")


TOOL = Tool("exclude", (SET, ANCHOR), _run, "A but not B")
