import numpy as np
import pytest

from fastreasonseg.twin import DigitalTwin, Frame, Instance, Source
from fastreasonseg.twin.view import ViewOptions, box_centre_size, depth_digit, pct, twin_view, view_legend


def test_image_view_lines(image_twin):
    text = twin_view(image_twin)
    head, *rows = text.splitlines()
    assert head.startswith("image 160x120, 3 objects.") and "Columns:" in head
    assert rows[0].startswith("1 mug(81) cup ")
    assert rows[0].split()[-1] == str(depth_digit(image_twin.frames[0].get(1).depth.mean))
    assert rows[1].startswith("2 table(60) 50,83 99x33 ")  # box (0,80)-(160,120) of 160x120: centre, size
    assert [r.split()[0] for r in rows] == ["1", "2", "7"]


def test_boxes_are_written_as_centre_and_size(image_twin):
    """Relations and superlatives compare centres: the view writes them, rounded as :func:`box_centre_size` does."""
    h, w = image_twin.size
    for inst, row in zip(image_twin.frames[0].instances, twin_view(image_twin).splitlines()[1:], strict=True):
        x0, y0, x1, y1 = inst.box
        cx, cy, bw, bh = box_centre_size(inst.box, w, h)
        assert (cx, cy) == (pct((x0 + x1) / 2 / w), pct((y0 + y1) / 2 / h))
        assert (bw, bh) == (pct((x1 - x0) / w), pct((y1 - y0) / h))
        assert f" {cx},{cy} {bw}x{bh} " in row


def test_legend_can_move_to_the_system_prompt(image_twin):
    text = twin_view(image_twin, ViewOptions(legend=False))
    assert "Columns" not in text
    assert view_legend(False) in twin_view(image_twin)


def test_video_view_tracks(video_twin):
    text = twin_view(video_twin)
    head, dog, ball = text.splitlines()
    assert head.startswith("video 100x60, 6 frames at 10 fps (1.0 s), 2 tracks.")
    assert dog.startswith("3 dog(90) f0-10 ")
    assert ">+75,+0" in dog and " d3 " in dog  # moves right by 75% of the frame, ends nearer
    assert ball.startswith("4 ball(50) f6-10 ")
    frame_text = twin_view(video_twin, ViewOptions(frame=6))
    assert frame_text.startswith("video frame 6 100x60, 2 objects.")


def test_truncation_is_stated():
    h, w = 50, 50
    insts = []
    for k in range(300):
        m = np.zeros((h, w), bool)
        m[k % h, (k // h) : (k // h) + 1 + k % 3] = True
        insts.append(Instance.from_mask(k, "thing", m))
    twin = DigitalTwin(
        source=Source(kind="image", name="many", width=w, height=h), frames=[Frame(index=0, instances=insts)]
    )
    text = twin_view(twin, ViewOptions(max_instances=20))
    rows = text.splitlines()
    assert rows[0].startswith("image 50x50, 300 objects.")
    assert len(rows) == 22 and rows[-1].startswith("(+280 smaller objects not listed")


def test_empty_twin_view():
    twin = DigitalTwin(source=Source(kind="image", name="e", width=4, height=4), frames=[Frame(index=0)])
    assert "(no objects detected)" in twin_view(twin)


def test_tokens_per_instance_within_budget(image_twin, video_twin):
    pytest.importorskip("llama_cpp")
    from fastreasonseg.twin.tokens import view_token_stats

    stats = view_token_stats(image_twin)
    assert stats.lines == 3 and stats.per_line <= 25, stats
    assert stats.total == pytest.approx(stats.header + 3 * stats.per_line, abs=3)
    vstats = view_token_stats(video_twin)
    assert vstats.lines == 2 and vstats.per_line <= 40, vstats
