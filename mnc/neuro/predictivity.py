"""Neural predictivity: cross-validated linear maps from a model population to each cell.

For every cell, ridge regression (penalty chosen per cell by generalised cross-validation on
the training folds) or PLS regression predicts the trial-averaged response to held-out images
from the population's responses. The score of a cell is the Pearson r between predicted and
measured responses over all held-out images, divided by the square root of the cell's
split-half reliability (Spearman-Brown corrected to the full trial count): a cell whose
responses are predicted as well as its own trials predict each other scores 1. Cells below a
reliability threshold are left out; a region's score is the median over its cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnc.neuro.regions import Region

RIDGE_ALPHAS = np.logspace(-3, 5, 17)
"""Penalties tried, relative to the mean squared singular value of the features."""


def column_pearson(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns; NaN where a column is constant."""
    a = first - first.mean(axis=0)
    b = second - second.mean(axis=0)
    denominator = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (a * b).sum(axis=0) / denominator, np.nan)


def spearman_brown(r: np.ndarray, factor: float = 2.0) -> np.ndarray:
    """Reliability of the mean of ``factor`` times as many trials as gave correlation ``r``."""
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return factor * r / (1.0 + (factor - 1.0) * r)


def split_half_reliability(region: Region, n_splits: int = 10, seed: int = 0) -> np.ndarray:
    """(cells,) Spearman-Brown corrected split-half correlation, averaged over random splits."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_splits):
        first, second = region.split_halves(rng)
        values.append(column_pearson(first, second))
    return spearman_brown(np.nanmean(np.stack(values), axis=0))


def _folds(n: int, n_folds: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, n_folds)]


def cross_validated_predictions(features: np.ndarray, targets: np.ndarray,
                                method: str = "ridge", n_folds: int = 5, seed: int = 0,
                                pls_components: int = 10) -> np.ndarray:
    """(images, cells) out-of-fold predictions of ``targets`` from ``features``."""
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import RidgeCV

    n = features.shape[0]
    scale = np.sqrt(np.mean(np.sum(features ** 2, axis=1))) or 1.0
    x = features / scale
    predictions = np.zeros_like(targets, dtype=np.float64)
    for test in _folds(n, n_folds, seed):
        train = np.setdiff1d(np.arange(n), test)
        if method == "ridge":
            model = RidgeCV(alphas=RIDGE_ALPHAS, alpha_per_target=True)
        elif method == "pls":
            components = max(1, min(pls_components, x.shape[1], train.size - 1))
            model = PLSRegression(n_components=components, scale=False, tol=1e-4,
                                  max_iter=200)
        else:
            raise ValueError(f"unknown regression method {method!r}")
        model.fit(x[train], targets[train])
        predictions[test] = np.asarray(model.predict(x[test])).reshape(test.size, -1)
    return predictions


@dataclass(frozen=True)
class PredictivityScore:
    median_corrected: float
    """Median over reliable cells of r / sqrt(reliability)."""
    median_raw: float
    """Median over reliable cells of r."""
    n_cells: int
    """Cells above the reliability threshold."""


def predictivity(features: np.ndarray, region: Region, reliability: np.ndarray,
                 method: str = "ridge", n_folds: int = 5, min_reliability: float = 0.3,
                 seed: int = 0) -> PredictivityScore:
    """Noise-corrected predictivity of ``region``'s cells from a population's features."""
    targets = region.mean_responses().astype(np.float64)
    reliable = np.flatnonzero(np.nan_to_num(reliability, nan=-1.0) >= min_reliability)
    if reliable.size == 0:
        return PredictivityScore(float("nan"), float("nan"), 0)
    predicted = cross_validated_predictions(features, targets[:, reliable], method, n_folds,
                                            seed)
    r = column_pearson(predicted, targets[:, reliable])
    corrected = r / np.sqrt(reliability[reliable])
    return PredictivityScore(median_corrected=float(np.nanmedian(corrected)),
                             median_raw=float(np.nanmedian(r)), n_cells=int(reliable.size))
