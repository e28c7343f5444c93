"""Segmentation metrics with the conventions of the reference benchmarks.

Image metrics (LISA / ReasonSeg, RefCOCOg, LLM-Seg40K)
    Per sample, the foreground intersection ``I`` and union ``U`` of a predicted and a ground-truth mask; ground-truth
    pixels equal to ``ignore_index`` (255) are excluded from both. ``IoU = I / U`` and a sample whose union is empty
    (no target and nothing predicted) scores 1.0. **gIoU** is the mean of the per-sample IoUs, **cIoU** is
    ``ΣI / ΣU`` over the whole set (dominated by large objects).

Video metrics (DAVIS 2017 evaluation, ReVOS, MeViS)
    **J** is the region IoU of one frame (empty union → 1). **F** is the boundary F-measure: the one-pixel boundaries
    of both masks are extracted at the mask's own resolution, each is dilated with a disk of radius
    ``ceil(0.008 · image diagonal)`` and a boundary pixel counts as matched when it falls inside the other mask's
    dilated boundary; F is the harmonic mean of the boundary precision and recall (both boundaries empty → 1,
    exactly one empty → 0). ``J&F = (J + F) / 2``. Per sequence, :func:`davis_statistics` gives the DAVIS
    mean, recall (fraction of frames above 0.5) and decay (mean of the first quartile of frames minus the last).

Everything takes numpy arrays: masks ``(H, W)`` or stacks ``(N, H, W)``; predictions are anything where non-zero is
foreground; ground truths are boolean or ``uint8`` with 0 / 1 (any non-zero value other than ``ignore_index``
is foreground) and ``ignore_index`` for "don't care".
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

IGNORE_INDEX = 255
BOUNDARY_THRESHOLD = 0.008

__all__ = [
    "BOUNDARY_THRESHOLD",
    "IGNORE_INDEX",
    "DavisStats",
    "IoUAccumulator",
    "IoUResult",
    "PairedDifference",
    "VideoScore",
    "boundary_f",
    "boundary_map",
    "boundary_prf",
    "boundary_radius",
    "ciou",
    "davis_statistics",
    "disk",
    "giou",
    "intersection_union",
    "iou",
    "j_and_f",
    "paired_bootstrap",
    "region_j",
]


# ---------------------------------------------------------------------------------------------------------------------
# region overlap
# ---------------------------------------------------------------------------------------------------------------------


def _split_gt(gt: np.ndarray, ignore_index: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(foreground, valid) of a ground truth; ``valid`` is None when nothing is ignored."""
    g = np.asarray(gt)
    if g.dtype == bool:
        return g, None
    if ignore_index is not None:
        ignored = g == ignore_index
        if ignored.any():
            return (g != 0) & ~ignored, ~ignored
    return g != 0, None


