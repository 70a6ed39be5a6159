"""Response statistics physiologists compare between model units and recorded cells.

- Lifetime sparseness of a unit over the images (Vinje & Gallant 2000, as normalised in
  de Vries et al. 2020): ``(1 - (sum r / N)^2 / (sum r^2 / N)) / (1 - 1/N)``; 0 for a unit
  answering every image equally, 1 for a unit answering one image only.
- Population sparseness of an image over the units: the same formula across units.
- Response reliability of a cell: split-half correlation of its image responses (Spearman-Brown
  corrected). Model units are deterministic, so theirs is 1 by construction and not compared.

``api.physiology_tables`` also compares model units given the recordings' trial noise
(``noise_matched``). Cells' statistics use detected events where the recordings hold them
and dF/F otherwise (``Region.physiology_view``; the tables' ``response_measure`` column says
which). Responses are rectified first (mean dF/F can be negative; model units
are ReLU outputs), as the formula assumes non-negative rates. Distributions are compared
with the two-sample Kolmogorov-Smirnov statistic (the largest gap between the two
cumulative distributions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def sparseness(responses: np.ndarray, axis: int) -> np.ndarray:
    """Treves-Rolls sparseness normalised to [0, 1] along ``axis``; NaN where all are 0."""
    r = np.maximum(np.asarray(responses, dtype=np.float64), 0.0)
    n = r.shape[axis]
    mean = r.mean(axis=axis)
    mean_square = (r * r).mean(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (1.0 - mean * mean / mean_square) / (1.0 - 1.0 / n)
    return np.where(mean_square > 0, value, np.nan)


def lifetime_sparseness(responses: np.ndarray) -> np.ndarray:
    """(units,) from (images, units)."""
    return sparseness(responses, axis=0)


def population_sparseness(responses: np.ndarray) -> np.ndarray:
    """(images,) from (images, units)."""
    return sparseness(responses, axis=1)


@dataclass(frozen=True)
class DistributionComparison:
    n_model: int
    n_neural: int
    median_model: float
    median_neural: float
    ks_statistic: float
    p_value: float


def compare_distributions(model: np.ndarray, neural: np.ndarray) -> DistributionComparison:
    """Two-sample Kolmogorov-Smirnov comparison, ignoring NaN values."""
    from scipy.stats import ks_2samp

    a = np.asarray(model, dtype=np.float64)
    b = np.asarray(neural, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        nan = float("nan")
        return DistributionComparison(int(a.size), int(b.size), nan, nan, nan, nan)
    result = ks_2samp(a, b)
    return DistributionComparison(int(a.size), int(b.size), float(np.median(a)),
                                  float(np.median(b)), float(result.statistic),
                                  float(result.pvalue))
