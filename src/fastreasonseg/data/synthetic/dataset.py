"""Train / val / test splits of synthetic samples that test generalisation, and their JSONL files.

Held out from the training split (recorded in the manifest):

* **objects** - about 10% of the knowledge entries (at least one per category of 5+ entries,
  never people). They never appear in a training scene at all; in val/test about half of the
  samples are steered to have one of them among the targets.
* **facts** - about 12% of the uses and 12% of the traits: no training query asks about them; in
  val/test, 80% of the semantic L1 samples are steered to one of them (~20-25% of semantic samples).
* **phrasings** - the last template of every query kind (:func:`~.queries.heldout_template_ids`).

Samples are balanced over the 9 (category, level) cells: the cell is drawn first (temporal queries on
videos, spatial on images, semantic on either) and, for cells random scenes rarely support (semantic
L2, temporal L2/L3), the scene is built around a planned query (:mod:`.plan`).

Each sample records which of these it exercises (``novel``), so an evaluation can report seen vs
novel separately. Everything is deterministic given the seed: sample ``i`` of a split is generated
from ``numpy.random.default_rng([seed, split code, i])`` alone, so any sample can be regenerated
without the others and changing ``--train`` does not change val or test.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastreasonseg.data.synthetic.phrasing import heldout_ids
from fastreasonseg.data.synthetic.plan import plan_semantic_two, plan_temporal
from fastreasonseg.data.synthetic.queries import CATEGORIES, QueryContext, QueryGenerator
from fastreasonseg.data.synthetic.scenes import SETTINGS, VIDEO_SETTINGS, Scene, SceneGenerator
from fastreasonseg.knowledge import KnowledgeBase, load_knowledge
from fastreasonseg.twin.schema import DigitalTwin

SPLITS = ("train", "val", "test")
_SPLIT_CODE = {"train": 1, "val": 2, "test": 3}
CATEGORY_WEIGHTS = {"semantic": 1 / 3, "spatial": 1 / 3, "temporal": 1 / 3}
#: cells whose generators never ask a no-target query (the no-target draw is skipped there)
_NO_TARGET_CELLS = {("semantic", 1), ("semantic", 2), ("semantic", 3), ("spatial", 1), ("spatial", 2)}
_NO_TARGET_CELLS |= {("temporal", 1), ("temporal", 2)}
#: attempts (scenes) at the planned level before other levels of the category are accepted (a safety net)
_LEVEL_FALLBACK_AFTER = 30
NO_TARGET_RATE = 0.1
SEMANTIC_VIDEO_RATE = 0.3
NOVEL_FACT_RATE = 0.8
"""Share of val/test semantic L1 samples steered to a held-out use or trait."""
DEFAULT_SIZES = {"train": 2000, "val": 200, "test": 300}


@dataclass(frozen=True)
class Holdout:
    """What the training split never sees."""

    objects: tuple[str, ...]
    uses: tuple[str, ...]
    traits: tuple[str, ...]
    templates: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "objects": list(self.objects),
            "uses": list(self.uses),
            "traits": list(self.traits),
            "templates": list(self.templates),
        }


def make_holdout(seed: int, kb: KnowledgeBase | None = None, frac_objects=0.1, frac_facts=0.12) -> Holdout:
    """Choose the held-out objects, uses, traits and templates for ``seed``."""
    kb = kb or load_knowledge()
    rng = np.random.default_rng([seed, 99])
    objects: list[str] = []
    for cat in kb.categories:
        if cat == "person":
            continue
        keys = [k for k in kb.keys if kb[k].category == cat]
        if len(keys) < 5:
            continue
        n = max(1, round(frac_objects * len(keys)))
        objects += [str(k) for k in rng.choice(keys, size=n, replace=False)]
    uses = [str(u) for u in rng.choice(kb.all_uses, size=round(frac_facts * len(kb.all_uses)), replace=False)]
    traits = [str(t) for t in rng.choice(kb.all_traits, size=round(frac_facts * len(kb.all_traits)), replace=False)]
    return Holdout(tuple(sorted(objects)), tuple(sorted(uses)), tuple(sorted(traits)), heldout_wordings())


def heldout_wordings() -> tuple[str, ...]:
    """The wordings val/test may use and train never does (``bank.index``, see :mod:`.phrasing`; the small banks
    written inline in :mod:`.spatial` and :mod:`.temporal` hold out their last entry the same way)."""
    from fastreasonseg.data.synthetic import phrasing, semantic

    banks: dict[str, list] = {
        "frame:np": phrasing.NP_FRAMES,
        "frame:what": phrasing.WHAT_FRAMES,
        "frame:who": phrasing.WHO_FRAMES,
        "frame:whatverb": phrasing.WHAT_VERB_FRAMES,
    }
    for group, d in (
        ("rel", phrasing.RELATIONS),
        ("supadj", phrasing.SUP_ADJ),
        ("suppost", phrasing.SUP_POST),
        ("at", phrasing.PLACES),
        ("motion", phrasing.MOTIONS),
        ("tsup", phrasing.TRACK_SUPS),
        ("sem", semantic.TEMPLATES),
    ):
        banks.update({f"{group}:{k}": v for k, v in d.items()})
    return tuple(f"{name}.{k}" for name, bank in banks.items() for k in sorted(heldout_ids(bank)))


@dataclass
class SyntheticSample:
    """One training / evaluation example: a twin, an implicit query, its answer and a reference rationale."""

    uid: str
    split: str
    seed: list[int]
    """The ``numpy.random.default_rng`` seed the sample was generated from."""
    twin: DigitalTwin
    query: str
    ids: list[int]
    """Target track ids (``[]`` = the asked-for thing is not in the scene)."""
    category: str
    level: int
    rationale: str
    template_id: str
    objects: dict[int, str]
    """Instance id -> knowledge key of every object in the twin."""
    target_keys: list[str]
    facts: list[str]
    setting: str
    plan: str | None = None
    """The gold plan (plan language, see :mod:`fastreasonseg.reasoning.program`)."""
    novel: list[str] = field(default_factory=list)
    """Held-out parts this sample exercises: ``object``, ``fact``, ``template``."""
    tool_results: dict | None = None
    """The executor's ``<results>`` object for :attr:`plan`, as written inside :attr:`rationale` (JSONL key
    ``results``)."""

    @property
    def reference_rollout(self) -> str:
        """The full reference rollout (the rationale: model-written parts plus any executor ``<results>``)."""
        return self.rationale

    def rollout_parts(self) -> list[tuple[str, bool]]:
        """:func:`rollout_parts` of the reference rollout: ``(text, written_by_model)`` pieces."""
        return rollout_parts(self.rationale)

    @property
    def no_target(self) -> bool:
        return not self.ids

    @property
    def media(self) -> str:
        return self.twin.source.kind

    def to_dict(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "split": self.split,
            "seed": list(self.seed),
            "query": self.query,
            "ids": list(self.ids),
            "category": self.category,
            "level": self.level,
            "rationale": self.rationale,
            "plan": self.plan,
            "template_id": self.template_id,
            "objects": {str(k): v for k, v in self.objects.items()},
            "target_keys": list(self.target_keys),
            "facts": list(self.facts),
            "setting": self.setting,
            "novel": list(self.novel),
            "results": self.tool_results,
            "twin": self.twin.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SyntheticSample:
        return cls(
            uid=d["uid"],
            split=d["split"],
            seed=list(d["seed"]),
            twin=DigitalTwin.from_dict(d["twin"], source=d.get("uid")),
            query=d["query"],
            ids=[int(i) for i in d["ids"]],
            category=d["category"],
            level=int(d["level"]),
            rationale=d["rationale"],
            plan=d.get("plan"),
            template_id=d["template_id"],
            objects={int(k): v for k, v in d["objects"].items()},
            target_keys=list(d["target_keys"]),
            facts=list(d["facts"]),
            setting=d["setting"],
            novel=list(d.get("novel", [])),
            tool_results=d.get("results"),
        )


_RESULTS_SPAN = re.compile(r"\n?<results>.*?</results>\n?", re.S)


def rollout_parts(text: str) -> list[tuple[str, bool]]:
    """Split a rollout into ``(text, written_by_model)`` pieces, in order; concatenated they give ``text``.

    The executor writes each ``\n<results>…</results>\n`` block (line breaks included, as it appends
    them); everything else is the model's. Training masks the executor's pieces out of the loss.
    """
    parts: list[tuple[str, bool]] = []
    pos = 0
    for m in _RESULTS_SPAN.finditer(text):
        if m.start() > pos:
            parts.append((text[pos : m.start()], True))
        parts.append((m.group(0), False))
        pos = m.end()
    if pos < len(text):
        parts.append((text[pos:], True))
    return parts


def _settings_for(key: str, kb: KnowledgeBase, video: bool) -> list[str]:
    places = set(kb[key].places)
    names = [s for s, (p, _) in SETTINGS.items() if p in places]
    if video:
        names = [s for s in names if s in VIDEO_SETTINGS]
    return names


class _Generators:
    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.scenes = SceneGenerator(kb)
        self.queries = QueryGenerator(kb)


def generate_sample(
    split: str, index: int, seed: int, holdout: Holdout, *, kb: KnowledgeBase | None = None, _gens=None
) -> SyntheticSample:
    """Sample ``index`` of ``split`` (deterministic given ``seed``)."""
    if split not in _SPLIT_CODE:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    kb = kb or load_knowledge()
    gens = _gens or _Generators(kb)
    sample_seed = [int(seed), _SPLIT_CODE[split], int(index)]
    rng = np.random.default_rng(sample_seed)
    train = split == "train"
    held_obj = set(holdout.objects)
    ctx = QueryContext(
        allowed_uses=set(kb.all_uses) - set(holdout.uses) if train else None,
        allowed_traits=set(kb.all_traits) - set(holdout.traits) if train else None,
        allow_heldout=not train,
        prefer_heldout=0.0 if train else 0.4,
    )
    allowed_keys = set(kb.keys) - held_obj if train else None
    category = str(rng.choice(CATEGORIES, p=[CATEGORY_WEIGHTS[c] for c in CATEGORIES]))
    level = int(rng.integers(1, 4))
    no_target = bool(rng.random() < NO_TARGET_RATE) and (category, level) in _NO_TARGET_CELLS
    # held-out uses / traits: one-fact semantic queries (L1) ask about them in most val/test samples (L2/L3
    # queries are about categories, properties and sizes), i.e. ~25% of the semantic val/test samples
    want_novel_fact = (not train) and category == "semantic" and level == 1 and rng.random() < NOVEL_FACT_RATE
    want_novel_object = (not train) and not no_target and not want_novel_fact and rng.random() < 0.5
    if want_novel_fact:
        ctx.allowed_uses, ctx.allowed_traits = set(holdout.uses), set(holdout.traits)
        ctx.prefer_facts = True
    fact_keys = [k for k in kb.keys if set(kb[k].uses) & set(holdout.uses) or set(kb[k].traits) & set(holdout.traits)]
    for attempt in range(60):
        if attempt == 20:
            ctx.prefer_facts = False
            ctx.allowed_uses = set(kb.all_uses) - set(holdout.uses) if train else None
            ctx.allowed_traits = set(kb.all_traits) - set(holdout.traits) if train else None
        video = category == "temporal" or (category == "semantic" and rng.random() < SEMANTIC_VIDEO_RATE)
        steer_pool = None
        if want_novel_object or want_novel_fact:
            steer_pool = holdout.objects if want_novel_object else fact_keys
        scene = _scene(rng, gens, attempt, category, level, no_target, video, allowed_keys, steer_pool)
        draft = _draft(rng, gens, scene, category, level, no_target, ctx, attempt)
        if draft is None:
            continue
        target_keys = [scene.obj(i).key for i in draft.ids]
        if want_novel_object and attempt < 12 and not (set(target_keys) & held_obj):
            continue
        novel = _novel(target_keys, draft, holdout)
        if want_novel_fact and attempt < 20 and "fact" not in novel:
            continue
        return SyntheticSample(
            uid=f"{split}-{seed}-{index:06d}",
            split=split,
            seed=sample_seed,
            twin=scene.twin,
            query=draft.query,
            ids=sorted(draft.ids),
            category=draft.category,
            level=draft.level,
            rationale=draft.rationale,
            plan=draft.plan,
            template_id=draft.template_id,
            objects={o.id: o.key for o in scene.objects},
            target_keys=target_keys,
            facts=draft.facts,
            setting=scene.setting,
            novel=novel,
            tool_results=draft.results,
        )
    raise RuntimeError(f"could not generate sample {index} of {split} (seed {seed})")  # pragma: no cover


def _scene(rng, gens, attempt, category, level, no_target, video, allowed_keys, steer_pool) -> Scene:
    """The scene of one attempt: built around a planned query for the cells random scenes rarely support (every
    other try), or steered to a held-out object / fact (val/test, first tries), else random."""
    kb = gens.kb
    required: list[str] = []
    motions: list[str] = []
    setting = None
    plan = None
    if not no_target and attempt % 2 == 0 and attempt < _LEVEL_FALLBACK_AFTER:
        if category == "semantic" and level == 2:
            plan = plan_semantic_two(rng, gens.scenes, allowed_keys, video)
        elif category == "temporal" and level in (2, 3):
            plan = plan_temporal(rng, gens.scenes, allowed_keys, level)
    if plan is not None:
        setting, required, motions = plan.setting, list(plan.keys), list(plan.motions)
    if steer_pool is not None and attempt < 12 and plan is None:
        cand = [k for k in steer_pool if _settings_for(k, kb, video)]
        if cand:
            k = str(rng.choice(cand))
            required = [k]
            setting = str(rng.choice(_settings_for(k, kb, video)))
    if video:
        return gens.scenes.video(
            rng, setting=setting, allowed_keys=allowed_keys, required_keys=required, required_motions=motions
        )
    return gens.scenes.image(rng, setting=setting, allowed_keys=allowed_keys, required_keys=required)


def _draft(rng, gens, scene, category, level, no_target, ctx, attempt):
    """A query of the drawn level (two tries); only after many scenes other levels of the category (a safety net)."""
    tries = [(level, no_target), (level, no_target)]
    if attempt >= _LEVEL_FALLBACK_AFTER:
        tries += [(lv, False) for lv in (1, 2, 3) if lv != level]
    for lv, nt in tries:
        draft = gens.queries.generate(rng, scene, category, lv, ctx, no_target=nt)
        if draft is not None:
            return draft
    return None


def _novel(target_keys: list[str], draft, holdout: Holdout) -> list[str]:
    """Which held-out parts a sample exercises: ``object``, ``fact``, ``template``."""
    novel = []
    if set(target_keys) & set(holdout.objects):
        novel.append("object")
    held = {*holdout.uses, *holdout.traits}
    if any(f.startswith(("use:", "trait:")) and f.split(":", 1)[1] in held for f in draft.facts):
        novel.append("fact")
    if draft.heldout_wording:
        novel.append("template")
    return novel


def iter_split(
    split: str, n: int, seed: int, holdout: Holdout, kb: KnowledgeBase | None = None
) -> Iterator[SyntheticSample]:
    kb = kb or load_knowledge()
    gens = _Generators(kb)
    for i in range(n):
        yield generate_sample(split, i, seed, holdout, kb=kb, _gens=gens)


def generate_dataset(
    seed: int = 0,
    train: int = 2000,
    val: int = 200,
    test: int = 300,
    progress: Callable[[str, int], None] | None = None,
) -> tuple[dict[str, list[SyntheticSample]], dict[str, Any]]:
    """All three splits and the manifest (held-out sets, sizes, statistics); ``progress(split, samples done in it)``
    is called after each sample."""
    kb = load_knowledge()
    holdout = make_holdout(seed, kb)
    sizes = {"train": train, "val": val, "test": test}
    splits: dict[str, list[SyntheticSample]] = {s: [] for s in sizes}
    for s, n in sizes.items():
        for sample in iter_split(s, n, seed, holdout, kb):
            splits[s].append(sample)
            if progress is not None:
                progress(s, len(splits[s]))
    return splits, manifest(seed, holdout, splits, kb)


def split_stats(samples: Iterable[SyntheticSample]) -> dict[str, Any]:
    samples = list(samples)
    return {
        "samples": len(samples),
        "by_category_level": dict(sorted(Counter(f"{s.category}/L{s.level}" for s in samples).items())),
        "media": dict(Counter(s.media for s in samples)),
        "no_target": sum(s.no_target for s in samples),
        "multi_target": sum(len(s.ids) > 1 for s in samples),
        "with_plan": sum(s.plan is not None for s in samples),
        "novel": dict(Counter(n for s in samples for n in s.novel)),
        "mean_instances_per_frame": round(
            float(np.mean([s.twin.num_instances() / len(s.twin.frames) for s in samples])) if samples else 0.0, 2
        ),
    }


def manifest(seed: int, holdout: Holdout, splits: dict[str, list[SyntheticSample]], kb: KnowledgeBase) -> dict:
    return {
        "generator": "fastreasonseg.data.synthetic",
        "format_version": 1,
        "seed": seed,
        "sizes": {s: len(v) for s, v in splits.items()},
        "knowledge_entries": len(kb),
        "heldout": holdout.to_dict(),
        "stats": {s: split_stats(v) for s, v in splits.items()},
    }


def save_jsonl(samples: Iterable[SyntheticSample], path: str | Path) -> int:
    """Write one sample per line; returns the number written."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps(s.to_dict(), separators=(",", ":")) + "\n")
            n += 1
    return n


