"""Exact RDM vectors, their similarities, and image-jackknife uncertainty of SSM.

RDM vectors are ``1 - r`` over the image pairs (i < j, the order of ``squareform``), computed
directly from the pattern correlations and rounded to ``TIE_DECIMALS`` decimals, so equal
dissimilarities (a silent image, two identical patterns) stay exactly equal whatever the BLAS
and Spearman ranks them as ties.

Uncertainty: the delete-one-image jackknife. Leaving image i out removes every pair it belongs
to, in the model RDM and the data RDMs alike, and the SSM is recomputed on the remaining
images (ranks re-taken). Images (with their trials, which are nested in them) are the
independent units, so the jackknife variance covers the stimulus sample and the trial noise
of the recordings; the tests measure its coverage by simulation. (Resampling images with
replacement instead pairs copies of an image with each other, pairs that must be dropped.)
Replicates of every checkpoint, seed and population share the left-out image, so contrasts
between them (slopes, differences, the best population re-selected in each replicate) get
paired variances.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TIE_DECIMALS = 12
"""Dissimilarities equal to this many decimals are ties."""


def pattern_correlation(patterns: np.ndarray) -> np.ndarray:
    """(N, N) Pearson correlation between the rows of (N, channels) patterns.

    A constant row (no variation across channels) correlates 0 with every other row.
    """
    x = np.asarray(patterns, dtype=np.float64)
    centred = x - x.mean(axis=1, keepdims=True)
    norms = np.sqrt((centred * centred).sum(axis=1))
    scaled = np.divide(
        centred, norms[:, None], out=np.zeros_like(centred), where=norms[:, None] > 0
    )
    corr = scaled @ scaled.T
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def rdm_vector(correlation: np.ndarray) -> np.ndarray:
    """Upper-triangle (i < j) correlation distances, rounded so that ties stay ties."""
    n = correlation.shape[0]
    rows, cols = np.triu_indices(n, 1)
    return np.round(1.0 - np.asarray(correlation, dtype=np.float64)[rows, cols], TIE_DECIMALS)


def _ranks(vectors: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(vectors, axis=-1, method="average")


def similarities(first: np.ndarray, second: np.ndarray, method: str = "spearman") -> np.ndarray:
    """(A, B) Spearman or Pearson correlations between the rows of (A, P) and (B, P).

    The same arithmetic as rsatoolbox's ``compare`` ("spearman": average ranks, then Pearson;
    "corr"); NaN where a vector is constant.
    """
    a = np.atleast_2d(np.asarray(first, dtype=np.float64))
    b = np.atleast_2d(np.asarray(second, dtype=np.float64))
    if method == "spearman":
        a, b = _ranks(a), _ranks(b)
    elif method != "pearson":
        raise ValueError(f"unknown similarity method {method!r}")
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    norms = np.sqrt((a * a).sum(axis=-1))[:, None] * np.sqrt((b * b).sum(axis=-1))[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (a @ b.T) / np.where(norms > 0, norms, 1.0), np.nan)


def n_images_of(pairs: int) -> int:
    """Images of an RDM vector with ``pairs`` entries."""
    n = int(round((1 + np.sqrt(1 + 8 * pairs)) / 2))
    if n * (n - 1) // 2 != pairs:
        raise ValueError(f"{pairs} is not the pair count of an RDM")
    return n


def jackknife_ssm(
    model: np.ndarray, halves: Sequence[np.ndarray], method: str = "spearman"
) -> list[np.ndarray]:
    """Leave-one-image-out SSM replicates.

    ``model``: (M, P) model RDM vectors; ``halves``: per region, (H, P) split-half data RDM
    vectors. Returns per region an (N, M) array: row i is each model's mean similarity to the
    region's half RDMs with image i left out.
    """
    n = n_images_of(model.shape[1])
    rows, cols = np.triu_indices(n, 1)
    result = [np.empty((n, model.shape[0])) for _ in halves]
    spearman = method == "spearman"
    model_ranks = _Ranker(model) if spearman else None
    data_ranks = [_Ranker(data) for data in halves] if spearman else []
    for image in range(n):
        keep = (rows != image) & (cols != image)
        reduced = _unit_rows(model_ranks.without(keep) if model_ranks else model[:, keep])
        for region, data in enumerate(halves):
            kept = _unit_rows(data_ranks[region].without(keep) if spearman else data[:, keep])
            result[region][image] = (reduced @ kept.T).mean(axis=1)
    return result


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit length (NaN for a constant row), so that dot products
    are Pearson correlations."""
    centred = vectors - vectors.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    with np.errstate(invalid="ignore", divide="ignore"):
        return centred / np.where(norms > 0, norms, np.nan)[:, None]


