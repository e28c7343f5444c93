"""Semantic queries: knowledge about objects (a use, a trait, a property, a category; two facts; a comparison or
a negation). The plan is the names of the objects meant, as the view shows them (``mug``, ``apple|bread``); the
reason says which kinds of objects the words mean ("drink hot coffee: mug"). Knowing that is the student's job;
the executor then grounds the names to ids.

Levels: L1 one fact, L2 two facts that must both hold (a category and a use...), L3 a comparison over knowledge
(the biggest animal in real life) or a negation (edible things that are not fruit). A query is only asked when no
distractor is a same-group cousin of a target (a use of one cup plausibly fits another) nor wears a wrong label
that would satisfy the fact.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fastreasonseg.data.synthetic.objects import Obj
from fastreasonseg.data.synthetic.phrasing import Phrasebook
from fastreasonseg.knowledge import SIZE_CLASSES, Entry, KnowledgeBase, article

#: category of the knowledge base -> (singular noun, plural noun) used in queries
CATEGORY_NOUNS: dict[str, tuple[str, str]] = {
    "kitchenware": ("kitchen utensil", "kitchen utensils"),
    "appliance": ("appliance", "appliances"),
    "furniture": ("piece of furniture", "pieces of furniture"),
    "electronics": ("electronic device", "electronic devices"),
    "fruit": ("fruit", "pieces of fruit"),
    "vegetable": ("vegetable", "vegetables"),
    "food": ("dish or snack", "dishes and snacks"),
    "animal": ("animal", "animals"),
    "person": ("person", "people"),
    "vehicle": ("vehicle", "vehicles"),
    "tool": ("tool", "tools"),
    "clothing": ("piece of clothing", "pieces of clothing"),
    "bag": ("bag or container", "bags and containers"),
    "office": ("office supply", "office supplies"),
    "bathroom": ("bathroom item", "bathroom items"),
    "sports": ("piece of sports gear", "pieces of sports gear"),
    "toy": ("toy", "toys"),
    "instrument": ("musical instrument", "musical instruments"),
    "plant": ("plant", "plants"),
}
#: property -> (adjective phrase for "which things are ...", short word for reasons)
PROPERTY_PHRASES: dict[str, tuple[str, str]] = {
    "edible": ("edible", "edible"),
    "alive": ("alive", "alive"),
    "soft": ("soft", "soft"),
    "sharp": ("sharp enough to cut me", "sharp"),
    "electric": ("powered by electricity", "electric"),
    "hot": ("hot or able to get hot", "hot"),
    "container": ("able to hold things inside", "containers"),
    "worn": ("something people wear", "worn"),
}
_CAT_PROP_PHRASES = {"worn": "worn by people", "sharp": "sharp", "electric": "electric"}

# The last template of every kind is held out (val/test only).
TEMPLATES: dict[str, list[str]] = {
    "use": [
        "What would I use to {use}?",
        "I want to {use}. Which object should I grab?",
        "Which thing here could help me {use}?",
        "Point at what someone would use to {use}.",
        "If I needed to {use}, what here would do the job?",
        "something to {use}",
        "I'd like to {use} - what can I use?",
        "What's good for when you want to {use}?",
        "got anything I could {use} with?",
        "Show me what you'd {use} with.",
        "Which of these lets me {use}?",
        "I have to {use}; what should I reach for?",
        "Any idea what I'd need to {use}?",
    ],
    "trait": [
        "Which one {trait}?",
        "Find the thing that {trait}.",
        "Show me what {trait}.",
        "the one that {trait}",
        "Something here {trait} - which is it?",
        "Point out whatever {trait}.",
        "What here {trait}?",
        "I heard one of these {trait}. Which?",
        "Among these objects, which {trait}?",
    ],
    "prop": [
        "Which objects are {prop}?",
        "Select everything that is {prop}.",
        "Mark all the things here that are {prop}.",
        "anything {prop}",
        "Show me all the stuff that's {prop}.",
        "Which of these would you call {prop}?",
        "Find whatever here is {prop}.",
        "What in this scene is {prop}?",
    ],
    "cat": [
        "Select all the {cats}.",
        "Where are the {cats}?",
        "Segment every one of the {cats}.",
        "all {cats}",
        "Show me the {cats} here.",
        "Find any {cats} in the picture.",
        "I only care about the {cats} - mark them.",
        "Which things here are {cats}?",
        "Highlight the {cats} in this scene.",
    ],
    "cat_use": [
        "Which {cat} could I use to {use}?",
        "I need {a_cat} to {use}. Which one?",
        "Of the {cats} here, which would help me {use}?",
        "the {cat} for when I want to {use}",
        "Which of the {cats} is meant to {use}?",
        "Show me the {cat} you'd {use} with.",
        "Find the {cat} that is good to {use}.",
    ],
    "cat_trait": [
        "Which {cat} {trait}?",
        "Find the {cat} that {trait}.",
        "Of the {cats}, which one {trait}?",
        "the {cat} that {trait}",
        "One of the {cats} {trait}. Which?",
        "Segment the {cat} here that {trait}.",
    ],
    "cat_prop": [
        "Which {cats} here are {prop}?",
        "Select the {cats} that are {prop}.",
        "Find every {cat} that is {prop}.",
        "{cats} that are {prop}",
        "Show me only the {cats} that are {prop}.",
        "Of the {cats} in view, which are {prop}?",
    ],
    "prop_use": [
        "Which {prop} thing could I use to {use}?",
        "I want something {prop} to {use}. What fits?",
        "something {prop} I could {use} with",
        "Is there anything {prop} here that lets me {use}?",
        "Find an object that is {prop} and lets me {use}.",
    ],
    "bigger_real": [
        "Which {cat} here is the {sizeword} in real life?",
        "Of the {cats} in the scene, which is actually the {sizeword}?",
        "the {cat} that is really the {sizeword}",
        "Forget how big they look: which {cat} is the {sizeword}?",
        "Ignoring how big they look, which {cat} is the {sizeword}?",
    ],
    "prop_not_cat": [
        "Which things are {prop} but are not {cats}?",
        "Select what is {prop}, except the {cats}.",
        "everything {prop} apart from the {cats}",
        "Show me the {prop} things that aren't {cats}.",
        "Find everything {prop} that is not one of the {cats}.",
    ],
}


def names_of(objs: list[Obj]) -> list[str]:
    """The names a plan writes for objects: each one's right name as the view shows it, no duplicates."""
    return list(dict.fromkeys(o.true_label for o in sorted(objs, key=lambda o: o.id)))


