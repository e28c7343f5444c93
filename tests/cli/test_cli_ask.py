"""`fastreasonseg ask` end to end on the example twin with the real offline reasoner (SmolLM2 on llama.cpp)."""

import json
from pathlib import Path

import pytest
from PIL import Image

from .cli_helpers import assert_clean_failure, run_cli

pytest.importorskip("llama_cpp")


def test_ask_example_writes_masks_overlay_and_result(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("ask", "example", "what would I use to drink something hot?", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "<answer>" in proc.stdout and "<reason>" in proc.stdout
    result = json.loads((out / "result.json").read_text())
    assert set(result) >= {"ids", "rollout", "timings_ms", "tokens", "labels"}
    assert (out / "masks" / "00000.png").exists()
    overlay = Image.open(out / "overlay.png")
    assert overlay.size == (600, 400)
    assert result["overlay_on_source"] is True  # the photo beside the example twin was found
    assert result["written_by"] == "fastreasonseg" and set(result["files"]) == {
        "masks/00000.png",
        "overlay.png",
        "masks.coco.json",
    }


def test_readme_first_command_can_run_twice(tmp_path):
    """The README's first command, as written (relative ``out/``): a second run replaces fastreasonseg's own result."""
    args = ("ask", "example", "what would I use to drink something hot?", "-o", "out/")
    first = run_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = json.loads((tmp_path / "out" / "result.json").read_text())
    (tmp_path / "out" / "notes.txt").write_text("mine")  # a file of the user's that no result writes
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "replacing the earlier result in out/" in again.stdout
    after = json.loads((tmp_path / "out" / "result.json").read_text())
    assert after["files"] == before["files"] and after["query"] == before["query"]
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_user_files_are_not_replaced_without_force(tmp_path):
    out = tmp_path / "out"
    (out / "masks").mkdir(parents=True)
    (out / "masks" / "00000.png").write_bytes(b"my mask")
    (out / "overlay.png").write_bytes(b"my overlay")
    proc = run_cli("ask", "example", "the spoon", "-o", str(out))
    assert_clean_failure(proc, "would replace", "masks/00000.png", "overlay.png", "--force")
    assert (out / "masks" / "00000.png").read_bytes() == b"my mask"
    assert (out / "overlay.png").read_bytes() == b"my overlay"
    assert not (out / "result.json").exists()
    forced = run_cli("ask", "example", "the spoon", "-o", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert Image.open(out / "overlay.png").size == (600, 400)
    assert Image.open(out / "masks" / "00000.png").size == (600, 400)


def test_a_result_edited_by_the_user_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    assert run_cli("ask", "example", "the spoon", "-o", str(out)).returncode == 0
    (out / "overlay.png").write_bytes(b"annotated by hand")
    proc = run_cli("ask", "example", "the spoon", "-o", str(out))
    assert_clean_failure(proc, "would replace", "overlay.png")
    assert (out / "overlay.png").read_bytes() == b"annotated by hand"


@pytest.mark.parametrize("where", ["proc", "below-a-file"])
def test_unwritable_output_says_why(tmp_path, where):
    if where == "proc":
        if not Path("/proc/self").is_dir():
            pytest.skip("no /proc on this system")
        out, why = "/proc/fastreasonseg-test/out", "cannot create fastreasonseg-test/out in /proc"
    else:
        (tmp_path / "file").write_text("x")
        out, why = str(tmp_path / "file" / "out"), f"{tmp_path / 'file'} is a file, not a folder"
    proc = run_cli("ask", "example", "cup", "-o", out)
    assert_clean_failure(proc, f"cannot write to {out}", why)
    assert proc.returncode == 1 and "bug" not in proc.stderr
    twin = run_cli("twin", "build", "whatever.png", "-o", f"{out}/t.json")
    assert_clean_failure(twin, "cannot write to", why)
    assert twin.returncode == 1 and "bug" not in twin.stderr


def test_ask_json_is_one_object(tmp_path):
    proc = run_cli("ask", "example", "the spoon", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert isinstance(d["ids"], list) and d["rollout"].endswith("</answer>")
    assert all(isinstance(i, int) for i in d["ids"])


@pytest.mark.parametrize("query", ["", "   \n\t"])
def test_empty_query(query):
    assert_clean_failure(run_cli("ask", "example", query), "the query is empty")


def test_missing_twin_and_bad_reasoner(tmp_path):
    assert_clean_failure(run_cli("ask", str(tmp_path / "none.json"), "cup"), "twin file not found")
    assert_clean_failure(run_cli("ask", "example", "cup", "--reasoner", "gpt9"), "unknown reasoner")


def test_unreachable_openai_endpoint_fails_fast():
    proc = run_cli("ask", "example", "cup", "--reasoner", "openai:http://127.0.0.1:9/v1?model=m&timeout=2", timeout=60)
    assert_clean_failure(proc, "cannot reach http://127.0.0.1:9/v1")
