"""Implicit queries over synthetic scenes, with ground-truth ids and short reference rationales.

Three categories (as in JiTBench) at three levels of reasoning depth:

* ``semantic`` - knowledge about objects: L1 one fact (a use, a trait, a property, a category),
  L2 two facts that must both hold (a category and a use, a property and a use ...), L3 a
  comparison or a negation over knowledge (the largest animal in real life; edible things that are
  not fruit).
* ``spatial`` (images) - L1 a superlative or a relation to a named object, L2 a semantic filter plus
  a superlative / relation, L3 a semantic filter plus a relation plus a superlative (or "between").
* ``temporal`` (videos) - L1 a motion (moving left/right, approaching/receding, appearing later,
  leaving, stationary, fastest), L2 a semantic filter plus a motion, L3 two motions or a motion plus a
  comparison over a semantic filter.

Ground truth is computed from the twin itself (boxes, areas, depth stats, track summaries, i.e. the
numbers the text view shows), with margins: a query is only asked when every object is clearly in or
clearly out of the answer (no object sits near a threshold), and, for temporal facts, when the
measurement agrees with the motion the generator gave the object. Every query whose answer would be
several objects asks for all of them; no-target queries (the asked-for thing is absent) answer ``[]``.

Rationales are in the rollout grammar and *scan* (about 20-70 tokens): each step lists every candidate left by
the previous one, in the view's (id) order, with the value that decides the next step (all the category
members with their depth; all the movers with their dx), cited as ``<id> <label>`` like the view; conclusions
repeat ids only. They are answerable from the view alone. A scan is an algorithm a small student can follow:
copy a column row by row, then compare the numbers it just wrote. A scan for a yes/no test (a motion, a relation
to a reference) writes the verdict right after each value ("dx: 1 tiger +48 yes, 3 pigeon -49 no. Move right:
1."), so the conclusion copies the "yes" rows instead of comparing a whole list at once: a 135M student that had
copied every value correctly still listed the wrong ids without them. (The first rationales cited only the targets
and the key distractor, which presupposes the answer: a 135M student trained on them learned the template but
picked the wrong rows, even on its training scenes.) About 12% add a ``<plan>`` where a tool settles a close
call (:meth:`QueryGenerator.add_tools`): ``relation(target, ref)`` when a target is near a relation's
threshold, ``motion(target)`` when a target's displacement or depth change is small. The plan is run through
the executor's own tool runner, so the rationale is the exact rollout
``<reason>…</reason>\n<plan>…</plan>\n<results>…</results>\n<answer>…</answer>`` (the ``<results>`` part is
executor-written: :func:`~fastreasonseg.data.synthetic.dataset.rollout_parts` splits it off), and the plan is
only kept when the result agrees with the ground truth. ``relabel`` is not used: without a labeller it matches
the candidates against the twin's own scores, where the wrong top label always scores higher than the right
alternative, so it cannot help on the generator's mislabels.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fastreasonseg.data.synthetic.scenes import Scene
from fastreasonseg.knowledge import Entry, KnowledgeBase, article, load_knowledge, plural
from fastreasonseg.twin.view import depth_digit, pct

CATEGORIES = ("semantic", "spatial", "temporal")

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
#: property -> (adjective phrase for "which things are ...", short word for rationales)
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

#: property phrases that read better after "which <things> are ..." than the generic ones
_CAT_PROP_PHRASES = {"worn": "worn by people", "sharp": "sharp", "electric": "electric"}

# ---------------------------------------------------------------------------------------------- templates
# The last template of every kind is reserved for val/test (held-out phrasing).
TEMPLATES: dict[str, list[str]] = {
    "use": [
        "What would I use to {use}?",
        "I want to {use}. Which object should I grab?",
        "Which thing here could help me {use}?",
        "Point at what someone would use to {use}.",
        "If I needed to {use}, what here would do the job?",
    ],
    "trait": [
        "Which one {trait}?",
        "Find the thing that {trait}.",
        "Show me what {trait}.",
        "Among these objects, which {trait}?",
    ],
    "prop": [
        "Which objects are {prop}?",
        "Select everything that is {prop}.",
        "Mark all the things here that are {prop}.",
        "What in this scene is {prop}?",
    ],
    "cat": [
        "Select all the {cats}.",
        "Where are the {cats}?",
        "Segment every one of the {cats}.",
        "Highlight the {cats} in this scene.",
    ],
    "cat_use": [
        "Which {cat} could I use to {use}?",
        "I need {a_cat} to {use}. Which one?",
        "Of the {cats} here, which would help me {use}?",
        "Find the {cat} that is good to {use}.",
    ],
    "cat_trait": [
        "Which {cat} {trait}?",
        "Find the {cat} that {trait}.",
        "Of the {cats}, which one {trait}?",
        "Segment the {cat} here that {trait}.",
    ],
    "cat_prop": [
        "Which {cats} here are {prop}?",
        "Select the {cats} that are {prop}.",
        "Find every {cat} that is {prop}.",
        "Of the {cats} in view, which are {prop}?",
    ],
    "prop_use": [
        "Which {prop} thing could I use to {use}?",
        "I want something {prop} to {use}. What fits?",
        "Find an object that is {prop} and lets me {use}.",
    ],
    "bigger_real": [
        "Which {cat} here is the {sizeword} in real life?",
        "Of the {cats} in the scene, which is actually the {sizeword}?",
        "Ignoring how big they look, which {cat} is the {sizeword}?",
    ],
    "prop_not_cat": [
        "Which things are {prop} but are not {cats}?",
        "Select what is {prop}, except the {cats}.",
        "Find everything {prop} that is not one of the {cats}.",
    ],
    "super": [
        "Which object is {sup}?",
        "Segment the object {sup}.",
        "Find whatever is {sup} in this picture.",
        "What is {sup}?",
    ],
    "dup": [
        "Which {label} is {sup}?",
        "There are several {labels}; segment the one {sup}.",
        "Find the {label} {sup}.",
    ],
    "rel": [
        "What is {rel} the {ref}?",
        "Segment everything {rel} the {ref}.",
        "Which objects are {rel} the {ref}?",
        "Find what lies {rel} the {ref}.",
    ],
    "cat_super": [
        "Which {cat} is {sup}?",
        "Segment the {cat} {sup}.",
        "Of the {cats}, which one is {sup}?",
        "Find the {cat} that is {sup}.",
    ],
    "use_super": [
        "I want to {use}. Which suitable object is {sup}?",
        "Of the things I could use to {use}, which is {sup}?",
        "Find the object {sup} that I could use to {use}.",
    ],
    "cat_rel": [
        "Which {cats} are {rel} the {ref}?",
        "Segment the {cats} {rel} the {ref}.",
        "Find every {cat} {rel} the {ref}.",
        "Are there {cats} {rel} the {ref}? Segment them.",
    ],
    "between": [
        "What is between the {a} and the {b}?",
        "Segment the object lying between the {a} and the {b}.",
        "Find what stands between the {a} and the {b}, left to right.",
    ],
    "cat_rel_super": [
        "Of the {cats} {rel} the {ref}, which is {sup}?",
        "Among the {cats} {rel} the {ref}, segment the one {sup}.",
        "Find the {cat} {rel} the {ref} that is {sup}.",
    ],
    "motion": [
        "Which object {motion}?",
        "Segment everything that {motion}.",
        "What in the video {motion}?",
        "Track the things that {motions}.",
    ],
    "fastest": [
        "Which object moves fastest?",
        "Segment the quickest thing in the video.",
        "What covers the most ground per second?",
    ],
    "cat_motion": [
        "Which {cat} {motion}?",
        "Segment the {cats} that {motions}.",
        "Find the {cat} that {motion}.",
        "Track every {cat} that {motion}.",
    ],
    "cat_two_motions": [
        "Which {cat} {motion} and {motion2}?",
        "Find the {cats} that {motions} and also {motions2}.",
        "Segment each {cat} that both {motion} and {motion2}.",
    ],
    "cat_motion_fastest": [
        "Of the {cats} that {motions}, which is fastest?",
        "Among the {cats} that {motions}, segment the quickest one.",
        "Which {cat} that {motion} moves fastest?",
    ],
}


def template_ids(kind: str) -> list[str]:
    return [f"{kind}.{i}" for i in range(len(TEMPLATES[kind]))]


def heldout_template_ids() -> list[str]:
    """Template ids reserved for val/test (the last phrasing of every kind)."""
    return [f"{k}.{len(v) - 1}" for k, v in TEMPLATES.items()]


# ---------------------------------------------------------------------------------------------- objects
@dataclass
class Obj:
    """One instance (image) or track (video) as the view shows it, with exact numbers and its knowledge entry."""

    id: int
    key: str
    entry: Entry
    label: str
    score: float | None
    alt: str | None
    mislabelled: bool
    true_label: str
    motion: str
    cx: float
    cy: float
    x0: float
    x1: float
    area: float
    depth: float
    # video only
    first: int = 0
    last: int = 0
    dxm: float = 0.0
    dym: float = 0.0
    speed: float = 0.0
    depth_last: float = 0.0

    @property
    def d(self) -> int:
        return depth_digit(self.depth)

    @property
    def px(self) -> int:
        """Centre x as the view writes it (integer % of the frame)."""
        return pct(self.cx)

    @property
    def py(self) -> int:
        """Centre y as the view writes it (integer % of the frame)."""
        return pct(self.cy)

    @property
    def cite(self) -> str:
        """How a rationale names the object: as the view shows it."""
        return f"{self.id} {self.label}"

    @property
    def name(self) -> str:
        """The right name: the label, or the alternative when the top label is wrong."""
        return self.true_label


def scene_objects(scene: Scene, kb: KnowledgeBase) -> list[Obj]:
    """Per-object view facts of a scene (first frame for images, track summaries for videos)."""
    twin = scene.twin
    h, w = twin.size
    out = []
    for t in scene.objects:
        pairs = twin.instances_of(t.id)
        if not pairs:
            continue
        _fr, inst = pairs[0]
        x0, y0, x1, y1 = inst.box
        o = Obj(
            id=t.id,
            key=t.key,
            entry=kb[t.key],
            label=inst.label,
            score=inst.score,
            alt=inst.alt_labels[0][0] if inst.alt_labels else None,
            mislabelled=t.mislabelled,
            true_label=t.true_label,
            motion=t.motion,
            cx=(x0 + x1) / 2 / w,
            cy=(y0 + y1) / 2 / h,
            x0=x0 / w,
            x1=x1 / w,
            area=inst.area / (w * h),
            depth=inst.depth.mean if inst.depth is not None else 0.5,
        )
        if twin.is_video:
            s = twin.track_summary(t.id)
            o.first, o.last = s.first_frame, s.last_frame
            o.dxm, o.dym = s.displacement
            o.speed = s.speed
            o.area = s.mean_area
            o.depth = s.depth_first if s.depth_first is not None else 0.5
            o.depth_last = s.depth_last if s.depth_last is not None else 0.5
        out.append(o)
    return sorted(out, key=lambda o: o.id)


# ---------------------------------------------------------------------------------------------- relations
# Each returns True (clearly holds), False (clearly does not) or None (too close to call).
def _tri(v: float, yes: float, no: float) -> bool | None:
    """``v >= yes`` -> True, ``v <= no`` -> False, else None."""
    if v >= yes:
        return True
    if v <= no:
        return False
    return None


SPATIAL_RELATIONS: dict[str, tuple[str, Callable[[Obj, Obj], bool | None]]] = {
    "left": ("to the left of", lambda a, b: _tri(b.cx - a.cx, 0.1, 0.03)),
    "right": ("to the right of", lambda a, b: _tri(a.cx - b.cx, 0.1, 0.03)),
    "above": ("above", lambda a, b: _tri(b.cy - a.cy, 0.1, 0.03)),
    "below": ("below", lambda a, b: _tri(a.cy - b.cy, 0.1, 0.03)),
    "nearer": ("closer to the camera than", lambda a, b: _tri(b.depth - a.depth, 0.15, 0.05)),
    "farther": ("farther from the camera than", lambda a, b: _tri(a.depth - b.depth, 0.15, 0.05)),
}

#: superlative -> (phrase, value to minimise, margin on the value, view-visible check)
SUPERLATIVES: dict[str, tuple[str, Callable[[Obj], float], float]] = {
    "nearest": ("closest to the camera", lambda o: o.depth, 0.1),
    "farthest": ("farthest from the camera", lambda o: -o.depth, 0.1),
    "largest": ("the largest in the picture", lambda o: -o.area, 0.0),
    "leftmost": ("the leftmost", lambda o: o.cx, 0.08),
    "rightmost": ("the rightmost", lambda o: -o.cx, 0.08),
    "highest": ("highest up in the picture", lambda o: o.cy, 0.08),
    "lowest": ("lowest in the picture", lambda o: -o.cy, 0.08),
}


def superlative(objs: list[Obj], sup: str) -> Obj | None:
    """The unique winner of a superlative among ``objs`` (None when fewer than 2 or too close to call)."""
    if len(objs) < 2:
        return None
    _, fn, margin = SUPERLATIVES[sup]
    ranked = sorted(objs, key=fn)
    a, b = ranked[0], ranked[1]
    if sup == "largest":
        return a if a.area >= 1.4 * b.area and round(a.area * 100) > round(b.area * 100) else None
    if fn(b) - fn(a) < margin:
        return None
    if sup in ("nearest", "farthest") and a.d == b.d:
        return None
    return a


def _scan(objs: list[Obj]) -> list[Obj]:
    """Every candidate, in id order (the view's order): a rationale compares them all, one row at a time."""
    return sorted(objs, key=lambda o: o.id)


_REL_MARGIN: dict[str, Callable[[Obj, Obj], float]] = {
    "left": lambda o, r: r.cx - o.cx,
    "right": lambda o, r: o.cx - r.cx,
    "above": lambda o, r: r.cy - o.cy,
    "below": lambda o, r: o.cy - r.cy,
    "nearer": lambda o, r: r.depth - o.depth,
    "farther": lambda o, r: o.depth - r.depth,
}


#: spatial relation -> the word the relation tool writes for it in ``a_is``
_REL_TOOL_WORD = {
    "left": "left of",
    "right": "right of",
    "above": "above",
    "below": "below",
    "nearer": "in front of",
    "farther": "behind",
}


def _rel_scan(ref: Obj, pool: list[Obj]) -> list[Obj]:
    """Every candidate of a relation to ``ref`` (the pool without ``ref``), in id order."""
    return _scan([o for o in pool if o.id != ref.id])


#: superlative -> the word a rationale's conclusion uses
SUP_SHORT = {
    "nearest": "Nearest",
    "farthest": "Farthest",
    "largest": "Largest",
    "leftmost": "Leftmost",
    "rightmost": "Rightmost",
    "highest": "Highest",
    "lowest": "Lowest",
}


def _head_evidence(head: str, objs: list[Obj], sup: str) -> str:
    """'Animals, depths: 3 dog 2, 5 cat 4.' (a filter's name, then the compared values of its top two)."""
    ev = _sup_evidence(objs, sup)
    return f"{head}, {ev[:1].lower()}{ev[1:]}"


def _sup_evidence(objs: list[Obj], sup: str) -> str:
    if sup in ("nearest", "farthest"):
        return "Depths: " + ", ".join(f"{o.cite} {o.d}" for o in objs) + "."
    if sup == "largest":
        return "Areas: " + ", ".join(f"{o.cite} {round(o.area * 100)}%" for o in objs) + "."
    if sup in ("leftmost", "rightmost"):
        return "Centres x: " + ", ".join(f"{o.cite} {o.px}" for o in objs) + "."
    return "Centres y: " + ", ".join(f"{o.cite} {o.py}" for o in objs) + "."


def _verdict(v: bool | None) -> str:
    """The word a scan writes after a candidate's value for a yes/no test (``?`` never occurs in a generated
    rationale: a query is only asked when every candidate is clearly in or out)."""
    return "?" if v is None else ("yes" if v else "no")


def _rel_evidence(rel: str, ref: Obj, objs: list[Obj]) -> str:
    """'Centre x of 2 cup is 65; 5 saucer 79 no, 6 bowl 55 yes.' (each candidate's value, then its verdict)."""
    fn = SPATIAL_RELATIONS[rel][1]
    if rel in ("nearer", "farther"):
        body = ", ".join(f"{o.cite} {o.d} {_verdict(fn(o, ref))}" for o in objs) if objs else "none"
        return f"Depth of {ref.cite} is {ref.d}; {body}."
    axis = "x" if rel in ("left", "right") else "y"
    val = (lambda o: o.px) if axis == "x" else (lambda o: o.py)
    body = ", ".join(f"{o.cite} {val(o)} {_verdict(fn(o, ref))}" for o in objs) if objs else "none"
    return f"Centre {axis} of {ref.cite} is {val(ref)}; {body}."


# temporal facts: name -> (phrase, test on an Obj given the video's first/last frame index)
def _span_fn(lo: int, hi: int):
    span = max(hi - lo, 1)

    def appears_later(o: Obj) -> bool | None:
        if o.first == lo:
            return False
        return True if o.first >= lo + 0.25 * span and o.motion.startswith("enter") else None

    def leaves(o: Obj) -> bool | None:
        if o.last == hi:
            return False
        return True if o.last <= hi - 0.25 * span and o.motion.startswith("leave") else None

    return appears_later, leaves


#: temporal fact -> its phrase with a plural subject ("the dogs that ...")
MOTION_PLURAL: dict[str, str] = {
    "left": "move to the left",
    "right": "move to the right",
    "approach": "come towards the camera",
    "recede": "move away from the camera",
    "later": "only show up later in the video",
    "leaves": "leave the scene before the end",
    "still": "stay still the whole time",
}


#: temporal fact -> the short words a rationale uses for it
MOTION_SHORT: dict[str, str] = {
    "left": "move left",
    "right": "move right",
    "approach": "approach",
    "recede": "recede",
    "later": "enter late",
    "leaves": "leave early",
    "still": "stay still",
}


def _ids(objs: list[Obj]) -> str:
    """A conclusion names objects the evidence already cited by id only (fewer tokens)."""
    return ", ".join(str(o.id) for o in objs) if objs else "none"


def temporal_facts(lo: int, hi: int) -> dict[str, tuple[str, Callable[[Obj], bool | None]]]:
    appears_later, leaves = _span_fn(lo, hi)

    def still(o: Obj) -> bool | None:
        if o.speed <= 0.02 and abs(o.dxm) <= 0.02 and abs(o.dym) <= 0.02 and o.motion == "static":
            return True
        if o.speed >= 0.08:
            return False
        return None

    return {
        "left": ("moves to the left", lambda o: _tri(-o.dxm, 0.15, 0.05)),
        "right": ("moves to the right", lambda o: _tri(o.dxm, 0.15, 0.05)),
        "approach": ("comes towards the camera", lambda o: _tri(o.depth - o.depth_last, 0.2, 0.05)),
        "recede": ("moves away from the camera", lambda o: _tri(o.depth_last - o.depth, 0.2, 0.05)),
        "later": ("only shows up later in the video", appears_later),
        "leaves": ("leaves the scene before the end", leaves),
        "still": ("stays still the whole time", still),
    }


def _motion_evidence(fact: str, objs: list[Obj], holds: Callable[[Obj], bool | None] | None = None) -> str:
    """'dx: 1 tiger +48 yes, 3 pigeon -49 no.': each candidate's value, then (with ``holds``, the fact's test) its
    verdict. ``fact="speed"`` (a superlative) lists the speeds only."""
    tag = (lambda o: "") if holds is None else (lambda o: " " + _verdict(holds(o)))
    if fact in ("left", "right"):
        return "dx: " + ", ".join(f"{o.cite} {round(o.dxm * 100):+d}{tag(o)}" for o in objs) + "."
    if fact in ("approach", "recede"):
        body = ", ".join(f"{o.cite} {o.d}>{depth_digit(o.depth_last)}{tag(o)}" for o in objs)
        return "Depth first>last: " + body + "."
    if fact in ("later", "leaves"):
        return "Frames: " + ", ".join(f"{o.cite} f{o.first}-{o.last}{tag(o)}" for o in objs) + "."
    return "Speeds: " + ", ".join(f"{o.cite} v{round(o.speed * 100)}{tag(o)}" for o in objs) + "."


#: temporal fact -> how strongly an object shows it (to pick the non-target that comes closest: the key distractor)
_MOTION_SCORE: dict[str, Callable[[Obj], float]] = {
    "left": lambda o: -o.dxm,
    "right": lambda o: o.dxm,
    "approach": lambda o: o.depth - o.depth_last,
    "recede": lambda o: o.depth_last - o.depth,
    "later": lambda o: o.first,
    "leaves": lambda o: -o.last,
    "still": lambda o: -o.speed,
    "speed": lambda o: o.speed,
}


# ---------------------------------------------------------------------------------------------- drafts
@dataclass
class QueryDraft:
    """A generated query with its ground truth and reference rationale."""

    query: str
    ids: list[int]
    category: str
    level: int
    rationale: str
    template_id: str
    facts: list[str] = field(default_factory=list)
    plan: list[dict] | None = None
    results: list[dict] | None = None
    """The executor's ``<results>`` object for each plan round (set with ``plan``)."""


@dataclass
class QueryContext:
    """What a split allows: knowledge facts and templates (held-out sets are excluded in train)."""

    allowed_uses: set[str] | None = None
    allowed_traits: set[str] | None = None
    allowed_templates: set[str] | None = None
    heldout_templates: set[str] = field(default_factory=set)
    prefer_heldout: float = 0.0
    """Probability of picking a held-out template when one is allowed (val/test)."""
    prefer_facts: bool = False
    """Semantic L1: try the use and trait queries first (val/test samples steered to held-out facts)."""
    plan_rate: float = 0.75
    """Probability of adding a tool call to a rationale where one genuinely helps (a close call, see
    :meth:`QueryGenerator.add_tools`); about 12% of all samples end up with a ``<plan>``."""

    def use_ok(self, u: str) -> bool:
        return self.allowed_uses is None or u in self.allowed_uses

    def trait_ok(self, t: str) -> bool:
        return self.allowed_traits is None or t in self.allowed_traits


def _answer(ids: list[int]) -> str:
    return "<answer>" + json.dumps({"ids": sorted(ids)}) + "</answer>"


def _cites(objs: list[Obj]) -> str:
    return ", ".join(o.cite for o in objs)


def _names(keys: list[str]) -> str:
    keys = list(dict.fromkeys(keys))
    if len(keys) == 1:
        return article(keys[0])
    return ", ".join(article(k) for k in keys[:-1]) + " or " + article(keys[-1])


def _is(o: Obj) -> str:
    """'3 mug' / '3 coffee mug is a mug' / '3 bowl(41) has alt mug, a mug'."""
    if o.mislabelled:
        return f"{o.id} {o.label}({round((o.score or 0) * 100)}) alt {o.true_label} is {article(o.key)}"
    if o.label == o.key:
        return o.cite
    return f"{o.cite} is {article(o.key)}"


class _NoRuntime:
    """A runtime that never runs: the generator only borrows the executor's tool runner."""

    def complete(self, *args, **kwargs):  # pragma: no cover - never called
        raise RuntimeError("the synthetic generator does not generate text")


class QueryGenerator:
    """Generates :class:`QueryDraft` objects for a scene. ``kinds`` of each category and level are below."""

    def __init__(self, kb: KnowledgeBase | None = None):
        self.kb = kb or load_knowledge()

    # ------------------------------------------------------------------ helpers
    def _template(self, rng: np.random.Generator, kind: str, ctx: QueryContext) -> tuple[str, str]:
        ids = template_ids(kind)
        allowed = [t for t in ids if ctx.allowed_templates is None or t in ctx.allowed_templates]
        held = [t for t in allowed if t in ctx.heldout_templates]
        if held and rng.random() < ctx.prefer_heldout:
            tid = str(rng.choice(held))
        else:
            pool = [t for t in allowed if t not in held] or allowed
            tid = str(rng.choice(pool))
        return tid, TEMPLATES[kind][int(tid.rsplit(".", 1)[1])]

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

    @staticmethod
    def _finish(reason: str, ids: list[int], plan: list[dict] | None) -> str:
        text = f"<reason>{reason}</reason>"
        if plan:
            text += "<plan>" + json.dumps(plan) + "</plan>"
        return text + _answer(ids)

    def _evidence(self, targets: list[Obj]) -> str:
        if not targets:
            return "None is in the scene."
        return "; ".join(_is(o) for o in targets) + "."

    # ------------------------------------------------------------------ semantic
    def sem_use(self, rng, objs, ctx, *, no_target=False) -> QueryDraft | None:
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
        else:
            cands = sorted({u for o in objs for u in o.entry.uses if ctx.use_ok(u)})
            if not cands:
                return None
            use = str(rng.choice(cands))
            targets = [o for o in objs if use in o.entry.uses]
            if not self._clean(objs, targets, lambda e: use in e.uses, kb):
                return None
        tid, tpl = self._template(rng, "use", ctx)
        keys = [t.key for t in targets] or kb.with_use(use)[:2]
        reason = f"To {use} you use {_names(keys)}. " + self._evidence(targets)
        ids = [t.id for t in targets]
        plan = None
        return QueryDraft(
            tpl.format(use=use), ids, "semantic", 1, self._finish(reason, ids, plan), tid, [f"use:{use}"], plan
        )

    def sem_trait(self, rng, objs, ctx, *, no_target=False) -> QueryDraft | None:
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
            keys = [e.key for e in kb.entries.values() if trait in e.traits][:2]
        else:
            cands = sorted({t for o in objs for t in o.entry.traits if ctx.trait_ok(t)})
            if not cands:
                return None
            trait = str(rng.choice(cands))
            targets = [o for o in objs if trait in o.entry.traits]
            if not self._clean(objs, targets, lambda e: trait in e.traits, kb):
                return None
            keys = [t.key for t in targets]
        tid, tpl = self._template(rng, "trait", ctx)
        reason = f"{_names(keys).capitalize()} {trait}. " + self._evidence(targets)
        ids = [t.id for t in targets]
        plan = None
        return QueryDraft(
            tpl.format(trait=trait), ids, "semantic", 1, self._finish(reason, ids, plan), tid, [f"trait:{trait}"], plan
        )

    def sem_prop(self, rng, objs, ctx, *, no_target=False) -> QueryDraft | None:
        props = list(PROPERTY_PHRASES)
        rng.shuffle(props)
        for prop in props:
            targets = [o for o in objs if o.entry.has(prop)]
            if bool(targets) == no_target:
                continue
            if any(
                o.mislabelled and o.label in self.kb and self.kb[o.label].has(prop) for o in objs if o not in targets
            ):
                continue
            phrase, word = PROPERTY_PHRASES[prop]
            tid, tpl = self._template(rng, "prop", ctx)
            if targets:
                reason = f"{word.capitalize()}: " + ", ".join(o.cite for o in targets) + "."
            else:
                reason = f"Nothing here is {word}."
            ids = [t.id for t in targets]
            return QueryDraft(
                tpl.format(prop=phrase), ids, "semantic", 1, self._finish(reason, ids, None), tid, [f"prop:{prop}"]
            )
        return None

    def sem_cat(self, rng, objs, ctx, *, no_target=False) -> QueryDraft | None:
        cats = list(CATEGORY_NOUNS)
        rng.shuffle(cats)
        for cat in cats:
            targets = [o for o in objs if o.entry.category == cat]
            if bool(targets) == no_target:
                continue
            if any(
                o.mislabelled and o.label in self.kb and self.kb[o.label].category == cat
                for o in objs
                if o not in targets
            ):
                continue
            _, cats_pl = CATEGORY_NOUNS[cat]
            tid, tpl = self._template(rng, "cat", ctx)
            reason = (
                f"{cats_pl.capitalize()}: " + ", ".join(o.cite for o in targets) + "."
                if targets
                else f"There are no {cats_pl} here."
            )
            ids = [t.id for t in targets]
            return QueryDraft(
                tpl.format(cats=cats_pl), ids, "semantic", 1, self._finish(reason, ids, None), tid, [f"cat:{cat}"]
            )
        return None

    def sem_two(self, rng, objs, ctx, *, no_target=False) -> QueryDraft | None:
        """L2: a category and a use / trait, or a property and a use; each fact alone is not enough."""
        kb = self.kb
        kinds = ["cat_use", "cat_trait", "prop_use", "cat_prop"]
        rng.shuffle(kinds)
        for kind in kinds:
            if kind == "prop_use":
                firsts = [(p, lambda e, p=p: e.has(p)) for p in PROPERTY_PHRASES]
            else:
                firsts = [(c, lambda e, c=c: e.category == c) for c in sorted({o.entry.category for o in objs})]
                firsts = [f for f in firsts if f[0] in CATEGORY_NOUNS]
            rng.shuffle(firsts)
            for name, f1 in firsts:
                in1 = [o for o in objs if f1(o.entry)]
                if not in1:
                    continue
                if kind == "cat_trait":
                    facts = sorted({t for o in objs for t in o.entry.traits if ctx.trait_ok(t)})
                    get = lambda e: e.traits  # noqa: E731
                elif kind == "cat_prop":
                    facts = sorted(PROPERTY_PHRASES)
                    get = lambda e: e.properties  # noqa: E731
                else:
                    facts = sorted({u for o in objs for u in o.entry.uses if ctx.use_ok(u)})
                    get = lambda e: e.uses  # noqa: E731
                rng.shuffle(facts)
                for fact in facts:
                    targets = [o for o in in1 if fact in get(o.entry)]
                    in2 = [o for o in objs if fact in get(o.entry)]
                    if no_target:
                        if targets or not in2 or len(in1) < 1:
                            continue
                    elif not targets or len(in2) == len(targets) or len(in1) == len(targets):
                        continue  # both facts must matter
                    if not self._clean(
                        [o for o in objs if o not in in2 or o in targets],
                        targets,
                        lambda e, fact=fact, get=get, f1=f1: fact in get(e) and f1(e),
                        kb,
                    ):
                        continue
                    return self._two_draft(rng, ctx, kind, name, fact, objs, in1, in2, targets)
        return None

    def _two_draft(self, rng, ctx, kind, name, fact, objs, in1, in2, targets) -> QueryDraft:
        tid, tpl = self._template(rng, kind, ctx)
        ids = [t.id for t in targets]
        # evidence: every object passing the first fact, then those also passing the second
        miss1 = [o for o in in1 if o not in targets]
        miss2 = [o for o in in2 if o not in targets]
        if kind == "prop_use":
            _, word = PROPERTY_PHRASES[name]
            adj = word if name != "container" else "hollow"
            q = tpl.format(prop=adj, use=fact)
            first = f"Can {fact}: " + _cites(_scan(targets + miss2)) + "."
            second = f" {word.capitalize()}: " + (_cites(targets) if targets else "none") + "."
            facts = [f"prop:{name}", f"use:{fact}"]
        elif kind == "cat_prop":
            cat, cats = CATEGORY_NOUNS[name]
            phrase, word = PROPERTY_PHRASES[fact]
            q = tpl.format(cat=cat, cats=cats, prop=_CAT_PROP_PHRASES.get(fact, phrase))
            first = f"{cats.capitalize()}: " + _cites(sorted(targets + miss1, key=lambda o: o.id)) + "."
            second = f" {word.capitalize()}: " + _ids(targets) + "."
            facts = [f"cat:{name}", f"prop:{fact}"]
        else:
            cat, cats = CATEGORY_NOUNS[name]
            field_name = "use" if kind == "cat_use" else "trait"
            q = tpl.format(cat=cat, cats=cats, a_cat=article(cat), **{field_name: fact})
            first = f"{cats.capitalize()}: " + _cites(_scan(targets + miss1)) + "."
            verb = f"can be used to {fact}" if kind == "cat_use" else fact
            if targets:
                second = " " + "; ".join(f"{_is(o)} that {verb}" for o in targets) + "."
            else:
                second = f" None {verb}."
            facts = [f"cat:{name}", f"{field_name}:{fact}"]
        return QueryDraft(q, ids, "semantic", 2, self._finish(first + second, ids, None), tid, facts)

    def sem_three(self, rng, objs, ctx, *, no_target=False) -> QueryDraft | None:
        """L3: real-world size comparison within a category, or a property minus a category."""
        order = ["bigger_real", "prop_not_cat"] if rng.random() < 0.5 else ["prop_not_cat", "bigger_real"]
        if no_target:
            order = ["prop_not_cat"]
        for kind in order:
            d = (
                self._bigger_real(rng, objs, ctx)
                if kind == "bigger_real"
                else self._prop_not_cat(rng, objs, ctx, no_target)
            )
            if d is not None:
                return d
        return None

    def _bigger_real(self, rng, objs, ctx) -> QueryDraft | None:
        from fastreasonseg.knowledge import SIZE_CLASSES

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
            # the size in the picture must not give the answer away every time
            tid, tpl = self._template(rng, "bigger_real", ctx)
            sw = "biggest" if big else "smallest"
            c, cs = CATEGORY_NOUNS[cat]
            from fastreasonseg.knowledge import SIZE_WORDS

            sizes = ", ".join(f"{o.cite} {SIZE_WORDS[o.entry.size]}" for o in _scan(members))
            reason = f"{cs.capitalize()} and real sizes: {sizes}. The {sw} is {article(winner[0].key)}."
            ids = [o.id for o in winner]
            return QueryDraft(
                tpl.format(cat=c, cats=cs, sizeword=sw),
                ids,
                "semantic",
                3,
                self._finish(reason, ids, None),
                tid,
                [f"cat:{cat}", f"size:{sw}"],
            )
        return None

    def _prop_not_cat(self, rng, objs, ctx, no_target) -> QueryDraft | None:
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
                if bool(targets) == no_target or len(targets) == len(having):
                    continue
                phrase, word = PROPERTY_PHRASES[prop]
                _, cs = CATEGORY_NOUNS[cat]
                tid, tpl = self._template(rng, "prop_not_cat", ctx)
                excluded = [o for o in having if o.entry.category == cat]
                reason = (
                    f"{word.capitalize()}: " + _cites(sorted(targets + excluded, key=lambda o: o.id)) + ". "
                    f"Not {cs}: " + (_cites(targets) if targets else "none") + "."
                )
                ids = [t.id for t in targets]
                return QueryDraft(
                    tpl.format(prop=phrase, cats=cs),
                    ids,
                    "semantic",
                    3,
                    self._finish(reason, ids, None),
                    tid,
                    [f"prop:{prop}", f"not_cat:{cat}"],
                )
        return None

    # ------------------------------------------------------------------ spatial (images)
    def _ref_ok(self, objs: list[Obj], ref: Obj) -> bool:
        """A reference object must be nameable uniquely by its label."""
        return not ref.mislabelled and sum(o.label == ref.label for o in objs) == 1

    def spa_one(self, rng, objs, ctx, *, no_target=False) -> QueryDraft | None:
        kinds = ["rel"] if no_target else ["super", "dup", "rel"]
        rng.shuffle(kinds)
        for kind in kinds:
            d = getattr(self, f"_spa_{kind}")(rng, objs, ctx, no_target)
            if d is not None:
                return d
        return None

    def _spa_super(self, rng, objs, ctx, no_target) -> QueryDraft | None:
        sups = list(SUPERLATIVES)
        rng.shuffle(sups)
        for sup in sups:
            win = superlative(objs, sup)
            if win is None or win.mislabelled:
                continue
            tid, tpl = self._template(rng, "super", ctx)
            phrase = SUPERLATIVES[sup][0]
            reason = _sup_evidence(_scan(objs), sup) + f" {win.cite} is {phrase.removeprefix('the ')}."
            return QueryDraft(
                tpl.format(sup=phrase),
                [win.id],
                "spatial",
                1,
                self._finish(reason, [win.id], None),
                tid,
                [f"sup:{sup}"],
            )
        return None

    def _spa_dup(self, rng, objs, ctx, no_target) -> QueryDraft | None:
        labels = [lab for lab in sorted({o.label for o in objs}) if sum(o.label == lab for o in objs) >= 2]
        rng.shuffle(labels)
        for lab in labels:
            group = [o for o in objs if o.label == lab]
            if any(o.mislabelled for o in group):
                continue
            sups = ["nearest", "farthest", "leftmost", "rightmost", "largest"]
            rng.shuffle(sups)
            for sup in sups:
                win = superlative(group, sup)
                if win is None:
                    continue
                tid, tpl = self._template(rng, "dup", ctx)
                phrase = SUPERLATIVES[sup][0]
                reason = (
                    f"{plural(lab).capitalize()}: "
                    + _sup_evidence(group, sup)
                    + f" {win.cite} is {phrase.removeprefix('the ')}."
                )
                return QueryDraft(
                    tpl.format(label=lab, labels=plural(lab), sup=phrase),
                    [win.id],
                    "spatial",
                    1,
                    self._finish(reason, [win.id], None),
                    tid,
                    [f"dup:{sup}"],
                )
        return None

    def _rel_targets(self, objs, ref, rel, pool=None) -> list[Obj] | None:
        fn = SPATIAL_RELATIONS[rel][1]
        out = []
        for o in pool if pool is not None else objs:
            if o.id == ref.id:
                continue
            v = fn(o, ref)
            if v is None:
                return None
            if v:
                out.append(o)
        return out

    def _spa_rel(self, rng, objs, ctx, no_target) -> QueryDraft | None:
        refs = [o for o in objs if self._ref_ok(objs, o)]
        rng.shuffle(refs)
        rels = list(SPATIAL_RELATIONS)
        for ref in refs:
            rng.shuffle(rels)
            for rel in rels:
                targets = self._rel_targets(objs, ref, rel)
                if targets is None or bool(targets) == no_target or len(targets) > 3:
                    continue
                if any(t.mislabelled for t in targets):
                    continue
                tid, tpl = self._template(rng, "rel", ctx)
                phrase = SPATIAL_RELATIONS[rel][0]
                reason = (
                    _rel_evidence(rel, ref, _rel_scan(ref, objs)) + f" {phrase.capitalize()} it: " + _ids(targets) + "."
                )
                ids = [t.id for t in targets]
                plan = None
                return QueryDraft(
                    tpl.format(rel=phrase, ref=ref.label),
                    ids,
                    "spatial",
                    1,
                    self._finish(reason, ids, plan),
                    tid,
                    [f"rel:{rel}", f"ref:{ref.id}"],
                    plan,
                )
        return None

    def _filters(self, rng, objs, ctx) -> list[tuple[str, str, str, list[Obj]]]:
        """Semantic filters (kind, fact, fact text, members) with at least one member."""
        out = []
        for cat in sorted({o.entry.category for o in objs} & set(CATEGORY_NOUNS)):
            out.append(("cat", cat, CATEGORY_NOUNS[cat][0], [o for o in objs if o.entry.category == cat]))
        for use in sorted({u for o in objs for u in o.entry.uses if ctx.use_ok(u)}):
            members = [o for o in objs if use in o.entry.uses]
            if self._clean(objs, members, lambda e, use=use: use in e.uses, self.kb):
                out.append(("use", use, use, members))
        rng.shuffle(out)
        return [f for f in out if not any(o.mislabelled for o in f[3])]

    def spa_two(self, rng, objs, ctx, *, no_target=False) -> QueryDraft | None:
        """L2: semantic filter + superlative, or category + relation to a named object."""
        order = (
            ["cat_rel"]
            if no_target
            else (["filter_super", "cat_rel"] if rng.random() < 0.5 else ["cat_rel", "filter_super"])
        )
        for kind in order:
            if kind == "filter_super":
                for fk, fact, text, members in self._filters(rng, objs, ctx):
                    if len(members) < 2:
                        continue
                    sups = ["nearest", "farthest", "largest", "leftmost", "rightmost"]
                    rng.shuffle(sups)
                    for sup in sups:
                        win = superlative(members, sup)
                        if win is None or superlative(objs, sup) is win:
                            continue  # the filter must matter
                        phrase = SUPERLATIVES[sup][0]
                        if fk == "cat":
                            tid, tpl = self._template(rng, "cat_super", ctx)
                            q = tpl.format(cat=text, cats=CATEGORY_NOUNS[fact][1], sup=phrase)
                            head = CATEGORY_NOUNS[fact][1].capitalize()
                        else:
                            tid, tpl = self._template(rng, "use_super", ctx)
                            q = tpl.format(use=fact, sup=phrase)
                            head = f"Can {fact}"
                        top = _scan(members)
                        reason = _head_evidence(head, top, sup) + f" {SUP_SHORT[sup]}: {win.id}."
                        return QueryDraft(
                            q,
                            [win.id],
                            "spatial",
                            2,
                            self._finish(reason, [win.id], None),
                            tid,
                            [f"{fk}:{fact}", f"sup:{sup}"],
                        )
            else:
                d = self._cat_rel(rng, objs, ctx, no_target, level=2)
                if d is not None:
                    return d
        return None

    def _cat_rel(self, rng, objs, ctx, no_target, level) -> QueryDraft | None:
        refs = [o for o in objs if self._ref_ok(objs, o)]
        rng.shuffle(refs)
        for ref in refs:
            cats = sorted({o.entry.category for o in objs if o.id != ref.id} & set(CATEGORY_NOUNS))
            rng.shuffle(cats)
            for cat in cats:
                members = [o for o in objs if o.entry.category == cat and o.id != ref.id]
                if any(o.mislabelled for o in members):
                    continue
                rels = list(SPATIAL_RELATIONS)
                rng.shuffle(rels)
                for rel in rels:
                    targets = self._rel_targets(objs, ref, rel, members)
                    all_t = self._rel_targets(objs, ref, rel)
                    if targets is None or all_t is None or bool(targets) == no_target:
                        continue
                    if not no_target and len(all_t) == len(targets):
                        continue  # the category must matter
                    if no_target and not all_t:
                        continue
                    c, cs = CATEGORY_NOUNS[cat]
                    phrase = SPATIAL_RELATIONS[rel][0]
                    tid, tpl = self._template(rng, "cat_rel", ctx)
                    reason = (
                        f"Among {cs}: "
                        + _rel_evidence(rel, ref, _rel_scan(ref, members))
                        + f" {phrase.capitalize()} it: "
                        + _ids(targets)
                        + "."
                    )
                    ids = [t.id for t in targets]
                    plan = None
                    return QueryDraft(
                        tpl.format(cat=c, cats=cs, rel=phrase, ref=ref.label),
                        ids,
                        "spatial",
                        level,
                        self._finish(reason, ids, plan),
                        tid,
                        [f"cat:{cat}", f"rel:{rel}", f"ref:{ref.id}"],
                        plan,
                    )
        return None

    def spa_three(self, rng, objs, ctx, *, no_target=False) -> QueryDraft | None:
        """L3: category + relation to a named object + superlative, or 'between' two named objects."""
        if no_target:
            return None
        order = ["crs", "between"] if rng.random() < 0.6 else ["between", "crs"]
        for kind in order:
            d = self._cat_rel_super(rng, objs, ctx) if kind == "crs" else self._between(rng, objs, ctx)
            if d is not None:
                return d
        return None

    def _cat_rel_super(self, rng, objs, ctx) -> QueryDraft | None:
        refs = [o for o in objs if self._ref_ok(objs, o)]
        rng.shuffle(refs)
        for ref in refs:
            cats = sorted({o.entry.category for o in objs if o.id != ref.id} & set(CATEGORY_NOUNS))
            rng.shuffle(cats)
            for cat in cats:
                members = [o for o in objs if o.entry.category == cat and o.id != ref.id]
                if any(o.mislabelled for o in members):
                    continue
                for rel in rng.permutation(list(SPATIAL_RELATIONS)):
                    rel = str(rel)
                    inrel = self._rel_targets(objs, ref, rel, members)
                    if not inrel or len(inrel) < 2:
                        continue
                    for sup in rng.permutation(["nearest", "farthest", "largest", "leftmost", "rightmost"]):
                        sup = str(sup)
                        if sup in ("nearest", "farthest") and rel in ("nearer", "farther"):
                            continue
                        win = superlative(inrel, sup)
                        if win is None or superlative(members, sup) is win:
                            continue  # the relation must matter
                        c, cs = CATEGORY_NOUNS[cat]
                        phrase, sp = SPATIAL_RELATIONS[rel][0], SUPERLATIVES[sup][0]
                        tid, tpl = self._template(rng, "cat_rel_super", ctx)
                        reason = (
                            f"Among {cs}: "
                            + _rel_evidence(rel, ref, _rel_scan(ref, members))
                            + f" {phrase.capitalize()} it: {_ids(inrel)}. "
                            + _sup_evidence(_scan(inrel), sup)
                            + f" {SUP_SHORT[sup]}: {win.id}."
                        )
                        return QueryDraft(
                            tpl.format(cat=c, cats=cs, rel=phrase, ref=ref.label, sup=sp),
                            [win.id],
                            "spatial",
                            3,
                            self._finish(reason, [win.id], None),
                            tid,
                            [f"cat:{cat}", f"rel:{rel}", f"sup:{sup}"],
                        )
        return None

    def _between(self, rng, objs, ctx) -> QueryDraft | None:
        refs = [o for o in objs if self._ref_ok(objs, o)]
        pairs = [(a, b) for a in refs for b in refs if a.cx + 0.25 < b.cx]
        rng.shuffle(pairs)
        for a, b in pairs:
            inside, ok = [], True
            for o in objs:
                if o.id in (a.id, b.id):
                    continue
                if a.cx + 0.06 <= o.cx <= b.cx - 0.06:
                    inside.append(o)
                elif a.cx + 0.02 < o.cx < b.cx - 0.02:
                    ok = False
                    break
            if not ok or len(inside) != 1 or inside[0].mislabelled:
                continue
            t = inside[0]
            tid, tpl = self._template(rng, "between", ctx)
            rest = _scan([o for o in objs if o.id not in (a.id, b.id)])
            reason = (
                f"Centre x: {a.cite} {a.px}, {b.cite} {b.px}; "
                + ", ".join(f"{o.cite} {o.px} {_verdict(o.id == t.id)}" for o in rest)
                + f". Between: {t.id}."
            )
            return QueryDraft(
                tpl.format(a=a.label, b=b.label),
                [t.id],
                "spatial",
                3,
                self._finish(reason, [t.id], None),
                tid,
                ["rel:between"],
            )
        return None

    # ------------------------------------------------------------------ temporal (videos)
    def _tfacts(self, scene: Scene):
        idx = [f.index for f in scene.twin.frames]
        return temporal_facts(idx[0], idx[-1])

    @staticmethod
    def _holders(objs, fn) -> list[Obj] | None:
        out = []
        for o in objs:
            v = fn(o)
            if v is None:
                return None
            if v:
                out.append(o)
        return out

    def tem_one(self, rng, objs, ctx, scene, *, no_target=False) -> QueryDraft | None:
        facts = self._tfacts(scene)
        names = list(facts)
        rng.shuffle(names)
        if not no_target and rng.random() < 0.2:
            d = self._fastest(rng, objs, ctx)
            if d is not None:
                return d
        for name in names:
            phrase, fn = facts[name]
            targets = self._holders(objs, fn)
            if targets is None or bool(targets) == no_target or len(targets) > 3 or any(t.mislabelled for t in targets):
                continue
            tid, tpl = self._template(rng, "motion", ctx)
            reason = (
                _motion_evidence(name, _scan(objs), fn) + f" {MOTION_SHORT[name].capitalize()}: " + _ids(targets) + "."
            )
            ids = [t.id for t in targets]
            return QueryDraft(
                tpl.format(motion=phrase, motions=MOTION_PLURAL[name]),
                ids,
                "temporal",
                1,
                self._finish(reason, ids, None),
                tid,
                [f"motion:{name}"],
            )
        return None

    def _fastest(self, rng, objs, ctx) -> QueryDraft | None:
        ranked = sorted(objs, key=lambda o: -o.speed)
        if len(ranked) < 2 or ranked[0].mislabelled:
            return None
        a, b = ranked[0], ranked[1]
        if a.speed < 1.4 * b.speed or round(a.speed * 100) - round(b.speed * 100) < 3:
            return None
        tid, tpl = self._template(rng, "fastest", ctx)
        reason = _motion_evidence("speed", _scan(objs)) + f" {a.cite} is fastest."
        return QueryDraft(tpl, [a.id], "temporal", 1, self._finish(reason, [a.id], None), tid, ["motion:fastest"])

    def _cat_groups(self, objs) -> list[tuple[str, list[Obj]]]:
        cats = sorted({o.entry.category for o in objs} & set(CATEGORY_NOUNS))
        return [(c, [o for o in objs if o.entry.category == c]) for c in cats]

    def tem_two(self, rng, objs, ctx, scene, *, no_target=False) -> QueryDraft | None:
        facts = self._tfacts(scene)
        groups = self._cat_groups(objs)
        rng.shuffle(groups)
        for cat, members in groups:
            if any(o.mislabelled for o in members):
                continue
            names = list(facts)
            rng.shuffle(names)
            for name in names:
                phrase, fn = facts[name]
                targets = self._holders(members, fn)
                all_t = self._holders(objs, fn)
                if targets is None or all_t is None or bool(targets) == no_target:
                    continue
                if no_target and not all_t:
                    continue
                if not no_target and (len(all_t) == len(targets) or len(targets) == len(members)):
                    continue  # both hops must matter
                c, cs = CATEGORY_NOUNS[cat]
                tid, tpl = self._template(rng, "cat_motion", ctx)
                reason = (
                    f"Among {cs}: "
                    + _motion_evidence(name, _scan(members), fn)
                    + f" {MOTION_SHORT[name].capitalize()}: "
                    + _ids(targets)
                    + "."
                )
                ids = [t.id for t in targets]
                return QueryDraft(
                    tpl.format(cat=c, cats=cs, motion=phrase, motions=MOTION_PLURAL[name]),
                    ids,
                    "temporal",
                    2,
                    self._finish(reason, ids, None),
                    tid,
                    [f"cat:{cat}", f"motion:{name}"],
                )
        return None

    def tem_three(self, rng, objs, ctx, scene, *, no_target=False) -> QueryDraft | None:
        if no_target:
            return None
        facts = self._tfacts(scene)
        groups = self._cat_groups(objs)
        rng.shuffle(groups)
        for cat, members in groups:
            if any(o.mislabelled for o in members) or len(members) < 2:
                continue
            names = list(facts)
            rng.shuffle(names)
            c, cs = CATEGORY_NOUNS[cat]
            for name in names:
                phrase, fn = facts[name]
                inm = self._holders(members, fn)
                if not inm:
                    continue
                # motion + fastest among them
                if len(inm) >= 2 and name != "still":
                    r = sorted(inm, key=lambda o: -o.speed)
                    a, b = r[0], r[1]
                    overall = sorted(members, key=lambda o: -o.speed)[0]
                    if (
                        a.speed >= 1.4 * b.speed
                        and round(a.speed * 100) - round(b.speed * 100) >= 3
                        and overall is not a
                    ):
                        tid, tpl = self._template(rng, "cat_motion_fastest", ctx)
                        reason = (
                            f"Among {cs}: "
                            + _motion_evidence(name, _scan(members), fn)
                            + f" {MOTION_SHORT[name].capitalize()}: {_ids(inm)}. "
                            + _motion_evidence("speed", _scan(inm))
                            + f" {a.cite} is fastest."
                        )
                        return QueryDraft(
                            tpl.format(cat=c, cats=cs, motion=phrase, motions=MOTION_PLURAL[name]),
                            [a.id],
                            "temporal",
                            3,
                            self._finish(reason, [a.id], None),
                            tid,
                            [f"cat:{cat}", f"motion:{name}", "motion:fastest"],
                        )
                # two motions
                for name2 in names:
                    if name2 == name or {name, name2} & {"still"}:
                        continue
                    phrase2, fn2 = facts[name2]
                    both = self._holders(inm, fn2)
                    if not both or len(both) == len(inm):
                        continue
                    in2 = self._holders(members, fn2)
                    if in2 is None or len(in2) == len(both):
                        continue
                    tid, tpl = self._template(rng, "cat_two_motions", ctx)
                    reason = (
                        f"Among {cs}: "
                        + _motion_evidence(name, _scan(members), fn)
                        + f" {MOTION_SHORT[name].capitalize()}: {_ids(inm)}. "
                        + _motion_evidence(name2, _scan(inm), fn2)
                        + f" Also {MOTION_SHORT[name2]}: "
                        + _ids(both)
                        + "."
                    )
                    ids = [o.id for o in both]
                    return QueryDraft(
                        tpl.format(
                            cat=c,
                            cats=cs,
                            motion=phrase,
                            motion2=phrase2,
                            motions=MOTION_PLURAL[name],
                            motions2=MOTION_PLURAL[name2],
                        ),
                        ids,
                        "temporal",
                        3,
                        self._finish(reason, ids, None),
                        tid,
                        [f"cat:{cat}", f"motion:{name}", f"motion:{name2}"],
                    )
        return None

    # ------------------------------------------------------------------ tool calls
    def _executor(self):
        if getattr(self, "_reasoner", None) is None:
            from fastreasonseg.reasoning.executor import Reasoner

            self._reasoner = Reasoner(_NoRuntime())  # never generates: only its tool runner is used
        return self._reasoner

    def run_plan(self, twin, plan: list[dict]) -> dict:
        """The ``<results>`` object the executor answers ``plan`` with on ``twin`` (its own code path)."""
        from fastreasonseg.reasoning.executor import RolloutResult
        from fastreasonseg.reasoning.grammar import dump_json
        from fastreasonseg.reasoning.tools import ToolContext

        ctx = ToolContext(twin=twin.model_copy(deep=True))  # tools may refine the twin: never the sample's
        return self._executor()._run_plan(dump_json(plan), ctx, RolloutResult(ids=[], no_target=True))

    def _close_call(self, scene: Scene, objs: list[Obj], draft: QueryDraft) -> tuple[list[dict], Callable] | None:
        """A tool call that settles the draft's closest call, and a check its result must pass.

        Spatial relations to a named object: ``relation(target, ref)`` for the target nearest the
        threshold (centres within 25% of the frame, depths within 0.35). Temporal direction / depth facts:
        ``motion(target)`` for the target with the weakest evidence (displacement or depth change < 0.4).
        The answer never depends on the
        result; a plan is only kept when the result agrees with the ground truth.
        """
        kinds: dict[str, str] = {}
        for f in draft.facts:
            k, _, v = f.partition(":")
            kinds.setdefault(k, v)
        by_id = {o.id: o for o in objs}
        targets = [by_id[i] for i in draft.ids if i in by_id]
        if not targets or any(t.mislabelled for t in targets):
            return None
        if draft.category == "spatial" and "ref" in kinds and kinds.get("rel") in _REL_MARGIN:
            rel, ref = kinds["rel"], by_id.get(int(kinds["ref"]))
            if ref is None:
                return None
            t = min(targets, key=lambda o: _REL_MARGIN[rel](o, ref))
            if _REL_MARGIN[rel](t, ref) > (0.35 if rel in ("nearer", "farther") else 0.25):
                return None
            want = _REL_TOOL_WORD[rel]
            return [{"tool": "relation", "args": {"a": t.id, "b": ref.id}}], lambda r: want in r.get("a_is", [])
        if draft.category == "temporal":
            motions = [f.split(":", 1)[1] for f in draft.facts if f.startswith("motion:")]
            motions = [m for m in motions if m in ("left", "right", "approach", "recede")]
            if not motions:
                return None
            m = motions[-1]
            t = min(targets, key=_MOTION_SCORE[m])
            if _MOTION_SCORE[m](t) > 0.4:
                return None  # a clear displacement / depth change: no need to check

            def check(r: dict, m=m) -> bool:
                return {
                    "left": "left" in r.get("dir", ""),
                    "right": "right" in r.get("dir", ""),
                    "approach": r.get("depth") == "approaching",
                    "recede": r.get("depth") == "receding",
                }[m]

            return [{"tool": "motion", "args": {"id": t.id}}], check
        return None

    def add_tools(self, rng, scene: Scene, objs: list[Obj], draft: QueryDraft, ctx: QueryContext) -> None:
        """Give ``draft`` a ``<plan>`` (a tool call on its closest call) with probability ``ctx.plan_rate``.

        The rationale becomes ``<reason>…</reason><plan>…</plan><results>…</results><answer>…</answer>``
        exactly as the executor would write it: the plan is run through the executor's own tool runner
        on a copy of the twin, and the rollout is rendered with
        :func:`~fastreasonseg.reasoning.grammar.render_rollout` (the executor's line breaks around
        ``<results>``). The ``<results>`` span is executor-written (masked out of training losses).
        """
        found = self._close_call(scene, objs, draft)
        if found is None or rng.random() >= ctx.plan_rate:
            return
        plan, check = found
        results = self.run_plan(scene.twin, plan)
        res = results.get(plan[0]["tool"], {})
        if "error" in results or "error" in res or not check(res):
            return
        from fastreasonseg.reasoning.grammar import render_rollout

        reason = draft.rationale.split("<reason>", 1)[1].split("</reason>", 1)[0]
        subject = plan[0]["args"].get("a", plan[0]["args"].get("id"))
        reason += f" {subject} is close: check."
        draft.plan, draft.results = plan, [results]
        draft.rationale = render_rollout(reason, sorted(draft.ids), [(plan, results)])

    # ------------------------------------------------------------------ dispatch
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
        ctx = ctx or QueryContext()
        objs = scene_objects(scene, self.kb)
        if not objs:
            return None
        draft = self._generate(rng, scene, objs, category, level, ctx, no_target)
        if draft is not None:
            self.add_tools(rng, scene, objs, draft, ctx)
        return draft

    def _generate(self, rng, scene, objs, category, level, ctx, no_target) -> QueryDraft | None:
        if category == "semantic":
            if level == 1:
                fns = [self.sem_use, self.sem_trait, self.sem_prop, self.sem_cat]
                w = np.array([0.4, 0.2, 0.2, 0.2])
                order = rng.choice(len(fns), size=len(fns), replace=False, p=w)
                if ctx.prefer_facts:
                    order = sorted(order, key=lambda i: i >= 2)  # use / trait first, order kept
                for i in order:
                    d = fns[int(i)](rng, objs, ctx, no_target=no_target)
                    if d is not None:
                        return d
                return None
            return (self.sem_two if level == 2 else self.sem_three)(rng, objs, ctx, no_target=no_target)
        if category == "spatial":
            if scene.twin.is_video:
                return None
            fn = {1: self.spa_one, 2: self.spa_two, 3: self.spa_three}[level]
            return fn(rng, objs, ctx, no_target=no_target)
        if category == "temporal":
            if not scene.twin.is_video:
                return None
            fn = {1: self.tem_one, 2: self.tem_two, 3: self.tem_three}[level]
            return fn(rng, objs, ctx, scene, no_target=no_target)
        raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")


__all__ = [
    "CATEGORIES",
    "CATEGORY_NOUNS",
    "PROPERTY_PHRASES",
    "SPATIAL_RELATIONS",
    "SUPERLATIVES",
    "TEMPLATES",
    "Obj",
    "QueryContext",
    "QueryDraft",
    "QueryGenerator",
    "heldout_template_ids",
    "scene_objects",
    "superlative",
    "temporal_facts",
]
