from __future__ import annotations

import numpy as np
import pytest

from mnc.neuro.physiology import (
    compare_distributions,
    lifetime_sparseness,
    population_sparseness,
)

pytestmark = pytest.mark.neuro


def test_sparseness_extremes() -> None:
    responses = np.zeros((10, 3))
    responses[4, 0] = 2.0  # unit 0 answers one image only
    responses[:, 1] = 1.5  # unit 1 answers every image alike
    life = lifetime_sparseness(responses)
    assert life[0] == pytest.approx(1.0) and life[1] == pytest.approx(0.0)
    assert np.isnan(life[2])  # silent unit
    population = population_sparseness(responses)
    assert population[0] == pytest.approx(1.0)  # only unit 1 answers among 3
    # image 4: responses (2, 1.5, 0): (1 - (3.5/3)^2 / (6.25/3)) / (1 - 1/3) = 0.52
    assert population[4] == pytest.approx(0.52)
    assert population_sparseness(np.ones((2, 4)))[0] == pytest.approx(0.0)


def test_negative_responses_are_rectified() -> None:
    responses = np.array([[-1.0], [1.0], [0.0], [0.0]])
    assert lifetime_sparseness(responses)[0] == pytest.approx(1.0)


def test_kolmogorov_smirnov_distance() -> None:
    rng = np.random.default_rng(0)
    same = compare_distributions(rng.random(500), rng.random(500))
    apart = compare_distributions(rng.random(100) * 0.3, 0.7 + rng.random(100) * 0.3)
    assert same.ks_statistic < 0.1 and apart.ks_statistic == 1.0
    assert apart.p_value < 1e-6
    empty = compare_distributions(np.array([np.nan]), rng.random(5))
    assert np.isnan(empty.ks_statistic)
