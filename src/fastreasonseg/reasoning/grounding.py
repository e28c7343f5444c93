"""Grounding names to objects: what ``cup|mug`` in a plan selects (docs/design.md, "The plan language").

A plan names objects the way people do ("mug", "the cups", "a pet"); the twin has a detector's labels. Each name
is matched against every object in this order, and the first rule that matches anything decides:

1. **label**: the normalised name equals the object's label, or one is a word-suffix of the other
   ("mug" ~ "coffee mug", "ironing board" ~ "board"). Normalising lower-cases, drops articles and possessives
   and makes every word singular ("the cups" -> "cup").
2. **alternative label**: the same on the detector's alternative labels.
3. **synonym**: name and label are names of one entry of the knowledge base (``assets/knowledge.json``:
   "cup" ~ "mug", "couch" ~ "sofa").
4. **category**: the name is a category word ("animal", "pet", "person", "clothes", "toy", "instrument"...) and the
   label names a member (knowledge-base categories and the labeller's vocabulary groups).
5. **similar name**: all-MiniLM-L6-v2 cosine similarity between the name and a label of at least
   ``threshold`` (0.75; "kid" ~ "child", "bike" ~ "bicycle"), keeping the labels within ``margin`` of the best.
   The sentence model is loaded on first use only, so plans whose names appear in the twin never load it.

Detector junk (``object``, ``shadow``... with a low score) matches rules 1-2 only. Nothing matched: the selection is
empty and says "no object called 'laptop'".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import numpy as np

from fastreasonseg.reasoning.tools.base import Selection
from fastreasonseg.reasoning.tools.scene import Scene

SIMILARITY_THRESHOLD = 0.75
SIMILARITY_MARGIN = 0.05
_ARTICLES = ("the ", "a ", "an ", "some ", "any ", "my ", "your ", "their ", "his ", "her ")
_IRREGULAR = {
    "people": "person",
    "children": "child",
    "men": "man",
    "women": "woman",
    "mice": "mouse",
    "geese": "goose",
    "feet": "foot",
    "teeth": "tooth",
    "knives": "knife",
    "leaves": "leaf",
    "shelves": "shelf",
    "loaves": "loaf",
    "scarves": "scarf",
    "wolves": "wolf",
    "clothes": "clothes",
    "glasses": "glasses",
    "pants": "pants",
    "jeans": "jeans",
    "shorts": "shorts",
    "scissors": "scissors",
    "headphones": "headphones",
    "chopsticks": "chopsticks",
    "skis": "ski",
}
_KEEP_S = ("ss", "us", "is", "ous", "ics")

#: category word -> (knowledge-base categories, labeller vocabulary groups)
CATEGORY_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "person": (("person",), ("people",)),
    "human": (("person",), ("people",)),
    "someone": (("person",), ("people",)),
    "animal": (("animal",), ("animals",)),
    "pet": (("animal",), ("animals",)),
    "creature": (("animal",), ("animals",)),
    "vehicle": (("vehicle",), ("vehicles",)),
    "food": (("food", "fruit", "vegetable"), ("food",)),
    "snack": (("food", "fruit"), ()),
    "fruit": (("fruit",), ()),
    "vegetable": (("vegetable",), ()),
    "furniture": (("furniture",), ("furniture",)),
    "clothing": (("clothing",), ("clothing", "accessories")),
    "clothes": (("clothing",), ("clothing", "accessories")),
    "garment": (("clothing",), ("clothing",)),
    "toy": (("toy",), ()),
    "instrument": (("instrument",), ()),
    "musical instrument": (("instrument",), ()),
    "tool": (("tool",), ("tools",)),
    "device": (("electronics", "appliance"), ("electronics",)),
    "electronic device": (("electronics",), ("electronics",)),
    "electronics": (("electronics",), ("electronics",)),
    "appliance": (("appliance",), ()),
    "kitchenware": (("kitchenware",), ("kitchen",)),
    "utensil": (("kitchenware",), ()),
    "kitchen utensil": (("kitchenware",), ()),
    "plant": (("plant",), ()),
    "sports gear": (("sports",), ("sports",)),
    "office supply": (("office",), ("office",)),
    "stationery": (("office",), ()),
    "bathroom item": (("bathroom",), ("bathroom",)),
    "toiletry": (("bathroom",), ()),
}


_PLURAL_ONLY = {"glasses": "glass"}
"""Words kept as they are alone (eyewear) but made singular after another word ("wine glasses")."""


def singular(word: str, *, compound: bool = False) -> str:
    """A word made singular by simple English rules (``cups`` -> ``cup``, ``boxes`` -> ``box``); ``compound``: the
    last word of a longer name ("wine glasses" -> "wine glass", while "glasses" alone stays eyewear)."""
    if compound and word in _PLURAL_ONLY:
        return _PLURAL_ONLY[word]
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or not word.endswith("s") or word.endswith(_KEEP_S):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    if word.endswith("oes") and len(word) > 4:
        return word[:-2]
    return word[:-1]


def normalise(name: str) -> str:
    """Lower case, no articles or possessives, single spaces, every word singular."""
    s = " ".join(name.lower().replace("_", " ").split())
    s = re.sub(r"'s\b", "", s)
    changed = True
    while changed:
        changed = False
        for a in _ARTICLES:
            if s.startswith(a):
                s, changed = s[len(a) :], True
    words = s.split()
    return " ".join(singular(w, compound=len(words) > 1) for w in words)


def _suffix_match(a: str, b: str) -> bool:
    wa, wb = a.split(), b.split()
    if not wa or not wb:
        return False
    short, long_ = (wa, wb) if len(wa) <= len(wb) else (wb, wa)
    return long_[-len(short) :] == short


class Embedder(Protocol):
    """Sentence embeddings, L2-normalised: ``(n, d)`` for ``n`` texts (:class:`~.embeddings.SentenceEmbedder`)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Lexicon:
    """Names that mean the same object, and the members of each category (normalised names)."""

    synonyms: dict[str, frozenset[str]]
    """name -> every name of the knowledge-base entries it is a name of."""
    categories: dict[str, frozenset[str]]
    """category word -> member names."""

    def same(self, a: str, b: str) -> bool:
        return b in self.synonyms.get(a, ())

    def members(self, word: str) -> frozenset[str] | None:
        return self.categories.get(word)


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The lexicon of the shipped knowledge base and the labeller's vocabulary groups."""
    from fastreasonseg.knowledge import load_knowledge
    from fastreasonseg.perception.vocabulary import _GROUPS

    kb = load_knowledge()
    syn: dict[str, set[str]] = {}
    by_cat: dict[str, set[str]] = {}
    for key in kb.keys:
        e = kb[key]
        names = {normalise(n) for n in e.names}
        for n in names:
            syn.setdefault(n, set()).update(names)
        by_cat.setdefault(e.category, set()).update(names)
    groups = {g: {normalise(n) for n in members.split(",") if n.strip()} for g, members in _GROUPS.items()}
    cats: dict[str, frozenset[str]] = {}
    for word, (kb_cats, vocab_groups) in CATEGORY_WORDS.items():
        members: set[str] = set()
        for c in kb_cats:
            members |= by_cat.get(c, set())
        for g in vocab_groups:
            members |= groups.get(g, set())
        cats[normalise(word)] = frozenset(members)
    return Lexicon({k: frozenset(v) for k, v in syn.items()}, cats)


