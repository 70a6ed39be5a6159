"""Noise-matched physiology: model units given the recordings' trial noise."""

from __future__ import annotations

import numpy as np
import pytest

from mnc.neuro.noise_matched import noise_fraction, with_noise
from mnc.neuro.physiology import compare_distributions, lifetime_sparseness
from mnc.neuro.regions import group_regions
from mnc.neuro.sources.recordings import NeuralData

pytestmark = pytest.mark.neuro


def _region(noise_sd: float, images: int = 118, trials: int = 10, cells: int = 300):
    rng = np.random.default_rng(0)
    signal = np.maximum(rng.standard_normal((images, cells)) - 1.0, 0.0) * 2.0
    responses = signal[:, None, :] + rng.normal(0.0, noise_sd, (images, trials, cells))
    data = NeuralData.from_arrays(
        np.zeros((images, 4, 4), np.uint8),
        responses.astype(np.float32),
        ["VISp"] * cells,
        cre_line=["Cux2-CreERT2"] * cells,
        depth_um=[175] * cells,
    )
    return group_regions(data)[0], signal


def test_noise_fraction_matches_the_simulated_noise() -> None:
    region, signal = _region(noise_sd=1.0)
    noise_of_mean = 1.0 / 10
    expected = np.median(noise_of_mean / (signal.var(axis=0, ddof=1) + noise_of_mean))
    assert noise_fraction(region) == pytest.approx(expected, rel=0.15)
    assert noise_fraction(_region(noise_sd=0.0)[0]) == 0.0


def test_noise_matched_units_answer_the_noise_question() -> None:
    """Model units identical to the cells' noise-free signal: the plain KS distance to noisy
    cells is large (it measures the noise); after matching the noise it is small."""
    region, signal = _region(noise_sd=2.0)
    cells = lifetime_sparseness(region.mean_responses())
    plain = compare_distributions(lifetime_sparseness(signal), cells).ks_statistic
    noisy = with_noise(signal, noise_fraction(region), seed=1)
    matched = compare_distributions(lifetime_sparseness(noisy), cells).ks_statistic
    assert plain > 0.3 and matched < 0.15, (plain, matched)
