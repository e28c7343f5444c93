"""One pixel limit for the CLI, the API and the server; failing fast when the model hub is unreachable."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from PIL import Image

from fastreasonseg.config import PerceptionConfig
from fastreasonseg.errors import InputError, ModelLoadError
from fastreasonseg.perception import Perception, TwinBuilder, _hf


@pytest.fixture
def wide_png(tmp_path):
    p = tmp_path / "wide.png"
    Image.new("RGB", (800, 600), (90, 120, 200)).save(p)
    return p


def test_pixel_limit_refuses_before_decoding(make_config, wide_png, monkeypatch):
    import fastreasonseg.perception.media as media

    monkeypatch.setattr(media, "read_image", lambda *a, **k: pytest.fail("the image was decoded"))
    with pytest.raises(InputError, match=r"800x600 is 480,000 pixels per frame, above the limit of 400,000") as ei:
        TwinBuilder(make_config(max_pixels=400_000)).build(wide_png)
    assert "max_pixels" in str(ei.value) and "Downscale it" in str(ei.value)


def test_pixel_limit_through_the_python_api(make_config, wide_png):
    from fastreasonseg.api import FastReasonSeg

    frs = FastReasonSeg(perception=make_config(max_pixels=400_000))
    with pytest.raises(InputError, match="above the limit"):
        frs.build_twin(wide_png)
    twin = FastReasonSeg(perception=make_config(max_pixels=480_000, depth=None)).build_twin(wide_png)
    assert twin.size == (600, 800)  # at the limit: built, downscaled for the models, masks at full size
    assert twin.meta["scale"] == pytest.approx(160 / 800)


def test_server_uses_the_perception_limit():
    pytest.importorskip("fastapi")
    from fastreasonseg.server.config import ServerConfig

    cfg = ServerConfig(perception=PerceptionConfig(max_pixels=1234))
    assert cfg.max_pixels == 1234
    cfg = ServerConfig(max_pixels=999)
    assert cfg.perception.max_pixels == 999
    assert ServerConfig().max_pixels == PerceptionConfig().max_pixels


def test_cli_build_refuses_a_frame_above_the_limit(tiny_models, wide_png, tmp_path):
    env = {**os.environ, "FASTREASONSEG_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "fastreasonseg", "twin", "build", str(wide_png), "-o", str(tmp_path / "t.json")]
    cmd += ["--max-pixels", "400000", "--backend", "torch"]
    for role in ("segmenter", "depth", "labeller"):
        cmd += [f"--{role}", tiny_models[role]]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "above the limit of 400,000" in out and "Traceback" not in out
    assert not (tmp_path / "t.json").exists()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """The hub endpoint is a closed local port and the hub cache is empty."""
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    for v in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setattr(_hf, "_PROBES", {})
    return tmp_path


def test_unreachable_hub_fails_at_once_without_trying_to_download(no_hub, monkeypatch):
    import transformers

    monkeypatch.setattr(
        transformers.Owlv2ForObjectDetection,
        "from_pretrained",
        classmethod(lambda *a, **k: pytest.fail("tried to download")),
    )
    perc = Perception(PerceptionConfig(segmenter=None, depth=None, backend="torch"))
    with pytest.raises(ModelLoadError) as ei:
        _ = perc.labeller
    msg = str(ei.value)
    assert "google/owlv2-base-patch16-ensemble" in msg and "cannot be reached" in msg
    assert "--labeller DIR" in msg and "local" in msg
    assert _hf.hub_unreachable() is not None  # probed once, remembered


def test_offline_env_fails_at_once(no_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        _hf.load_model("depth", "depth-anything/Depth-Anything-V2-Small-hf", lambda p, kw: pytest.fail("loaded"))


def test_cli_build_with_default_models_and_no_hub(no_hub, wide_png):
    env = {**os.environ, "FASTREASONSEG_CACHE": str(no_hub / "cache")}
    out_file = no_hub / "t.json"
    cmd = [sys.executable, "-m", "fastreasonseg", "twin", "build", str(wide_png), "-o", str(out_file)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "cannot be reached" in out and "Retrying" not in out and "Traceback" not in out
    assert "DIR" in out and not out_file.exists()
