"""SAM-2 video tracking: re-prompted objects, what the session keeps, and releasing objects.

The reference for the re-prompt order is transformers' own session used the way SAM-2's video
predictor is: a prompt for frame ``t`` is added *before* the model runs on frame ``t``.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastreasonseg.perception.backends.sam2 import Sam2Tracker, preprocess, upsample_logits
from fastreasonseg.perception.registry import BackendSettings


def _frames(n: int, h: int = 96, w: int = 128) -> list[np.ndarray]:
    """Two squares moving right; a third enters at frame 10 and leaves the picture at frame 30."""
    out = []
    for t in range(n):
        f = np.full((h, w, 3), 40, np.uint8)
        x = (4 * t) % (w - 30)
        f[10:40, x : x + 30] = (220, 60, 60)
        f[55:85, (w - 30 - x) : (w - x)] = (60, 200, 90)
        if 10 <= t < 30:
            f[30:60, 50:80] = (240, 240, 40)
        out.append(f)
    return out


@pytest.fixture(scope="module")
def tracker(tiny_models) -> Sam2Tracker:
    return Sam2Tracker(tiny_models["segmenter"], BackendSettings(runtime="torch"))


def _reference_masks(model, frames, prompts_at: dict[int, dict[int, tuple]]) -> list[dict[int, np.ndarray]]:
    """transformers alone, prompts added before the model runs on their frame."""
    import torch
    from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

    from fastreasonseg.perception.backends.sam2 import _scale_boxes

    h, w = frames[0].shape[:2]
    size = model.config.image_size
    s = Sam2VideoInferenceSession(video_height=h, video_width=w, dtype=torch.float32)
    out_masks = []
    for t, frame in enumerate(frames):
        pix = preprocess(frame, size)
        if t in prompts_at:
            s.add_new_frame(pix, t)
            for oid, box in prompts_at[t].items():
                idx = s.obj_id_to_idx(oid)
                b = torch.from_numpy(_scale_boxes([box], w, h, size)).reshape(1, 1, 2, 2)
                s.add_point_inputs(idx, t, {"point_coords": b, "point_labels": torch.tensor([[[2, 3]]])})
            s.obj_with_new_inputs = list(prompts_at[t])
        with torch.inference_mode():
            out = model(inference_session=s, frame=pix, frame_idx=t)
        scores = out.object_score_logits.reshape(-1).numpy()
        masks = upsample_logits(out.pred_masks[:, 0].float(), (h, w))
        out_masks.append({int(o): m for o, sc, m in zip(out.object_ids, scores, masks, strict=True) if sc > 0})
    return out_masks


def test_reprompted_object_becomes_a_conditioning_frame_like_the_reference(tracker):
    frames = _frames(12)
    prompts = {0: {0: (0.0, 10.0, 30.0, 40.0), 1: (98.0, 55.0, 128.0, 85.0)}, 5: {0: (20.0, 10.0, 50.0, 40.0)}}
    tracker.reset()
    ours = []
    for t, f in enumerate(frames):
        masks = tracker.track(f)
        if t in prompts:
            masks = tracker.add(prompts[t])
        ours.append(masks)
        if t == 5:
            s = tracker.session
            assert set(s.output_dict_per_obj[s.obj_id_to_idx(0)]["cond_frame_outputs"]) == {0, 5}
            assert set(s.output_dict_per_obj[s.obj_id_to_idx(1)]["cond_frame_outputs"]) == {0}
    ref = _reference_masks(tracker.model, frames, prompts)
    for t in range(len(frames)):
        assert set(ours[t]) == set(ref[t]), t
        for oid in ref[t]:
            assert np.array_equal(ours[t][oid], ref[t][oid]), (t, oid, int((ours[t][oid] != ref[t][oid]).sum()))
    assert all(0 in m for m in ours[5:])  # the re-prompted object stays tracked for the rest of the clip


def test_keyframe_add_decodes_only_the_prompted_objects(tracker, monkeypatch):
    frames = _frames(3)
    tracker.reset()
    tracker.track(frames[0])
    tracker.add({0: (0.0, 10.0, 30.0, 40.0), 1: (98.0, 55.0, 128.0, 85.0)})
    before = tracker.track(frames[1])
    decoded: list[int] = []
    orig = tracker.model._run_single_frame_inference
    monkeypatch.setattr(
        tracker.model,
        "_run_single_frame_inference",
        lambda *a, **k: decoded.append(k["obj_idx"]) or orig(*a, **k),
    )
    after = tracker.add({2: (50.0, 30.0, 80.0, 60.0)})
    assert decoded == [tracker.session.obj_id_to_idx(2)]
    for oid in (0, 1):  # the others keep what track() gave them, and their tracked output
        assert np.array_equal(after[oid], before[oid])
        per = tracker.session.output_dict_per_obj[tracker.session.obj_id_to_idx(oid)]
        assert 1 in per["non_cond_frame_outputs"] and 1 not in per["cond_frame_outputs"]


def test_what_the_session_keeps_stays_bounded_on_a_long_clip(tracker):
    """36 frames, a new object every 3 frames, objects released 9 frames after they were added."""
    frames = _frames(36)
    tracker.reset()
    born: dict[int, int] = {}
    sizes = []
    next_id = 0
    for t, f in enumerate(frames):
        tracker.track(f)
        if t % 3 == 0:
            x = float((7 * t) % 90)
            tracker.add({next_id: (x, 20.0, x + 30.0, 50.0)})
            born[next_id] = t
            next_id += 1
        tracker.release([o for o, b in born.items() if t - b >= 9])
        stored = tracker.stored_outputs()
        assert set(stored) == {o for o, b in born.items() if t - b < 9}
        assert len(stored) <= 3
        for oid, st in stored.items():
            assert st["high_res_masks"] == 0, (t, oid)
            assert st["inputs"] == 0, (t, oid)  # consumed prompts are dropped
            assert st["cond"] <= tracker.max_cond_frames
            assert st["non_cond"] <= tracker.max_pointers
        assert len(tracker.session.processed_frames or {}) <= 1
        sizes.append(sum(st["bytes"] for st in stored.values()))
    # flat: the largest footprint over the last 12 frames is no larger than over frames 12-24
    assert max(sizes[24:]) <= max(sizes[12:24]) * 1.05


def test_maskmem_position_encoding_is_stored_once(tracker):
    frames = _frames(6)
    tracker.reset()
    tracker.track(frames[0])
    tracker.add({0: (0.0, 10.0, 30.0, 40.0), 1: (98.0, 55.0, 128.0, 85.0)})
    for f in frames[1:]:
        tracker.track(f)
    ids = set()
    for per in tracker.session.output_dict_per_obj.values():
        for store in per.values():
            for o in store.values():
                if "maskmem_pos_enc" in o:
                    ids.add(id(o["maskmem_pos_enc"]))
    assert len(ids) == 1


def test_pipeline_releases_objects_that_left(make_config, tiny_models):
    """Objects made absent (negative object-score bias) are released after release_after frames."""
    import torch

    from fastreasonseg.perception import Perception

    cfg = make_config(depth=None, max_instances=3, keyframe_interval=3, release_after=4)
    perc = Perception(cfg)
    perc.start_video()
    head = perc.tracker.model.mask_decoder.pred_obj_score_head.proj_out
    frames = _frames(30)
    seen_ids: set[int] = set()
    counts = []
    try:
        for t, f in enumerate(frames):
            with torch.no_grad():
                head.bias.fill_(-20.0 if 8 <= t < 16 else 4.0)  # every object absent in frames 8-15
            objs = perc.track(f, keyframe=t % cfg.keyframe_interval == 0)
            seen_ids |= {o.id for o in objs}
            counts.append(len(perc.tracker.object_ids))
    finally:
        with torch.no_grad():
            head.bias.fill_(4.0)
    assert max(counts) <= 2 * cfg.max_instances
    first = {o for o in seen_ids if o < cfg.max_instances}
    assert first and not first & set(perc.tracker.object_ids)  # the first objects were released
    assert len(seen_ids) > cfg.max_instances  # new objects took their place
    assert len(perc._video.tracks) <= 2 * cfg.max_instances
