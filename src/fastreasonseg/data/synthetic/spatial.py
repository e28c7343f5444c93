"""Spatial queries (images): superlatives, relations to a named object, regions, ordinals, "between", negations.

The plan is written first, from the plan language's operators, and its answer is what the executor computes on
the scene (never a second, generator-side definition of "above"); a query is only asked when that answer does not
change when every geometric tolerance is halved or doubled (the oracle's check), so no object sits on a threshold.

L1: one operator over every object (``nearest(all)``, ``on(all, table)``, ``at(all, top left)``).
L2: an operator over a named set (``nearest(mug)``, ``left(apple|banana, bowl)``, ``leftmost(book, 2)``,
``closest_to(cup, laptop)``).
L3: two operators (``largest(on(apple|pear, table))``, ``between(all, lamp, sofa)``,
``exclude(dog|cat, on(all, bed))``, ``near(cup, leftmost(laptop))``).
"""

from __future__ import annotations

import numpy as np

from fastreasonseg.data.synthetic.filters import ObjectSet, Oracle, anchors, choose, object_sets, weighted
from fastreasonseg.data.synthetic.objects import Obj
from fastreasonseg.data.synthetic.phrasing import (
    NP_FRAMES,
    ORDINAL_SIDES,
    ORDINAL_WORDS,
    PLACES,
    RELATIONS,
    SUP_ADJ,
    SUP_POST,
    WHAT_FRAMES,
    Phrasebook,
)

SUPS = tuple(SUP_ADJ)
RELS = tuple(RELATIONS)
#: how often each operator is tried first: everyday questions ask "on" and "nearest" more than "inside"
REL_WEIGHTS = {"on": 3.0, "near": 2.0, "left": 1.5, "right": 1.5}
SUP_WEIGHTS = {"nearest": 2.0, "largest": 2.0, "farthest": 1.5, "leftmost": 1.5, "rightmost": 1.5}
Draft = tuple[str, tuple[int, ...], int, str, str]
"""(query, ids, level, reason, plan)."""


def _sup_np(book: Phrasebook, sup: str, s: ObjectSet) -> str:
    r = book.rng.random()
    if r < 0.4:
        return f"the {book.pick(f'supadj:{sup}', SUP_ADJ[sup])} {s.noun}"
    if r < 0.8 or s.kind == "all":
        return f"the {s.noun} {book.pick(f'suppost:{sup}', SUP_POST[sup])}"
    post = book.pick(f"suppost:{sup}", SUP_POST[sup])
    frames = [
        "of the {nouns}, the one {post}",
        "the one {post} among the {nouns}",
        "out of all the {nouns}, whichever is {post}",
        "of the {nouns}, the one {post}",
    ]
    frame = book.pick("sup:of", frames)
    return frame.format(nouns=s.nouns, post=post)


def _frame(book: Phrasebook, np_text: str) -> str:
    q = book.pick("frame:np", NP_FRAMES).format(np=np_text)
    return q[0].upper() + q[1:] if q[0].islower() and q.endswith((".", "?")) else q


