"""Fast runtimes against the torch path, the export cache, fallbacks, and the backend registry."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import textwrap
import warnings

import numpy as np
import pytest

from fastreasonseg.errors import InputError
from fastreasonseg.perception import Perception, TwinBuilder
from fastreasonseg.perception.backends.sam2 import mask_iou_matrix
from fastreasonseg.perception.export_cache import CacheKey, ExportCache
from fastreasonseg.perception.registry import BackendSettings, Registry, default_registry
from fastreasonseg.perception.runtimes import EncoderSpec, compile_encoder


def _runtime(name: str, module: str):
    missing = importlib.util.find_spec(module) is None
    return pytest.param(name, marks=pytest.mark.skipif(missing, reason=f"{module} is not installed"))


RUNTIMES = [_runtime("onnx", "onnxruntime"), _runtime("openvino", "openvino")]


def _outputs(perc: Perception, image: np.ndarray):
    _, work, _ = perc.prepare(image)
    dets = perc.labeller.detect(work, ["mug", "cup", "table", "plant", "book"], 0.0)
    seg = perc.segmenter
    seg.set_image(work)
    masks = np.stack(seg.masks_from_boxes([dets.box(i) for i in range(min(6, len(dets)))]))
    return dets, masks, perc.depth_model.predict_inverse(work)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_fast_runtime_matches_torch(make_config, coffee, runtime):
    """fp32: same boxes after NMS, mask IoU >= 0.99, depth within 1e-4 of its range (tiny real-architecture models)."""
    ref = _outputs(Perception(make_config(backend="torch")), coffee)
    perc = Perception(make_config(backend=runtime))
    fast = _outputs(perc, coffee)
    assert len(fast[0]) == len(ref[0]) > 0
    np.testing.assert_allclose(fast[0].boxes, ref[0].boxes, atol=1e-2)
    assert fast[0].labels == ref[0].labels
    np.testing.assert_allclose(fast[0].scores, ref[0].scores, atol=1e-4)
    ious = np.diag(mask_iou_matrix(fast[1], ref[1]))
    assert (ious >= 0.99).all(), ious
    span = float(ref[2].max() - ref[2].min()) or 1.0
    assert float(np.abs(fast[2] - ref[2]).max()) <= 1e-4 * span
    notes = " ".join(perc.notes)
    assert notes.count("onnxruntime" if runtime == "onnx" else "openvino") == 3, notes


@pytest.mark.parametrize("runtime", RUNTIMES[1:])  # the tracker's default runtime
def test_fast_runtime_tracks_like_torch(make_config, runtime):
    from .test_video_memory import _frames

    frames = _frames(5)
    twins = [
        TwinBuilder(make_config(backend=b, depth=None, labeller=None, mode="grid", grid_points=3)).build(frames)
        for b in ("torch", runtime)
    ]
    for fa, fb in zip(twins[0].frames, twins[1].frames, strict=True):
        assert fa.ids == fb.ids
        for a, b in zip(fa.instances, fb.instances, strict=True):
            ma, mb = a.mask.decode(), b.mask.decode()
            assert (ma & mb).sum() / max(1, (ma | mb).sum()) >= 0.99


def _model_copy(tiny_models, tmp_path, role="depth"):
    d = tmp_path / role
    shutil.copytree(tiny_models[role], d)
    return d


def test_export_cache_reuse_and_invalidation(tiny_models, tmp_path):
    model = _model_copy(tiny_models, tmp_path)
    cache = ExportCache(tmp_path / "cache")
    key = CacheKey("part", "fake", shape=(1, 2))
    calls = []

    def export(tmp):
        calls.append(1)
        (tmp / "graph.bin").write_bytes(b"x" * 100)
        return ["graph.bin"]

    first = cache.get_or_export(model, key, export)
    assert not first.reused and first.reason == "no export yet" and (first.path / "graph.bin").is_file()
    again = cache.get_or_export(model, key, export)
    assert again.reused and len(calls) == 1
    # the same model copied elsewhere with new mtimes but the same content is not the same directory:
    # its own entry; touching the weights (same content) keeps the entry
    weights = next(model.glob("*.safetensors"))
    weights.touch()
    assert cache.get_or_export(model, key, export).reused
    # corrupt export
    (first.path / "graph.bin").write_bytes(b"y" * 100)
    res = cache.get_or_export(model, key, export)
    assert not res.reused and "corrupt" in res.reason and len(calls) == 2
    (first.path / "graph.bin").unlink()
    assert "missing" in cache.get_or_export(model, key, export).reason
    # changed weights (same size) and changed config
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert "model changed" in cache.get_or_export(model, key, export).reason
    cfg = json.loads((model / "config.json").read_text())
    cfg["note"] = "edited"
    (model / "config.json").write_text(json.dumps(cfg))
    assert "model changed" in cache.get_or_export(model, key, export).reason
    # other runtime versions, a broken manifest
    other = CacheKey("part", "fake", shape=(1, 2), versions=(("fake", "2.0"),))
    assert "versions" in cache.get_or_export(model, other, export).reason
    (cache.entry_dir(model, other) / "manifest.json").write_text("{nope")
    assert "unreadable" in cache.get_or_export(model, other, export).reason
    # a failed export leaves no entry behind
    key3 = CacheKey("part3", "fake")

    def failing(tmp):
        (tmp / "half").write_bytes(b"1")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cache.get_or_export(model, key3, failing)
    assert not cache.entry_dir(model, key3).exists()
    assert [p.name for p in cache.model_dir(model).iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("runtime", RUNTIMES[1:])  # the onnx runtime shares the cache code, and is slower to export
def test_runtime_reuses_and_repairs_its_cached_export(tiny_models, tmp_path, coffee, runtime):
    from fastreasonseg.perception.backends.depth_anything import DepthAnything

    model = _model_copy(tiny_models, tmp_path)
    settings = BackendSettings(runtime=runtime, export_cache=str(tmp_path / "cache"))
    ref = DepthAnything(str(model), BackendSettings(runtime="torch")).predict(coffee)
    d1 = DepthAnything(str(model), settings)
    out1 = d1.predict(coffee)
    assert "no export yet" in settings.notes[-1]
    d2 = DepthAnything(str(model), settings)
    d2.predict(coffee)
    assert "cached" in settings.notes[-1]
    # corrupt every exported file: detected, exported again, same result
    for f in (tmp_path / "cache").rglob("model*"):
        if f.is_file():
            f.write_bytes(b"\0" * 16)
    out3 = DepthAnything(str(model), settings).predict(coffee)
    assert "corrupt" in settings.notes[-1]
    np.testing.assert_allclose(out1, ref, atol=1e-4)
    np.testing.assert_allclose(out3, ref, atol=1e-4)


def test_unavailable_runtime_falls_back_to_torch_and_says_so(make_config, coffee, monkeypatch):
    from fastreasonseg.perception.runtimes.onnx_runtime import OnnxRuntime

    monkeypatch.setattr(OnnxRuntime, "unavailable_reason", lambda self: "the onnxruntime package is not installed")
    with pytest.warns(RuntimeWarning, match="fell back to torch"):
        twin = TwinBuilder(make_config(backend="onnx")).build(coffee)
    notes = twin.meta["perception_notes"]
    assert any("depth of" in n and "not installed" in n and "fell back to torch" in n for n in notes), notes
    assert twin.meta["backend"] == "onnx" and twin.num_instances() > 0


def test_part_that_cannot_be_exported_falls_back_naming_the_model(tmp_path):
    import torch

    class Unexportable(torch.nn.Module):
        """Stands for a model with an operator the exporters do not support."""

        def forward(self, x):
            if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export():
                raise RuntimeError("unsupported operator: aten::toy_op")
            return (x * 2.0,)

    for runtime in ("onnx", "openvino"):
        settings = BackendSettings(runtime=runtime, export_cache=str(tmp_path / "c"))
        spec = EncoderSpec("my/model", tmp_path, "toy", Unexportable(), (torch.ones(1, 3),))
        (tmp_path / "config.json").write_text("{}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn = compile_encoder(spec, settings)
        (out,) = fn(torch.ones(1, 3))
        assert torch.equal(out, torch.full((1, 3), 2.0))
        assert "toy of my/model" in settings.notes[-1] and "fell back to torch" in settings.notes[-1]
        assert any("fell back to torch" in str(w.message) for w in caught)


def test_bad_settings_are_named(make_config):
    with pytest.raises(InputError, match="backend must be one of"):
        Perception(make_config(backend="tensorrt"))
    with pytest.raises(InputError, match="int8"):
        Perception(make_config(backend="openvino", precision="int8"))
    with pytest.raises(InputError, match="depth_size"):
        Perception(make_config(depth_size=0))


PLUGIN = '''
import numpy as np
from fastreasonseg.perception.detections import Detections
from fastreasonseg.perception.registry import register


@register("labeller", "corner-detector", model_types=("corner_detector",))
class CornerDetector:
    """Finds one object in the top-left quarter of every image."""

    def __init__(self, model, settings):
        self.name = model

    def detect(self, image, vocabulary, threshold):
        h, w = image.shape[:2]
        return Detections.from_boxes([(0, 0, w / 2, h / 2)], scores=[0.9], labels=[vocabulary[0]])

    def classify(self, image, boxes, candidates):
        return [[(c, 0.5) for c in candidates] for _ in boxes]
'''


def test_backend_registered_from_one_file_is_picked_by_name(tmp_path, monkeypatch, make_config, coffee):
    pkg = tmp_path / "frs_plugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "corner_detector.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry(packages=("frs_plugins",), base=default_registry)
    monkeypatch.setattr("fastreasonseg.perception.registry.default_registry", reg)
    try:
        assert "corner-detector" in reg.names("labeller") and "owlv2" in reg.names("labeller")
        # by name
        perc = Perception(make_config(labeller="corner-detector:anything", depth=None), registry=reg)
        objs = perc.perceive(coffee)
        assert [o.label for o in objs] == [perc.vocabulary[0]]
        # by the model directory's config.json
        mdir = tmp_path / "corner-model"
        mdir.mkdir()
        (mdir / "config.json").write_text(json.dumps({"model_type": "corner_detector"}))
        assert reg.resolve("labeller", str(mdir))[0].name == "corner-detector"
        with pytest.raises(InputError, match="unknown labeller backend"):
            reg.get("labeller", "nope")
    finally:
        sys.modules.pop("frs_plugins.corner_detector", None)
        sys.modules.pop("frs_plugins", None)
    assert "corner-detector" not in default_registry.names("labeller")


def test_model_directories_pick_their_backend(tiny_models, tmp_path):
    from fastreasonseg.perception.testing import make_owlvit

    assert default_registry.resolve("labeller", tiny_models["labeller"])[0].name == "owlv2"
    assert default_registry.resolve("segmenter", tiny_models["segmenter"])[0].name == "sam2"
    assert default_registry.resolve("depth", tiny_models["depth"])[0].name == "depth-anything"
    vit = make_owlvit(tmp_path / "owlvit")
    assert default_registry.resolve("labeller", str(vit))[0].name == "owlvit"
    assert default_registry.resolve("labeller", "google/owlvit-base-patch32")[0].name == "owlvit"
    assert default_registry.resolve("labeller", "google/owlv2-base-patch16-ensemble")[0].name == "owlv2"


def test_owlvit_labeller_end_to_end(tmp_path, make_config, coffee):
    from fastreasonseg.perception.testing import make_owlvit

    vit = make_owlvit(tmp_path / "owlvit")
    twin = TwinBuilder(make_config(labeller=str(vit), depth=None)).build(coffee)
    assert twin.num_instances() > 0
    for inst in twin.frames[0].instances:
        x0, y0, x1, y1 = inst.box
        assert 0 <= x0 <= x1 <= 600 and 0 <= y0 <= y1 <= 400


def test_text_embeddings_are_cached_across_builders(make_config, coffee, monkeypatch, tmp_path):
    cfg = make_config(export_cache=str(tmp_path / "cache"), depth=None, segmenter=None)
    lab = Perception(cfg).labeller
    first = lab.encode_text(["mug", "cup"])
    fresh = Perception(cfg).labeller
    calls = []
    orig = fresh._text_features
    monkeypatch.setattr(fresh, "_text_features", lambda **kw: calls.append(1) or orig(**kw))
    again = fresh.encode_text(["mug", "cup"])
    assert calls == [] and np.allclose(first.numpy(), again.numpy())
    fresh.encode_text(["mug", "teapot"])
    assert calls == [1]


def test_longest_padding_gives_the_same_text_embeddings(make_config):
    import torch

    lab = Perception(make_config(depth=None, segmenter=None)).labeller
    phrases = ["mug", "coffee cup", "a small dog"]
    ours = lab.encode_text(phrases)
    tok = lab.processor.tokenizer(
        [lab.template.format(p) for p in phrases],
        padding="max_length",
        truncation=True,
        max_length=16,
        return_tensors="pt",
    )
    with torch.inference_mode():
        ref = lab.model.owlv2.get_text_features(**tok)
    ref = ref.pooler_output if hasattr(ref, "pooler_output") else ref
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-5)


def test_smaller_input_sizes_still_build_valid_twins(make_config, coffee):
    cfg = make_config(segmenter_size=64, depth_size=28, labeller_size=48)
    perc = Perception(cfg)
    twin = TwinBuilder(cfg, perception=perc).build(coffee)
    assert twin.num_instances() > 0 and all(i.depth is not None for i in twin.frames[0].instances)
    assert perc.segmenter.size == 64 and perc.depth_model.input_size == 28 and perc.labeller.input_size == 48


def test_presets():
    from fastreasonseg.config import FAST_LABELLER, PerceptionConfig

    fast = PerceptionConfig.preset("fast", device="cuda")
    assert fast.labeller == FAST_LABELLER and fast.segmenter_size == 512 and fast.device == "cuda"
    assert PerceptionConfig.preset("paper") == PerceptionConfig()
    with pytest.raises(ValueError, match="presets"):
        PerceptionConfig.preset("turbo")
