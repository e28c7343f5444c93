"""Temporal queries (videos): track predicates (enters, leaves, approaches, moves left, stops, never moves...), track
superlatives (fastest, appears first), their compositions with named sets, and "X together with whatever is next
to it". As for spatial queries, the answer is the executor's on the gold plan, asked only when it does not change
with the tolerances.

L1: one predicate over every object (``leaves(all)``, ``fastest(all)``).
L2: a predicate over a named set (``recedes(dog)``), or an object and what stays next to it
(``union(cart, near(person, cart))``).
L3: two predicates (``leaves(moves_left(person))``), a superlative of a predicate (``appears_first(enters(person))``)
or a negation (``exclude(person, leaves(person))``).
"""

from __future__ import annotations

import numpy as np

from fastreasonseg.data.synthetic.filters import ObjectSet, Oracle, anchors, choose, object_sets, weighted
from fastreasonseg.data.synthetic.objects import Obj
from fastreasonseg.data.synthetic.phrasing import (
    MOTIONS,
    NP_FRAMES,
    TRACK_SUPS,
    WHAT_VERB_FRAMES,
    WHO_FRAMES,
    WHO_NOUNS,
    Phrasebook,
    motion_phrase,
)

PREDS = tuple(MOTIONS)
#: how often each predicate is tried first
PRED_WEIGHTS = {"enters": 1.5, "leaves": 1.5, "approaches": 1.5, "recedes": 1.5, "still": 1.5, "stops": 2.0}
PRED_WEIGHTS |= {"moves_up": 0.5, "moves_down": 0.5}
TSUPS = tuple(TRACK_SUPS)
#: predicates whose plural verb reads well after "don't"
NEGATABLE = ("enters", "leaves", "approaches", "recedes", "moves_left", "moves_right", "moves_up", "moves_down")
Draft = tuple[str, tuple[int, ...], int, str, str]


def _who(book: Phrasebook, s: ObjectSet, verb: tuple[str, str]) -> str:
    noun, nouns = s.noun, s.nouns
    if s.kind == "all":
        q = book.pick("frame:whatverb", WHAT_VERB_FRAMES)
        return q.format(verb=verb[0], verb_pl=verb[1])
    if s.canon.startswith("people") or s.noun == "person":
        noun, nouns = book.pick("noun:who", WHO_NOUNS) if book.rng.random() < 0.3 else (noun, nouns)
    q = book.pick("frame:who", WHO_FRAMES)
    if book.rng.random() < 0.25 and (s.noun == "person" or s.canon.startswith("people")):
        return f"Who {verb[0]}?"
    return q.format(noun=noun, nouns=nouns, verb=verb[0], verb_pl=verb[1])


