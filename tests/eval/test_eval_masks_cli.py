"""``fastreasonseg eval masks`` end to end on real DAVIS-2016 masks (read from ../shared, copied only to tmp)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from fastreasonseg.cli import app
from fastreasonseg.eval.folders import score_mask_folders

SEQS = ("blackswan", "cows", "dog")
NFRAMES = 6

runner = CliRunner()


@pytest.fixture(scope="module")
def gt_dir(tmp_path_factory, davis2016_full) -> Path:
    """A subset of DAVIS-2016 annotations (3 sequences x 6 frames) in a temporary folder."""
    src = davis2016_full / "Annotations" / "480p"
    out = tmp_path_factory.mktemp("gt")
    for seq in SEQS:
        (out / seq).mkdir()
        for p in sorted((src / seq).glob("*.png"))[:NFRAMES]:
            shutil.copy(p, out / seq / p.name)
    return out


@pytest.fixture(scope="module")
def eroded_dir(gt_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eroded")
    for seq in SEQS:
        (out / seq).mkdir()
        for p in sorted((gt_dir / seq).glob("*.png")):
            m = np.asarray(Image.open(p)) > 0
            e = ndimage.binary_erosion(m, iterations=12)
            Image.fromarray((e * 255).astype(np.uint8)).save(out / seq / p.name)
    return out


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_gt_vs_itself_is_perfect(gt_dir):
    res = runner.invoke(app, ["eval", "masks", "--pred", str(gt_dir), "--gt", str(gt_dir), "--json"])
    d = _json(res)
    assert d["J"] == 1.0 and d["F"] == 1.0 and d["J&F"] == 1.0
    assert set(d["sequences"]) == set(SEQS)
    for s in d["sequences"].values():
        assert s["J"] == 1.0 and s["F"] == 1.0 and s["frames"] == NFRAMES and s["missing_frames"] == 0
    assert d["missing_frames"] == 0


def test_table_output(gt_dir):
    res = runner.invoke(app, ["eval", "masks", "--pred", str(gt_dir), "--gt", str(gt_dir)])
    assert res.exit_code == 0, res.output
    for seq in SEQS:
        assert seq in res.stdout
    assert "J&F 1.0000" in res.stdout


def test_eroded_scores_below_one(gt_dir, eroded_dir):
    d = _json(runner.invoke(app, ["eval", "masks", "--pred", str(eroded_dir), "--gt", str(gt_dir), "--json"]))
    assert 0 < d["J"] < 1 and 0 < d["F"] < 1
    assert d["J&F"] == pytest.approx((d["J"] + d["F"]) / 2)
    means = [s["J"] for s in d["sequences"].values()]
    assert d["J"] == pytest.approx(np.mean(means))


def test_missing_frame_counted_and_scored_empty(gt_dir, tmp_path):
    pred = tmp_path / "pred"
    shutil.copytree(gt_dir, pred)
    gone = sorted((pred / "cows").glob("*.png"))[2]
    gone.unlink()
    res = runner.invoke(app, ["eval", "masks", "--pred", str(pred), "--gt", str(gt_dir), "--json"])
    d = _json(res)
    assert d["missing_frames"] == 1
    cows = d["sequences"]["cows"]
    assert cows["missing_frames"] == 1
    assert cows["J"] == pytest.approx((NFRAMES - 1) / NFRAMES)  # the missing frame scores 0 (object present)
    assert d["sequences"]["blackswan"]["J"] == 1.0
    assert "missing" in res.stderr and gone.name in res.stderr
    strict = runner.invoke(app, ["eval", "masks", "--pred", str(pred), "--gt", str(gt_dir), "--strict"])
    assert strict.exit_code == 1


def test_missing_sequence_wrong_size_and_unreadable(gt_dir, tmp_path):
    pred = tmp_path / "pred"
    shutil.copytree(gt_dir, pred)
    shutil.rmtree(pred / "dog")
    frames = sorted((pred / "blackswan").glob("*.png"))
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(frames[0])
    frames[1].write_bytes(b"not a png")
    res = runner.invoke(app, ["eval", "masks", "--pred", str(pred), "--gt", str(gt_dir), "--json"])
    d = _json(res)
    assert d["missing_sequences"] == ["dog"]
    assert d["sequences"]["dog"]["missing_frames"] == NFRAMES
    assert d["sequences"]["dog"]["J"] == 0.0
    bad = {Path(x["file"]).name: x["reason"] for x in d["invalid_frames"]}
    assert set(bad) == {frames[0].name, frames[1].name}
    assert "does not match" in bad[frames[0].name]
    assert frames[0].name in res.stderr and frames[1].name in res.stderr


def test_gt_missing_exits_1(tmp_path):
    res = runner.invoke(app, ["eval", "masks", "--pred", str(tmp_path), "--gt", str(tmp_path / "nope")])
    assert res.exit_code == 1
    assert "ground-truth folder not found" in res.stderr and "nope" in res.stderr


def test_unknown_sequence_exits_1(gt_dir):
    res = runner.invoke(app, ["eval", "masks", "--pred", str(gt_dir), "--gt", str(gt_dir), "-s", "bear"])
    assert res.exit_code == 1 and "bear" in res.stderr


def test_davis_root_accepted_for_gt(tmp_path, gt_dir):
    root = tmp_path / "davis"
    shutil.copytree(gt_dir, root / "Annotations" / "480p")
    rep = score_mask_folders(gt_dir, root, sequences=["dog"])
    assert list(rep.sequences) == ["dog"] and rep.J == 1.0


def test_subprocess_exit_codes(gt_dir, eroded_dir, tmp_path):
    cmd = [sys.executable, "-m", "fastreasonseg", "eval", "masks"]
    ok = subprocess.run(
        [*cmd, "--pred", str(eroded_dir), "--gt", str(gt_dir), "--json"], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stderr
    d = json.loads(ok.stdout)
    assert d["J"] < 1 and set(d) >= {"J", "F", "J&F", "sequences"}
    args = [*cmd, "--pred", str(eroded_dir), "--gt", str(tmp_path / "missing")]
    bad = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr and "missing" in bad.stderr


def test_davis2017_palette_gt_void_is_ignored(tmp_path):
    fixture = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "davis2017"
    pred = tmp_path / "pred" / "two-objects"
    pred.mkdir(parents=True)
    for p in sorted((fixture / "Annotations" / "480p" / "two-objects").glob("*.png")):
        lab = np.asarray(Image.open(p))
        fg = (lab != 0) | (lab == 255)  # objects plus every void pixel
        Image.fromarray((fg * 255).astype(np.uint8)).save(pred / p.name)
    rep = score_mask_folders(tmp_path / "pred", fixture)
    assert rep.J == 1.0 and rep.F == 1.0


def test_progress_bar_on_a_terminal(gt_dir):
    """A terminal gets a progress bar on stderr (frames done of all); a pipe gets none (as in every other test)."""
    env = {**os.environ, "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "120"}  # rich: a terminal
    cmd = [sys.executable, "-m", "fastreasonseg", "eval", "masks", "--pred", str(gt_dir), "--gt", str(gt_dir), "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["J"] == 1.0
    total = len(SEQS) * NFRAMES
    assert "eval masks" in res.stderr and f"{total}/{total}" in res.stderr, res.stderr


def test_progress_callback_counts_frames(gt_dir):
    calls = []
    score_mask_folders(gt_dir, gt_dir, progress=lambda seq, done, total: calls.append((seq, done, total)))
    total = len(SEQS) * NFRAMES
    assert [c[1] for c in calls] == list(range(1, total + 1)) and {c[2] for c in calls} == {total}
    assert [c[0] for c in calls[::NFRAMES]] == list(SEQS)
