import json

import numpy as np
import pytest

from fastreasonseg.perception.protocols import Detection
from fastreasonseg.reasoning.tools import (
    ToolContext,
    colour_name,
    default_registry,
    direction_name,
    position_name,
    size_class,
)

from .helpers import H, W, disk, image_rgb, image_twin, rect, video_twin

REG = default_registry()


def call(name, args, twin=None, **ctx):
    c = ToolContext(twin=twin or image_twin(), **ctx)
    out = REG.call(name, args, c)
    json.dumps(out)  # always JSON
    return out, c


class FakePerception:
    """Detections are given per call; ``classify`` scores candidates by a fixed table."""

    def __init__(self, detections=None, scores=None):
        self.detections = detections or (lambda image, phrases: [])
        self.scores = scores or {}
        self.calls = []

    def detect(self, image, phrases, threshold):
        self.calls.append(("detect", tuple(phrases), threshold))
        out = []
        for box, mask in self.detections(image, phrases):
            out.append((Detection(box, phrases[0], 0.77, []), mask, None))
        return out

    def classify(self, image, boxes, candidates):
        self.calls.append(("classify", tuple(boxes), tuple(candidates)))
        return [sorted(((c, self.scores.get(c, 0.1)) for c in candidates), key=lambda p: -p[1]) for _ in boxes]


# ------------------------------------------------------------------ registry
def test_registry_description_and_schemas():
    text = REG.describe()
    for name in ("detect", "relabel", "relation", "attributes", "motion"):
        assert text.count(f"\n{name} ") + text.startswith(name) == 1
    assert 'relabel {"id": int, "candidates": [str]}' in text
    schemas = REG.json_schemas()
    assert {s["name"] for s in schemas} == set(REG.names)
    assert schemas[2]["parameters"]["required"] == ["a", "b"]
    args = REG.gbnf_args()
    assert args["relation"] == '"{" "\\"a\\": " id ", " "\\"b\\": " id "}"'


def test_args_are_strict():
    out, _ = call("attributes", {"id": 1.0})
    assert "bad args" in out["error"]
    out, _ = call("attributes", {"id": True})
    assert "bad args" in out["error"]
    out, _ = call("attributes", {"id": 1, "extra": 2})
    assert "bad args" in out["error"] and "extra" in out["error"]
    out, _ = call("attributes", ["id", 1])
    assert "bad args" in out["error"]
    out, _ = call("relabel", {"id": 1, "candidates": []})
    assert "bad args" in out["error"]


def test_tool_exception_becomes_error():
    class Broken(FakePerception):
        def classify(self, image, boxes, candidates):
            raise RuntimeError("CUDA out of memory")

    out, _ = call("relabel", {"id": 1, "candidates": ["cup"]}, frames={0: image_rgb()}, perception=Broken())
    assert out["error"].startswith("relabel failed: RuntimeError: CUDA out of memory")


# ------------------------------------------------------------------ relation
def test_relation_image_geometry():
    out, _ = call("relation", {"a": 1, "b": 7})  # mug (x=30, near) vs person (x=110..150, far)
    assert out["a_is"] == ["left of", "below", "in front of"]
    out, _ = call("relation", {"a": 7, "b": 1})
    assert out["a_is"] == ["right of", "above", "behind"]
    out, _ = call("relation", {"a": 9, "b": 2})  # apple on/inside the table region
    assert "inside" in out["a_is"]
    out, _ = call("relation", {"a": 2, "b": 9})
    assert "contains" in out["a_is"]
    assert "frame" not in out


def test_relation_overlap():
    from fastreasonseg.twin import Frame, Instance

    twin = image_twin()
    twin.frames[0].instances.append(Instance.from_mask(20, "box", rect(H, W, 0, 0, 40, 40)))
    twin.frames[0].instances.append(Instance.from_mask(21, "bag", rect(H, W, 20, 20, 60, 60)))
    twin = twin.model_validate(twin.model_dump())
    assert isinstance(twin.frames[0], Frame)
    out, _ = call("relation", {"a": 20, "b": 21}, twin=twin)
    assert out["a_is"] == ["left of", "above", "overlaps"]


