"""Track-id assignment (pure function) and the depth conversion."""

from __future__ import annotations

import numpy as np

from fastreasonseg.perception.depth import inverse_depth_to_relative
from fastreasonseg.perception.tracking import assign_track_ids
from fastreasonseg.perception.vocabulary import DEFAULT_VOCABULARY, build_vocabulary, vocabulary_for_query


def test_existing_object_is_matched_not_duplicated():
    tracks = {3: (10.0, 10.0, 50.0, 50.0), 7: (100.0, 100.0, 140.0, 150.0)}
    dets = [(12.0, 11.0, 52.0, 49.0), (101.0, 99.0, 141.0, 149.0)]
    a = assign_track_ids(dets, tracks, next_id=8)
    assert a.matched == {0: 3, 1: 7} and a.new == {} and a.next_id == 8


def test_new_object_mid_video_gets_a_new_id():
    tracks = {0: (10.0, 10.0, 50.0, 50.0)}
    dets = [(200.0, 10.0, 240.0, 60.0), (11.0, 10.0, 50.0, 51.0)]
    a = assign_track_ids(dets, tracks, next_id=1)
    assert a.matched == {1: 0} and a.new == {0: 1} and a.next_id == 2


def test_duplicate_detections_of_one_object_get_no_second_id():
    tracks = {0: (10.0, 10.0, 50.0, 50.0)}
    dets = [(10.0, 10.0, 50.0, 50.0), (12.0, 12.0, 50.0, 50.0), (300, 300, 340, 340), (302, 301, 341, 340)]
    a = assign_track_ids(dets, tracks, next_id=1)
    assert a.matched == {0: 0}
    assert a.new == {2: 1}
    assert sorted(a.duplicates) == [1, 3]


def test_ids_are_never_reused():
    a = assign_track_ids([(0.0, 0.0, 5.0, 5.0)], {9: (50.0, 50.0, 60.0, 60.0)}, next_id=2)
    assert a.new == {0: 10}  # above every live id even if next_id lags


def test_mask_iou_is_used_when_masks_are_given():
    m_track = np.zeros((20, 20), bool)
    m_track[0:20, 0:2] = True  # a thin bar; its box is the whole left strip
    m_det = np.zeros((20, 20), bool)
    m_det[0:20, 0:2] = True
    box = (0.0, 0.0, 20.0, 20.0)  # boxes all overlap fully, masks decide
    other = np.zeros((20, 20), bool)
    other[5:15, 5:15] = True
    a = assign_track_ids([box, box], {4: box}, 5, det_masks=[other, m_det], track_masks={4: m_track})
    assert a.matched == {1: 4} and a.new == {0: 5}


def test_no_tracks_everything_new_in_order():
    a = assign_track_ids([(0, 0, 1, 1), (5, 5, 6, 6)], {}, next_id=0)
    assert a.new == {0: 0, 1: 1} and a.next_id == 2


def test_inverse_depth_to_relative():
    inv = np.array([[10.0, 5.0], [1.0, 0.0]])
    d = inverse_depth_to_relative(inv, 0, 100)
    assert d.min() == 0.0 and d.max() == 1.0
    assert d[0, 0] == 0.0  # largest inverse depth = nearest = 0
    assert d[1, 1] == 1.0
    assert (inverse_depth_to_relative(np.ones((3, 3))) == 0.5).all()
    assert inverse_depth_to_relative(np.random.default_rng(0).random((8, 8)) * 50).dtype == np.float32


def test_vocabulary():
    assert 250 <= len(DEFAULT_VOCABULARY) <= 1000 and len(set(DEFAULT_VOCABULARY)) == len(DEFAULT_VOCABULARY)
    assert {"person", "cup", "dog", "traffic light", "hammer"} <= set(DEFAULT_VOCABULARY)
    assert vocabulary_for_query("the mug left of the laptop") == ["mug", "laptop"]
    assert "traffic light" in vocabulary_for_query("Which traffic lights are red?")
    v = build_vocabulary(["Gizmo"], query="where is the blue teapot?", use_default=False)
    assert v == ["gizmo", "teapot"]
    assert build_vocabulary()[: len(DEFAULT_VOCABULARY)] == list(DEFAULT_VOCABULARY)


class _FakeLabeller:
    """Detects a fixed box from frame 0 and a second one from frame 2 on (through Perception.track)."""

    name = "fake"
    top_k = 3

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image, vocabulary, threshold):
        from fastreasonseg.perception.protocols import Detection

        k = self.calls
        self.calls += 1
        dets = [Detection((10.0 + k, 10.0, 40.0 + k, 40.0), "cup", 0.9, [("mug", 0.8)])]
        if k >= 2:
            dets.append(Detection((60.0, 50.0, 90.0, 90.0), "dog", 0.7))
        return dets

    def classify(self, image, boxes, candidates):
        return [[(c, 0.5) for c in candidates] for _ in boxes]


def test_perception_track_new_object_mid_video_without_segmenter():
    from fastreasonseg.config import PerceptionConfig
    from fastreasonseg.perception import Perception, TwinBuilder

    cfg = PerceptionConfig(segmenter=None, depth=None, labeller=None)
    perc = Perception(cfg, labeller=_FakeLabeller())
    frames = [np.zeros((100, 120, 3), np.uint8)] * 4
    twin = TwinBuilder(cfg, perception=perc).build(frames)
    assert [f.ids for f in twin.frames] == [[0], [0], [0, 1], [0, 1]]
    assert [i.label for _, i in twin.instances_of(0)] == ["cup"] * 4
    assert twin.frames[2].get(1).label == "dog"
    assert twin.frames[0].get(0).alt_labels == [("mug", 0.8)]
