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
from fastreasonseg.data.synthetic.queries import TEMPLATES, heldout_template_ids
from fastreasonseg.data.synthetic.scenes import SceneGenerator
from fastreasonseg.knowledge import FLAGS, PLACES, SIZE_CLASSES, load_knowledge
from fastreasonseg.twin.view import box_centre_size, twin_view

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
    assert {o.id for o in scene.objects} == set(twin.track_ids)
    for fr in twin.frames:
        masks = [i.mask.decode() for i in fr.instances]
        total = np.zeros(twin.size, dtype=int)
        for m in masks:
            total += m
        assert total.max() <= 1  # visible masks never overlap: the nearer object owns the pixels
        for i in fr.instances:
            assert i.depth is not None and i.score is not None
            if i.score < 0.5:
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
    """Same sample in processes with different string hashing (set iteration order): train sample 564 of seed 0
    once depended on it (the duplicate-label query iterated a set of labels)."""
    import os
    import subprocess
    import sys

    code = (
        "import json; from fastreasonseg.data.synthetic.dataset import generate_sample, make_holdout; "
        "print(json.dumps(generate_sample('train', 564, 0, make_holdout(0)).to_dict(), sort_keys=True))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": h}, capture_output=True, text=True
        ).stdout
        for h in ("1", "2", "4")
    }
    assert len(outs) == 1 and "rightmost" in next(iter(outs))


_ANSWER = re.compile(r"<answer>(.*)</answer>$")


def test_samples_valid_targets_and_rationales(samples):
    for s in _all(samples):
        s.twin.validate_all()
        assert set(s.ids) <= set(s.twin.track_ids)
        assert sorted(s.objects) == s.twin.track_ids
        assert s.rationale.startswith("<reason>")
        m = _ANSWER.search(s.rationale)
        assert m, s.rationale
        assert json.loads(m.group(1)) == {"ids": s.ids}
        if not s.ids:
            assert m.group(1) == '{"ids": []}'
        if "<plan>" in s.rationale:
            plan = json.loads(s.rationale.split("<plan>")[1].split("</plan>")[0])
            assert plan == s.plan and plan[0]["tool"] in ("relation", "relabel", "motion")
        assert s.category in ("semantic", "spatial", "temporal") and s.level in (1, 2, 3)
        if s.category == "temporal":
            assert s.media == "video"
        if s.category == "spatial":
            assert s.media == "image"


def test_rationales_are_trainable_rollouts(samples):
    """Every reference rollout is well-formed; plan rollouts carry the executor's exact <results>."""
    from fastreasonseg.data.synthetic.dataset import rollout_parts
    from fastreasonseg.reasoning.grammar import dump_json, parse_rollout, render_rollout
    from fastreasonseg.reasoning.tools import ToolContext, default_registry

    with_plan = 0
    for s in _all(samples):
        parsed = parse_rollout(s.reference_rollout)
        assert parsed.ok, (s.reference_rollout, parsed.messages())
        assert parsed.answer_ids == s.ids
        parts = s.rollout_parts()
        assert "".join(p for p, _ in parts) == s.rationale == s.reference_rollout
        if s.plan is None:
            assert s.tool_results is None and all(by_model for _, by_model in parts)
            continue
        with_plan += 1
        assert len(s.tool_results) == 1
        (results,) = s.tool_results
        # the executor's own answer to the plan, on a fresh copy of the twin
        reg = default_registry()
        call = s.plan[0]
        res = reg.call(call["tool"], call["args"], ToolContext(twin=s.twin.model_copy(deep=True)))
        assert results == {call["tool"]: res} and "error" not in res
        executor_parts = [p for p, by_model in parts if not by_model]
        assert executor_parts == ["\n<results>" + dump_json(results, compact=True) + "</results>\n"]
        reason = parsed.reason
        assert s.rationale == render_rollout(reason, s.ids, [(s.plan, results)])
    assert with_plan >= 1
    assert rollout_parts('<reason>a</reason><answer>{"ids": []}</answer>') == [
        ('<reason>a</reason><answer>{"ids": []}</answer>', True)
    ]


