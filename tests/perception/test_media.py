"""Reading inputs: every format converted right, every bad input a clear InputError."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fastreasonseg.errors import FastReasonSegError, InputError
from fastreasonseg.perception.media import (
    fit_to_side,
    list_frame_files,
    open_media,
    read_image,
    resize_mask,
    to_rgb_uint8,
)

from .conftest import moving_square_frames, write_mp4


def test_rgb_jpeg(tmp_path, coffee):
    p = tmp_path / "c.jpg"
    Image.fromarray(coffee).save(p)
    m = open_media(p)
    assert (m.kind, m.width, m.height, m.num_frames, m.fps) == ("image", 600, 400, 1, 0.0)
    [(idx, f)] = list(m.frames())
    assert idx == 0 and f.shape == (400, 600, 3) and f.dtype == np.uint8


def test_grayscale_rgba_palette(tmp_path):
    g = (np.arange(64 * 48) % 256).astype(np.uint8).reshape(48, 64)
    Image.fromarray(g).save(tmp_path / "g.png")
    f = read_image(tmp_path / "g.png")
    assert f.shape == (48, 64, 3) and (f[..., 0] == g).all() and (f[..., 2] == g).all()

    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 17
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    f = read_image(tmp_path / "a.png")
    assert f.shape == (10, 12, 3) and (f[..., 0] == 200).all()

    Image.fromarray(np.full((8, 8, 3), (10, 20, 30), np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE).save(
        tmp_path / "p.png"
    )
    f = read_image(tmp_path / "p.png")
    assert f.shape == (8, 8, 3) and tuple(f[0, 0]) == (10, 20, 30)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 257, 32896, 65535]], dtype=np.uint16).repeat(4, 0)
    Image.fromarray(a).save(tmp_path / "d.png")
    f = read_image(tmp_path / "d.png")
    assert f.dtype == np.uint8 and f.shape == (4, 4, 3)
    assert f[0, :, 0].tolist() == [0, 1, 128, 255]


def test_16bit_rgb_tiff(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    a = np.zeros((6, 5, 3), np.uint16)
    a[..., 1] = 65535
    a[..., 2] = 257 * 100
    tifffile.imwrite(tmp_path / "t.tiff", a)
    f = read_image(tmp_path / "t.tiff")
    assert f.shape == (6, 5, 3) and f[0, 0].tolist() == [0, 255, 100]


def test_arrays():
    assert to_rgb_uint8(np.zeros((4, 5))).shape == (4, 5, 3)
    assert to_rgb_uint8(np.ones((4, 5, 3), np.float32))[0, 0, 0] == 255
    assert to_rgb_uint8(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    m = open_media(np.zeros((3, 8, 9, 3), np.uint8), fps=5)
    assert (m.kind, m.num_frames, m.fps, m.width, m.height) == ("video", 3, 5.0, 9, 8)
    m = open_media([np.zeros((8, 9), np.uint8)] * 2)
    assert m.kind == "video" and len(list(m.frames())) == 2
    assert open_media(np.zeros((8, 9, 3), np.uint8)).kind == "image"
    for bad in (np.zeros((4, 5, 5)), np.zeros((2, 3, 4, 5, 6)), np.zeros((0, 5, 3)), np.full((3, 3), np.nan)):
        with pytest.raises(InputError):
            list(open_media(bad).frames())
    with pytest.raises(InputError):
        open_media([])
    with pytest.raises(InputError, match="unsupported input"):
        open_media(12)


def test_bad_paths(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        open_media(tmp_path / "missing.jpg")
    for name in ("empty.jpg", "empty.mp4"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(InputError, match="empty"):
            open_media(tmp_path / name)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg" * 10)
    with pytest.raises(InputError, match="cannot read"):
        list(open_media(tmp_path / "bad.jpg").frames())
    (tmp_path / "bad.mp4").write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(InputError, match="video"):
        open_media(tmp_path / "bad.mp4")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no image files"):
        open_media(tmp_path / "folder")
    with pytest.raises(InputError):
        open_media(tmp_path / "folder", stride=0)
    assert issubclass(InputError, FastReasonSegError)


def test_video_file_stream_stride_max_frames(tmp_path):
    p = write_mp4(tmp_path / "v.mp4", moving_square_frames(9), fps=10)
    m = open_media(p)
    assert (m.kind, m.width, m.height, m.fps) == ("video", 128, 96, 10.0)
    assert m.num_frames == 9
    got = [(i, f.shape) for i, f in open_media(p, stride=2, max_frames=3).frames()]
    assert got == [(0, (96, 128, 3)), (2, (96, 128, 3)), (4, (96, 128, 3))]
    frames = open_media(p).frames()
    assert not isinstance(frames, list)  # a generator: streamed


def test_folder_natural_order(tmp_path):
    for i in (10, 2, 1):
        Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / ".hidden.png").write_bytes(b"")
    assert [f.name for f in list_frame_files(tmp_path)] == ["1.png", "2.png", "10.png"]
    m = open_media(tmp_path)
    assert m.kind == "video" and [f[0, 0, 0] for _, f in m.frames()] == [1, 2, 10]


def test_huge_image_loads_past_the_bomb_guard(tmp_path):
    p = tmp_path / "huge.jpg"
    Image.new("L", (12000, 9000), 7).save(p, quality=50)
    m = open_media(p)
    assert (m.width, m.height) == (12000, 9000)
    [(_, f)] = list(m.frames())
    small, scale = fit_to_side(f, 1024)
    assert small.shape == (768, 1024, 3) and scale == pytest.approx(1024 / 12000)
    assert f.shape == (9000, 12000, 3) and abs(int(f[0, 0, 0]) - 7) <= 2


def test_resize_mask():
    m = np.zeros((4, 6), bool)
    m[1:3, 2:4] = True
    big = resize_mask(m, (8, 12))
    assert big.shape == (8, 12) and big.sum() == m.sum() * 4
