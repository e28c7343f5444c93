import json
from pathlib import Path

import pytest

from fastreasonseg.perception.oracle import oracle_from_davis

from .cli_helpers import assert_clean_failure, run_cli

DAVIS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "davis2016"


@pytest.fixture(scope="module")
def davis_twin_file(tmp_path_factory):
    if not DAVIS.is_dir():
        pytest.skip(f"DAVIS-2016 not found at {DAVIS}")
    p = tmp_path_factory.mktemp("twin") / "blackswan.json"
    oracle_from_davis(DAVIS, "blackswan", stride=5).save(p)
    return p


def test_validate_ok(davis_twin_file):
    proc = run_cli("twin", "validate", str(davis_twin_file))
    assert proc.returncode == 0, proc.stderr
    assert "valid twin v1 (video, 10 frame(s)" in proc.stdout


def test_validate_names_frame_instance_and_field(davis_twin_file, tmp_path):
    d = json.loads(davis_twin_file.read_text())
    d["frames"][2]["instances"][0]["box"] = [0, 0, 9999, 10]
    d["frames"][3]["instances"][0]["mask"]["size"] = [10, 10]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    proc = run_cli("twin", "validate", str(bad))
    assert_clean_failure(
        proc,
        "frame 2 (index 10), instance id 1, field 'box'",
        "frame 3 (index 15), instance id 1, field 'mask.size'",
    )


@pytest.mark.parametrize("content", [None, "", "{", '{"version": 1}'])
def test_validate_bad_files(tmp_path, content):
    p = tmp_path / "x.json"
    if content is not None:
        p.write_text(content)
    proc = run_cli("twin", "validate", str(p))
    assert_clean_failure(proc, "error:")


def test_show_prints_view_and_tokens(davis_twin_file):
    proc = run_cli("twin", "show", str(davis_twin_file))
    assert proc.returncode == 0, proc.stderr
    assert "1 swan(99) f0-45 " in proc.stdout
    assert "tokens (SmolLM2-135M-Instruct)" in proc.stdout
    frame = run_cli("twin", "show", str(davis_twin_file), "--frame", "5")
    assert frame.returncode == 0 and "video frame 5 854x480, 1 objects." in frame.stdout
    missing = run_cli("twin", "show", str(davis_twin_file), "--frame", "4")
    assert_clean_failure(missing, "frame 4 is not in")


def test_oracle_davis_cli(tmp_path):
    if not DAVIS.is_dir():
        pytest.skip("no DAVIS")
    out = tmp_path / "o.json"
    proc = run_cli("twin", "oracle", str(DAVIS), "--sequence", "cows", "--stride", "10", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["source"]["name"] == "cows"
    again = run_cli("twin", "oracle", str(DAVIS), "--sequence", "cows", "-o", str(out))
    assert_clean_failure(again, "already exists")
    wrong = run_cli("twin", "oracle", str(DAVIS), "--sequence", "no-such-seq", "-o", str(tmp_path / "w.json"))
    assert_clean_failure(wrong, "DAVIS frames folder not found")


def test_build_refuses_to_overwrite(tmp_path):
    out = tmp_path / "t.json"
    out.write_text("keep me")
    proc = run_cli("twin", "build", "whatever.png", "-o", str(out))
    assert_clean_failure(proc, "already exists")
    assert out.read_text() == "keep me"


def test_validate_and_show_the_example_twin():
    """``example`` names the shipped example twin in every command, as in ``ask example``."""
    proc = run_cli("twin", "validate", "example")
    assert proc.returncode == 0, proc.stderr
    assert "example: valid twin v1 (image, 1 frame(s), 6 instances" in proc.stdout
    show = run_cli("twin", "show", "example")
    assert show.returncode == 0, show.stderr
    assert "1 cup(" in show.stdout and "tokens (" in show.stdout
