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
    for image in range(n):
        keep = (rows != image) & (cols != image)
        reduced = model[:, keep]
        if method == "spearman":  # ranks re-taken among the remaining pairs, model once
            reduced = _ranks(reduced)
        for region, data in enumerate(halves):
            kept = _ranks(data[:, keep]) if method == "spearman" else data[:, keep]
            result[region][image] = similarities(reduced, kept, "pearson").mean(axis=1)
    return result


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