def _check_shapes(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match ground-truth shape {gt.shape}")
    if pred.ndim < 2:
        raise ValueError(f"masks must be (H, W) or (N, H, W), got shape {pred.shape}")


def intersection_union(
    pred: np.ndarray, gt: np.ndarray, ignore_index: int | None = IGNORE_INDEX
) -> tuple[np.ndarray, np.ndarray]:
    """Foreground intersection and union pixel counts, summed over the last two axes.

    ``pred`` and ``gt`` are ``(H, W)`` (returns 0-d arrays) or ``(N, H, W)`` (returns ``(N,)`` arrays).
    Ground-truth pixels equal to ``ignore_index`` count in neither (as LISA's ``intersectionAndUnionGPU``).
    """
    p = np.asarray(pred)
    g = np.asarray(gt)
    _check_shapes(p, g)
    p = p != 0 if p.dtype != bool else p
    fg, valid = _split_gt(g, ignore_index)
    if valid is not None:
        p = p & valid
    inter = np.count_nonzero(p & fg, axis=(-2, -1))
    union = np.count_nonzero(p | fg, axis=(-2, -1))
    return np.asarray(inter, dtype=np.int64), np.asarray(union, dtype=np.int64)


def _ratio(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    inter = np.asarray(inter, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    out = np.ones_like(union)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def iou(pred: np.ndarray, gt: np.ndarray, ignore_index: int | None = IGNORE_INDEX) -> float | np.ndarray:
    """IoU of one mask pair (a float) or of each pair of two ``(N, H, W)`` stacks (an ``(N,)`` array).

    An empty union (nothing to find and nothing predicted) scores 1.0.
    """
    inter, union = intersection_union(pred, gt, ignore_index)
    out = _ratio(inter, union)
    return float(out) if out.ndim == 0 else out


def giou(ious) -> float:
    """gIoU: mean of per-sample IoUs (``nan`` for no samples)."""
    a = np.asarray(ious, dtype=np.float64)
    return float(a.mean()) if a.size else float("nan")


def ciou(intersections, unions) -> float:
    """cIoU: cumulative intersection over cumulative union (1.0 when every union is empty, ``nan`` for none)."""
    i = np.asarray(intersections, dtype=np.float64)
    u = np.asarray(unions, dtype=np.float64)
    if u.size == 0:
        return float("nan")
    total = u.sum()
    return float(i.sum() / total) if total > 0 else 1.0


@dataclass(frozen=True)
class PairedDifference:
    """Mean of ``b - a`` over the same samples, its percentile-bootstrap confidence interval and the win counts."""

    n: int
    mean: float
    low: float
    high: float
    confidence: float
    wins: int  #: samples where ``b`` scores higher
    losses: int  #: samples where ``b`` scores lower

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0


def paired_bootstrap(a, b, *, resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> PairedDifference:
    """How much system ``b`` beats system ``a`` on the *same* samples (e.g. per-sample IoUs), with uncertainty.

    Resamples the per-sample differences with replacement (seeded, so the interval is reproducible) and returns the
    percentile interval of their mean. Pairing removes the variance shared by both systems (hard vs easy samples),
    so it is much tighter than comparing two independent means; with a few hundred samples, a gIoU gap whose
    interval excludes zero is more than noise.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired_bootstrap needs two 1-D score lists of the same length, got {x.shape} and {y.shape}")
    if x.size == 0:
        raise ValueError("paired_bootstrap needs at least one sample")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    d = y - x
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(resamples, d.size))
    means = d[idx].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return PairedDifference(
        n=int(d.size),
        mean=float(d.mean()),
        low=float(low),
        high=float(high),
        confidence=confidence,
        wins=int((d > 0).sum()),
        losses=int((d < 0).sum()),
    )


def region_j(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float | np.ndarray:
    """DAVIS region similarity J (IoU per frame, empty union → 1) of ``(H, W)`` or ``(T, H, W)`` masks.

    ``void`` marks "don't care" pixels excluded from both masks (DAVIS' ``void_pixels``).
    """
    p = np.asarray(pred) != 0
    g = np.asarray(gt) != 0
    _check_shapes(p, g)
    if void is not None:
        keep = ~np.broadcast_to(np.asarray(void, dtype=bool), p.shape)
        p = p & keep
        g = g & keep
    inter = np.count_nonzero(p & g, axis=(-2, -1))
    union = np.count_nonzero(p | g, axis=(-2, -1))
    out = _ratio(inter, union)
    return float(out) if out.ndim == 0 else out


# ---------------------------------------------------------------------------------------------------------------------
# boundary F-measure
# ---------------------------------------------------------------------------------------------------------------------


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary of a binary mask at its own resolution (DAVIS' ``seg2bmap`` without resizing).

    A pixel is on the boundary when it differs from its right, bottom or bottom-right neighbour; the last row and
    column compare only along the image edge, and the bottom-right corner pixel is never a boundary.
    """
    seg = np.asarray(mask) != 0
    if seg.ndim != 2:
        raise ValueError(f"boundary_map needs a 2-D mask, got shape {seg.shape}")
    right = np.zeros_like(seg)
    below = np.zeros_like(seg)
    diag = np.zeros_like(seg)
    right[:, :-1] = seg[:, 1:]
    below[:-1, :] = seg[1:, :]
    diag[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ right) | (seg ^ below) | (seg ^ diag)
    b[-1, :] = seg[-1, :] ^ right[-1, :]
    b[:, -1] = seg[:, -1] ^ below[:, -1]
    b[-1, -1] = False
    return b


def boundary_radius(shape: tuple[int, ...], bound_th: float = BOUNDARY_THRESHOLD) -> int:
    """Dilation radius in pixels: ``bound_th`` itself when >= 1, else ``ceil(bound_th · diagonal)``."""
    if bound_th >= 1:
        return int(bound_th)
    h, w = shape[-2], shape[-1]
    return int(math.ceil(bound_th * math.hypot(h, w)))


def disk(radius: int) -> np.ndarray:
    """Disk structuring element ``x² + y² <= r²`` of size ``2r+1`` (skimage's ``disk``)."""
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius**2


def _matched(src: np.ndarray, dst: np.ndarray, radius: int) -> int:
    """Number of ``src`` boundary pixels within ``radius`` (disk) of a ``dst`` boundary pixel."""
    if radius <= 0:
        return int(np.count_nonzero(src & dst))
    # Work in the bounding box of both boundaries (padded by the radius): small objects cost little.
    both = src | dst
    rows = np.flatnonzero(both.any(axis=1))
    cols = np.flatnonzero(both.any(axis=0))
    y0, y1 = max(rows[0] - radius, 0), min(rows[-1] + radius + 1, both.shape[0])
    x0, x1 = max(cols[0] - radius, 0), min(cols[-1] + radius + 1, both.shape[1])
    s = src[y0:y1, x0:x1]
    d = dst[y0:y1, x0:x1]
    # Dilation by a disk of radius r == Euclidean distance to the nearest dst pixel <= r (exact on the pixel grid:
    # sqrt of an integer square is exact in floating point), and several times faster than binary_dilation.
    within = ndimage.distance_transform_edt(~d) <= radius
    return int(np.count_nonzero(s & within))


def boundary_prf(
    pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUNDARY_THRESHOLD, void: np.ndarray | None = None
) -> tuple[float, float, float]:
    """Boundary (precision, recall, F) of one ``(H, W)`` mask pair, as the DAVIS 2017 ``f_measure``."""
    p = np.asarray(pred) != 0
    g = np.asarray(gt) != 0
    _check_shapes(p, g)
    if p.ndim != 2:
        raise ValueError(f"boundary_prf needs 2-D masks, got shape {p.shape}")
    if void is not None:
        keep = ~np.asarray(void, dtype=bool)
        p = p & keep
        g = g & keep
    bp = boundary_map(p)
    bg = boundary_map(g)
    n_p = int(np.count_nonzero(bp))
    n_g = int(np.count_nonzero(bg))
    if n_p == 0 and n_g == 0:
        return 1.0, 1.0, 1.0
    if n_p == 0:
        return 1.0, 0.0, 0.0
    if n_g == 0:
        return 0.0, 1.0, 0.0
    radius = boundary_radius(p.shape, bound_th)
    precision = _matched(bp, bg, radius) / n_p
    recall = _matched(bg, bp, radius) / n_g
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f


def boundary_f(
    pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUNDARY_THRESHOLD, void: np.ndarray | None = None
) -> float | np.ndarray:
    """DAVIS boundary F-measure of ``(H, W)`` masks (a float) or of ``(T, H, W)`` stacks (a ``(T,)`` array)."""
    p = np.asarray(pred)
    g = np.asarray(gt)
    _check_shapes(p, g)
    if p.ndim == 2:
        return boundary_prf(p, g, bound_th, void)[2]
    if void is not None:
        void = np.broadcast_to(np.asarray(void, dtype=bool), p.shape)
    return np.array([boundary_prf(p[t], g[t], bound_th, None if void is None else void[t])[2] for t in range(len(p))])


def j_and_f(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> tuple[float, float, float]:
    """(J, F, J&F) of one frame, or the frame means of a ``(T, H, W)`` stack."""
    j = float(np.mean(region_j(pred, gt, void)))
    f = float(np.mean(boundary_f(pred, gt, void=void)))
    return j, f, (j + f) / 2


# ---------------------------------------------------------------------------------------------------------------------
# DAVIS per-sequence statistics
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DavisStats:
    """DAVIS statistics of one measure over the frames of a sequence."""

    mean: float
    recall: float
    decay: float


def davis_statistics(per_frame, threshold: float = 0.5) -> DavisStats:
    """Mean, recall (fraction of frames with value > ``threshold``) and decay of per-frame values (NaNs skipped).

    Decay follows DAVIS: the frames are split into 4 quartile bins with edges ``round(linspace(1, T, 5)) - 1``
    (consecutive bins share their edge frame) and decay = mean of the first bin - mean of the last bin.
    """
    v = np.asarray(per_frame, dtype=np.float64).ravel()
    valid = v[~np.isnan(v)]
    if valid.size == 0:
        return DavisStats(float("nan"), float("nan"), float("nan"))
    mean = float(valid.mean())
    recall = float(np.mean(valid > threshold))
    edges = (np.round(np.linspace(1, v.size, 5) + 1e-10) - 1).astype(np.int64)
    first = v[edges[0] : edges[1] + 1]
    last = v[edges[3] : edges[4] + 1]
    first = first[~np.isnan(first)]
    last = last[~np.isnan(last)]
    decay = float(first.mean() - last.mean()) if first.size and last.size else float("nan")
    return DavisStats(mean, recall, decay)


# ---------------------------------------------------------------------------------------------------------------------
# accumulators
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IoUResult:
    """gIoU / cIoU of a set of samples."""

    giou: float
    ciou: float
    count: int

    def as_dict(self) -> dict:
        return {"gIoU": self.giou, "cIoU": self.ciou, "count": self.count}


@dataclass
class _IoUSums:
    iou_sum: float = 0.0
    inter: int = 0
    union: int = 0
    count: int = 0

    def add(self, i: int, u: int, value: float | None = None) -> None:
        self.iou_sum += value if value is not None else (i / u if u > 0 else 1.0)
        self.inter += i
        self.union += u
        self.count += 1

    def result(self) -> IoUResult:
        if self.count == 0:
            return IoUResult(float("nan"), float("nan"), 0)
        c = self.inter / self.union if self.union > 0 else 1.0
        return IoUResult(self.iou_sum / self.count, c, self.count)


class IoUAccumulator:
    """Streaming gIoU / cIoU, overall and broken down by group keys.

    >>> acc = IoUAccumulator()
    >>> acc.add(pred, gt, groups={"split": "val", "query": "long"})
    >>> acc.result().giou, acc.by_group()["query"]["long"].ciou

    Each ``add`` is one sample (one query against one ground truth). Only the per-sample counts are kept, so memory
    does not grow with the image sizes.
    """

    def __init__(self, ignore_index: int | None = IGNORE_INDEX) -> None:
        self.ignore_index = ignore_index
        self._all = _IoUSums()
        self._groups: dict[str, dict[str, _IoUSums]] = defaultdict(lambda: defaultdict(_IoUSums))
        self.ious: list[float] = []
        self.ids: list[str | None] = []

    def __len__(self) -> int:
        return self._all.count

    def add(
        self, pred: np.ndarray, gt: np.ndarray, groups: Mapping[str, object] | None = None, id: str | None = None
    ) -> float:
        """Score one sample and return its IoU."""
        i, u = intersection_union(pred, gt, self.ignore_index)
        if i.ndim != 0:
            raise ValueError(f"IoUAccumulator.add takes one (H, W) mask pair, got shape {np.shape(pred)}")
        return self.add_counts(int(i), int(u), groups=groups, id=id)

    def add_counts(
        self,
        intersection: int,
        union: int,
        groups: Mapping[str, object] | None = None,
        id: str | None = None,
        iou: float | None = None,
    ) -> float:
        """Record a sample from its precomputed intersection and union; returns its IoU.

        ``iou`` overrides the sample's IoU in gIoU (default ``intersection / union``): e.g. the mean of a video's
        per-frame IoUs, while ``intersection`` / ``union`` (summed over the frames) still feed cIoU.
        """
        if intersection < 0 or union < intersection:
            raise ValueError(f"invalid counts: intersection={intersection}, union={union}")
        if iou is not None and not 0.0 <= iou <= 1.0:
            raise ValueError(f"invalid iou: {iou}")
        self._all.add(intersection, union, iou)
        for key, value in (groups or {}).items():
            if value is not None:
                self._groups[str(key)][str(value)].add(intersection, union, iou)
        value = iou if iou is not None else (intersection / union if union > 0 else 1.0)
        self.ious.append(value)
        self.ids.append(id)
        return value

    def result(self) -> IoUResult:
        return self._all.result()

    def by_group(self) -> dict[str, dict[str, IoUResult]]:
        """``{group key: {group value: IoUResult}}``, e.g. ``{"query": {"short": ..., "long": ...}}``."""
        return {k: {v: s.result() for v, s in sorted(vals.items())} for k, vals in sorted(self._groups.items())}

    def summary(self) -> dict:
        """JSON-ready ``{"gIoU", "cIoU", "count", "groups": {key: {value: {...}}}}``."""
        out = self.result().as_dict()
        out["groups"] = {k: {v: r.as_dict() for v, r in vals.items()} for k, vals in self.by_group().items()}
        return out


@dataclass
class _Expression:
    j: list[float] = field(default_factory=list)
    f: list[float] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)


class VideoScore:
    """Streaming J / F / J&F for video expressions (ReVOS, MeViS, DAVIS).

    Frames are added one at a time (or as a stack) under an expression id. An expression's J (F) is the mean over
    its frames; the dataset's J (F) is the mean over expressions; J&F = (J + F) / 2. Group keys given with the
    first frame of an expression (e.g. ``{"type": "reasoning"}``) give per-group breakdowns.
    """

    def __init__(self, bound_th: float = BOUNDARY_THRESHOLD) -> None:
        self.bound_th = bound_th
        self._exprs: dict[str, _Expression] = {}

    def __len__(self) -> int:
        return len(self._exprs)

    def _expr(self, expression: str, groups: Mapping[str, object] | None) -> _Expression:
        e = self._exprs.get(expression)
        if e is None:
            e = self._exprs[expression] = _Expression()
        if groups:
            e.groups.update({str(k): str(v) for k, v in groups.items() if v is not None})
        return e

    def add_frame(
        self,
        expression: str,
        pred: np.ndarray,
        gt: np.ndarray,
        groups: Mapping[str, object] | None = None,
        void: np.ndarray | None = None,
    ) -> tuple[float, float]:
        """Score one ``(H, W)`` frame of an expression; returns its (J, F)."""
        e = self._expr(expression, groups)
        j = region_j(pred, gt, void)
        f = boundary_prf(pred, gt, self.bound_th, void)[2]
        e.j.append(float(j))
        e.f.append(float(f))
        return float(j), float(f)

    def add_frame_scores(self, expression: str, j: float, f: float, groups: Mapping[str, object] | None = None) -> None:
        """Record precomputed per-frame scores."""
        e = self._expr(expression, groups)
        e.j.append(float(j))
        e.f.append(float(f))

    def add_video(
        self, expression: str, preds: np.ndarray, gts: np.ndarray, groups: Mapping[str, object] | None = None
    ) -> tuple[float, float, float]:
        """Score a ``(T, H, W)`` stack; returns the expression's (J, F, J&F) so far."""
        preds = np.asarray(preds)
        gts = np.asarray(gts)
        _check_shapes(preds, gts)
        for t in range(preds.shape[0]):
            self.add_frame(expression, preds[t], gts[t], groups)
        return self.expression(expression)

    def expression(self, expression: str) -> tuple[float, float, float]:
        """(J, F, J&F) of one expression: means over its frames."""
        e = self._exprs[expression]
        j = float(np.mean(e.j)) if e.j else float("nan")
        f = float(np.mean(e.f)) if e.f else float("nan")
        return j, f, (j + f) / 2

    def per_frame(self, expression: str) -> tuple[np.ndarray, np.ndarray]:
        e = self._exprs[expression]
        return np.asarray(e.j), np.asarray(e.f)

    @staticmethod
    def _mean_of(rows: list[tuple[float, float, float]]) -> dict:
        if not rows:
            return {"J": float("nan"), "F": float("nan"), "J&F": float("nan"), "count": 0}
        a = np.asarray(rows, dtype=np.float64)
        j, f = float(a[:, 0].mean()), float(a[:, 1].mean())
        return {"J": j, "F": f, "J&F": (j + f) / 2, "count": len(rows)}

    def result(self) -> dict:
        """``{"J", "F", "J&F", "count"}``: means over expressions of the per-expression frame means."""
        return self._mean_of([self.expression(k) for k in self._exprs])

    def by_group(self) -> dict[str, dict[str, dict]]:
        buckets: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        for k, e in self._exprs.items():
            for gk, gv in e.groups.items():
                buckets[gk][gv].append(self.expression(k))
        return {gk: {gv: self._mean_of(rows) for gv, rows in sorted(v.items())} for gk, v in sorted(buckets.items())}

    def summary(self) -> dict:
        """JSON-ready overall result plus ``groups`` and ``expressions`` (per-expression J, F, J&F, frames)."""
        out = self.result()
        out["groups"] = self.by_group()
        out["expressions"] = {}
        for k, e in self._exprs.items():
            j, f, jf = self.expression(k)
            out["expressions"][k] = {"J": j, "F": f, "J&F": jf, "frames": len(e.j)}
        return out
