"""Model units given the recordings' trial-to-trial noise, for a like-for-like comparison.

A recorded cell's trial-averaged response carries trial noise; noise spreads responses over
more images and lowers lifetime sparseness, so comparing noisy cells with noise-free model
units measures the noise as much as the model. Here each region's *noise fraction* is
measured (per cell: the variance of its trial mean that is trial noise, within-image variance
/ trials, over the variance of its trial means across images; the median over cells), and
every model unit gets independent Gaussian noise making up the same fraction of its variance
across images before the statistics are computed. ``physiology.csv`` reports these as the
``*_noise_matched`` metrics next to the noise-free ones.
"""

from __future__ import annotations

import numpy as np

from mnc.neuro.regions import Region

MAX_FRACTION = 0.95


def noise_fraction(region: Region) -> float:
    """Median over cells of the share of trial-mean variance across images that is noise."""
    fractions = []
    for _, start, end, trials in region.blocks:
        responses = np.asarray(region.responses[:, :trials, start:end], dtype=np.float64)
        noise = responses.var(axis=1, ddof=1).mean(axis=0) / trials
        total = responses.mean(axis=1).var(axis=0, ddof=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            fractions.append(np.where(total > 0, noise / total, np.nan))
    values = np.concatenate(fractions)
    values = values[np.isfinite(values)]
    return float(np.clip(np.median(values), 0.0, MAX_FRACTION)) if values.size else 0.0


def with_noise(units: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """(images, units) responses plus Gaussian noise that makes up ``fraction`` of each
    unit's variance across images."""
    x = np.asarray(units, dtype=np.float64)
    if fraction <= 0:
        return x
    signal_sd = x.std(axis=0, ddof=1)
    scale = signal_sd * np.sqrt(fraction / (1.0 - fraction))
    return x + np.random.default_rng(seed).standard_normal(x.shape) * scale
