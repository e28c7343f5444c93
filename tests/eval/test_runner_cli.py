"""``fastreasonseg eval run`` through a subprocess: exit codes, summary.json, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastreasonseg.data.synthetic import write_dataset


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="160")
    return subprocess.run(
        [sys.executable, "-m", "fastreasonseg", "eval", "run", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(root, seed=0, train=0, val=0, test=6)
    return root


def test_eval_run_writes_summary(synth, tmp_path):
    out = tmp_path / "out"
    r = _cli("--dataset", "synthetic", "--root", str(synth), "--split", "test", "-p", "oracle", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "gIoU" in r.stdout and "category" in r.stdout and "efficiency" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"]["gIoU"] == 1.0 and summary["counts"]["evaluated"] == 6
    assert (out / "predictions.jsonl").is_file()


def test_eval_run_json_and_resume(synth, tmp_path):
    out = tmp_path / "out"
    args = ["--dataset", "synthetic", "--root", str(synth), "-p", "oracle", "-o", str(out), "--json"]
    r1 = _cli(*args, "--limit", "2")
    assert r1.returncode == 0, r1.stderr
    assert json.loads(r1.stdout)["counts"]["evaluated"] == 2
    r2 = _cli(*args)
    assert r2.returncode == 0, r2.stderr
    counts = json.loads(r2.stdout)["counts"]
    assert counts["resumed"] == 2 and counts["evaluated_now"] == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "davis", "--root", "{tmp}/missing"], "root not found"),
        (["--dataset", "synthetic", "--root", "{tmp}"], "no test.jsonl"),
        (["--dataset", "imagenet", "--root", "{tmp}"], "unknown dataset"),
        (["--dataset", "synthetic", "--root", "{tmp}", "-p", "magic"], "unknown predictor"),
    ],
)
def test_eval_run_bad_input_exits_1_without_traceback(tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = _cli(*args, "-o", str(tmp_path / "out"))
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert not (tmp_path / "out").exists()
