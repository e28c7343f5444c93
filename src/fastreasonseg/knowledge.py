"""A small, curated commonsense knowledge base of everyday objects for synthetic scenes and queries.

How it was written
------------------
``assets/knowledge.json`` (package data) was written by hand for this project, one
line per object, grouped by category. No external dataset was used. Each line is::

    key|group|size|flags|colours|places|synonyms|uses|traits

* ``key`` - the stable identifier and the canonical detector label (unique, lower case).
* ``group`` - a finer class inside the category (``fruit``, ``seat``, ``cup``, ``bird`` ...). Objects of
  one group are *confusable*: a detector mixes them up, and a use of one may plausibly fit another,
  so the query generator never lets a same-group distractor stand next to a target of a use query.
* ``size`` - typical real-world size class: ``T`` tiny (< 10 cm), ``S`` small (hand-held),
  ``M`` medium (chair, dog), ``L`` large (sofa, car, horse), ``H`` huge (bus, tree, elephant).
* ``flags`` - letters: ``e`` edible, ``a`` alive, ``m`` moves by itself, ``r`` rolls / is thrown
  (moves when pushed), ``s`` soft (else hard), ``h`` hot, ``c`` cold, ``x`` sharp, ``p`` electric,
  ``k`` container, ``w`` worn.
* ``colours`` / ``places`` - typical colours; settings where the object is found (``kitchen``,
  ``living``, ``bedroom``, ``bathroom``, ``office``, ``classroom``, ``street``, ``park``, ``garden``,
  ``farm``, ``beach``, ``garage``, ``gym``).
* ``synonyms`` - other names a detector may output (some generic, e.g. ``cup``, ``ball``).
* ``uses`` - affordances, phrased to complete "what would I use to ...?" (``drink hot coffee``).
* ``traits`` - characteristic facts, phrased to complete "which one ...?" (``lays eggs``).

How to extend
-------------
Add a line to the right category in ``assets/knowledge.json`` (or a new category); keep the key unique,
the uses short infinitive phrases and the traits short third-person phrases; then run
``pytest tests/data/test_synthetic_knowledge.py``, which checks the format and every reference.
Keys are stable: never rename one (dataset manifests record held-out keys by name).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

SIZE_CLASSES = ("T", "S", "M", "L", "H")
SIZE_WORDS = {"T": "tiny", "S": "small", "M": "medium", "L": "large", "H": "huge"}
FLAGS = {
    "e": "edible",
    "a": "alive",
    "m": "moves",
    "r": "rolls",
    "s": "soft",
    "h": "hot",
    "c": "cold",
    "x": "sharp",
    "p": "electric",
    "k": "container",
    "w": "worn",
}
PLACES = (
    "kitchen",
    "living",
    "bedroom",
    "bathroom",
    "office",
    "classroom",
    "street",
    "park",
    "garden",
    "farm",
    "beach",
    "garage",
    "gym",
)


@dataclass(frozen=True)
class Entry:
    """One everyday object."""

    key: str
    category: str
    group: str
    size: str
    flags: frozenset[str]
    colours: tuple[str, ...]
    places: tuple[str, ...]
    synonyms: tuple[str, ...]
    uses: tuple[str, ...]
    traits: tuple[str, ...]

    def has(self, prop: str) -> bool:
        """Whether the object has a property named as in :data:`FLAGS` values (``"edible"``, ``"soft"``...)."""
        return prop in self.properties

    @property
    def properties(self) -> frozenset[str]:
        return frozenset(FLAGS[f] for f in self.flags)

    @property
    def can_move(self) -> bool:
        """Moves in a video (by itself, or rolled / thrown)."""
        return "m" in self.flags or "r" in self.flags

    @property
    def names(self) -> tuple[str, ...]:
        return (self.key, *self.synonyms)


def _split(s: str, sep: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in s.split(sep) if p.strip())


def parse_line(line: str, category: str) -> Entry:
    """Parse one ``key|group|size|flags|colours|places|synonyms|uses|traits`` line."""
    parts = line.split("|")
    if len(parts) != 9:
        raise ValueError(f"knowledge line needs 9 '|'-separated fields, got {len(parts)}: {line!r}")
    key, group, size, flags, colours, places, syn, uses, traits = parts
    bad = set(flags) - set(FLAGS)
    if bad:
        raise ValueError(f"{key}: unknown flags {sorted(bad)}")
    if size not in SIZE_CLASSES:
        raise ValueError(f"{key}: size must be one of {SIZE_CLASSES}, got {size!r}")
    return Entry(
        key=key.strip(),
        category=category,
        group=group.strip(),
        size=size,
        flags=frozenset(flags),
        colours=_split(colours, ","),
        places=_split(places, ","),
        synonyms=_split(syn, ","),
        uses=_split(uses, ";"),
        traits=_split(traits, ";"),
    )


class KnowledgeBase:
    """Entries by key, with the indexes the generators need."""

    def __init__(self, entries: list[Entry]):
        self.entries: dict[str, Entry] = {}
        for e in entries:
            if e.key in self.entries:
                raise ValueError(f"duplicate knowledge key {e.key!r}")
            self.entries[e.key] = e
        self.keys: list[str] = sorted(self.entries)
        name_count: dict[str, int] = {}
        for e in entries:
            for n in set(e.names):
                name_count[n] = name_count.get(n, 0) + 1
        self._name_count = name_count

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, key: str) -> Entry:
        return self.entries[key]

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    @functools.cached_property
    def categories(self) -> list[str]:
        return sorted({e.category for e in self.entries.values()})

    @functools.cached_property
    def all_uses(self) -> list[str]:
        return sorted({u for e in self.entries.values() for u in e.uses})

    @functools.cached_property
    def all_traits(self) -> list[str]:
        return sorted({t for e in self.entries.values() for t in e.traits})

    def in_place(self, place: str) -> list[str]:
        return [k for k in self.keys if place in self.entries[k].places]

    def with_use(self, use: str) -> list[str]:
        return [k for k in self.keys if use in self.entries[k].uses]

    def unambiguous_names(self, key: str) -> list[str]:
        """Names of ``key`` that name no other entry (safe as a detector's top label)."""
        e = self.entries[key]
        return [n for n in e.names if n == key or (self._name_count.get(n, 0) == 1 and n not in self.entries)]

    def confusables(self, key: str) -> list[str]:
        """Other keys of the same group (what a detector might call this object by mistake)."""
        e = self.entries[key]
        same = [k for k in self.keys if k != key and self.entries[k].group == e.group]
        if len(same) < 2:
            same += [k for k in self.keys if k != key and k not in same and self.entries[k].category == e.category]
        return same


@functools.lru_cache(maxsize=1)
def load_knowledge() -> KnowledgeBase:
    """The knowledge base shipped with the package (cached)."""
    text = resources.files("fastreasonseg").joinpath("assets", "knowledge.json").read_text(encoding="utf-8")
    data = json.loads(text)
    entries = [parse_line(line, cat) for cat, lines in data["categories"].items() for line in lines]
    return KnowledgeBase(entries)


def article(noun: str) -> str:
    """``a mug`` / ``an apple``."""
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def plural(noun: str) -> str:
    """A simple English plural, good enough for the object names of the knowledge base."""
    irregular = {
        "person": "people",
        "child": "children",
        "mouse": "mice",
        "goose": "geese",
        "sheep": "sheep",
        "deer": "deer",
        "fish": "fish",
        "fruit": "fruit",
        "furniture": "furniture",
        "kitchenware": "kitchenware",
        "clothing": "clothing",
        "food": "food",
    }
    if noun in irregular:
        return irregular[noun]
    last = noun.split()[-1]
    if last in irregular:
        return noun[: -len(last)] + irregular[last]
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith("knife"):
        return noun[:-2] + "ves"
    return noun + "s"


__all__ = ["FLAGS", "PLACES", "SIZE_CLASSES", "Entry", "KnowledgeBase", "article", "load_knowledge", "plural"]
