import json

import numpy as np
import pytest

from fastreasonseg.errors import InputError, TwinValidationError
from fastreasonseg.twin import DepthStats, DigitalTwin, Instance, load_twin


def test_round_trip_json(tmp_path, image_twin):
    p = tmp_path / "t.json"
    image_twin.save(p)
    again = load_twin(p)
    assert again == image_twin
    assert json.loads(p.read_text())["version"] == 1
    assert oct(p.stat().st_mode & 0o777) != oct(0o600)  # not left with mkstemp's private mode


def test_save_refuses_to_overwrite_when_asked(tmp_path, image_twin):
    p = tmp_path / "t.json"
    p.write_text("precious")
    with pytest.raises(InputError, match="already exists"):
        image_twin.save(p, overwrite=False)
    assert p.read_text() == "precious"


def test_optional_fields_may_be_missing(image_twin):
    d = image_twin.to_dict()
    for inst in d["frames"][0]["instances"]:
        inst.pop("alt_labels", None)
        inst.pop("depth", None)
        inst.pop("score", None)
    twin = DigitalTwin.from_dict(d)
    assert twin.frames[0].instances[0].depth is None


def test_mask_helpers(image_twin):
    m = image_twin.mask(0, [1, 7])
    assert m.shape == (120, 160)
    assert m.sum() == image_twin.frames[0].get(1).area + image_twin.frames[0].get(7).area
    assert not image_twin.mask(0, [99]).any()
    assert image_twin.instance_mask(0, 2).sum() == image_twin.frames[0].get(2).area
    with pytest.raises(KeyError):
        image_twin.frame(3)


def test_depth_stats_follow_the_map(image_twin):
    mug, table = image_twin.frames[0].get(1), image_twin.frames[0].get(2)
    assert 0.0 <= mug.depth.min <= mug.depth.mean <= mug.depth.max <= 1.0
    assert table.depth.mean < 0.4  # bottom rows are nearest in the fixture


def test_instance_from_empty_mask_is_none():
    assert Instance.from_mask(1, "x", np.zeros((5, 5), bool)) is None
    assert DepthStats.from_map(np.zeros((5, 5)), np.zeros((5, 5), bool)) is None


def test_tracks_and_summary(video_twin):
    assert video_twin.track_ids == [3, 4]
    assert [f.index for f, _ in video_twin.instances_of(4)] == [6, 8, 10]
    s = video_twin.track_summary(3)
    assert s.first_frame == 0 and s.last_frame == 10 and s.num_frames == 6
    assert s.displacement[0] == pytest.approx(0.75, abs=0.02)  # 75 px of a 100 px frame
    assert abs(s.displacement[1]) < 0.02
    assert s.speed == pytest.approx(0.75 / 1.0, rel=0.05)  # over 1.0 s
    assert s.depth_trend == pytest.approx(-0.5)  # approaching
    masks = video_twin.masks([4])
    assert not masks[0].any() and masks[6].any()


def _bad(d, match):
    with pytest.raises(TwinValidationError) as err:
        DigitalTwin.from_dict(d)
    assert any(match in p for p in err.value.problems), err.value.problems
    return err.value


def test_unknown_field_is_named(image_twin):
    d = image_twin.to_dict()
    d["frames"][0]["instances"][1]["colour"] = "red"
    e = _bad(d, "frame 0 (index 0), instance id 2, field 'colour'")
    assert "unknown field" in str(e)


def test_duplicate_ids(image_twin):
    d = image_twin.to_dict()
    d["frames"][0]["instances"][1]["id"] = 1
    _bad(d, "instance id 1, field 'id': duplicate id")


def test_box_outside_frame(image_twin):
    d = image_twin.to_dict()
    d["frames"][0]["instances"][2]["box"] = [10, 10, 400, 50]
    _bad(d, "instance id 7, field 'box'")


def test_wrong_rle_size(image_twin):
    d = image_twin.to_dict()
    d["frames"][0]["instances"][0]["mask"]["size"] = [60, 80]
    _bad(d, "instance id 1, field 'mask.size'")


def test_corrupt_rle_counts(image_twin):
    d = image_twin.to_dict()
    d["frames"][0]["instances"][0]["mask"]["counts"] = "0" * 5
    _bad(d, "instance id 1, field 'mask.counts'")


def test_area_mismatch_and_reversed_box(image_twin):
    d = image_twin.to_dict()
    d["frames"][0]["instances"][0]["area"] = 3
    _bad(d, "field 'area'")
    d = image_twin.to_dict()
    d["frames"][0]["instances"][0]["box"] = [50, 10, 10, 50]
    _bad(d, "instance id 1, field 'box'")


def test_every_problem_is_reported(video_twin):
    d = video_twin.to_dict()
    d["frames"][1]["index"] = 0
    d["frames"][2]["instances"][0]["box"] = [-50, 0, 10, 10]
    d["frames"][3]["instances"][0]["score"] = 1.5
    e = _bad(d, "frame 3 (index 6), instance id 3, field 'score'")
    # schema errors stop before cross-field checks; fix the schema error and the others appear
    d["frames"][3]["instances"][0]["score"] = 0.5
    e = _bad(d, "frame 1 (index 0), field 'index'")
    assert any("frame 2 (index 4), instance id 3, field 'box'" in p for p in e.problems)


def test_image_must_have_one_frame(video_twin):
    d = video_twin.to_dict()
    d["source"]["kind"] = "image"
    _bad(d, "an image twin has exactly one frame")


@pytest.mark.parametrize("content", ["", "   ", "{not json", "[1, 2]"])
def test_bad_files(tmp_path, content):
    p = tmp_path / "t.json"
    p.write_text(content)
    with pytest.raises(InputError):
        load_twin(p)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_twin(tmp_path / "nope.json")
    with pytest.raises(InputError, match="directory"):
        load_twin(tmp_path)
