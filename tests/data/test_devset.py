"""The devset reader on the tiny devset-format fixture (``fixtures/devset``: 2 twins, 8 queries)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fastreasonseg.data.base import open_dataset
from fastreasonseg.data.devset import DevsetReader
from fastreasonseg.errors import InputError

FIX = Path(__file__).resolve().parent / "fixtures" / "devset"


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "devset"
    shutil.copytree(FIX, root)
    return root


def _edit_queries(root: Path, edit) -> None:
    path = root / "queries.json"
    data = json.loads(path.read_text())
    edit(data["queries"])
    path.write_text(json.dumps(data))


def test_reads_every_query_with_its_twin_and_groups():
    r = open_dataset("devset", FIX, "test")
    assert isinstance(r, DevsetReader) and not r.has_pixels
    samples = {s.id: s for s in r}
    assert len(samples) == 8 == r.query_count() and not r.skipped
    wb2 = samples["wb2"]
    assert wb2.queries == ["the things a carpenter would grab to fix a shelf"]
    assert wb2.target_ids == [1, 2] and not wb2.is_video and wb2.num_frames == 1
    assert wb2.groups == dict(dataset="devset", split="test", category="semantic", level="L2", targets="multi")
    assert samples["wb5"].groups["targets"] == "none" and samples["wb3"].groups["targets"] == "single"
    assert samples["wb1"].twin is wb2.twin  # one twin object per file, shared by its queries
    assert samples["hw2"].is_video and samples["hw2"].num_frames == 3


def test_ground_truth_is_the_union_of_the_gold_masks():
    samples = {s.id: s for s in open_dataset("devset", FIX, "test")}
    wb2 = samples["wb2"]
    expected = np.zeros((24, 32), bool)
    expected[12:16, 2:14] = True  # hammer
    expected[18:20, 4:16] = True  # screwdriver
    np.testing.assert_array_equal(wb2.mask_at(0), expected)
    assert samples["wb3"].mask_at(0).sum() == 36  # id 0, the mug
    assert not samples["wb5"].mask_at(0).any()  # no target
    cat = samples["hw2"]
    assert [int(cat.mask_at(t).sum()) for t in range(3)] == [0, 0, 36]  # the cat enters in the last frame


def test_malformed_queries_are_skipped_with_the_reason(tmp_path):
    root = _copy(tmp_path)
    (root / "twins" / "broken.json").write_text('{"version": 1}')

    def edit(qs):
        del qs[0]["query"]
        qs[1]["gold_ids"] = [1, 9]
        qs[2]["twin"] = "twins/missing.json"
        qs[3]["twin"] = "twins/broken.json"
        qs[4]["level"] = "two"
        qs.append("not a query")

    _edit_queries(root, edit)
    r = open_dataset("devset", root, "test")
    assert [s.id for s in r] == ["hw1", "hw2", "hw3"]
    reasons = {s.id: s.reason for s in r.skipped}
    assert set(reasons) == {"wb1", "wb2", "wb3", "wb4", "wb5", "queries.json[8]"}
    assert "missing field(s) query" in reasons["wb1"]
    assert "gold id(s) [9] are not in twin" in reasons["wb2"]
    assert "twin file not found" in reasons["wb3"]
    assert "twins/broken.json" in reasons["wb4"] and "invalid digital twin" in reasons["wb4"]
    assert "'level' must be an integer" in reasons["wb5"]
    assert "must be a JSON object" in reasons["queries.json[8]"]


def test_bad_folders_and_splits_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="root not found"):
        open_dataset("devset", tmp_path / "nope", "test")
    with pytest.raises(InputError, match="devset queries file not found"):
        open_dataset("devset", tmp_path, "test")
    (tmp_path / "queries.json").write_text('{"queries": 3}')
    with pytest.raises(InputError, match="expected"):
        open_dataset("devset", tmp_path, "test")
    with pytest.raises(InputError, match="one split, 'test'"):
        open_dataset("devset", FIX, "train")


def test_a_bare_list_of_queries_is_accepted(tmp_path):
    root = _copy(tmp_path)
    data = json.loads((root / "queries.json").read_text())
    (root / "queries.json").write_text(json.dumps(data["queries"][:2]))
    assert [s.id for s in open_dataset("devset", root, "test")] == ["wb1", "wb2"]