class TemporalQueries:
    """Temporal query drafts over one video scene."""

    def draft(
        self, rng: np.random.Generator, objs: list[Obj], level: int, book: Phrasebook, oracle: Oracle, no_target: bool
    ) -> Draft | None:
        sets = object_sets(objs, oracle, book)
        fns = {
            1: [self.pred_all, self.pred_all, self.tsup_all],
            2: [self.pred_set, self.pred_set, self.tsup_set, self.together],
            3: [self.two_preds, self.sup_of_pred, self.exclude_pred],
        }
        if no_target:
            fns = {1: [self.pred_all], 2: [self.pred_set], 3: [self.two_preds]}
        for fn in choose(rng, fns[level]):
            d = fn(rng, objs, sets, book, oracle, no_target)
            if d is not None:
                return d
        return None

    @staticmethod
    def _all(sets: list[ObjectSet]) -> ObjectSet | None:
        return next((s for s in sets if s.kind == "all"), None)

    # ------------------------------------------------------------------ L1
    def pred_all(self, rng, objs, sets, book, oracle, no_target) -> Draft | None:
        everything = self._all(sets)
        if everything is None:
            return None
        for pred in weighted(rng, list(PREDS), PRED_WEIGHTS):
            ids = oracle(f"{pred}(all)")
            if ids is None or bool(ids) == no_target or len(ids) == len(everything.members):
                continue
            verb = motion_phrase(book, pred)
            return _who(book, everything, verb), ids, 1, f"all that {pred}", f"{pred}(all)"
        return None

    def tsup_all(self, rng, objs, sets, book, oracle, no_target) -> Draft | None:
        everything = self._all(sets)
        if everything is None or len(everything.members) < 2:
            return None
        for sup in choose(rng, list(TSUPS)):
            ids = oracle(f"{sup}(all)")
            if not ids:
                continue
            verb = book.pick(f"tsup:{sup}", TRACK_SUPS[sup])
            return _who(book, everything, verb), ids, 1, f"{sup} of all", f"{sup}(all)"
        return None

    # ------------------------------------------------------------------ L2
    def pred_set(self, rng, objs, sets, book, oracle, no_target) -> Draft | None:
        for s in choose(rng, [s for s in sets if s.kind != "all"]):
            for pred in weighted(rng, list(PREDS), PRED_WEIGHTS):
                plan = f"{pred}({s.plan})"
                ids = oracle(plan)
                if ids is None or bool(ids) == no_target:
                    continue
                if ids and ids == oracle(f"{pred}(all)"):
                    continue  # the set must matter
                verb = motion_phrase(book, pred)
                return _who(book, s, verb), ids, 2, f"{s.canon} that {pred}", plan
        return None

    def tsup_set(self, rng, objs, sets, book, oracle, no_target) -> Draft | None:
        for s in choose(rng, [s for s in sets if s.kind != "all" and len(s.members) >= 2]):
            for sup in choose(rng, list(TSUPS)):
                plan = f"{sup}({s.plan})"
                ids = oracle(plan)
                if not ids or ids == oracle(f"{sup}(all)"):
                    continue
                verb = book.pick(f"tsup:{sup}", TRACK_SUPS[sup])
                return _who(book, s, verb), ids, 2, f"{sup} of {s.canon}", plan
        return None

    def together(self, rng, objs, sets, book, oracle, no_target) -> Draft | None:
        """An object plus what stays next to it ("the cart and whoever pushes it")."""
        for ref in choose(rng, anchors(objs, oracle)):
            for s in choose(rng, [s for s in sets if s.kind != "all" and ref.id not in s.members]):
                near = oracle(f"near({s.plan}, {ref.true_label})")
                if not near or len(near) > 2:
                    continue
                plan = f"union({ref.true_label}, near({s.plan}, {ref.true_label}))"
                ids = oracle(plan)
                if not ids:
                    continue
                link = book.pick(
                    "together",
                    [
                        "and the {x} next to it",
                        "together with the {x} beside it",
                        "plus the {x} right by it",
                        "and whichever {x} stays close to it",
                        "along with the {x} near it",
                    ],
                )
                np_text = f"the {ref.true_label} {link.format(x=s.noun if len(near) == 1 else s.nouns)}"
                q = book.pick("frame:np", NP_FRAMES).format(np=np_text)
                return q, ids, 2, f"{ref.true_label} and {s.canon} near it", plan
        return None

    # ------------------------------------------------------------------ L3
    def two_preds(self, rng, objs, sets, book, oracle, no_target) -> Draft | None:
        for s in choose(rng, sets):
            for p1 in weighted(rng, list(PREDS), PRED_WEIGHTS):
                first = oracle(f"{p1}({s.plan})")
                if not first or len(first) < 2:
                    continue
                for p2 in choose(rng, [p for p in PREDS if p != p1]):
                    plan = f"{p2}({p1}({s.plan}))"
                    ids = oracle(plan)
                    if ids is None or bool(ids) == no_target or ids == first:
                        continue
                    if ids and ids == oracle(f"{p2}({s.plan})"):
                        continue  # both predicates must matter
                    v1 = motion_phrase(book, p1)
                    v2 = motion_phrase(book, p2)
                    verb = (f"{v1[0]} and {v2[0]}", f"{v1[1]} and {v2[1]}")
                    return _who(book, s, verb), ids, 3, f"{s.canon} that {p1} and {p2}", plan
        return None

    def sup_of_pred(self, rng, objs, sets, book, oracle, no_target) -> Draft | None:
        for s in choose(rng, sets):
            for pred in weighted(rng, list(PREDS), PRED_WEIGHTS):
                group = oracle(f"{pred}({s.plan})")
                if not group or len(group) < 2:
                    continue
                for sup in choose(rng, list(TSUPS)):
                    plan = f"{sup}({pred}({s.plan}))"
                    ids = oracle(plan)
                    if not ids or ids == oracle(f"{sup}({s.plan})"):
                        continue
                    v = motion_phrase(book, pred)
                    sv = book.pick(f"tsup:{sup}", TRACK_SUPS[sup])
                    frame = book.pick(
                        "frame:supofpred",
                        [
                            "Of the {nouns} that {v}, which one {sv}?",
                            "Among the {nouns} that {v}, show me the one that {sv}.",
                            "the {noun} that {sv} of those that {v}",
                            "Which {noun} that {v1} {sv}?",
                            "Of all the {nouns} that {v}, find the one that {sv}.",
                        ],
                    )
                    q = frame.format(nouns=s.nouns, noun=s.noun, v=v[1], v1=v[0], sv=sv[0])
                    return q, ids, 3, f"{sup} of {s.canon} that {pred}", plan
        return None

    def exclude_pred(self, rng, objs, sets, book, oracle, no_target) -> Draft | None:
        for s in choose(rng, [s for s in sets if s.kind != "all" and len(s.members) >= 2]):
            for pred in choose(rng, list(NEGATABLE)):
                inner = oracle(f"{pred}({s.plan})")
                if not inner or len(inner) == len(s.members):
                    continue
                plan = f"exclude({s.plan}, {pred}({s.plan}))"
                ids = oracle(plan)
                if not ids:
                    continue
                v = motion_phrase(book, pred)
                frame = book.pick(
                    "frame:notpred",
                    [
                        "the {nouns} that don't {v}",
                        "Which {nouns} don't {v}?",
                        "Show me every {noun} that doesn't {v}.",
                        "Find the {nouns} that never {v}.",
                        "Segment the {nouns} that do not {v}.",
                    ],
                )
                q = frame.format(nouns=s.nouns, noun=s.noun, v=v[1])
                return q, ids, 3, f"{s.canon} that do not {pred}", plan
        return None
