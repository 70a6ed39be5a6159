"""Bounded-size summaries of a population's responses to the images, exact for every analysis.

For N images and D units the analyses need only the N x N Gram matrix ``X X^T`` and the row
sums ``X 1`` (plus a sample of units for per-unit statistics): the correlation between two
images' patterns, ridge regression and PLS all depend on X through these alone. A population
of any size is therefore summarised in O(N^2) numbers, and an exact N-column embedding stands
in for X wherever a library wants a data matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureSummary:
    """What the neural comparisons need from one population's (images x units) responses."""

    gram: np.ndarray
    """(N, N) float64, X X^T."""
    row_sums: np.ndarray
    """(N,) float64, sum over units of each image's response."""
    n_units: int
    unit_sample: np.ndarray
    """(N, m) float32 responses of m units drawn at random (per-unit statistics)."""

    @classmethod
    def from_array(cls, features: np.ndarray, max_units: int = 2000,
                   seed: int = 0) -> FeatureSummary:
        x = np.asarray(features, dtype=np.float64).reshape(features.shape[0], -1)
        rng = np.random.default_rng(seed)
        sample = sample_columns(x.shape[1], max_units, rng)
        return cls(gram=x @ x.T, row_sums=x.sum(axis=1), n_units=x.shape[1],
                   unit_sample=x[:, sample].astype(np.float32))

    @property
    def n_images(self) -> int:
        return int(self.gram.shape[0])

    def pattern_correlation(self) -> np.ndarray:
        """(N, N) Pearson correlation between images' patterns across units.

        An image with a constant pattern (e.g. every unit silent) correlates 0 with the others.
        """
        centred = self.gram - np.outer(self.row_sums, self.row_sums) / self.n_units
        norms = np.sqrt(np.clip(np.diag(centred), 0.0, None))
        scale = np.outer(norms, norms)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.where(scale > 0, centred / np.where(scale > 0, scale, 1.0), 0.0)
        np.fill_diagonal(corr, 1.0)
        return np.clip(corr, -1.0, 1.0)

    def correlation_patterns(self) -> np.ndarray:
        """(N, N+1) patterns whose per-image correlations equal ``pattern_correlation()``.

        Rows are zero-mean, so any correlation-distance RDM routine (rsatoolbox's included)
        reproduces the RDM of the full population from this small matrix.
        """
        embedding = _psd_embedding(self.pattern_correlation())
        padded = np.concatenate([embedding, np.zeros((embedding.shape[0], 1))], axis=1)
        # Householder reflection taking the all-ones direction to the zero (last) column, so
        # every row sums to zero while the Gram matrix (hence correlations) is unchanged.
        width = padded.shape[1]
        ones = np.full(width, 1.0 / np.sqrt(width))
        target = np.zeros(width)
        target[-1] = 1.0
        v = ones - target
        reflection = np.eye(width) - 2.0 * np.outer(v, v) / (v @ v)
        return padded @ reflection

    def regression_embedding(self) -> np.ndarray:
        """(N, k) features whose linear regressions (with intercept) equal those on X."""
        n = self.n_images
        centring = np.eye(n) - np.full((n, n), 1.0 / n)
        return _psd_embedding(centring @ self.gram @ centring)


def sample_columns(n_columns: int, max_units: int, rng: np.random.Generator) -> np.ndarray:
    if n_columns <= max_units:
        return np.arange(n_columns)
    return np.sort(rng.choice(n_columns, size=max_units, replace=False))


def _psd_embedding(gram: np.ndarray, tolerance: float = 1e-10) -> np.ndarray:
    """Z with Z Z^T = gram (a positive semi-definite matrix), dropping null directions."""
    values, vectors = np.linalg.eigh((gram + gram.T) / 2.0)
    keep = values > tolerance * max(float(values.max()), 1e-300)
    if not keep.any():
        return np.zeros((gram.shape[0], 1))
    return vectors[:, keep] * np.sqrt(values[keep])