class _Ranker:
    """Average ranks of the rows of (R, P) vectors among a subset of their entries, from one
    sort: a kept value's rank drops by the removed values below it plus half the removed
    values tied with it (exact, and far cheaper than ranking each subset again)."""

    def __init__(self, vectors: np.ndarray):
        values = np.asarray(vectors, dtype=np.float64)
        self.order = np.argsort(values, axis=1, kind="stable")
        ordered = np.take_along_axis(values, self.order, axis=1)
        count = values.shape[1]
        new_group = np.ones_like(ordered, dtype=bool)
        new_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        positions = np.broadcast_to(np.arange(count), ordered.shape)
        # first and one-past-last sorted position of each entry's tie group
        self.start = np.maximum.accumulate(np.where(new_group, positions, 0), axis=1)
        last = np.where(np.roll(new_group, -1, axis=1) | (positions == count - 1), positions, count)
        self.end = np.flip(np.minimum.accumulate(np.flip(last, axis=1), axis=1), axis=1) + 1
        self.sorted_ranks = (self.start + self.end + 1) / 2.0  # average ranks, 1-based
        self.inverse = np.argsort(self.order, axis=1)

    def without(self, keep: np.ndarray) -> np.ndarray:
        removed_sorted = (~keep)[self.order].astype(np.int64)
        before = np.zeros((removed_sorted.shape[0], removed_sorted.shape[1] + 1), np.int64)
        np.cumsum(removed_sorted, axis=1, out=before[:, 1:])
        below = np.take_along_axis(before, self.start, axis=1)
        through = np.take_along_axis(before, self.end, axis=1)
        reduced = self.sorted_ranks - below - 0.5 * (through - below)
        return np.take_along_axis(reduced, self.inverse, axis=1)[:, keep]


def jackknife_se(replicates: np.ndarray, axis: int = 0) -> np.ndarray:
    """Jackknife standard error from leave-one-out replicates along ``axis``."""
    values = np.asarray(replicates, dtype=np.float64)
    n = values.shape[axis]
    deviation = values - values.mean(axis=axis, keepdims=True)
    return np.sqrt((n - 1) / n * (deviation * deviation).sum(axis=axis))


def t_quantile(level: float, df: float) -> float:
    """Two-sided ``level`` critical value of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2.0, df))


def interval(
    estimate: np.ndarray, se: np.ndarray, df: float, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """estimate -/+ t quantile x standard error."""
    half = t_quantile(level, df) * np.asarray(se, dtype=np.float64)
    return np.asarray(estimate) - half, np.asarray(estimate) + half


def mean_variance(values: np.ndarray) -> tuple[float, float]:
    """(variance of the mean, degrees of freedom) of instance estimates; (0, 0) for one."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return 0.0, 0.0
    return float(np.var(values, ddof=1) / values.size), float(values.size - 1)


def combined_error(components: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(standard error, Welch-Satterthwaite degrees of freedom) of a sum of independent
    variance components, each (variance, its degrees of freedom); zero components drop out.

    Used to add the instance-to-instance (seed) variance of a mean to its image-jackknife
    variance. The image part of each instance's spread is then counted twice, which errs on
    the wide side.
    """
    parts = [(v, d) for v, d in components if v > 0 and d > 0]
    total = sum(v for v, _ in parts)
    if not parts:
        return 0.0, float(max((d for _, d in components), default=1.0))
    df = total**2 / sum(v**2 / d for v, d in parts)
    return float(np.sqrt(total)), float(df)
