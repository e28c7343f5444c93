import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastreasonseg.twin.masks import (
    box_iou,
    decode_mask,
    encode_mask,
    mask_box,
    rle_area,
    rle_box,
    rle_is_valid,
    union_rles,
)

masks = st.tuples(st.integers(1, 40), st.integers(1, 40)).flatmap(lambda hw: arrays(np.bool_, hw))


@given(masks)
@settings(max_examples=150, deadline=None)
def test_rle_round_trip_area_and_box(m):
    rle = encode_mask(m)
    assert isinstance(rle["counts"], str)
    assert rle["size"] == list(m.shape)
    assert np.array_equal(decode_mask(rle), m)
    assert rle_area(rle) == int(m.sum())
    assert rle_is_valid(rle) is None
    assert rle_box(rle) == mask_box(m)


@given(masks)
@settings(max_examples=100, deadline=None)
def test_box_is_tight_and_inside_frame(m):
    box = mask_box(m)
    if not m.any():
        assert box is None
        return
    x0, y0, x1, y1 = box
    h, w = m.shape
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    assert m[int(y0) : int(y1), int(x0) : int(x1)].sum() == m.sum()
    assert m[int(y0), int(x0) : int(x1)].any() and m[int(y1) - 1, int(x0) : int(x1)].any()


def test_box_convention_single_pixel_and_full_frame():
    m = np.zeros((10, 8), bool)
    m[7, 5] = True
    assert mask_box(m) == (5.0, 7.0, 6.0, 8.0)
    assert mask_box(np.ones((10, 8), bool)) == (0.0, 0.0, 8.0, 10.0)


def test_uncompressed_counts_decode():
    m = np.zeros((4, 5), bool)
    m[1:3, 2:4] = True
    flat = m.flatten(order="F").astype(int)
    counts, cur, run = [], 0, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            cur, run = v, 0
        run += 1
    counts.append(run)
    assert np.array_equal(decode_mask({"size": [4, 5], "counts": counts}), m)


def test_invalid_rle_reports_a_reason():
    rle = encode_mask(np.ones((6, 6), bool))
    assert "pixels" in rle_is_valid({"size": [5, 6], "counts": rle["counts"]})
    assert rle_is_valid({"size": [6, 6], "counts": "\x01\x02"}) is not None
    assert rle_is_valid({"size": [6, 6], "counts": "8"}) is not None  # truncated continuation


@given(masks, masks)
@settings(max_examples=50, deadline=None)
def test_union_of_rles(a, b):
    if a.shape != b.shape:
        b = np.resize(b, a.shape)
    u = union_rles([encode_mask(a), encode_mask(b)], a.shape)
    assert np.array_equal(u, a | b)
    assert not union_rles([], a.shape).any()


@given(
    st.tuples(*[st.floats(0, 50, allow_nan=False)] * 4),
    st.tuples(*[st.floats(0, 50, allow_nan=False)] * 4),
)
def test_box_iou_symmetric_and_bounded(a, b):
    a = (min(a[0], a[2]), min(a[1], a[3]), max(a[0], a[2]), max(a[1], a[3]))
    b = (min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3]))
    assert abs(box_iou(a, b) - box_iou(b, a)) < 1e-9
    assert 0.0 <= box_iou(a, b) <= 1.0 + 1e-9
