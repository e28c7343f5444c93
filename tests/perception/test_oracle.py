import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from fastreasonseg.errors import InputError
from fastreasonseg.perception.oracle import CocoOracle, oracle_from_coco, oracle_from_davis


def _check_davis2016_oracle(root: Path, sequence: str, stride: int, label: str) -> None:
    twin = oracle_from_davis(root, sequence, stride=stride)
    annos = sorted((root / "Annotations/480p" / sequence).glob("*.png"))
    assert twin.source.num_frames == len(annos)
    assert [f.index for f in twin.frames] == list(range(0, len(annos), stride))
    for fr in twin.frames:
        gt = np.asarray(Image.open(annos[fr.index])) > 0
        assert np.array_equal(twin.mask(fr.index, [1]), gt)
        assert fr.instances[0].label == label
    assert twin.track_ids == [1]
    assert twin.frames[1].time == pytest.approx(stride / 24.0, abs=1e-3)


def test_davis2016_oracle_matches_annotations(davis2016):
    _check_davis2016_oracle(davis2016, "blackswan", stride=2, label="swan")


def test_davis2016_oracle_matches_real_annotations(davis2016_full):
    _check_davis2016_oracle(davis2016_full, "dog", stride=7, label="dog")


def test_davis2017_palette_objects_and_void(tmp_path):
    root = tmp_path / "davis17"
    (root / "JPEGImages/480p/seq").mkdir(parents=True)
    (root / "Annotations/480p/seq").mkdir(parents=True)
    for k in range(3):
        a = np.zeros((20, 30), np.uint8)
        a[2:8, 2 + k : 8 + k] = 1
        if k > 0:
            a[12:18, 20:26] = 2  # object 2 enters at frame 1
        a[0, :] = 255  # void border
        im = Image.fromarray(a, mode="P")
        im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9))
        im.save(root / f"Annotations/480p/seq/{k:05d}.png")
        Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(root / f"JPEGImages/480p/seq/{k:05d}.jpg")
    twin = oracle_from_davis(root, "seq", labels={1: "cat", 2: "ball"})
    assert [f.ids for f in twin.frames] == [[1], [1, 2], [1, 2]]
    assert twin.frames[1].get(2).label == "ball"
    assert not twin.mask(0, [1])[0].any()  # void pixels never join an object


def test_davis_errors(tmp_path, davis2016):
    with pytest.raises(InputError, match="DAVIS root not found"):
        oracle_from_davis(tmp_path / "nope", "blackswan")
    with pytest.raises(InputError, match="sequences here"):
        oracle_from_davis(davis2016, "not-a-sequence")
    with pytest.raises(InputError, match="stride"):
        oracle_from_davis(davis2016, "blackswan", stride=0)


def _coco_file(tmp_path):
    h, w = 30, 40
    rle_mask = np.zeros((h, w), np.uint8)
    rle_mask[20:28, 30:38] = 1
    rle = mask_utils.encode(np.asfortranarray(rle_mask))
    data = {
        "images": [{"id": 5, "file_name": "a.jpg", "height": h, "width": w}],
        "categories": [{"id": 1, "name": "cup"}, {"id": 2, "name": "spoon"}],
        "annotations": [
            {"id": 900, "image_id": 5, "category_id": 1, "iscrowd": 0, "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]},
            {
                "id": 901,
                "image_id": 5,
                "category_id": 2,
                "iscrowd": 0,
                "segmentation": {"size": [h, w], "counts": rle["counts"].decode()},
            },
            {"id": 902, "image_id": 5, "category_id": 2, "iscrowd": 1, "segmentation": [[0, 0, 5, 0, 5, 5]]},
        ],
    }
    p = tmp_path / "instances.json"
    p.write_text(json.dumps(data))
    return p, rle_mask


def test_coco_oracle(tmp_path):
    p, rle_mask = _coco_file(tmp_path)
    twin = oracle_from_coco(p, 5)
    assert [(i.id, i.label) for i in twin.frames[0].instances] == [(1, "cup"), (2, "spoon")]
    assert twin.meta["annotation_ids"] == {"1": 900, "2": 901}
    assert np.array_equal(twin.mask(0, [2]), rle_mask.astype(bool))
    assert twin.frames[0].get(1).box == pytest.approx((2.0, 2.0, 12.0, 12.0), abs=1.0)
    with pytest.raises(InputError, match="image id 6"):
        CocoOracle(p).twin(6)


def test_coco_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        oracle_from_coco(tmp_path / "x.json", 1)
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": []}')
    with pytest.raises(InputError, match="not a COCO instances file"):
        oracle_from_coco(bad, 1)
