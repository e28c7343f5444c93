import json

import pytest

from fastreasonseg.perception.oracle import oracle_from_davis

from .cli_helpers import assert_clean_failure, run_cli


@pytest.fixture(scope="module")
def davis_twin_file(tmp_path_factory, davis2016):
    p = tmp_path_factory.mktemp("twin") / "blackswan.json"
    oracle_from_davis(davis2016, "blackswan", stride=2).save(p)  # frames 0 and 2 of 3
    return p


def test_validate_ok(davis_twin_file):
    proc = run_cli("twin", "validate", str(davis_twin_file))
    assert proc.returncode == 0, proc.stderr
    assert "valid twin v1 (video, 2 frame(s)" in proc.stdout


def test_validate_names_frame_instance_and_field(davis_twin_file, tmp_path):
    d = json.loads(davis_twin_file.read_text())
    d["frames"][0]["instances"][0]["box"] = [0, 0, 9999, 10]
    d["frames"][1]["instances"][0]["mask"]["size"] = [10, 10]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    proc = run_cli("twin", "validate", str(bad))
    assert_clean_failure(
        proc,
        "frame 0 (index 0), instance id 1, field 'box'",
        "frame 1 (index 2), instance id 1, field 'mask.size'",
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
    assert "\n1 swan" in proc.stdout
    assert "tokens (SmolLM2-135M-Instruct)" in proc.stdout
    frame = run_cli("twin", "show", str(davis_twin_file), "--frame", "2")
    assert frame.returncode == 0 and "video frame 2, 1 objects" in frame.stdout
    missing = run_cli("twin", "show", str(davis_twin_file), "--frame", "1")
    assert_clean_failure(missing, "frame 1 is not in")


def test_oracle_davis_cli(tmp_path, davis2016):
    out = tmp_path / "o.json"
    proc = run_cli("twin", "oracle", str(davis2016), "--sequence", "blackswan", "--stride", "2", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["source"]["name"] == "blackswan"
    again = run_cli("twin", "oracle", str(davis2016), "--sequence", "blackswan", "-o", str(out))
    assert_clean_failure(again, "already exists")
    wrong = run_cli("twin", "oracle", str(davis2016), "--sequence", "no-such-seq", "-o", str(tmp_path / "w.json"))
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
    assert "1 cup" in show.stdout and "tokens (" in show.stdout