def test_relation_errors():
    assert "different" in call("relation", {"a": 1, "b": 1})[0]["error"]
    assert "no object with id 5" in call("relation", {"a": 1, "b": 5})[0]["error"]


def test_relation_video_summary():
    out, _ = call("relation", {"a": 3, "b": 4}, twin=video_twin())
    assert out["frames"] == "0-4" and out["shared"] == 5
    assert "left of" in out["a_is"] and "in front of" in out["a_is"]


def test_relation_video_no_shared_frame():
    from fastreasonseg.twin import Instance

    twin = video_twin()
    twin.frames[0].instances.append(Instance.from_mask(8, "bird", disk(60, 100, 10, 10, 3)))
    twin.frames[4].instances.append(Instance.from_mask(9, "cat", disk(60, 100, 40, 40, 3)))
    assert "never in the same frame" in call("relation", {"a": 8, "b": 9}, twin=twin)[0]["error"]
    out, _ = call("relation", {"a": 8, "b": 3}, twin=twin)
    assert out["frame"] == 0 and "above" in out["a_is"]


# ------------------------------------------------------------------ attributes
def test_attributes_without_image():
    # mean depths: apple 0.2, mug 0.41, table 0.44 (its right end is far), person 0.9
    out, _ = call("attributes", {"id": 1})
    assert out == {"id": 1, "label": "mug", "size": "small", "area": 2, "pos": "left", "depth_rank": "2/4"}
    out, _ = call("attributes", {"id": 7})
    assert out["pos"] == "right" and out["depth_rank"] == "4/4" and out["size"] == "medium"
    out, _ = call("attributes", {"id": 2})
    assert out["pos"] == "bottom" and out["depth_rank"] == "3/4"  # its right part lies in the far region


def test_attributes_colour_with_image():
    assert call("attributes", {"id": 1}, frames={0: image_rgb()})[0]["colour"] == "red"
    assert call("attributes", {"id": 7}, frames={0: image_rgb()})[0]["colour"] == "blue"
    assert call("attributes", {"id": 2}, frames={0: image_rgb()})[0]["colour"] == "gray"


def test_attributes_video_picks_a_frame():
    out, _ = call("attributes", {"id": 4}, twin=video_twin())
    assert out["pos"] == "right" and out["frame"] in range(5)


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((230, 20, 20), "red"),
        ((20, 20, 230), "blue"),
        ((20, 200, 30), "green"),
        ((240, 220, 30), "yellow"),
        ((250, 140, 10), "orange"),
        ((110, 60, 20), "brown"),
        ((250, 250, 250), "white"),
        ((10, 10, 10), "black"),
        ((128, 128, 128), "gray"),
        ((130, 30, 180), "purple"),
        ((250, 150, 200), "pink"),
    ],
)
def test_colour_names(rgb, name):
    assert colour_name(rgb) == name


def test_position_size_direction_names():
    assert position_name(0.1, 0.1) == "top-left" and position_name(0.5, 0.5) == "center"
    assert position_name(0.9, 0.9) == "bottom-right" and position_name(0.5, 0.1) == "top"
    assert size_class(0.001) == "tiny" and size_class(0.6) == "huge"
    assert direction_name(0.0, 0.01) == "still" and direction_name(0.3, 0.0) == "right"
    assert direction_name(0.0, -0.3) == "up" and direction_name(-0.2, 0.2) == "down-left"


# ------------------------------------------------------------------ motion
def test_motion_moving_object():
    out, _ = call("motion", {"id": 3}, twin=video_twin())
    assert out == {
        "id": 3,
        "frames": "0-4",
        "seen": "5/5",
        "dir": "right",
        "dx": 40,
        "dy": 0,
        "speed": 50,
        "depth": "approaching",
    }
    out, _ = call("motion", {"id": 4}, twin=video_twin())
    assert out["dir"] == "still" and out["speed"] == 0 and out["depth"] == "steady"


def test_motion_needs_video():
    assert call("motion", {"id": 1})[0] == {"error": "motion needs a video; this twin is a single image"}


