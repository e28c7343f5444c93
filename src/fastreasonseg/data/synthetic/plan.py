"""Scene plans: choose the (category, level) cell first, then the objects (and motions) that make it answerable.

Some cells rarely occur in a random scene: the knowledge base's uses are nearly unique per object, so a
two-fact semantic query (L2) needs a category member *with* a property, one *without* it and an object of
another category *with* it; a temporal L3 query needs several movers of one category whose motions share
one fact but not the other. A :class:`ScenePlan` names a setting, the keys placed first and, for videos,
the motion each of them is given; the query generator then looks for a query of the planned level in the
scene it produces (any valid query of that level, not necessarily the planned one). Cells that succeed on
most random scenes get no plan (``None``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastreasonseg.data.synthetic.scenes import SETTINGS, VIDEO_SETTINGS, SceneGenerator
from fastreasonseg.knowledge import KnowledgeBase

#: properties a planned semantic L2 query filters on (a category member with it, one without it, an outsider with it)
PLAN_PROPERTIES = ("edible", "alive", "soft", "sharp", "electric", "hot", "container", "worn")
#: motion -> horizontal direction it shows in the track (``None`` = no clear left/right displacement)
_DIRECTION = {
    "left": "left",
    "right": "right",
    "arc_left": "left",
    "arc_right": "right",
    "enter_left": "right",
    "enter_right": "left",
    "leave_left": "left",
    "leave_right": "right",
}


@dataclass
class ScenePlan:
    setting: str
    keys: list[str]
    motions: list[str] = field(default_factory=list)
    """Motion of each of ``keys`` (videos; empty for images)."""


def _categories(kb: KnowledgeBase, keys: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k in keys:
        out.setdefault(kb[k].category, []).append(k)
    return out


def plan_semantic_two(
    rng: np.random.Generator, scenes: SceneGenerator, allowed: set[str] | None, video: bool
) -> ScenePlan | None:
    """A category member with a property (target), one without it and an object of another category with it."""
    from fastreasonseg.data.synthetic.queries import CATEGORY_NOUNS

    kb = scenes.kb
    settings = list(VIDEO_SETTINGS if video else SETTINGS)
    for _ in range(12):
        setting = str(rng.choice(settings))
        pool = scenes.pool(setting, allowed)
        prop = str(rng.choice(PLAN_PROPERTIES))
        cats = sorted(c for c in _categories(kb, pool) if c in CATEGORY_NOUNS)
        rng.shuffle(cats)
        for cat in cats:
            tgt = [k for k in pool if kb[k].category == cat and kb[k].has(prop)]
            d_cat = [k for k in pool if kb[k].category == cat and not kb[k].has(prop)]
            d_prop = [k for k in pool if kb[k].category != cat and kb[k].has(prop)]
            if tgt and d_cat and d_prop:
                keys = [str(rng.choice(tgt)), str(rng.choice(d_cat)), str(rng.choice(d_prop))]
                return ScenePlan(setting, keys)
    return None


def _mover_groups(scenes: SceneGenerator, setting: str, allowed: set[str] | None) -> dict[str, list[str]]:
    return _categories(scenes.kb, scenes.pool(setting, allowed, movers=True))


def plan_temporal(
    rng: np.random.Generator, scenes: SceneGenerator, allowed: set[str] | None, level: int
) -> ScenePlan | None:
    """Movers of one category with planned motions (L2: one motion fact; L3: two motion facts).

    L2: the target has motion ``m``, a same-category distractor stays still or does the opposite, and an
    object of another category also does ``m`` (both the category and the motion matter).
    L3: the target enters (or leaves) moving in direction ``d``; a same-category distractor enters (leaves)
    moving the other way, another just moves in direction ``d``.
    """
    settings = list(VIDEO_SETTINGS)
    for _ in range(12):
        setting = str(rng.choice(settings))
        groups = _mover_groups(scenes, setting, allowed)
        cats = sorted(groups)
        if not cats:
            continue
        cat = str(rng.choice(cats))
        same = groups[cat]
        others = [k for c, ks in groups.items() if c != cat for k in ks]

        def pick(ks: list[str]) -> str:
            return str(rng.choice(ks))

        if level == 2:
            if not others:
                continue
            m = str(rng.choice(["left", "right", "approach", "recede", "enter_left", "enter_right", "leave_left"]))
            opposite = {
                "left": "right",
                "right": "left",
                "approach": "recede",
                "recede": "approach",
            }.get(m, "static")
            d = opposite if rng.random() < 0.5 else "static"
            return ScenePlan(setting, [pick(same), pick(same), pick(others)], [m, d, m])
        d = str(rng.choice(["left", "right"]))
        event = str(rng.choice(["enter", "leave"]))
        edge = {("enter", "right"): "left", ("enter", "left"): "right"}.get((event, d), d)
        other_edge = "left" if edge == "right" else "right"
        t, d1 = f"{event}_{edge}", f"{event}_{other_edge}"
        keys = [pick(same), pick(same), pick(same)]
        motions = [t, d1, d]
        if rng.random() < 0.5 and others:
            keys.append(pick(others))
            motions.append(t)
        assert _DIRECTION[t] == d and _DIRECTION[d1] != d
        return ScenePlan(setting, keys, motions)
    return None