def load_jsonl(path: str | Path) -> list[SyntheticSample]:
    """Read samples written by :func:`save_jsonl` (twins are validated on load)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(SyntheticSample.from_dict(json.loads(line)))
    return out


def write_dataset(
    out_dir: str | Path,
    *,
    seed: int = 0,
    train: int = 2000,
    val: int = 200,
    test: int = 300,
    force: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> dict:
    """Generate and write ``train.jsonl``, ``val.jsonl``, ``test.jsonl`` and ``manifest.json``; returns the manifest.
    ``progress`` as in :func:`generate_dataset`."""
    out = Path(out_dir)
    names = [out / f"{s}.jsonl" for s in SPLITS] + [out / "manifest.json"]
    existing = [str(p) for p in names if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{', '.join(existing)} already exist(s); pass force=True (--force) to overwrite")
    out.mkdir(parents=True, exist_ok=True)
    splits, man = generate_dataset(seed, train, val, test, progress=progress)
    for s in SPLITS:
        save_jsonl(splits[s], out / f"{s}.jsonl")
    (out / "manifest.json").write_text(json.dumps(man, indent=2) + "\n", encoding="utf-8")
    return man


__all__ = [
    "DEFAULT_SIZES",
    "SPLITS",
    "Holdout",
    "SyntheticSample",
    "generate_dataset",
    "generate_sample",
    "iter_split",
    "load_jsonl",
    "make_holdout",
    "manifest",
    "rollout_parts",
    "save_jsonl",
    "split_stats",
    "write_dataset",
]
