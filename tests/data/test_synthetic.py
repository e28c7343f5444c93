"""Synthetic scenes, queries and splits: validity, determinism, ground truth recomputed independently."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastreasonseg.data.synthetic.dataset import (
    SyntheticSample,
    generate_sample,
    iter_split,
    load_jsonl,
    make_holdout,
    save_jsonl,
)
from fastreasonseg.data.synthetic.scenes import SceneGenerator
from fastreasonseg.knowledge import FLAGS, PLACES, SIZE_CLASSES, load_knowledge
from fastreasonseg.twin.view import twin_view

SEED = 3
KB = load_knowledge()


@pytest.fixture(scope="module")
def holdout():
    return make_holdout(SEED)


@pytest.fixture(scope="module")
def samples(holdout) -> dict[str, list[SyntheticSample]]:
    return {s: list(iter_split(s, n, SEED, holdout)) for s, n in (("train", 45), ("val", 20), ("test", 20))}


def _all(samples):
    return [s for v in samples.values() for s in v]


# ------------------------------------------------------------------ knowledge base
def test_knowledge_base_size_and_fields():
    assert len(KB) >= 300
    assert len(KB.categories) >= 10
    for e in KB.entries.values():
        assert e.key and e.key == e.key.strip().lower()
        assert e.size in SIZE_CLASSES
        assert e.flags <= set(FLAGS)
        assert e.places and set(e.places) <= set(PLACES), e.key
        assert e.colours, e.key
        assert e.uses, e.key
        assert e.group
        assert KB.unambiguous_names(e.key)[0] == e.key
    assert len(KB.all_uses) >= 300


@given(st.sampled_from(sorted(load_knowledge().keys)))
@settings(max_examples=60, deadline=None)
def test_knowledge_entries_consistent(key):
    e = KB[key]
    if e.category == "animal":
        assert e.has("alive") and e.has("moves")
    if e.category in ("fruit", "vegetable"):
        assert e.has("edible")
    for n in KB.unambiguous_names(key):
        assert n == key or n not in KB


# ------------------------------------------------------------------ scenes
@given(st.integers(0, 2**31 - 1), st.booleans())
@settings(max_examples=12, deadline=None)
def test_scenes_valid_and_occlusion_consistent(seed, video):
    gen = SceneGenerator()
    rng = np.random.default_rng(seed)
    scene = gen.video(rng) if video else gen.image(rng)
    twin = scene.twin
    twin.validate_all()
    objects = {o.id for o in scene.objects}
    assert objects <= set(twin.track_ids)  # the rest are background surfaces and detector junk
    extras = {i.label for fr in twin.frames for i in fr.instances if i.id not in objects}
    assert extras <= {"floor", "wall", "ground", "sky", "object", "shadow"}
    for fr in twin.frames:
        total = np.zeros(twin.size, dtype=int)
        for i in fr.instances:
            if i.id in objects:
                total += i.mask.decode()
        assert total.max() <= 1  # visible masks never overlap: the nearer object owns the pixels
        for i in fr.instances:
            assert i.depth is not None and i.score is not None
            if i.score < 0.5 and i.id in objects:
                assert i.alt_labels  # a doubtful top label always carries the right name as an alternative
    if video:
        assert 8 <= len(twin.frames) <= 24 and twin.source.fps > 0


# ------------------------------------------------------------------ samples
def test_determinism(holdout):
    a = generate_sample("val", 7, SEED, holdout).to_dict()
    b = generate_sample("val", 7, SEED, holdout).to_dict()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    c = generate_sample("val", 8, SEED, holdout).to_dict()
    assert a != c


def test_samples_do_not_depend_on_the_hash_seed():
    """Same sample in processes with different string hashing (set iteration order)."""
    import os
    import subprocess
    import sys

    code = (
        "import json; from fastreasonseg.data.synthetic.dataset import generate_sample, make_holdout; "
        "print(json.dumps([generate_sample('train', i, 0, make_holdout(0)).to_dict() for i in range(3)], "
        "sort_keys=True))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": h}, capture_output=True, text=True
        ).stdout
        for h in ("1", "2")
    }
    assert len(outs) == 1 and len(next(iter(outs))) > 1000


def test_samples_valid_targets_and_rollouts(samples):
    """Every reference rollout parses, plans, and carries the executor's exact results and answer."""
    from fastreasonseg.data.synthetic.dataset import rollout_parts
    from fastreasonseg.data.synthetic.queries import QueryGenerator
    from fastreasonseg.reasoning.grammar import dump_json, parse_rollout, render_rollout

    reasoner = QueryGenerator().reasoner  # the executor's plan runner
    for s in _all(samples):
        s.twin.validate_all()
        assert set(s.ids) <= set(s.twin.track_ids)
        assert set(s.objects) <= set(s.twin.track_ids)
        parsed = parse_rollout(s.rationale)
        assert parsed.ok, (s.rationale, parsed.messages())
        assert parsed.answer_ids == s.ids and s.plan and s.tool_results
        # the executor's own answer to the gold plan, on a fresh copy of the twin
        assert reasoner.run_plan(s.plan, reasoner.context(s.twin)) == s.tool_results
        assert s.tool_results["ids"] == s.ids
        parts = s.rollout_parts()
        assert [p for p, by_model in parts if not by_model] == [
            "\n<results>" + dump_json(s.tool_results, compact=True) + "</results>\n"
        ]
        assert s.rationale == render_rollout(parsed.reason, s.ids, [(s.plan, s.tool_results)])
        assert s.category in ("semantic", "spatial", "temporal") and s.level in (1, 2, 3)
        assert (s.media == "video") if s.category == "temporal" else True
        assert (s.media == "image") if s.category == "spatial" else True
    assert rollout_parts('<reason>a</reason><answer>{"ids": []}</answer>') == [
        ('<reason>a</reason><answer>{"ids": []}</answer>', True)
    ]


