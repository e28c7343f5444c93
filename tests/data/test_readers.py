"""Dataset readers on the tiny fixtures written by ``make_fixtures.py`` (one per real on-disk format)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fastreasonseg.data.base import DatasetReader, Sample, available_datasets, open_dataset
from fastreasonseg.errors import InputError
from fastreasonseg.eval.metrics import IoUAccumulator, VideoScore

FIX = Path(__file__).resolve().parent / "fixtures"
H, W = 24, 32


def box(y0, x0, y1, x1):
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def read_all(reader: DatasetReader) -> dict[str, Sample]:
    return {s.id: s for s in reader}


def skipped_ids(reader: DatasetReader) -> dict[str, str]:
    return {s.id: s.reason for s in reader.skipped}


def test_registry():
    real = {"reasonseg", "llmseg40k", "refcocog", "revos", "mevis", "davis"}
    assert set(available_datasets()) == real | {"synthetic", "devset"}
    with pytest.raises(InputError, match="unknown dataset 'coco'"):
        open_dataset("coco", FIX, "val")


# --------------------------------------------------------------------------------------------------- ReasonSeg


def test_reasonseg():
    r = open_dataset("reasonseg", FIX / "reasonseg", "val")
    assert len(r) == 4
    samples = read_all(r)
    assert set(samples) == {"img_a", "img_b"}
    a = samples["img_a"]
    assert a.queries == ["the red square", "what is red?"]
    assert a.is_sentence is False and a.groups["query"] == "short"
    assert a.image == FIX / "reasonseg" / "val" / "img_a.jpg"
    m = a.mask
    assert m.dtype == np.uint8 and m.shape == (H, W)
    # target: x 4..14, y 4..12 inclusive (points truncated); ignore: x 6..8, y 6..8 (drawn last though listed first)
    assert set(np.unique(m)) == {0, 1, 255}
    assert np.count_nonzero(m == 255) == 9 and (m[6:9, 6:9] == 255).all()
    assert np.count_nonzero(m == 1) == 11 * 9 - 9
    assert m[0, 0] == 0 and m[20, 30] == 0  # the 'flag' shape covering the image was skipped
    b = samples["img_b"]
    assert b.is_sentence is True and b.groups["query"] == "long"
    assert np.count_nonzero(b.mask == 1) == 11 * 19
    assert b.load_image().shape == (H, W, 3)
    skipped = skipped_ids(r)
    assert set(skipped) == {"img_c", "img_d"}
    assert "malformed JSON" in skipped["img_c"] and "img_c.json" in skipped["img_c"]
    assert "annotation not found" in skipped["img_d"]


def test_reasonseg_ignore_pixels_do_not_count_in_metrics():
    a = read_all(open_dataset("reasonseg", FIX / "reasonseg", "val"))["img_a"]
    acc = IoUAccumulator()
    pred = a.mask != 0  # predicts the ignore region too: still a perfect score
    assert acc.add(pred, a.mask, groups=a.groups) == 1.0


def test_reasonseg_missing_split():
    with pytest.raises(InputError, match=r"split folder not found: .*reasonseg/test .*X\.jpg \+ X\.json"):
        open_dataset("reasonseg", FIX / "reasonseg", "test")
    with pytest.raises(InputError, match="root not found"):
        open_dataset("reasonseg", FIX / "nope", "val")


# --------------------------------------------------------------------------------------------------- LLM-Seg40K


def test_llmseg40k():
    r = open_dataset("llm-seg40k", FIX / "llmseg40k", "val")  # val → validation.json
    assert len(r) == 5
    s = read_all(r)
    assert set(s) == {"000000000139.jpg#0", "000000000139.jpg#1", "ego_0001.jpg#0"}
    first = s["000000000139.jpg#0"]
    assert first.queries == ["Where can I put my cup?"]
    assert first.extra["answer"] == "On the table."
    assert first.mask.dtype == bool
    np.testing.assert_array_equal(first.mask, box(12, 2, 20, 30))
    assert s["ego_0001.jpg#0"].image == FIX / "llmseg40k" / "egoobjects" / "ego_0001.jpg"
    assert s["ego_0001.jpg#0"].category == "egoobjects"
    sk = skipped_ids(r)
    assert set(sk) == {"000000000139.jpg#2", "missing.jpg#0"}
    assert "corrupt 'rle_seg'" in sk["000000000139.jpg#2"]
    assert "not found" in sk["missing.jpg#0"]


def test_llmseg40k_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"test\.json"):
        open_dataset("llmseg40k", FIX / "llmseg40k", "test")


# --------------------------------------------------------------------------------------------------- RefCOCOg


def test_refcocog():
    r = open_dataset("refcocog", FIX / "refcocog", "val")
    assert len(r) == 3  # the train ref is filtered out
    s = read_all(r)
    assert set(s) == {"0", "1"}
    assert s["0"].queries == ["a man in a blue shirt", "the person on the left"]
    assert s["0"].category == "person"
    poly = s["0"].mask
    assert poly.dtype == bool and poly.shape == (H, W)
    assert poly[4:12, 4:14].all() and not poly[:3].any()  # COCO polygon rasterisation of (4,4)-(14,12)
    np.testing.assert_array_equal(s["1"].mask, box(2, 3, 10, 12))  # uncompressed crowd RLE
    assert s["1"].category == "dog"
    assert "annotation 12 not in instances.json" in skipped_ids(r)["2"]


def test_refcocog_missing_files(tmp_path):
    with pytest.raises(InputError, match=r"refs\(umd\)\.p"):
        open_dataset("refcocog", tmp_path, "val")
    shutil.copy(FIX / "refcocog" / "refs(umd).p", tmp_path)
    with pytest.raises(InputError, match=r"instances\.json"):
        open_dataset("refcocog", tmp_path, "val")
    with pytest.raises(InputError, match="no refs with split 'testB'"):
        open_dataset("refcocog", FIX / "refcocog", "testB")


# --------------------------------------------------------------------------------------------------- MeViS, ReVOS


def test_mevis_union_of_anno_ids():
    r = open_dataset("mevis", FIX / "mevis", "valid_u")
    s = read_all(r)
    assert set(s) == {"vid_mevis/0", "vid_mevis/1"}
    one, both = s["vid_mevis/0"], s["vid_mevis/1"]
    assert one.is_video and one.num_frames == 3 and one.frames[0].name == "00000.jpg"
    assert one.queries == ["the square moving to the right"]
    np.testing.assert_array_equal(one.mask_at(2), box(2, 10, 8, 16))
    np.testing.assert_array_equal(both.mask_at(0), box(2, 2, 8, 8) | box(14, 20, 20, 26))
    np.testing.assert_array_equal(both.mask_at(2), box(2, 10, 8, 16))  # the second object has left
    assert both.masks().shape == (3, H, W)
    assert "anno_id 99 not in mask_dict.json" in skipped_ids(r)["vid_mevis/2"]
    with pytest.raises(IndexError):
        one.mask_at(3)


def test_revos_and_video_score():
    r = open_dataset("revos", FIX / "revos", "valid")
    s = read_all(r)
    assert set(s) == {"LVVIS/vid_revos/0", "LVVIS/vid_revos/1"}
    reasoning = s["LVVIS/vid_revos/1"]
    assert reasoning.extra["type_id"] == 1 and reasoning.category == "1"
    assert reasoning.frames[2] == FIX / "revos" / "JPEGImages" / "LVVIS" / "vid_revos" / "00002.jpg"
    sk = skipped_ids(r)
    assert "corrupt RLE" in sk["LVVIS/vid_revos/2"]
    vs = VideoScore()
    for smp in s.values():
        vs.add_video(smp.id, smp.masks(), smp.masks(), groups=smp.groups)
    assert vs.result()["J&F"] == 1.0 and set(vs.by_group()["category"]) == {"0", "1"}


def test_rvos_missing_layout(tmp_path):
    with pytest.raises(InputError, match=r"meta_expressions\.json.*meta_expressions_valid_\.json"):
        open_dataset("revos", tmp_path, "valid")
    (tmp_path / "valid").mkdir()
    (tmp_path / "valid" / "meta_expressions.json").write_text('{"videos": {}}')
    with pytest.raises(InputError, match=r"mask file not found: .*mask_dict\.json"):
        open_dataset("mevis", tmp_path, "valid")


def test_rvos_corrupt_entries_counted(tmp_path):
    base = tmp_path / "mevis"
    shutil.copytree(FIX / "mevis", base)
    meta_path = base / "valid_u" / "meta_expressions.json"
    meta = json.loads(meta_path.read_text())
    meta["videos"]["vid_mevis"]["expressions"]["3"] = {"obj_id": [0], "anno_id": ["0"]}  # no 'exp'
    meta["videos"]["ghost"] = {"frames": ["00000"], "expressions": {"0": {"exp": "x", "anno_id": ["0"]}}}
    meta_path.write_text(json.dumps(meta))
    r = open_dataset("mevis", base, "valid_u")
    assert len(list(r)) == 2
    sk = skipped_ids(r)
    assert set(sk) == {"vid_mevis/2", "vid_mevis/3", "ghost/0"}
    assert "'exp'" in sk["vid_mevis/3"]
    assert "has 3 masks for 1 frame(s)" in sk["ghost/0"]
    assert len(list(r)) == 2 and len(r.skipped) == 3  # a second pass does not double-count


# --------------------------------------------------------------------------------------------------- DAVIS


def test_davis2016_fixture():
    r = open_dataset("davis2016", FIX / "davis2016", "val")
    (s,) = list(r)
    assert s.id == "blackswan" and s.queries == ["swan"]
    assert s.num_frames == 3
    np.testing.assert_array_equal(s.mask_at(1), box(6, 6, 16, 16))


def test_davis2017_palette_objects():
    r = open_dataset("davis", FIX / "davis2017", "val")
    s = read_all(r)
    assert set(s) == {"two-objects/1", "two-objects/2"}
    np.testing.assert_array_equal(s["two-objects/1"].mask_at(0), box(2, 2, 10, 10) & ~box(0, 0, 1, W))
    assert not s["two-objects/2"].mask_at(0).any()  # enters at frame 1
    np.testing.assert_array_equal(s["two-objects/2"].mask_at(2), box(12, 18, 20, 28))
    assert s["two-objects/2"].extra["obj_id"] == 2


def test_davis_corrupt_sequence_skipped(tmp_path):
    root = tmp_path / "d"
    shutil.copytree(FIX / "davis2016", root)
    seq2 = root / "Annotations" / "480p" / "broken"
    shutil.copytree(root / "Annotations" / "480p" / "blackswan", seq2)
    shutil.copytree(root / "JPEGImages" / "480p" / "blackswan", root / "JPEGImages" / "480p" / "broken")
    (seq2 / "00001.png").write_bytes(b"garbage")
    r = open_dataset("davis", root, "val")
    assert [s.id for s in r] == ["blackswan"]
    assert "unreadable annotation" in skipped_ids(r)["broken"] and "00001.png" in skipped_ids(r)["broken"]


def test_davis_missing_layout(tmp_path):
    with pytest.raises(InputError, match=r"JPEGImages/480p"):
        open_dataset("davis", tmp_path, "val")


def test_davis2016_real_data(davis2016_full):
    r = open_dataset("davis", davis2016_full, "val")
    assert len(r) == 20
    first = next(iter(r))
    assert first.id == "blackswan" and first.num_frames == 50
    m = first.mask_at(0)
    assert m.shape == (480, 854) and m.dtype == bool and m.any()