def test_plan_share_and_rationale_length():
    """About 10-15% of samples call a tool; rationales stay short (~20-70 tokens, rough count)."""
    holdout = make_holdout(SEED)
    ss = list(iter_split("train", 150, SEED + 1, holdout))
    share = sum(s.plan is not None for s in ss) / len(ss)
    assert 0.05 <= share <= 0.25, share
    model_text = ["".join(p for p, by_model in s.rollout_parts() if by_model) for s in ss]
    # about 3.3 characters per token for these texts (SmolLM2 tokenizer)
    approx = [len(t) / 3.3 for t in model_text]
    assert np.mean(approx) < 55, np.mean(approx)


def test_motion_templates_agree_in_number():
    bad = re.compile(r"(things|\{cats\}) that (\{motion\}|\{motion2\})|\{cats\} that \{motions\} and also \{motion2\}")
    for kind in ("motion", "cat_motion", "cat_two_motions", "cat_motion_fastest"):
        for t in TEMPLATES[kind]:
            assert not bad.search(t), t


def test_category_level_coverage(samples):
    got = {(s.category, s.level) for s in _all(samples)}
    assert {c for c, _ in got} == {"semantic", "spatial", "temporal"}
    assert {lv for _, lv in got} == {1, 2, 3}
    assert any(not s.ids for s in _all(samples))
    assert any(len(s.ids) > 1 for s in _all(samples))


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


# ------------------------------------------------------------------ ground truth recomputed from the twin
def _img_facts(twin):
    h, w = twin.size
    out = {}
    for i in twin.frames[0].instances:
        x0, y0, x1, y1 = i.box
        out[i.id] = {"cx": (x0 + x1) / 2 / w, "cy": (y0 + y1) / 2 / h, "area": i.area, "depth": i.depth.mean}
    return out


_SUP = {
    "nearest": lambda f: f["depth"],
    "farthest": lambda f: -f["depth"],
    "largest": lambda f: -f["area"],
    "leftmost": lambda f: f["cx"],
    "rightmost": lambda f: -f["cx"],
    "highest": lambda f: f["cy"],
    "lowest": lambda f: -f["cy"],
}


def _candidates(s, facts):
    ids = set(s.objects)
    for f in s.facts:
        k, _, v = f.partition(":")
        if k == "cat":
            ids = {i for i in ids if KB[s.objects[i]].category == v}
        elif k == "use":
            ids = {i for i in ids if v in KB[s.objects[i]].uses}
    return ids


def test_spatial_ground_truth(samples):
    checked = 0
    for s in _all(samples):
        if s.category != "spatial":
            continue
        f = _img_facts(s.twin)
        kinds = dict(x.partition(":")[::2] for x in s.facts)
        cands = _candidates(s, f)
        if "rel" in kinds and kinds["rel"] != "between":
            ref = int(kinds["ref"])
            rel = kinds["rel"]
            r = f[ref]
            # signed margin by which o holds the relation; clear yes >= 0.1 (depth 0.15), clear no <= 0.03 (0.05)
            margin, yes, no = {
                "left": (lambda o, r=r: r["cx"] - o["cx"], 0.1, 0.03),
                "right": (lambda o, r=r: o["cx"] - r["cx"], 0.1, 0.03),
                "above": (lambda o, r=r: r["cy"] - o["cy"], 0.1, 0.03),
                "below": (lambda o, r=r: o["cy"] - r["cy"], 0.1, 0.03),
                "nearer": (lambda o, r=r: r["depth"] - o["depth"], 0.15, 0.05),
                "farther": (lambda o, r=r: o["depth"] - r["depth"], 0.15, 0.05),
            }[rel]
            for i in cands - {ref}:
                v = margin(f[i])
                assert v >= yes - 1e-9 or v <= no + 1e-9, (s.query, i, v)
            cands = {i for i in cands if i != ref and margin(f[i]) >= yes - 1e-9}
            if "sup" not in kinds:
                assert sorted(cands) == s.ids, (s.query, s.rationale)
                checked += 1
        if "sup" in kinds and "dup" not in kinds:
            best = min(cands, key=lambda i: _SUP[kinds["sup"]](f[i]))
            assert s.ids == [best], (s.query, s.rationale)
            checked += 1
        if kinds.get("rel") == "between":
            (t,) = s.ids
            assert len(s.ids) == 1 and t in f
            checked += 1
    assert checked >= 5


