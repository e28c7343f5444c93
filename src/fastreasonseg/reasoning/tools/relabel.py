"""``relabel(A, names)``: re-score candidate names for one object and give it the best one.

With the labeller and the source image, the candidates are scored on the object's box (the frame where it is
largest); without them, the candidates are matched against the twin's own label and alternative labels (a
partial word match counts half). Selects the object when the best candidate scores above zero.
"""

from __future__ import annotations

from fastreasonseg.reasoning.tools.base import SET, Param, Selection, Tool, ToolContext, ToolError
from fastreasonseg.reasoning.tools.detect import merge_alts


def _norm(s: str) -> str:
    return " ".join(s.lower().replace("_", " ").split())


def _with_labeller(ctx: ToolContext, oid: int, candidates: list[str]) -> tuple[str, float, list[tuple[str, float]]]:
    pairs = ctx.twin.instances_of(oid)
    fr, inst = max(((f, i) for f, i in pairs if ctx.image(f.index) is not None), key=lambda p: p[1].area)
    scored = ctx.perception.classify(ctx.image(fr.index), [inst.box], candidates)[0]
    scored = sorted(((str(n), float(s)) for n, s in scored), key=lambda p: -p[1])
    best, best_score = scored[0]
    for _, i in pairs:
        if i.label != best:
            i.alt_labels = merge_alts(best, i.alt_labels, [(i.label, i.score or 0.0), *scored[1:]])
            i.label = best
            i.score = round(min(max(best_score, 0.0), 1.0), 4)
    ctx.log.append(f"relabel: {oid} -> {best!r}")
    ctx.changed()
    return best, best_score, scored


def _from_twin(ctx: ToolContext, oid: int, candidates: list[str]) -> tuple[str, float]:
    known: dict[str, float] = {}
    for _, i in ctx.twin.instances_of(oid):
        for name, score in [(i.label, i.score if i.score is not None else 1.0), *i.alt_labels]:
            known[_norm(name)] = max(known.get(_norm(name), 0.0), float(score))
    scores: dict[str, float] = {}
    for c in candidates:
        s = known.get(_norm(c))
        if s is None:
            words = set(_norm(c).split())
            s = max((v / 2 for k, v in known.items() if words & set(k.split())), default=0.0)
        scores[c] = s
    best = max(scores, key=lambda c: scores[c])
    return best, scores[best]


def _run(ctx: ToolContext, a: Selection, names: str) -> Selection:
    if len(a.ids) != 1:
        if not a.ids:
            return Selection((), a.why)
        raise ToolError(f"relabel needs one object, got {len(a.ids)} ({ctx.scene.cite(a.ids[:6])})")
    oid = a.ids[0]
    candidates = list(dict.fromkeys(" ".join(c.split()) for c in names.split("|") if c.strip()))
    if not candidates:
        raise ToolError("relabel needs at least one candidate name")
    has_image = any(ctx.image(f.index) is not None for f, _ in ctx.twin.instances_of(oid))
    if ctx.perception is not None and has_image:
        best, score, _ = _with_labeller(ctx, oid, candidates)
        return Selection.of([oid], f"labeller: {best} {round(100 * score)}%")
    best, score = _from_twin(ctx, oid, candidates)
    if score <= 0:
        return Selection((), f"{ctx.scene[oid].cite()} is none of {', '.join(candidates)} (no labeller: twin labels)")
    return Selection.of([oid], f"{best} {round(100 * score)}% (no labeller: twin labels)")


TOOL = Tool("relabel", (SET, Param("names", "names")), _run, "check names for one object")
