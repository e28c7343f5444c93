"""The noun phrases spatial and temporal queries are built on: a set of objects, how a plan names it and how a
query says it ("the mugs", "the animals", "the objects"), plus anchors (one object named by its label).

Every set is checked on the executor: ``members`` is what its plan selects in the scene, so a query is only asked
when its words select exactly the objects the generator meant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fastreasonseg.data.synthetic.objects import Obj
from fastreasonseg.data.synthetic.phrasing import GENERIC_NOUNS, Phrasebook
from fastreasonseg.data.synthetic.semantic import CATEGORY_NOUNS, names_of
from fastreasonseg.knowledge import plural

Oracle = Callable[[str], tuple[int, ...] | None]
"""``oracle(plan) -> ids`` on the scene (``None``: the plan fails, or its answer changes with the tolerances)."""


@dataclass(frozen=True)
class ObjectSet:
    """A set of objects as a plan writes it (``plan``) and as a query says it (``noun`` / ``nouns``)."""

    plan: str
    noun: str
    nouns: str
    members: tuple[int, ...]
    canon: str
    """How a reason names it: ``mug`` / ``animals: dog, cat`` / ``all``."""
    kind: str = "label"
    """``label``, ``category`` or ``all``."""

    def np(self, n: int, definite: bool = True) -> str:
        """``the mug`` / ``the mugs``."""
        word = self.noun if n == 1 else self.nouns
        return f"the {word}" if definite else word


def object_sets(objs: list[Obj], oracle: Oracle, book: Phrasebook, *, min_members: int = 1) -> list[ObjectSet]:
    """Every way to name a set of the scene's objects: all of them, a label, a category."""
    out: list[ObjectSet] = []
    everything = oracle("all")
    if everything:
        noun, nouns = book.pick("noun:generic", GENERIC_NOUNS)
        out.append(ObjectSet("all", noun, nouns, everything, "all", "all"))
    for label in sorted({o.true_label for o in objs}):
        members = oracle(label)
        if members and len(members) >= min_members:
            out.append(ObjectSet(label, label, plural(label), members, label))
    by_cat: dict[str, list[Obj]] = {}
    for o in objs:
        by_cat.setdefault(o.entry.category, []).append(o)
    for cat, group in sorted(by_cat.items()):
        names = names_of(group)
        if cat not in CATEGORY_NOUNS or len(names) < 2:
            continue  # one label: the label set says it already
        members = oracle("|".join(names))
        if members and len(members) >= min_members and set(members) == {o.id for o in group}:
            noun, nouns = CATEGORY_NOUNS[cat]
            out.append(ObjectSet("|".join(names), noun, nouns, members, f"{nouns}: {', '.join(names)}", "category"))
    return out


def anchors(objs: list[Obj], oracle: Oracle) -> list[Obj]:
    """Objects a query can name by their label alone (the label selects exactly that object)."""
    return [o for o in objs if not o.mislabelled and oracle(o.true_label) == (o.id,)]


def choose(rng: np.random.Generator, items: list, k: int | None = None) -> list:
    """``items`` shuffled (the first ``k``)."""
    order = [items[int(i)] for i in rng.permutation(len(items))]
    return order if k is None else order[:k]


def weighted(rng: np.random.Generator, items: list[str], weights: dict[str, float]) -> list[str]:
    """``items`` in a random order that puts the heavier ones first more often (weights default to 1)."""
    w = np.array([weights.get(i, 1.0) for i in items], dtype=float)
    order = rng.choice(len(items), size=len(items), replace=False, p=w / w.sum())
    return [items[int(k)] for k in order]