def test_temporal_ground_truth(samples):
    checked = 0
    for s in _all(samples):
        if s.category != "temporal":
            continue
        tw = s.twin
        h, w = tw.size
        first_idx, last_idx = tw.frames[0].index, tw.frames[-1].index

        def track(i, tw=tw, h=h, w=w):
            pairs = tw.instances_of(i)
            (f0, a), (f1, b) = pairs[0], pairs[-1]
            cx = lambda inst: (inst.box[0] + inst.box[2]) / 2 / w  # noqa: E731
            return {"dx": cx(b) - cx(a), "dz": b.depth.mean - a.depth.mean, "first": f0.index, "last": f1.index}

        motions = [x.split(":")[1] for x in s.facts if x.startswith("motion:")]
        if "fastest" in motions:
            continue
        tr = {i: track(i) for i in s.objects}
        cands = _candidates(s, None)
        for mo in motions:
            test = {
                "left": lambda t: t["dx"] <= -0.15,
                "right": lambda t: t["dx"] >= 0.15,
                "approach": lambda t: t["dz"] <= -0.2,
                "recede": lambda t: t["dz"] >= 0.2,
                "later": lambda t, a=first_idx: t["first"] > a,
                "leaves": lambda t, b=last_idx: t["last"] < b,
                "still": lambda t: abs(t["dx"]) <= 0.02 and abs(t["dz"]) < 0.05,
            }[mo]
            cands = {i for i in cands if test(tr[i])}
        assert sorted(cands) == s.ids, (s.query, s.rationale)
        checked += 1
    assert checked >= 3


def test_spatial_and_temporal_rationales_scan_every_candidate(samples):
    """The first step of a spatial / temporal rationale cites every candidate ("<id> <label>", view order), not only
    the answer and a distractor: a student then copies a column and compares, instead of guessing the rows."""
    checked = 0
    for s in _all(samples):
        kinds = dict(x.partition(":")[::2] for x in s.facts)
        if s.category == "semantic" or "dup" in kinds:
            continue
        reason = s.rationale.split("<reason>")[1].split("</reason>")[0]
        labels = {i.id: i.label for fr in s.twin.frames for i in fr.instances}
        cands = sorted(_candidates(s, None) - {int(kinds.get("ref", -1))})
        cites = [f"{i} {labels[i]}" for i in cands]
        assert all(c in reason for c in cites), (s.query, reason, cites)
        if kinds.get("rel") != "between":  # "between" names its two references first
            positions = [reason.index(c) for c in cites]
            assert positions == sorted(positions), (s.query, reason)
        checked += 1
    assert checked >= 8


_VERDICT = re.compile(r"(\d+) [^,;.]*? (yes|no|\?)(?=[,.])")


