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


@pytest.fixture
def mixed_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.full((48, 64, 3), (200, 30, 30), np.uint8)).save(folder / "red.png")
    Image.fromarray(np.full((72, 40, 3), (30, 30, 200), np.uint8)).save(folder / "blue.jpg")
    return folder


def test_folder_of_mixed_sizes_says_use_images(models, mixed_folder, tmp_path):
    proc = run_cli("segment", str(mixed_folder), "the red one", *models)
    assert_clean_failure(proc, "differ in size (blue.jpg 40x72, red.png 64x48)", "--images")
    build = run_cli("twin", "build", str(mixed_folder), "-o", str(tmp_path / "t.json"), *models)
    assert_clean_failure(build, "differ in size", "--images")


def test_segment_images_one_result_per_image(models, mixed_folder, tmp_path):
    pytest.importorskip("llama_cpp")
    out = tmp_path / "out"
    proc = run_cli("segment", str(mixed_folder), "the red one", "--images", "-o", str(out), "--json", *models)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert [r["name"] for r in results] == ["blue.jpg", "red.png"]
    assert [r["output_dir"] for r in results] == [str(out / "blue"), str(out / "red")]
    for name, size in (("blue", (40, 72)), ("red", (64, 48))):
        assert Image.open(out / name / "overlay.png").size == size
        assert json.loads((out / name / "twin.json").read_text())["source"]["width"] == size[0]
        assert json.loads((out / name / "result.json").read_text())["overlay_on_source"] is True


def test_twin_build_images_then_ask_the_folder(models, mixed_folder, tmp_path):
    pytest.importorskip("llama_cpp")
    twins = tmp_path / "twins"
    proc = run_cli("twin", "build", str(mixed_folder), "--images", "-o", str(twins), *models)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in twins.iterdir()) == ["blue.twin.json", "red.twin.json"]
    again = run_cli("twin", "build", str(mixed_folder), "--images", "-o", str(twins), *models)
    assert_clean_failure(again, "already exist", "--force")
    out = tmp_path / "answers"
    ask = run_cli("ask", str(twins), "the blue one", "-o", str(out))
    assert ask.returncode == 0, ask.stderr
    assert "blue.twin.json" in ask.stdout and "red.twin.json" in ask.stdout
    for name in ("blue", "red"):
        assert (out / name / "result.json").is_file() and (out / name / "masks.coco.json").is_file()