@dataclass
class NameMatcher:
    """Matches plan names to a scene's objects (see the module docstring)."""

    embedder: Embedder | None = None
    """Sentence embeddings for rule 5 (``None``: built on first use from the shipped MiniLM, if installed)."""
    lexicon: Lexicon | None = None
    threshold: float = SIMILARITY_THRESHOLD
    margin: float = SIMILARITY_MARGIN
    use_embeddings: bool = True
    notes: list[str] = field(default_factory=list)
    """What the fuzzy rules matched ("'kid' ~ 4 child (similar name)"), for the result's notes."""
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def reset(self) -> None:
        """Forget per-scene state (the embedding cache is per text and survives)."""
        self.notes = []

    def _lex(self) -> Lexicon:
        if self.lexicon is None:
            self.lexicon = default_lexicon()
        return self.lexicon

    def _embed(self, texts: list[str]) -> np.ndarray | None:
        if not self.use_embeddings:
            return None
        if self.embedder is None:
            from fastreasonseg.reasoning.embeddings import SentenceEmbedder, embeddings_available

            if not embeddings_available():
                self.use_embeddings = False
                self.notes.append("similar-name matching is off: the MiniLM package is not installed")
                return None
            self.embedder = SentenceEmbedder()
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for t, v in zip(missing, self.embedder.embed(missing), strict=True):
                self._cache[t] = np.asarray(v, dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def match_one(self, scene: Scene, name: str) -> tuple[list[int], str]:
        """(ids, how) for one name; ``how`` is ``label``, ``alt``, ``synonym``, ``category``, ``similar`` or ``""``."""
        n = normalise(name)
        if not n:
            return [], ""
        objs = list(scene.objects.values())
        labels = {o.id: normalise(o.label) for o in objs}
        alts = {o.id: [normalise(a) for a in o.alt_labels] for o in objs}
        hit = [o.id for o in objs if _suffix_match(n, labels[o.id])]
        if hit:
            exact = [i for i in hit if labels[i] == n]
            return (exact or hit), "label"
        hit = [o.id for o in objs if any(_suffix_match(n, a) for a in alts[o.id])]
        if hit:
            return hit, "alt"
        real = [o for o in objs if not o.is_junk]
        lex = self._lex()
        hit = [o.id for o in real if lex.same(n, labels[o.id]) or any(lex.same(n, a) for a in alts[o.id])]
        if hit:
            return hit, "synonym"
        members = lex.members(n)
        if members is not None:
            hit = [o.id for o in real if labels[o.id] in members or any(a in members for a in alts[o.id])]
            if hit:
                return hit, "category"
        return self._similar(n, real, labels, alts)

    def _similar(self, n: str, real: list, labels: dict, alts: dict) -> tuple[list[int], str]:
        names = sorted({labels[o.id] for o in real} | {a for o in real for a in alts[o.id]})
        if not names:
            return [], ""
        emb = self._embed([n, *names])
        if emb is None:
            return [], ""
        sims = dict(zip(names, emb[1:] @ emb[0], strict=True))
        score = {o.id: max(sims[x] for x in [labels[o.id], *alts[o.id]]) for o in real}
        best = max(score.values())
        if best < self.threshold:
            return [], ""
        return [i for i, s in score.items() if s >= best - self.margin], "similar"

    def rank(self, scene: Scene, text: str, k: int) -> list[int] | None:
        """The ``k`` objects whose labels are closest in meaning to ``text`` (the question), best first: the
        candidate hint of the prompt. ``None`` when sentence embeddings are not available."""
        real = [o for o in scene.objects.values() if not o.is_junk and not o.is_stuff]
        if not real or k <= 0:
            return []
        names = sorted({n for o in real for n in o.names})
        emb = self._embed([text, *names])
        if emb is None:
            return None
        sims = dict(zip(names, emb[1:] @ emb[0], strict=True))
        scored = sorted(((max(sims[n] for n in o.names), -o.id, o.id) for o in real), reverse=True)
        return [i for _, _, i in scored[:k]]

    def match(self, scene: Scene, names: Sequence[str]) -> Selection:
        """The objects any of ``names`` selects, in id order, with how fuzzy matches were made."""
        ids: list[int] = []
        missing: list[str] = []
        for name in names:
            hit, how = self.match_one(scene, name)
            if not hit:
                missing.append(name)
                continue
            ids += hit
            if how in ("synonym", "category", "similar"):
                self.notes.append(f"{name!r} ~ {scene.cite(scene.order(hit)[:4])} ({how})")
        if not ids:
            quoted = " or ".join(repr(m) for m in missing[:3])
            return Selection((), f"no object called {quoted}")
        return Selection.of(scene.order(ids))
