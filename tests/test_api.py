"""The Python API on the example twin with the real offline reasoner, and on a zero-instance twin."""

import json

import numpy as np
import pytest

from fastreasonseg import FastReasonSeg
from fastreasonseg.api import SegmentationResult, SourceFrames, example_twin_path
from fastreasonseg.errors import InputError
from fastreasonseg.twin import DigitalTwin, Frame, Source, load_twin

llama_cpp = pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def frs():
    return FastReasonSeg()


def test_ask_many_on_one_twin_reuses_the_prefix(frs, tmp_path):
    twin = frs.load_twin("example")
    first = frs.ask(twin, "what would I stir my coffee with?")
    second = frs.ask(twin, "which object holds the drink?")
    assert second.rollout.cached_tokens > 0.5 * second.rollout.prompt_tokens
    for r in (first, second):
        assert set(r.ids) <= set(twin.track_ids)
        assert r.masks[0].shape == (400, 600)
        assert r.masks[0].sum() == twin.mask(0, r.ids).sum()
    out = second.save(tmp_path / "r")
    d = json.loads((out / "result.json").read_text())
    assert d["query"] == "which object holds the drink?"
    second.save(tmp_path / "r")  # fastreasonseg's own earlier result there: replaced
    (tmp_path / "r" / "overlay.png").write_bytes(b"the user's")
    with pytest.raises(InputError, match="would replace"):
        second.save(tmp_path / "r")
    assert (tmp_path / "r" / "overlay.png").read_bytes() == b"the user's"
    second.save(tmp_path / "r", overwrite=True)


def test_twin_is_not_mutated_by_asking(frs):
    twin = frs.load_twin(example_twin_path())
    before = twin.to_dict()
    frs.ask(twin, "the saucer")
    after = twin.to_dict()
    after["meta"].pop("source_path", None)
    before["meta"].pop("source_path", None)
    assert before == after


def test_zero_instance_twin_is_no_target_without_model_call(frs, tmp_path):
    twin = DigitalTwin(source=Source(kind="image", name="empty.png", width=8, height=6), frames=[Frame(index=0)])
    r = frs.ask(twin, "the cup")
    assert r.no_target and r.ids == [] and r.rollout.model_calls == 0
    assert not r.masks[0].any()
    r.save(tmp_path / "e")  # overlay on grey when the source is not at hand
    assert json.loads((tmp_path / "e" / "result.json").read_text())["overlay_on_source"] is False


def test_empty_query_raises(frs):
    with pytest.raises(InputError, match="empty"):
        frs.ask("example", "  ")


def test_source_frames_are_found_beside_the_twin():
    twin = DigitalTwin.load(example_twin_path())
    frames = SourceFrames.find(twin, example_twin_path())
    assert frames is not None and frames[0].shape == (400, 600, 3) and frames[0].dtype == np.uint8


def test_reasoner_spec_aliases():
    from fastreasonseg.api import resolve_reasoner_spec
    from fastreasonseg.reasoning.runtimes import DEFAULT_REASONER, parse_spec

    assert resolve_reasoner_spec("base") == resolve_reasoner_spec(" base ") == "llamacpp"
    assert DEFAULT_REASONER == "student"
    assert resolve_reasoner_spec(None) == resolve_reasoner_spec("student") == resolve_reasoner_spec(" student ")
    kind, target, options = parse_spec(resolve_reasoner_spec("student"))
    assert kind == "llamacpp" and target is None and options["lora"].endswith("student/adapter.gguf")
    assert resolve_reasoner_spec("transformers:/x") == "transformers:/x"


def test_student_adapter_runs_in_llama_cpp():
    r = FastReasonSeg("student").ask("example", "the spoon")
    assert r.rollout.model_calls >= 1 and set(r.ids) <= {1, 2, 3, 4, 5, 6}


def _empty_twin(kind: str = "image", frames: int = 1) -> DigitalTwin:
    return DigitalTwin(
        source=Source(kind=kind, name="empty", width=8, height=6, num_frames=frames),
        frames=[Frame(index=i) for i in range(frames)],
    )


