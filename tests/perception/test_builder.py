"""End to end: tiny random models loaded from directories -> TwinBuilder -> a valid twin."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fastreasonseg.errors import InputError, ModelLoadError
from fastreasonseg.perception import Perception, TwinBuilder, build_twin
from fastreasonseg.twin import DigitalTwin, load_twin

from .conftest import moving_square_frames, write_mp4

STAGES = ("segmenter", "depth", "labeller", "tracking", "total")


def _check_twin(twin: DigitalTwin) -> None:
    twin.validate_all()
    h, w = twin.size
    for fr in twin.frames:
        assert len(set(fr.ids)) == len(fr.ids)
        for inst in fr.instances:
            m = inst.mask.decode()
            assert m.shape == (h, w) and m.any() and int(m.sum()) == inst.area
            if inst.depth is not None:
                d = inst.depth
                assert 0.0 <= d.min <= d.mean <= d.max <= 1.0
    t = twin.meta["timings_ms"]
    for s in STAGES:
        assert s in t and s in t["per_frame"] and t[s] >= 0
    assert "scale" in twin.meta
    # a twin round-trips through JSON
    assert DigitalTwin.from_dict(twin.to_dict()) == twin


def test_image_twin_from_real_photo(make_config, coffee, tmp_path):
    cfg = make_config()
    twin = TwinBuilder(cfg).build(coffee, name="coffee.png")
    _check_twin(twin)
    assert twin.source.kind == "image" and twin.source.fps == 0.0 and twin.source.num_frames == 1
    assert (twin.source.width, twin.source.height) == (600, 400) and twin.source.name == "coffee.png"
    assert twin.models.segmenter == cfg.segmenter and twin.models.labeller == cfg.labeller
    fr = twin.frames[0]
    assert fr.index == 0 and fr.time == 0.0
    assert 0 < len(fr.instances) <= cfg.max_instances
    assert all(i.depth is not None and i.score is not None for i in fr.instances)
    assert twin.meta["scale"] == pytest.approx(160 / 600, abs=1e-4)
    assert twin.meta["timings_ms"]["load"] > 0
    twin.save(tmp_path / "t.json")
    assert load_twin(tmp_path / "t.json").num_instances() == twin.num_instances()


def test_image_file_and_astronaut(make_config, tmp_path):
    from skimage import data

    p = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(p)
    twin = build_twin(p, make_config(max_side=128), progress=True)
    _check_twin(twin)
    assert twin.source.name == "astronaut.jpg" and twin.size == (512, 512)


def test_davis_folder_ids_stable(make_config, davis_seq):
    cfg = make_config(max_frames=4, stride=2, depth=None)
    twin = TwinBuilder(cfg).build(davis_seq, fps=24)
    _check_twin(twin)
    assert twin.source.kind == "video" and twin.source.name == davis_seq.name
    assert [f.index for f in twin.frames] == [0, 2, 4, 6]
    assert [f.time for f in twin.frames] == pytest.approx([0, 2 / 24, 4 / 24, 6 / 24], abs=1e-5)
    assert twin.source.num_frames == len(list(davis_seq.glob("*.jpg")))
    # tracks keep one id and one label; the first frame's objects are followed
    first = set(twin.frames[0].ids)
    assert first
    assert first & set(twin.frames[1].ids)
    for tid in twin.track_ids:
        assert len({i.label for _, i in twin.instances_of(tid)}) >= 1
    assert twin.meta["timings_ms"]["tracking"] > 0


def test_mp4_video(make_config, tmp_path):
    p = write_mp4(tmp_path / "clip.mp4", moving_square_frames(6), fps=10)
    twin = TwinBuilder(make_config(stride=2)).build(p)
    _check_twin(twin)
    assert twin.source.fps == 10.0 and twin.source.num_frames == 6
    assert [f.index for f in twin.frames] == [0, 2, 4]
    assert [f.time for f in twin.frames] == pytest.approx([0.0, 0.2, 0.4])


def test_huge_image_masks_at_full_resolution(make_config):
    big = np.zeros((2400, 3200, 3), np.uint8)
    big[600:1800, 800:2400] = (200, 80, 40)
    cfg = make_config(max_side=128, max_instances=2, depth=None)
    twin = TwinBuilder(cfg).build(big)
    _check_twin(twin)
    assert twin.size == (2400, 3200)
    assert twin.meta["scale"] == pytest.approx(128 / 3200)
    assert twin.meta["processing_size"] == [96, 128]
    assert twin.num_instances() > 0


def test_optional_models(make_config, coffee):
    twin = TwinBuilder(make_config(labeller=None, depth=None, grid_points=4)).build(coffee)
    _check_twin(twin)
    assert all(i.label == "object" and i.depth is None for i in twin.frames[0].instances)

    twin = TwinBuilder(make_config(segmenter=None)).build(coffee)
    _check_twin(twin)
    for inst in twin.frames[0].instances:  # masks are the boxes
        x0, y0, x1, y1 = inst.box
        assert inst.area == (x1 - x0) * (y1 - y0)

    twin = TwinBuilder(make_config(segmenter=None, labeller=None, depth=None)).build(coffee)
    _check_twin(twin)
    assert twin.num_instances() == 0


def test_grid_mode(make_config, coffee):
    cfg = make_config(mode="grid", grid_points=4)
    perc = Perception(cfg)
    perc.segmenter.pred_iou_thresh = 0.0  # random weights: accept every proposal
    perc.segmenter.stability_thresh = 0.0
    twin = TwinBuilder(cfg, perception=perc).build(coffee)
    _check_twin(twin)
    assert twin.meta["mode"] == "grid"
    assert twin.num_instances() > 0
    assert all(i.label for i in twin.frames[0].instances)


def test_grid_mode_video_without_labeller(make_config, tmp_path):
    frames = moving_square_frames(4)
    cfg = make_config(mode="grid", grid_points=4, labeller=None, depth=None)
    perc = Perception(cfg)
    perc.segmenter.pred_iou_thresh = 0.0
    perc.segmenter.stability_thresh = 0.0
    twin = TwinBuilder(cfg, perception=perc).build(frames)
    _check_twin(twin)
    assert twin.source.kind == "video" and len(twin.frames) == 4


def test_detect_and_classify_tools(make_config, coffee):
    perc = Perception(make_config())
    found = perc.detect(coffee, "mug", threshold=0.0)
    assert found
    for det, mask, depth in found:
        assert mask.shape == coffee.shape[:2] and mask.dtype == bool
        x0, y0, x1, y1 = det.box
        assert 0 <= x0 <= x1 <= 600 and 0 <= y0 <= y1 <= 400
        assert det.label == "mug" and depth is not None
    ranked = perc.classify(coffee, [found[0][0].box], ["mug", "cat", "car"])
    assert len(ranked) == 1 and sorted(n for n, _ in ranked[0]) == ["car", "cat", "mug"]
    scores = [s for _, s in ranked[0]]
    assert scores == sorted(scores, reverse=True)


def test_labeller_reuses_the_image_encoding(make_config, coffee, monkeypatch):
    perc = Perception(make_config(max_side=600))
    lab = perc.labeller
    calls = []
    orig = lab.model.image_embedder
    monkeypatch.setattr(lab.model, "image_embedder", lambda *a, **k: calls.append(1) or orig(*a, **k))
    dets = lab.detect(coffee, ["mug", "cup"], 0.0)
    lab.classify(coffee, [d.box for d in dets[:2]], ["plate", "spoon"])
    lab.detect(coffee, ["table"], 0.0)
    assert len(calls) == 1
    for d in dets:
        assert 0 <= d.box[0] <= d.box[2] <= 600 and 0 <= d.box[1] <= d.box[3] <= 400
        assert len(d.alt_labels) <= 3


def test_missing_model_dir_raises_model_load_error(make_config, coffee, tmp_path):
    missing = str(tmp_path / "no-such-sam2")
    with pytest.raises(ModelLoadError, match="no-such-sam2") as ei:
        TwinBuilder(make_config(segmenter=missing)).build(coffee)
    assert ei.value.role == "segmenter"
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        TwinBuilder(make_config(depth=str(tmp_path / "notamodel"))).build(coffee)
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="labeller"):
        TwinBuilder(make_config(labeller=str(bad))).build(coffee)


def test_bad_inputs_through_the_builder(make_config, tmp_path):
    b = TwinBuilder(make_config())
    with pytest.raises(InputError, match="no such file"):
        b.build(tmp_path / "nope.mp4")
    (tmp_path / "zero.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        b.build(tmp_path / "zero.png")
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InputError, match="cannot read"):
        b.build(tmp_path / "junk.png")
    with pytest.raises(InputError, match="shape"):
        b.build(np.zeros((5, 5, 7), np.uint8))
    with pytest.raises(InputError, match="mode"):
        TwinBuilder(make_config(mode="everything"))


def test_grayscale_rgba_16bit_inputs_build(make_config, tmp_path):
    g = (np.arange(80 * 60) % 256).astype(np.uint8).reshape(60, 80)
    Image.fromarray(g).save(tmp_path / "g.png")
    Image.fromarray(np.dstack([g, g, g, g]), "RGBA").save(tmp_path / "a.png")
    Image.fromarray(g.astype(np.uint16) * 257).save(tmp_path / "d16.png")
    for name in ("g.png", "a.png", "d16.png"):
        twin = TwinBuilder(make_config(depth=None, max_instances=2)).build(tmp_path / name)
        _check_twin(twin)
        assert twin.size == (60, 80)