def test_yes_no_scans_tag_every_candidate_with_its_verdict(samples):
    """A motion or relation scan writes "yes"/"no" after each candidate's value, and the first conclusion lists
    exactly the "yes" rows (the answer itself when the query tests one fact)."""
    checked = 0
    for s in _all(samples):
        reason = s.rationale.split("<reason>")[1].split("</reason>")[0]
        assert not re.search(r" \?[,.]", reason), reason
        tests = [f for f in s.facts if f.startswith(("motion:", "rel:"))]
        if tests and tests[0] == "rel:between":  # "Centre x: <a> 20, <b> 70; <c> 45 yes, <d> 90 no. Between: <c>."
            tags = _VERDICT.findall(reason.split("; ", 1)[1].split(". Between")[0] + ".")
            assert len(tags) == len(s.objects) - 2, (s.query, reason)
            assert [int(i) for i, v in tags if v == "yes"] == s.ids, (s.query, reason)
            checked += 1
            continue
        if not tests or tests[0] == "motion:fastest":
            continue
        body = reason.split(": ", 1)[1] if reason.startswith("Among ") else reason
        first, _, rest = body.partition(". ")
        tags = _VERDICT.findall(first + ".")
        assert len(tags) == first.count(",") + 1, (s.query, reason)  # one verdict per candidate
        yes = [int(i) for i, v in tags if v == "yes"]
        conclusion = rest.split(".")[0].split(": ")[-1]
        assert conclusion == (", ".join(map(str, yes)) or "none"), (s.query, reason)
        if len(tests) == 1 and not any(f.startswith(("sup:", "dup:")) for f in s.facts):
            assert yes == s.ids, (s.query, reason)
        checked += 1
    assert checked >= 8


def test_spatial_rationales_copy_centres_from_the_view(samples):
    """Every centre a spatial rationale writes is the one on the object's view line (the view writes centres, so a
    student copies them instead of averaging box edges)."""
    checked = 0
    for s in _all(samples):
        if s.category != "spatial" or s.twin.is_video:
            continue
        h, w = s.twin.size
        insts = {i.id: i for i in s.twin.frames[0].instances}
        reason = s.rationale.split("<reason>")[1].split("</reason>")[0]
        for axis, part in re.findall(r"[Cc]entres? ([xy])(?: of)?[ :](.*?)(?:\. |\.$)", reason):
            for i, value in re.findall(r"(\d+) [^,;\d]+? (\d+)", part):
                cx, cy, _, _ = box_centre_size(insts[int(i)].box, w, h)
                assert int(value) == (cx if axis == "x" else cy), (s.query, reason, i)
                checked += 1
    assert checked >= 20


# ------------------------------------------------------------------ splits
def test_split_generalisation(samples, holdout):
    held_obj, held_tpl = set(holdout.objects), set(holdout.templates)
    held_facts = {f"use:{u}" for u in holdout.uses} | {f"trait:{t}" for t in holdout.traits}
    assert held_obj and held_tpl and held_facts
    for s in samples["train"]:
        assert not set(s.objects.values()) & held_obj
        assert s.template_id not in held_tpl
        assert not set(s.facts) & held_facts
        assert not s.novel
    evals = samples["val"] + samples["test"]
    assert any("object" in s.novel for s in evals)
    assert any("template" in s.novel for s in evals)
    assert set(heldout_template_ids()) == held_tpl and all(len(v) >= 3 for v in TEMPLATES.values())
    assert {s.uid for s in samples["val"]}.isdisjoint({s.uid for s in samples["test"]})


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

    try:
        counts = [count_tokens(twin_view(s.twin))[0] for s in _all(samples)]
        rcounts = [count_tokens(s.rationale)[0] for s in _all(samples)]
    except Exception as exc:  # the tokenizer's GGUF may be missing
        pytest.skip(f"no tokenizer: {exc}")
    print(
        f"\nview tokens/sample: mean {np.mean(counts):.0f}, max {max(counts)}; "
        f"rationale tokens mean {np.mean(rcounts):.0f}, max {max(rcounts)}"
    )
    assert np.mean(counts) < 600
    assert np.median(rcounts) < 120


def test_heldout_facts_share_in_eval(holdout):
    """Val/test semantic samples exercise a held-out use or trait ~20-30% of the time (L1 queries are steered)."""
    ss = [s for s in iter_split("test", 60, SEED, holdout) if s.category == "semantic"]
    held = {f"use:{u}" for u in holdout.uses} | {f"trait:{t}" for t in holdout.traits}
    with_fact = [s for s in ss if "fact" in s.novel]
    assert all(set(s.facts) & held for s in with_fact)
    assert len(with_fact) >= 0.1 * len(ss), (len(with_fact), len(ss))
