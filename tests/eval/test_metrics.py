"""Metrics against hand-computed values and invariants (LISA gIoU/cIoU, DAVIS J/F)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastreasonseg.eval.metrics import (
    IoUAccumulator,
    VideoScore,
    boundary_f,
    boundary_map,
    boundary_prf,
    boundary_radius,
    ciou,
    davis_statistics,
    disk,
    giou,
    intersection_union,
    iou,
    j_and_f,
    paired_bootstrap,
    region_j,
)


def rect(h: int, w: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
    return m


# --------------------------------------------------------------------------------------------------- hand-computed


def test_intersection_union_with_ignore_by_hand():
    gt = np.array([[1, 1, 0], [0, 255, 0]], np.uint8)
    pred = np.array([[1, 0, 1], [0, 1, 0]], bool)
    i, u = intersection_union(pred, gt)
    assert (int(i), int(u)) == (1, 3)  # the predicted pixel on the ignored one counts nowhere
    assert iou(pred, gt) == pytest.approx(1 / 3)
    # without ignore handling the 255 pixel is foreground
    i2, u2 = intersection_union(pred, gt, ignore_index=None)
    assert (int(i2), int(u2)) == (2, 4)


def test_iou_empty_union_is_one_and_batch():
    z = np.zeros((2, 4, 5), bool)
    assert iou(z[0], z[0]) == 1.0
    p = z.copy()
    p[1, 0, 0] = True
    out = iou(p, z)
    assert out.shape == (2,)
    assert out.tolist() == [1.0, 0.0]


def test_giou_ciou_by_hand():
    inter = [1, 0, 3]
    union = [2, 0, 6]
    ious = [1 / 2, 1.0, 3 / 6]
    assert giou(ious) == pytest.approx(2 / 3)
    assert ciou(inter, union) == pytest.approx(4 / 8)
    assert ciou([0], [0]) == 1.0
    assert math.isnan(giou([]))


def test_boundary_map_by_hand():
    m = np.zeros((4, 4), bool)
    m[1:3, 1:3] = True
    expected = np.array(
        [
            [1, 1, 1, 0],
            [1, 0, 1, 0],
            [1, 1, 1, 0],
            [0, 0, 0, 0],
        ],
        bool,
    )
    np.testing.assert_array_equal(boundary_map(m), expected)


def test_boundary_radius_and_disk():
    assert boundary_radius((480, 854)) == 8  # ceil(0.008 * 979.6)
    assert boundary_radius((24, 32)) == 1
    assert boundary_radius((10, 10), bound_th=3) == 3
    d = disk(2)
    assert d.shape == (5, 5) and d.sum() == 13


def test_boundary_f_empty_cases():
    z = np.zeros((20, 30), bool)
    m = rect(20, 30, 5, 5, 10, 10)
    assert boundary_prf(z, z) == (1.0, 1.0, 1.0)
    assert boundary_prf(z, m)[2] == 0.0  # nothing predicted
    assert boundary_prf(m, z)[2] == 0.0  # predicted where nothing is


def test_boundary_f_by_hand_one_sided_edge():
    # 100x100 image → radius ceil(0.008*141.4) = 2. Predicted box wider by 5 px on the right: its right edge is
    # beyond tolerance.
    gt = rect(100, 100, 20, 20, 40, 40)
    pred = rect(100, 100, 20, 20, 40, 45)
    bp, bg = boundary_map(pred), boundary_map(gt)
    p, r, f = boundary_prf(pred, gt)
    assert bg.sum() > 0 and bp.sum() > 0
    assert p < 1 and r < 1 and 0 < f < 1
    assert f == pytest.approx(2 * p * r / (p + r))


def test_davis_statistics_by_hand():
    s = davis_statistics([1.0, 1.0, 0.5, 0.0, 0.0])
    assert s.mean == pytest.approx(0.5)
    assert s.recall == pytest.approx(0.4)
    assert s.decay == pytest.approx(1.0)  # bins [0:2] and [3:5]
    flat = davis_statistics(np.full(50, 0.7))
    assert flat.decay == pytest.approx(0.0) and flat.recall == 1.0
    assert math.isnan(davis_statistics([]).mean)


def test_j_and_f_stack():
    gt = np.stack([rect(40, 60, 10, 10, 30, 30)] * 3)
    j, f, jf = j_and_f(gt, gt)
    assert (j, f, jf) == (1.0, 1.0, 1.0)
    assert region_j(gt, gt).shape == (3,)
    assert boundary_f(gt, gt).shape == (3,)


# --------------------------------------------------------------------------------------------------- accumulators


def test_iou_accumulator_groups():
    acc = IoUAccumulator()
    gt = rect(10, 10, 0, 0, 4, 4)  # 16 px
    acc.add(gt, gt, groups={"query": "short", "split": "val"}, id="a")  # I=16 U=16
    acc.add(rect(10, 10, 0, 0, 4, 2), gt, groups={"query": "long", "split": "val"}, id="b")  # I=8 U=16
    acc.add(np.zeros((10, 10), bool), np.zeros((10, 10), np.uint8), groups={"query": "long"})  # empty: 1.0
    r = acc.result()
    assert r.count == 3
    assert r.giou == pytest.approx((1 + 0.5 + 1) / 3)
    assert r.ciou == pytest.approx(24 / 32)
    g = acc.by_group()
    assert g["query"]["short"].giou == 1.0
    assert g["query"]["long"].giou == pytest.approx(0.75)
    assert g["query"]["long"].ciou == pytest.approx(0.5)
    assert g["split"]["val"].count == 2
    s = acc.summary()
    assert s["groups"]["query"]["long"]["count"] == 2 and s["gIoU"] == pytest.approx(r.giou)
    assert acc.ious == pytest.approx([1.0, 0.5, 1.0])


def test_iou_accumulator_rejects_bad_input():
    acc = IoUAccumulator()
    with pytest.raises(ValueError, match="shape"):
        acc.add(np.zeros((3, 4), bool), np.zeros((4, 3), bool))
    with pytest.raises(ValueError):
        acc.add_counts(5, 3)


def test_video_score_means_frames_then_expressions():
    vs = VideoScore()
    gt = rect(30, 40, 5, 5, 20, 20)
    z = np.zeros_like(gt)
    vs.add_frame("e1", gt, gt, groups={"type": "referring"})
    vs.add_frame("e1", z, gt)
    vs.add_video("e2", gt[None], gt[None], groups={"type": "reasoning"})
    assert vs.expression("e1") == (0.5, 0.5, 0.5)
    res = vs.result()
    assert res["J"] == pytest.approx(0.75) and res["F"] == pytest.approx(0.75) and res["count"] == 2
    groups = vs.by_group()["type"]
    assert groups["referring"]["J&F"] == pytest.approx(0.5)
    assert groups["reasoning"]["J&F"] == 1.0
    assert vs.summary()["expressions"]["e1"]["frames"] == 2


# --------------------------------------------------------------------------------------------------- properties

masks = arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12)))


@st.composite
def mask_pairs(draw):
    h = draw(st.integers(1, 12))
    w = draw(st.integers(1, 12))
    a = draw(arrays(bool, (h, w)))
    b = draw(arrays(bool, (h, w)))
    return a, b


@settings(max_examples=60, deadline=None)
@given(mask_pairs())
def test_iou_symmetric_and_bounded(pair):
    a, b = pair
    x, y = iou(a, b), iou(b, a)
    assert x == y
    assert 0.0 <= x <= 1.0
    assert region_j(a, b) == pytest.approx(x)


@settings(max_examples=60, deadline=None)
@given(masks)
def test_identical_masks_score_one(m):
    assert iou(m, m) == 1.0
    assert region_j(m, m) == 1.0
    assert boundary_f(m, m) == 1.0


@settings(max_examples=40, deadline=None)
@given(mask_pairs(), arrays(bool, (12, 12)))
def test_ignored_pixels_do_not_count(pair, noise):
    pred, fg = pair
    h, w = pred.shape
    ignore = np.zeros((h, w), bool)
    ignore[: h // 2] = True
    gt = np.where(ignore, 255, fg).astype(np.uint8)
    changed = np.where(ignore, noise[:h, :w], pred)  # anything predicted on ignored pixels
    assert intersection_union(pred, gt) == intersection_union(changed, gt)
    # same as scoring only the valid pixels
    valid = ~ignore
    exp_i = np.count_nonzero(pred & fg & valid)
    exp_u = np.count_nonzero((pred | fg) & valid)
    assert tuple(int(v) for v in intersection_union(pred, gt)) == (exp_i, exp_u)


@settings(max_examples=40, deadline=None)
@given(
    y0=st.integers(10, 60),
    x0=st.integers(10, 100),
    hh=st.integers(12, 50),
    ww=st.integers(12, 50),
    dy=st.integers(-2, 2),
    dx=st.integers(-2, 2),
)
def test_f_is_one_within_tolerance(y0, x0, hh, ww, dy, dx):
    assume(dx * dx + dy * dy <= 4)  # every boundary pixel moves by at most the radius (Euclidean)
    h, w = 150, 200  # diagonal 250 → radius 2
    assert boundary_radius((h, w)) == 2
    gt = rect(h, w, y0, x0, y0 + hh, x0 + ww)
    pred = rect(h, w, y0 + dy, x0 + dx, y0 + hh + dy, x0 + ww + dx)
    assert boundary_f(pred, gt) == 1.0
    if dx or dy:
        assert region_j(pred, gt) < 1.0


@settings(max_examples=40, deadline=None)
@given(
    y0=st.integers(10, 60),
    x0=st.integers(10, 60),
    hh=st.integers(12, 50),
    ww=st.integers(12, 50),
    shift=st.integers(3, 10),
    axis=st.sampled_from(["x", "y"]),
)
def test_f_drops_beyond_tolerance(y0, x0, hh, ww, shift, axis):
    h, w = 150, 200
    gt = rect(h, w, y0, x0, y0 + hh, x0 + ww)
    dy, dx = (shift, 0) if axis == "y" else (0, shift)
    pred = rect(h, w, y0 + dy, x0 + dx, y0 + hh + dy, x0 + ww + dx)
    p, r, f = boundary_prf(pred, gt)
    assert f < 1.0 and p < 1.0 and r < 1.0


def test_boundary_f_matches_brute_force_dilation():
    rng = np.random.default_rng(0)
    from scipy import ndimage

    for _ in range(10):
        a = ndimage.binary_opening(rng.random((60, 80)) > 0.5, iterations=2)
        b = ndimage.binary_opening(rng.random((60, 80)) > 0.5, iterations=2)
        r = boundary_radius(a.shape)
        ba, bb = boundary_map(a), boundary_map(b)
        if not ba.any() or not bb.any():
            continue
        da = ndimage.binary_dilation(ba, structure=disk(r))
        db = ndimage.binary_dilation(bb, structure=disk(r))
        p = (ba & db).sum() / ba.sum()
        rc = (bb & da).sum() / bb.sum()
        f = 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)
        assert boundary_f(a, b) == pytest.approx(f)


# --------------------------------------------------------------------------------------------------- paired bootstrap


def test_paired_bootstrap_by_hand():
    a = [0.0, 0.5, 1.0, 0.2]
    b = [1.0, 0.5, 0.0, 0.6]
    d = paired_bootstrap(a, b, resamples=500, seed=1)
    assert d.n == 4 and d.mean == pytest.approx(0.1)
    assert (d.wins, d.losses) == (2, 1)
    assert d.low <= d.mean <= d.high and d.low < 0 < d.high and not d.significant
    assert d == paired_bootstrap(a, b, resamples=500, seed=1)  # seeded: reproducible


def test_paired_bootstrap_consistent_gain_is_significant():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 0.8, 300)
    d = paired_bootstrap(a, a + rng.uniform(0.05, 0.15, 300))
    assert d.significant and 0.05 < d.low < d.mean < d.high < 0.15 and d.wins == 300


@given(st.lists(st.floats(0, 1), min_size=1, max_size=40), st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_paired_bootstrap_interval_brackets_the_resampled_mean(xs, seed):
    a = np.asarray(xs)
    same = paired_bootstrap(a, a, resamples=50, seed=seed)
    assert same.mean == same.low == same.high == 0 and same.wins == same.losses == 0
    d = paired_bootstrap(a, a[::-1], resamples=50, seed=seed)
    assert d.low - 1e-12 <= d.high and d.low >= -1 and d.high <= 1


@pytest.mark.parametrize(
    "a, b, kw, message",
    [
        ([0.1, 0.2], [0.1], {}, "same length"),
        ([], [], {}, "at least one"),
        ([0.1], [0.2], {"confidence": 1.5}, "confidence"),
        ([0.1], [0.2], {"resamples": 0}, "resamples"),
    ],
)
def test_paired_bootstrap_rejects_bad_input(a, b, kw, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(a, b, **kw)
