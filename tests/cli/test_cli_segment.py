"""`fastreasonseg twin build` and `segment` end to end: real photo / real video, tiny random perception models,
the real offline reasoner."""

import json

import av
import numpy as np
import pytest
from PIL import Image

from fastreasonseg.perception.testing import make_tiny_models

from .cli_helpers import assert_clean_failure, run_cli


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    m = make_tiny_models(tmp_path_factory.mktemp("tiny"))
    return ["--segmenter", m["segmenter"], "--depth", m["depth"], "--labeller", m["labeller"], "--threshold", "0"]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from skimage import data

    p = tmp_path_factory.mktemp("img") / "chelsea.jpg"
    Image.fromarray(data.chelsea()).save(p)
    return p


def test_twin_build_image(models, photo, tmp_path):
    out = tmp_path / "t.json"
    proc = run_cli("twin", "build", str(photo), "-o", str(out), *models)
    assert proc.returncode == 0, proc.stderr
    assert run_cli("twin", "validate", str(out)).returncode == 0
    d = json.loads(out.read_text())
    assert d["source"] == {
        "kind": "image",
        "name": "chelsea.jpg",
        "width": 451,
        "height": 300,
        "fps": 0.0,
        "num_frames": 1,
    }
    assert "total" in d["meta"]["timings_ms"]


def test_segment_image(models, photo, tmp_path):
    pytest.importorskip("llama_cpp")
    out = tmp_path / "o"
    proc = run_cli("segment", str(photo), "the animal", "-o", str(out), *models)
    assert proc.returncode == 0, proc.stderr
    assert (out / "overlay.png").exists() and (out / "twin.json").exists()
    r = json.loads((out / "result.json").read_text())
    assert r["overlay_on_source"] is True
    assert set(r["ids"]) <= {i["id"] for i in json.loads((out / "twin.json").read_text())["frames"][0]["instances"]}


def test_segment_video(models, tmp_path):
    pytest.importorskip("llama_cpp")
    video = tmp_path / "clip.mp4"
    c = av.open(str(video), "w")
    s = c.add_stream("libx264", rate=8)
    s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
    for k in range(6):
        f = np.full((64, 96, 3), 30, np.uint8)
        f[20:40, 10 + 10 * k : 30 + 10 * k] = (220, 40, 40)
        for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    out = tmp_path / "v"
    proc = run_cli("segment", str(video), "the red thing moving right", "-o", str(out), "--stride", "2", *models)
    assert proc.returncode == 0, proc.stderr
    assert (out / "overlay.mp4").stat().st_size > 0
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["00000.png", "00002.png", "00004.png"]


@pytest.mark.parametrize("kind", ["missing", "empty", "corrupt"])
def test_segment_bad_media(kind, tmp_path, models):
    p = tmp_path / "x.jpg"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "corrupt":
        p.write_bytes(b"\xff\xd8\xff garbage")
    proc = run_cli("segment", str(p), "cup", *models)
    assert_clean_failure(proc, "error:")


def test_unloadable_model_names_it(models, photo, tmp_path):
    bad = str(tmp_path / "nosuch")
    proc = run_cli("twin", "build", str(photo), "-o", str(tmp_path / "t.json"), *models, "--segmenter", bad)
    assert_clean_failure(proc, "nosuch", "local directory")