def test_saving_again_replaces_only_our_own_unchanged_files(frs, tmp_path):
    out = tmp_path / "o"
    video = frs.ask(_empty_twin("video", 3), "the cup")
    video.save(out)
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    (out / "masks" / "00002.png").write_bytes(b"edited")  # no longer fastreasonseg's: never removed
    (out / "keep.txt").write_text("mine")
    image = frs.ask(_empty_twin(), "the cup")
    image.save(out)  # the video's overlay.mp4 and its other (unchanged) masks belong to the replaced result
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["00000.png", "00002.png"]
    assert not (out / "overlay.mp4").exists() and (out / "overlay.png").exists()
    assert (out / "masks" / "00002.png").read_bytes() == b"edited" and (out / "keep.txt").read_text() == "mine"
    info = json.loads((out / "result.json").read_text())
    info["query"] = "edited by hand"  # an edited result.json is not ours any more
    (out / "result.json").write_text(json.dumps(info))
    with pytest.raises(
        InputError, match=r"would replace \(masks/00000.png, overlay.png, masks.coco.json, result.json\)"
    ):
        image.save(out)


def test_symlink_in_the_output_is_replaced_not_written_through(frs, tmp_path):
    target = tmp_path / "precious.png"
    target.write_bytes(b"precious")
    out = tmp_path / "o"
    out.mkdir()
    (out / "overlay.png").symlink_to(target)
    r = frs.ask(_empty_twin(), "the cup")
    with pytest.raises(InputError, match="would replace"):
        r.save(out)
    r.save(out, overwrite=True)
    assert target.read_bytes() == b"precious" and not (out / "overlay.png").is_symlink()


def test_unwritable_output_folder_names_the_reason(frs, tmp_path):
    (tmp_path / "f").write_text("x")
    r = frs.ask(_empty_twin(), "the cup")
    with pytest.raises(InputError, match="is a file, not a folder"):
        r.save(tmp_path / "f" / "out")
    with pytest.raises(InputError, match="it is a file, not a folder"):
        r.save(tmp_path / "f")


def test_cold_prefill_reports_no_cached_tokens():
    """A fresh llama.cpp runtime reuses nothing on its first call: the twin-prefix snapshot it makes on the way is
    computed for that call, not cached (it reported 549 of 567 prompt tokens as cached); the next question reuses it."""
    from fastreasonseg.reasoning.runtimes.base import ChatPrompt
    from fastreasonseg.reasoning.runtimes.llamacpp import LlamaCppRuntime

    runtime = LlamaCppRuntime(n_ctx=2048)
    view = "".join(f"{i} cup({90 - i}) {10 + i},{20 + i} 8x6 1 0\n" for i in range(30))
    system = "You find objects in a scene."
    cold = runtime.complete(
        ChatPrompt(system, view + "Question: the cup?"), "<reason>", stop=[], max_tokens=1, cache_prefix=view
    )
    assert cold.cached_tokens == 0 and cold.prompt_tokens > 300
    warm = runtime.complete(
        ChatPrompt(system, view + "Question: the mug?"), "<reason>", stop=[], max_tokens=1, cache_prefix=view
    )
    assert warm.cached_tokens > 0.9 * runtime.count_tokens(view)


def test_davis_oracle_twin_overlays_are_drawn_on_the_frames(frs, tmp_path, davis2016):
    from PIL import Image

    from fastreasonseg.perception.oracle import oracle_from_davis

    twin = oracle_from_davis(davis2016, "blackswan", stride=2)  # frames 0 and 2
    twin.save(tmp_path / "swan.json")
    jpg = np.asarray(Image.open(davis2016 / "JPEGImages" / "480p" / "blackswan" / "00002.jpg").convert("RGB"))
    for t in (twin, frs.load_twin(tmp_path / "swan.json")):
        frames = SourceFrames.find(t)
        assert frames is not None and sorted(frames) == [0, 2]
        assert np.array_equal(frames[2], jpg)
    r = frs.ask(twin, "the bird")
    assert r.frames is not None
    r.save(tmp_path / "o")
    assert json.loads((tmp_path / "o" / "result.json").read_text())["overlay_on_source"] is True


def _coco_check(out, result) -> list[dict]:
    """masks.coco.json loads with pycocotools and its masks are exactly the PNG masks (union per frame)."""
    from PIL import Image
    from pycocotools.coco import COCO

    h, w = result.twin.size
    gt = COCO()
    gt.dataset = {
        "images": [{"id": fr.index, "height": h, "width": w} for fr in result.twin.frames],
        "annotations": [],
        "categories": [{"id": 1, "name": "target"}],
    }
    gt.createIndex()
    entries = json.loads((out / "masks.coco.json").read_text())
    if not entries:  # pycocotools cannot load an empty result list
        assert not any((np.asarray(Image.open(p)) > 0).any() for p in (out / "masks").iterdir())
        return entries
    dt = gt.loadRes(str(out / "masks.coco.json"))
    for fr in result.twin.frames:
        png = np.asarray(Image.open(out / "masks" / f"{fr.index:05d}.png")) > 0
        union = np.zeros((h, w), bool)
        for ann in dt.loadAnns(dt.getAnnIds(imgIds=[fr.index])):
            m = dt.annToMask(ann).astype(bool)
            assert np.array_equal(m, result.twin.instance_mask(fr.index, ann["instance_id"]))
            union |= m
        assert np.array_equal(union, png)
    return entries