def test_gold_answers_hold_at_half_and_double_tolerance(samples):
    """No object sits on a threshold: the gold plan gives the same answer at every slack of the oracle."""
    from fastreasonseg.data.synthetic.queries import SLACKS, QueryGenerator

    gen = QueryGenerator()
    for s in _all(samples):
        oracle = gen.oracle(s.twin)
        assert oracle(s.plan) == tuple(s.ids), (s.query, s.plan)
        assert SLACKS[0] == 1.0 and len(SLACKS) == 3


def test_reasons_and_plans_are_short(samples):
    """The model writes the reason, the plan and the ids: a few dozen tokens (about 3.3 characters a token)."""
    model_text = [
        len(s.rationale.split("<reason>")[1].split("</reason>")[0]) + len(s.plan) + 4 * len(s.ids)
        for s in _all(samples)
    ]
    assert np.median(model_text) / 3.3 < 25, np.median(model_text)
    assert all("<" not in s.rationale.split("</reason>")[0][8:] for s in _all(samples))


def test_category_level_coverage(samples):
    got = {(s.category, s.level) for s in _all(samples)}
    assert {c for c, _ in got} == {"semantic", "spatial", "temporal"}
    assert {lv for _, lv in got} == {1, 2, 3}
    assert any(not s.ids for s in _all(samples))
    assert any(len(s.ids) > 1 for s in _all(samples))
    assert any(0 in s.twin.track_ids for s in _all(samples))  # perception numbers from 0
    plans = " ".join(s.plan for s in _all(samples))
    assert len(set(re.findall(r"([a-z_]+)\(", plans))) >= 12  # many operators, not a few templates


def test_every_category_level_cell_balanced(samples):
    """Scenes are built around the planned (category, level): every cell gets about 1/9 of the samples."""
    from collections import Counter

    allc = _all(samples)
    cells = Counter((s.category, s.level) for s in allc)
    assert set(cells) == {(c, lv) for c in ("semantic", "spatial", "temporal") for lv in (1, 2, 3)}, cells
    assert min(cells.values()) >= 2, cells
    assert max(cells.values()) <= len(allc) / 9 * 2.5, cells


