"""`fastreasonseg ask` end to end on the example twin with the real offline reasoner (SmolLM2 on llama.cpp)."""

import json

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
    again = run_cli("ask", "example", "cup", "-o", str(out))
    assert_clean_failure(again, "already exists")


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