class SpatialQueries:
    """Spatial query drafts over one image scene."""

    def draft(
        self, rng: np.random.Generator, objs: list[Obj], level: int, book: Phrasebook, oracle: Oracle, no_target: bool
    ) -> Draft | None:
        sets = object_sets(objs, oracle, book)
        refs = anchors(objs, oracle)
        fns = {
            1: [self.sup_all, self.rel_all, self.region, self.support],
            2: [self.sup_set, self.rel_set, self.ordinal],
        }
        fns[2].append(self.closest)
        fns[3] = [self.sup_rel, self.between, self.exclude_rel, self.nested_anchor, self.ordinal_rel]
        if no_target:
            fns = {1: [self.rel_all], 2: [self.rel_set], 3: [self.exclude_rel]}
        for fn in choose(rng, fns[level]):
            d = fn(rng, objs, sets, refs, book, oracle, no_target)
            if d is not None:
                return d
        return None

    # ------------------------------------------------------------------ L1
    def sup_all(self, rng, objs, sets, refs, book, oracle, no_target) -> Draft | None:
        everything = next((s for s in sets if s.kind == "all"), None)
        if everything is None or len(everything.members) < 3:
            return None
        for sup in weighted(rng, list(SUPS), SUP_WEIGHTS):
            ids = oracle(f"{sup}(all)")
            if ids:
                if rng.random() < 0.4:
                    post = book.pick(f"suppost:{sup}", SUP_POST[sup])
                    if not post.startswith(("that", "taking")):
                        q = book.pick("frame:what", WHAT_FRAMES).format(pred=post)
                        return q, ids, 1, f"{sup} of all", f"{sup}(all)"
                return _frame(book, _sup_np(book, sup, everything)), ids, 1, f"{sup} of all", f"{sup}(all)"
        return None

    def rel_all(self, rng, objs, sets, refs, book, oracle, no_target) -> Draft | None:
        for ref in choose(rng, refs):
            for rel in weighted(rng, list(RELS), REL_WEIGHTS):
                plan = f"{rel}(all, {ref.true_label})"
                ids = oracle(plan)
                if ids is None or bool(ids) == no_target:
                    continue
                phrase = book.pick(f"rel:{rel}", RELATIONS[rel])
                q = book.pick("frame:what", WHAT_FRAMES).format(pred=f"{phrase} the {ref.true_label}")
                return q, ids, 1, f"all {rel} {ref.true_label}", plan
        return None

    def support(self, rng, objs, sets, refs, book, oracle, no_target) -> Draft | None:
        """What an object rests on ("what is the cup sitting on?"): ``on`` read backwards."""
        for ref in choose(rng, refs):
            plan = f"holds(all, {ref.true_label})"
            ids = oracle(plan)
            if not ids or len(ids) > 2:
                continue
            frames = [
                "What is the {x} sitting on?",
                "What's the {x} resting on?",
                "Which thing is the {x} on?",
                "what is holding up the {x}",
                "Show me what the {x} is placed on.",
                "What is the {x} lying on top of?",
                "Find whatever the {x} stands on.",
                "Segment the thing supporting the {x}.",
            ]
            q = book.pick("frame:support", frames).format(x=ref.true_label)
            return q, ids, 1, f"all that {ref.true_label} is on", plan
        return None

    def region(self, rng, objs, sets, refs, book, oracle, no_target) -> Draft | None:
        for place in choose(rng, list(PLACES)):
            plan = f"at(all, {place})"
            ids = oracle(plan)
            if not ids or len(ids) > 2:
                continue
            q = book.pick("frame:what", WHAT_FRAMES).format(pred=book.pick(f"at:{place}", PLACES[place]))
            return q, ids, 1, f"all at {place}", plan
        return None

    # ------------------------------------------------------------------ L2
    def sup_set(self, rng, objs, sets, refs, book, oracle, no_target) -> Draft | None:
        for s in choose(rng, [s for s in sets if s.kind != "all" and len(s.members) >= 2]):
            for sup in weighted(rng, list(SUPS), SUP_WEIGHTS):
                plan = f"{sup}({s.plan})"
                ids = oracle(plan)
                if ids and ids != oracle(f"{sup}(all)"):  # the set matters
                    return _frame(book, _sup_np(book, sup, s)), ids, 2, f"{sup} of {s.canon}", plan
        return None

    def rel_set(self, rng, objs, sets, refs, book, oracle, no_target) -> Draft | None:
        for ref in choose(rng, refs):
            for s in choose(rng, [s for s in sets if s.kind != "all" and ref.id not in s.members]):
                for rel in weighted(rng, list(RELS), REL_WEIGHTS):
                    plan = f"{rel}({s.plan}, {ref.true_label})"
                    ids = oracle(plan)
                    if (
                        ids is None
                        or bool(ids) == no_target
                        or (ids and ids == oracle(f"{rel}(all, {ref.true_label})"))
                    ):
                        continue
                    phrase = book.pick(f"rel:{rel}", RELATIONS[rel])
                    np_text = f"{s.np(max(1, len(ids)))} {phrase} the {ref.true_label}"
                    reason = f"{s.canon} {rel} {ref.true_label}"
                    return _frame(book, np_text), ids, 2, reason, plan
        return None

    def ordinal(self, rng, objs, sets, refs, book, oracle, no_target) -> Draft | None:
        for s in choose(rng, [s for s in sets if len(s.members) >= 3]):
            sup = str(rng.choice(["leftmost", "rightmost"]))
            k = int(rng.choice([2, 2, 3])) if len(s.members) >= 3 else 2
            plan = f"{sup}({s.plan}, {k})"
            ids = oracle(plan)
            if not ids:
                continue
            word = book.pick(f"ord:{k}", ORDINAL_WORDS[k])
            side = book.pick(f"side:{sup}", ORDINAL_SIDES[sup])
            np_text = f"the {word} {s.noun} {side}"
            return _frame(book, np_text), ids, 2, f"{k}th {sup} of {s.canon}", plan
        return None

    def ordinal_rel(self, rng, objs, sets, refs, book, oracle, no_target) -> Draft | None:
        """The k-th from one side among the objects in a relation ("the second book from the left on the cart")."""
        for ref in choose(rng, refs):
            for s in choose(rng, [s for s in sets if ref.id not in s.members and len(s.members) >= 3]):
                for rel in weighted(rng, list(RELS), REL_WEIGHTS):
                    inner = oracle(f"{rel}({s.plan}, {ref.true_label})")
                    if not inner or len(inner) < 2 or len(inner) == len(s.members):
                        continue
                    sup, k = str(rng.choice(["leftmost", "rightmost"])), int(rng.choice([1, 2, 2]))
                    plan = (
                        f"{sup}({rel}({s.plan}, {ref.true_label}), {k})"
                        if k > 1
                        else f"{sup}({rel}({s.plan}, {ref.true_label}))"
                    )
                    ids = oracle(plan)
                    if not ids:
                        continue
                    phrase = book.pick(f"rel:{rel}", RELATIONS[rel])
                    side = book.pick(f"side:{sup}", ORDINAL_SIDES[sup])
                    word = book.pick(f"ord:{k}", ORDINAL_WORDS[k]) if k > 1 else "first"
                    np_text = f"the {word} {s.noun} {side} {phrase} the {ref.true_label}"
                    return _frame(book, np_text), ids, 3, f"{k}th {sup} of {s.canon} {rel} {ref.true_label}", plan
        return None

    def closest(self, rng, objs, sets, refs, book, oracle, no_target) -> Draft | None:
        for ref in choose(rng, refs):
            for s in choose(rng, [s for s in sets if ref.id not in s.members and len(s.members) >= 2]):
                plan = f"closest_to({s.plan}, {ref.true_label})"
                ids = oracle(plan)
                if not ids:
                    continue
                phrase = book.pick("rel:closest", ["closest to", "nearest to", "nearest", "closest to where the"])
                ref_np = f"{ref.true_label} is" if phrase.endswith("the") else f"the {ref.true_label}"
                np_text = f"the {s.noun} {phrase} {ref_np}"
                return _frame(book, np_text), ids, 2, f"{s.canon} closest to {ref.true_label}", plan
        return None

    # ------------------------------------------------------------------ L3
    def sup_rel(self, rng, objs, sets, refs, book, oracle, no_target) -> Draft | None:
        for ref in choose(rng, refs):
            for s in choose(rng, [s for s in sets if ref.id not in s.members]):
                for rel in weighted(rng, list(RELS), REL_WEIGHTS):
                    inner = oracle(f"{rel}({s.plan}, {ref.true_label})")
                    if not inner or len(inner) < 2:
                        continue
                    sup = str(rng.choice(list(SUPS)))
                    plan = f"{sup}({rel}({s.plan}, {ref.true_label}))"
                    ids = oracle(plan)
                    if not ids or ids == oracle(f"{sup}({s.plan})"):
                        continue  # the relation must matter
                    phrase = book.pick(f"rel:{rel}", RELATIONS[rel])
                    group = f"the {s.nouns} {phrase} the {ref.true_label}"
                    if rng.random() < 0.5:
                        adj = book.pick(f"supadj:{sup}", SUP_ADJ[sup])
                        np_text = f"the {adj} of {group}"
                    else:
                        np_text = f"the one {book.pick(f'suppost:{sup}', SUP_POST[sup])} among {group}"
                    reason = f"{sup} of {s.canon} {rel} {ref.true_label}"
                    return _frame(book, np_text), ids, 3, reason, plan
        return None

    def between(self, rng, objs, sets, refs, book, oracle, no_target) -> Draft | None:
        pairs = [(a, b) for a in refs for b in refs if a.id < b.id]
        for a, b in choose(rng, pairs):
            for s in choose(rng, sets):
                plan = f"between({s.plan}, {a.true_label}, {b.true_label})"
                ids = oracle(plan)
                if not ids or len(ids) > 3:
                    continue
                np_text = f"{s.np(len(ids))} between the {a.true_label} and the {b.true_label}"
                reason = f"{s.canon} between {a.true_label} and {b.true_label}"
                return _frame(book, np_text), ids, 3, reason, plan
        return None

    def exclude_rel(self, rng, objs, sets, refs, book, oracle, no_target) -> Draft | None:
        for ref in choose(rng, refs):
            for s in choose(
                rng, [s for s in sets if s.kind != "all" and ref.id not in s.members and len(s.members) > 1]
            ):
                for rel in weighted(rng, list(RELS), REL_WEIGHTS):
                    inner = oracle(f"{rel}(all, {ref.true_label})")
                    if not inner or not set(inner) & set(s.members):
                        continue  # the negation must remove something
                    plan = f"exclude({s.plan}, {rel}(all, {ref.true_label}))"
                    ids = oracle(plan)
                    if ids is None or bool(ids) == no_target:
                        continue
                    phrase = book.pick(f"rel:{rel}", RELATIONS[rel])
                    verb = "isn't" if len(ids) == 1 else "aren't"
                    np_text = f"{s.np(max(1, len(ids)))} that {verb} {phrase} the {ref.true_label}"
                    return _frame(book, np_text), ids, 3, f"{s.canon}, not {rel} {ref.true_label}", plan
        return None

    def nested_anchor(self, rng, objs, sets, refs, book, oracle, no_target) -> Draft | None:
        """An anchor named by its position among objects of one label ("the cup next to the left laptop")."""
        dup = [s for s in sets if s.kind == "label" and len(s.members) >= 2]
        for d in choose(rng, dup):
            for sup in choose(rng, ["leftmost", "rightmost", "nearest", "farthest", "largest", "smallest"]):
                anchor = f"{sup}({d.plan})"
                if not oracle(anchor):
                    continue
                for s in choose(rng, [s for s in sets if not set(s.members) & set(d.members)]):
                    for rel in weighted(rng, list(RELS), REL_WEIGHTS):
                        plan = f"{rel}({s.plan}, {anchor})"
                        ids = oracle(plan)
                        if not ids:
                            continue
                        phrase = book.pick(f"rel:{rel}", RELATIONS[rel])
                        adj = book.pick(f"supadj:{sup}", SUP_ADJ[sup])
                        np_text = f"{s.np(len(ids))} {phrase} the {adj} {d.noun}"
                        return _frame(book, np_text), ids, 3, f"{s.canon} {rel} {sup} {d.canon}", plan
        return None