# ------------------------------------------------------------------ detect
def test_detect_without_perception():
    msg = "detect needs the source image and the perception models; this twin was loaded without them"
    assert call("detect", {"text": "lamp"})[0] == {"error": msg}
    assert call("detect", {"text": "lamp"}, frames={0: image_rgb()})[0] == {"error": msg}
    assert call("detect", {"text": "lamp"}, perception=FakePerception())[0] == {"error": msg}


def test_detect_adds_and_relabels():
    lamp = rect(H, W, 10, 10, 30, 50)
    mug = disk(H, W, 70, 30, 12)

    def dets(image, phrases):
        return [((10, 10, 50, 30), lamp), ((18, 58, 42, 82), mug)]

    p = FakePerception(dets)
    out, ctx = call("detect", {"text": "  teapot "}, frames={0: image_rgb()}, perception=p)
    assert out == {"text": "teapot", "new": [10], "relabelled": [1]}
    fr = ctx.twin.frames[0]
    assert fr.get(10).label == "teapot" and fr.get(10).area == lamp.sum()
    assert fr.get(1).label == "teapot" and ("mug", 0.81) in [tuple(a) for a in fr.get(1).alt_labels]
    assert p.calls[0] == ("detect", ("teapot",), 0.15)
    ctx.twin.validate_all()


def test_detect_nothing_found():
    out, _ = call("detect", {"text": "unicorn"}, frames={0: image_rgb()}, perception=FakePerception())
    assert out == {"text": "unicorn", "new": [], "relabelled": [], "found": 0}


def test_detect_video_links_tracks():
    twin = video_twin()
    frames = {k: np.zeros((60, 100, 3), np.uint8) for k in range(5)}
    state = {"k": 0}

    def dets(image, phrases):
        k = state["k"]
        state["k"] += 1
        return [((70 - 2 * k, 40, 80 - 2 * k, 50), rect(60, 100, 40, 70 - 2 * k, 50, 80 - 2 * k))]

    out, ctx = call("detect", {"text": "dog"}, twin=twin, frames=frames, perception=FakePerception(dets))
    assert out["new"] == [5]
    assert [fr.get(5) is not None for fr in ctx.twin.frames] == [True] * 5
    ctx.twin.validate_all()


def test_detect_mask_size_mismatch():
    p = FakePerception(lambda image, phrases: [((0, 0, 5, 5), np.ones((10, 10), bool))])
    out, _ = call("detect", {"text": "x"}, frames={0: image_rgb()}, perception=p)
    assert "10x10 mask for a 160x120 twin" in out["error"]


# ------------------------------------------------------------------ relabel
def test_relabel_fallback_without_labeller():
    out, ctx = call("relabel", {"id": 1, "candidates": ["cup", "bowl", "coffee mug"]})
    assert out["label"] == "cup" and out["scores"] == {"cup": 70, "bowl": 0, "coffee mug": 40}
    assert "no labeller" in out["note"]
    assert ctx.twin.frames[0].get(1).label == "mug"  # the fallback does not change the twin
    out, _ = call("relabel", {"id": 1, "candidates": ["bowl"]})
    assert out["label"] is None


def test_relabel_with_labeller_updates_twin():
    p = FakePerception(scores={"kettle": 0.9, "cup": 0.4})
    out, ctx = call("relabel", {"id": 1, "candidates": ["cup", "kettle"]}, frames={0: image_rgb()}, perception=p)
    assert out == {"id": 1, "label": "kettle", "scores": {"kettle": 90, "cup": 40}}
    inst = ctx.twin.frames[0].get(1)
    assert inst.label == "kettle" and inst.score == 0.9 and inst.alt_labels[0] == ("mug", 0.81)
    assert p.calls[0][0] == "classify" and p.calls[0][1] == (inst.box,)
    assert "unknown" not in call("relabel", {"id": 3, "candidates": ["x"]})[0]
    assert "no object with id 3" in call("relabel", {"id": 3, "candidates": ["x"]})[0]["error"]
