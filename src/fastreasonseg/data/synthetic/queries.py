"""Implicit queries over synthetic scenes, each with its gold plan, ground truth and reference rollout.

Three categories (as in JiTBench) at three levels of reasoning depth: ``semantic`` (knowledge about objects:
:mod:`.semantic`), ``spatial`` (images: :mod:`.spatial`) and ``temporal`` (videos: :mod:`.temporal`). The
generator knows how each query was built, so it writes the plan a teacher would write and a short reason (which
kinds of objects the words mean); the executor runs the plan on the scene, and its ``<results>`` and answer
complete the reference rollout::

    <reason>the nearest of dog, cat</reason>
    <plan>nearest(dog|cat)</plan>
    <results>{"ids": [4], "objects": "4 cat", "why": "nearest of 2"}</results>
    <answer>{"ids": [4]}</answer>

Ground truth is what the executor computes on the gold plan (semantic queries: the knowledge base's targets, and
the plan must select exactly them). A query is only kept when its answer does not change when every geometric
tolerance is halved or doubled (``ToolContext.slack`` 0.5 and 2): no object sits on a threshold. Wordings come
from :mod:`.phrasing`, with held-out wordings for val/test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastreasonseg.data.synthetic.objects import scene_objects
from fastreasonseg.data.synthetic.phrasing import CHATTER, CHATTER_RATE, Phrasebook
from fastreasonseg.data.synthetic.scenes import Scene
from fastreasonseg.data.synthetic.semantic import CATEGORY_NOUNS, PROPERTY_PHRASES, SemanticQueries
from fastreasonseg.data.synthetic.spatial import SpatialQueries
from fastreasonseg.data.synthetic.temporal import TemporalQueries
from fastreasonseg.knowledge import KnowledgeBase, load_knowledge
from fastreasonseg.twin.schema import DigitalTwin

CATEGORIES = ("semantic", "spatial", "temporal")
SLACKS = (1.0, 0.5, 2.0)
"""Tolerance scales a gold plan must give the same answer at (the first is the executor's own)."""
MAX_REASON_CHARS = 150


@dataclass
class QueryDraft:
    """A generated query with its ground truth, gold plan and reference rollout."""

    query: str
    ids: list[int]
    category: str
    level: int
    reason: str
    plan: str
    rationale: str
    """The reference rollout: reason, plan, the executor's results, answer."""
    template_id: str
    facts: list[str] = field(default_factory=list)
    results: dict | None = None
    """The executor's ``<results>`` object for the plan."""
    heldout_wording: bool = False


@dataclass
class QueryContext:
    """What a split allows: knowledge facts (held-out ones are excluded in train) and wordings."""

    allowed_uses: set[str] | None = None
    allowed_traits: set[str] | None = None
    allow_heldout: bool = False
    """Held-out wordings may be used (val/test)."""
    prefer_heldout: float = 0.0
    """With ``allow_heldout``: the chance of drawing a held-out wording from a bank that has one."""
    prefer_facts: bool = False
    """Semantic L1: try the use and trait queries first (val/test samples steered to held-out facts)."""

    def use_ok(self, u: str) -> bool:
        return self.allowed_uses is None or u in self.allowed_uses

    def trait_ok(self, t: str) -> bool:
        return self.allowed_traits is None or t in self.allowed_traits


class _NoRuntime:
    """A runtime that never runs: the generator only borrows the executor's plan runner."""

    name = "none"

    def complete(self, *args, **kwargs):  # pragma: no cover - never called
        raise RuntimeError("the synthetic generator does not generate text")


class PlanOracle:
    """Evaluates plans on one twin with the executor, at every tolerance of :data:`SLACKS` (cached)."""

    def __init__(self, reasoner, twin: DigitalTwin) -> None:
        self.reasoner = reasoner
        self.ctx = reasoner.context(twin)
        self._cache: dict[str, tuple[int, ...] | None] = {}

    def __call__(self, plan: str) -> tuple[int, ...] | None:
        if plan not in self._cache:
            answers = set()
            for slack in SLACKS:
                self.ctx.slack = slack
                res = self.reasoner.run_plan(plan, self.ctx)
                answers.add(None if "error" in res else tuple(res["ids"]))
            self.ctx.slack = 1.0
            self._cache[plan] = answers.pop() if len(answers) == 1 else None
        return self._cache[plan]

    def results(self, plan: str) -> dict:
        return self.reasoner.run_plan(plan, self.ctx)


class QueryGenerator:
    """Generates :class:`QueryDraft` objects for a scene."""

    def __init__(self, kb: KnowledgeBase | None = None):
        self.kb = kb or load_knowledge()
        self.semantic = SemanticQueries(self.kb)
        self.spatial = SpatialQueries()
        self.temporal = TemporalQueries()
        self._reasoner = None

    @property
    def reasoner(self):
        """The executor the gold plans run on (the same plan runner inference uses)."""
        if self._reasoner is None:
            from fastreasonseg.reasoning.executor import Reasoner

            self._reasoner = Reasoner(_NoRuntime())
        return self._reasoner

    def oracle(self, twin: DigitalTwin) -> PlanOracle:
        return PlanOracle(self.reasoner, twin)

    def generate(
        self,
        rng: np.random.Generator,
        scene: Scene,
        category: str,
        level: int,
        ctx: QueryContext | None = None,
        *,
        no_target: bool = False,
    ) -> QueryDraft | None:
        """One query of ``category`` and ``level`` for ``scene`` (None when the scene does not support one)."""
        if category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
        ctx = ctx or QueryContext()
        objs = scene_objects(scene, self.kb)
        if not objs:
            return None
        book = Phrasebook(rng, allow_heldout=ctx.allow_heldout, prefer_heldout=ctx.prefer_heldout)
        oracle = self.oracle(scene.twin)
        video = scene.twin.is_video
        if category == "semantic":
            d = self.semantic.draft(rng, objs, level, book, ctx, no_target)
            if d is None:
                return None
            q, targets, lv, reason, names, facts = d
            plan = "|".join(n.lower() for n in names)
            ids = tuple(sorted(t.id for t in targets))
            if oracle(plan) != ids:
                return None  # the names would select other objects than the knowledge base means
            return self._finish(oracle, q, list(ids), category, lv, reason, plan, book, facts)
        if (category == "spatial") == video:
            return None  # spatial queries are about images, temporal ones about videos
        gen = self.spatial if category == "spatial" else self.temporal
        d = gen.draft(rng, objs, level, book, oracle, no_target)
        if d is None:
            return None
        q, ids, lv, reason, plan = d
        return self._finish(oracle, q, list(ids), category, lv, reason, plan, book, [f"plan:{plan.split('(')[0]}"])

    def _finish(self, oracle, q, ids, category, level, reason, plan, book, facts) -> QueryDraft | None:
        from fastreasonseg.reasoning.grammar import render_rollout

        reason = " ".join(reason.split())
        if len(reason) > MAX_REASON_CHARS or "<" in reason:
            return None
        results = oracle.results(plan)
        if "error" in results or list(results["ids"]) != sorted(ids):
            return None
        rationale = render_rollout(reason, results["ids"], [(plan, results)])
        q = " ".join(q.split())
        if book.rng.random() < CHATTER_RATE:
            wrapped = book.pick("chatter", CHATTER)
            lower = wrapped.split("{q}")[0].endswith((", ", ": ", "so ")) and q[:2] != "I "
            q = wrapped.format(q=q[0].lower() + q[1:] if lower else q)
        return QueryDraft(
            q,
            sorted(ids),
            category,
            level,
            reason,
            plan,
            rationale,
            book.template_id,
            facts,
            results,
            book.heldout_used,
        )


__all__ = [
    "CATEGORIES",
    "CATEGORY_NOUNS",
    "PROPERTY_PHRASES",
    "SLACKS",
    "PlanOracle",
    "QueryContext",
    "QueryDraft",
    "QueryGenerator",
]