def test_scene_plans_place_keys_and_motions():
    from fastreasonseg.data.synthetic.plan import plan_semantic_two, plan_temporal

    gen = SceneGenerator()
    rng = np.random.default_rng(5)
    for level in (2, 3):
        p = plan_temporal(rng, gen, None, level)
        assert p is not None and len(p.keys) == len(p.motions) >= 3
        scene = gen.video(rng, setting=p.setting, required_keys=p.keys, required_motions=p.motions)
        got = sorted((o.key, o.motion) for o in scene.objects)
        for k, m in zip(p.keys, p.motions, strict=True):
            if any(o.key == k for o in scene.objects):  # an object may stay hidden behind a nearer one
                assert (k, m) in got or any(o.key == k and o.motion == m for o in scene.objects)
    p = plan_semantic_two(rng, gen, None, False)
    assert p is not None
    cat = KB[p.keys[0]].category
    assert KB[p.keys[1]].category == cat and KB[p.keys[2]].category != cat


def test_split_generalisation(samples, holdout):
    held_obj, held_tpl = set(holdout.objects), set(holdout.templates)
    held_facts = {f"use:{u}" for u in holdout.uses} | {f"trait:{t}" for t in holdout.traits}
    assert held_obj and held_tpl and held_facts
    for s in samples["train"]:
        assert not set(s.objects.values()) & held_obj
        assert not set(s.template_id.split("|")) & held_tpl
        assert not set(s.facts) & held_facts
        assert not s.novel
    evals = samples["val"] + samples["test"]
    assert any("object" in s.novel for s in evals)
    assert any("template" in s.novel for s in evals)
    assert {s.uid for s in samples["val"]}.isdisjoint({s.uid for s in samples["test"]})


def test_phrasebook_holds_out_the_last_wording():
    from fastreasonseg.data.synthetic.phrasing import RELATIONS, Phrasebook

    bank = RELATIONS["on"]
    train = Phrasebook(np.random.default_rng(0))
    assert {train.pick("rel:on", bank) for _ in range(200)} == set(bank[:-1]) and not train.heldout_used
    evals = Phrasebook(np.random.default_rng(0), allow_heldout=True, prefer_heldout=1.0)
    assert evals.pick("rel:on", bank) == bank[-1] and evals.heldout_used and evals.template_id == "rel:on.5"


def test_jsonl_roundtrip(samples, tmp_path):
    path = tmp_path / "x.jsonl"
    assert save_jsonl(samples["val"], path) == len(samples["val"])
    back = load_jsonl(path)
    assert [b.to_dict() for b in back] == [s.to_dict() for s in samples["val"]]


def test_cli_writes_and_refuses_overwrite(tmp_path):
    from typer.testing import CliRunner

    from fastreasonseg.cli import app

    out = tmp_path / "syn"
    args = ["data", "synthetic", "-o", str(out), "--train", "3", "--val", "2", "--test", "2", "--seed", "1"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    for n in ("train.jsonl", "val.jsonl", "test.jsonl", "manifest.json"):
        assert (out / n).exists()
    man = json.loads((out / "manifest.json").read_text())
    assert man["sizes"] == {"train": 3, "val": 2, "test": 2} and man["heldout"]["objects"]
    assert len(load_jsonl(out / "train.jsonl")) == 3
    r = CliRunner().invoke(app, args)
    assert r.exit_code != 0
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_view_tokens_per_sample(samples):
    from fastreasonseg.twin.tokens import count_tokens

    counts = [count_tokens(twin_view(s.twin))[0] / max(1, len(s.twin.track_ids)) for s in _all(samples)]
    assert max(counts) <= 25, max(counts)  # issue 14: at most 25 tokens per listed object, header included


def test_heldout_facts_share_in_eval(holdout):
    """Val/test semantic samples exercise a held-out use or trait ~20-30% of the time (L1 queries are steered)."""
    ss = [s for s in iter_split("test", 60, SEED, holdout) if s.category == "semantic"]
    held = {f"use:{u}" for u in holdout.uses} | {f"trait:{t}" for t in holdout.traits}
    with_fact = [s for s in ss if "fact" in s.novel]
    assert all(set(s.facts) & held for s in with_fact)
    assert len(with_fact) >= 0.1 * len(ss), (len(with_fact), len(ss))