class SemanticQueries:
    """Semantic query drafts for a scene's objects: ``(query, ids, level, reason, plan names, kind, facts)``."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def _template(self, book: Phrasebook, kind: str) -> str:
        return book.pick(f"sem:{kind}", TEMPLATES[kind])

    @staticmethod
    def _clean(objs: list[Obj], targets: list[Obj], holds: Callable[[Entry], bool], kb: KnowledgeBase) -> bool:
        """No non-target is a same-group cousin of a target, nor wears a wrong label that would satisfy the fact."""
        groups = {t.entry.group for t in targets}
        tids = {t.id for t in targets}
        for o in objs:
            if o.id in tids:
                continue
            if o.entry.group in groups:
                return False
            if o.mislabelled and o.label in kb and holds(kb[o.label]):
                return False
        return True

    # ------------------------------------------------------------------ L1
    def use(self, rng, objs, book, ctx, no_target=False) -> tuple | None:
        kb = self.kb
        if no_target:
            present_groups = {o.entry.group for o in objs}
            cands = [
                u
                for u in kb.all_uses
                if ctx.use_ok(u)
                and not any(u in o.entry.uses for o in objs)
                and not any(kb[k].group in present_groups for k in kb.with_use(u))
            ]
            if not cands:
                return None
            use = str(rng.choice(cands))
            targets: list[Obj] = []
            names = kb.with_use(use)[:2]
        else:
            cands = sorted({u for o in objs for u in o.entry.uses if ctx.use_ok(u)})
            if not cands:
                return None
            use = str(rng.choice(cands))
            targets = [o for o in objs if use in o.entry.uses]
            if not self._clean(objs, targets, lambda e: use in e.uses, kb):
                return None
            names = names_of(targets)
        q = self._template(book, "use").format(use=use)
        return q, targets, 1, f"{use}: {', '.join(names)}", names, [f"use:{use}"]

    def trait(self, rng, objs, book, ctx, no_target=False) -> tuple | None:
        kb = self.kb
        if no_target:
            groups = {o.entry.group for o in objs}
            cands = [
                t
                for t in kb.all_traits
                if ctx.trait_ok(t)
                and not any(t in o.entry.traits for o in objs)
                and not any(t in e.traits and e.group in groups for e in kb.entries.values())
            ]
            if not cands:
                return None
            trait = str(rng.choice(cands))
            targets: list[Obj] = []
            names = [e.key for e in kb.entries.values() if trait in e.traits][:2]
        else:
            cands = sorted({t for o in objs for t in o.entry.traits if ctx.trait_ok(t)})
            if not cands:
                return None
            trait = str(rng.choice(cands))
            targets = [o for o in objs if trait in o.entry.traits]
            if not self._clean(objs, targets, lambda e: trait in e.traits, kb):
                return None
            names = names_of(targets)
        q = self._template(book, "trait").format(trait=trait)
        return q, targets, 1, f"{trait}: {', '.join(names)}", names, [f"trait:{trait}"]

    def prop(self, rng, objs, book, ctx, no_target=False) -> tuple | None:
        props = list(PROPERTY_PHRASES)
        rng.shuffle(props)
        for prop in props:
            targets = [o for o in objs if o.entry.has(prop)]
            if not targets or no_target:
                continue
            kb = self.kb
            if any(o.mislabelled and o.label in kb and kb[o.label].has(prop) for o in objs if o not in targets):
                continue
            phrase, word = PROPERTY_PHRASES[prop]
            q = self._template(book, "prop").format(prop=phrase)
            names = names_of(targets)
            return q, targets, 1, f"{word}: {', '.join(names)}", names, [f"prop:{prop}"]
        return None

    def cat(self, rng, objs, book, ctx, no_target=False) -> tuple | None:
        cats = list(CATEGORY_NOUNS)
        rng.shuffle(cats)
        kb = self.kb
        for cat in cats:
            targets = [o for o in objs if o.entry.category == cat]
            if bool(targets) == no_target:
                continue
            if any(o.mislabelled and o.label in kb and kb[o.label].category == cat for o in objs if o not in targets):
                continue
            _, cats_pl = CATEGORY_NOUNS[cat]
            q = self._template(book, "cat").format(cats=cats_pl)
            if targets:
                names = names_of(targets)
            else:
                names = [k for k in kb.keys if kb[k].category == cat][:2]
            return q, targets, 1, f"{cats_pl}: {', '.join(names)}", names, [f"cat:{cat}"]
        return None

    # ------------------------------------------------------------------ L2
    def two(self, rng, objs, book, ctx, no_target=False) -> tuple | None:
        """L2: a category and a use / trait, or a property and a use; each fact alone is not enough."""
        kinds = ["cat_use", "cat_trait", "prop_use", "cat_prop"]
        rng.shuffle(kinds)
        for kind in kinds:
            d = self._two_kind(rng, objs, book, ctx, kind, no_target)
            if d is not None:
                return d
        return None

    def _facts_for(self, kind: str, objs: list[Obj], ctx) -> tuple[list[str], Callable[[Entry], set]]:
        if kind == "cat_trait":
            return sorted({t for o in objs for t in o.entry.traits if ctx.trait_ok(t)}), lambda e: set(e.traits)
        if kind == "cat_prop":
            return sorted(PROPERTY_PHRASES), lambda e: set(e.properties)
        return sorted({u for o in objs for u in o.entry.uses if ctx.use_ok(u)}), lambda e: set(e.uses)

    def _two_kind(self, rng, objs, book, ctx, kind, no_target) -> tuple | None:
        if kind == "prop_use":
            firsts = [(p, lambda e, p=p: e.has(p)) for p in PROPERTY_PHRASES]
        else:
            cats = sorted({o.entry.category for o in objs} & set(CATEGORY_NOUNS))
            firsts = [(c, lambda e, c=c: e.category == c) for c in cats]
        rng.shuffle(firsts)
        facts, get = self._facts_for(kind, objs, ctx)
        for name, f1 in firsts:
            in1 = [o for o in objs if f1(o.entry)]
            if not in1:
                continue
            order = list(facts)
            rng.shuffle(order)
            for fact in order:
                targets = [o for o in in1 if fact in get(o.entry)]
                in2 = [o for o in objs if fact in get(o.entry)]
                if no_target:
                    if targets or not in2:
                        continue
                elif not targets or len(in2) == len(targets) or len(in1) == len(targets):
                    continue  # both facts must matter
                keep = [o for o in objs if o not in in2 or o in targets]
                if not self._clean(keep, targets, lambda e, fact=fact, f1=f1: fact in get(e) and f1(e), self.kb):
                    continue
                return self._two_draft(book, kind, name, fact, in1, targets)
        return None

    def _two_draft(self, book, kind, name, fact, in1, targets) -> tuple:
        tpl = self._template(book, kind)
        names = names_of(targets) or names_of(in1)[:2]
        if kind == "prop_use":
            _, word = PROPERTY_PHRASES[name]
            adj = word if name != "container" else "hollow"
            q = tpl.format(prop=adj, use=fact)
            reason = f"{word}, to {fact}: {', '.join(names)}"
            facts = [f"prop:{name}", f"use:{fact}"]
        elif kind == "cat_prop":
            cat, cats = CATEGORY_NOUNS[name]
            phrase, word = PROPERTY_PHRASES[fact]
            q = tpl.format(cat=cat, cats=cats, prop=_CAT_PROP_PHRASES.get(fact, phrase))
            reason = f"{word} {cats}: {', '.join(names)}"
            facts = [f"cat:{name}", f"prop:{fact}"]
        else:
            cat, cats = CATEGORY_NOUNS[name]
            field_name = "use" if kind == "cat_use" else "trait"
            q = tpl.format(cat=cat, cats=cats, a_cat=article(cat), **{field_name: fact})
            verb = f"to {fact}" if kind == "cat_use" else f"that {fact}"
            reason = f"{cats} {verb}: {', '.join(names)}"
            facts = [f"cat:{name}", f"{field_name}:{fact}"]
        return q, targets, 2, reason, names, facts

    # ------------------------------------------------------------------ L3
    def three(self, rng, objs, book, ctx, no_target=False) -> tuple | None:
        """L3: real-world size comparison within a category, or a property minus a category."""
        order = ["prop_not_cat"] if no_target else ["bigger_real", "prop_not_cat"]
        if not no_target and rng.random() < 0.5:
            order.reverse()
        for kind in order:
            d = self._bigger_real(rng, objs, book) if kind == "bigger_real" else self._prop_not_cat(rng, objs, book)
            if d is not None:
                return d
        return None

    def _bigger_real(self, rng, objs, book) -> tuple | None:
        cats = sorted({o.entry.category for o in objs} & set(CATEGORY_NOUNS))
        rng.shuffle(cats)
        for cat in cats:
            members = [o for o in objs if o.entry.category == cat and not o.mislabelled]
            if len({o.key for o in members}) < 2 or len(members) != len([o for o in objs if o.entry.category == cat]):
                continue
            big = rng.random() < 0.6
            rank = sorted(members, key=lambda o: SIZE_CLASSES.index(o.entry.size), reverse=big)
            if rank[0].entry.size == rank[1].entry.size:
                continue
            winner = [o for o in members if o.key == rank[0].key]
            sw = "biggest" if big else "smallest"
            c, cs = CATEGORY_NOUNS[cat]
            q = self._template(book, "bigger_real").format(cat=c, cats=cs, sizeword=sw)
            names = names_of(winner)
            reason = f"{cs}, {sw} in real life: {', '.join(names)}"
            return q, winner, 3, reason, names, [f"cat:{cat}", f"size:{sw}"]
        return None

    def _prop_not_cat(self, rng, objs, book) -> tuple | None:
        props = list(PROPERTY_PHRASES)
        rng.shuffle(props)
        for prop in props:
            having = [o for o in objs if o.entry.has(prop)]
            if not having or any(o.mislabelled for o in objs):
                continue
            cats = sorted({o.entry.category for o in having} & set(CATEGORY_NOUNS))
            rng.shuffle(cats)
            for cat in cats:
                targets = [o for o in having if o.entry.category != cat]
                if not targets or len(targets) == len(having):
                    continue
                phrase, word = PROPERTY_PHRASES[prop]
                _, cs = CATEGORY_NOUNS[cat]
                q = self._template(book, "prop_not_cat").format(prop=phrase, cats=cs)
                names = names_of(targets)
                reason = f"{word}, not {cs}: {', '.join(names)}"
                return q, targets, 3, reason, names, [f"prop:{prop}", f"not_cat:{cat}"]
        return None

    # ------------------------------------------------------------------ dispatch
    def draft(self, rng: np.random.Generator, objs: list[Obj], level: int, book: Phrasebook, ctx, no_target: bool):
        """One semantic draft of ``level`` (``None`` when the scene does not support one)."""
        if level == 1:
            fns = [self.use, self.trait, self.prop, self.cat]
            w = np.array([0.4, 0.2, 0.2, 0.2])
            order = [int(i) for i in rng.choice(len(fns), size=len(fns), replace=False, p=w)]
            if ctx.prefer_facts:
                order = sorted(order, key=lambda i: i >= 2)  # use / trait first, order kept
            for i in order:
                d = fns[i](rng, objs, book, ctx, no_target)
                if d is not None:
                    return d
            return None
        return (self.two if level == 2 else self.three)(rng, objs, book, ctx, no_target)