def test_coco_export_round_trips_through_pycocotools(tmp_path, davis2016):
    from fastreasonseg.perception.oracle import oracle_from_davis
    from fastreasonseg.reasoning.executor import RolloutResult

    twin = load_twin(example_twin_path())
    r = SegmentationResult.from_rollout(RolloutResult(ids=[1, 3], no_target=False, query="q"), twin)
    r.save(tmp_path / "img")
    entries = _coco_check(tmp_path / "img", r)
    assert sorted(e["instance_id"] for e in entries) == [1, 3]
    assert all(set(e) >= {"image_id", "category_id", "segmentation", "score"} for e in entries)
    assert {e["label"] for e in entries} == {twin.frames[0].get(1).label, twin.frames[0].get(3).label}
    assert [e["image_id"] for e in r.to_coco(image_id=42)] == [42, 42]
    video = oracle_from_davis(davis2016, "blackswan")
    rv = SegmentationResult.from_rollout(RolloutResult(ids=[1], no_target=False, query="q"), video)
    rv.save(tmp_path / "vid")
    assert [e["image_id"] for e in _coco_check(tmp_path / "vid", rv)] == [0, 1, 2]
    assert [e["image_id"] for e in rv.to_coco(image_id={0: 7, 1: 8, 2: 9})] == [7, 8, 9]
    with pytest.raises(InputError, match="mapping"):
        rv.to_coco(image_id=1)
    none = SegmentationResult.from_rollout(RolloutResult(ids=[], no_target=True, query="q"), twin)
    none.save(tmp_path / "none")
    assert _coco_check(tmp_path / "none", none) == []


@pytest.fixture(scope="module")
def tiny_frs(tmp_path_factory):
    from fastreasonseg import PerceptionConfig
    from fastreasonseg.perception.testing import make_tiny_models

    models = make_tiny_models(tmp_path_factory.mktemp("tiny"))
    return FastReasonSeg(perception=PerceptionConfig(**models, box_threshold=0.0, max_instances=4, max_side=160))


def test_build_twin_from_pil_images_and_arrays(tiny_frs, tmp_path):
    from PIL import Image
    from skimage import data

    rgb = data.astronaut()[::4, ::4]  # 128x128
    path = tmp_path / "astronaut.png"
    Image.fromarray(rgb).save(path)
    with Image.open(path) as im:
        from_file = tiny_frs.build_twin(im)
    assert from_file.source.name == "astronaut.png" and from_file.size == (128, 128)
    for source in (Image.fromarray(rgb).convert("L"), Image.fromarray(rgb).convert("RGBA"), rgb, rgb[..., 0]):
        twin = tiny_frs.build_twin(source)
        assert twin.source.kind == "image" and twin.size == (128, 128)
    r = tiny_frs.segment(Image.fromarray(rgb), "the person")
    assert r.frames is not None and r.frames[0].shape == (128, 128, 3)
    r.save(tmp_path / "o")
    assert json.loads((tmp_path / "o" / "result.json").read_text())["overlay_on_source"] is True


def test_folder_of_mixed_size_images(tiny_frs, tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(folder / "a.png")
    Image.new("RGB", (40, 72), (30, 200, 30)).save(folder / "b.jpg")
    with pytest.raises(InputError, match=r"differ in size \(a.png 64x48, b.jpg 40x72\).*--images"):
        tiny_frs.build_twin(folder)
    twins = tiny_frs.build_twins(folder)
    assert {k: t.size for k, t in twins.items()} == {"a.png": (48, 64), "b.jpg": (72, 40)}
    results = tiny_frs.segment_images(folder, "the red one")
    assert list(results) == ["a.png", "b.jpg"]
    assert results["b.jpg"].masks[0].shape == (72, 40) and results["b.jpg"].frames is not None
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        tiny_frs.segment_images(tmp_path / "empty", "q")
