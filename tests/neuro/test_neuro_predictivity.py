from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnc.neuro.predictivity import (
    predictivity,
    spearman_brown,
    split_half_reliability,
)
from mnc.neuro.regions import group_regions
from mnc.neuro.representation import FeatureSummary
from mnc.neuro.sources.allen import load_natural_scenes
from mnc.neuro.sources.synthetic import _pooled

pytestmark = pytest.mark.neuro


def test_spearman_brown() -> None:
    assert spearman_brown(np.array([0.5]))[0] == pytest.approx(2 / 3)
    assert spearman_brown(np.array([1.0]))[0] == pytest.approx(1.0)


def test_noiseless_cells_are_perfectly_reliable(noiseless_cache: Path) -> None:
    region = group_regions(load_natural_scenes(noiseless_cache, areas=["VISl"]))[0]
    np.testing.assert_allclose(split_half_reliability(region, n_splits=2), 1.0, atol=1e-9)


@pytest.mark.parametrize("method", ["ridge", "pls"])
def test_generating_features_predict_better_than_random(boc_cache: Path, method: str) -> None:
    data = load_natural_scenes(boc_cache, areas=["VISp"], cre_lines=["Cux2-CreERT2"])
    region = group_regions(data)[0]
    reliability = split_half_reliability(region, n_splits=4)
    assert np.nanmedian(reliability) > 0.5
    pooled = _pooled(data.images)  # the synthetic cells are rectified projections of these
    generating = FeatureSummary.from_array(pooled).regression_embedding()
    noise = np.random.default_rng(0).standard_normal((118, 36))
    unrelated = FeatureSummary.from_array(noise).regression_embedding()
    good = predictivity(generating, region, reliability, method, min_reliability=0.3)
    bad = predictivity(unrelated, region, reliability, method, min_reliability=0.3)
    assert good.n_cells > 0
    assert good.median_corrected > 0.6
    assert abs(bad.median_corrected) < 0.3
    assert good.median_corrected >= good.median_raw
