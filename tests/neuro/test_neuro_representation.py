"""Summaries are exact stand-ins for the full feature matrix; streaming matches in-memory."""

from __future__ import annotations

import numpy as np
import pytest

from mnc.neuro.model_features import extract_features, prepare_images, summarize_features
from mnc.neuro.representation import FeatureSummary

pytestmark = pytest.mark.neuro


def test_regression_embedding_gives_the_same_ridge_predictions() -> None:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    features = np.maximum(rng.standard_normal((60, 900)), 0)
    target = rng.standard_normal(60)
    embedding = FeatureSummary.from_array(features).regression_embedding()
    assert embedding.shape[1] < 60
    train, test = np.arange(45), np.arange(45, 60)
    full = Ridge(alpha=3.0).fit(features[train], target[train]).predict(features[test])
    small = Ridge(alpha=3.0).fit(embedding[train], target[train]).predict(embedding[test])
    np.testing.assert_allclose(small, full, atol=1e-9)


def test_constant_pattern_correlates_zero() -> None:
    features = np.random.default_rng(0).random((5, 20))
    features[2] = 0.0
    corr = FeatureSummary.from_array(features).pattern_correlation()
    assert corr[2, 2] == 1.0 and np.all(corr[2, [0, 1, 3, 4]] == 0.0)


def test_streamed_summary_equals_in_memory(fake_loaded, tmp_path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (10, 20, 24)).astype(np.uint8)
    model_input = prepare_images(images, 16, 16)
    assert model_input.shape == (10, 3, 16, 16) and model_input.dtype == np.float32
    full = extract_features(fake_loaded.model, model_input, batch_size=4)
    calls = fake_loaded.model.calls
    streamed = summarize_features(fake_loaded.model, model_input, batch_size=3, max_units=50,
                                  scratch_dir=tmp_path, chunk_bytes=10 * 8 * 7)
    assert fake_loaded.model.calls - calls == 4  # ceil(10 / 3) batches
    assert list(tmp_path.iterdir()) == []  # scratch arrays removed
    for name, features in full.items():
        reference = FeatureSummary.from_array(features)
        np.testing.assert_allclose(streamed[name].gram, reference.gram, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(streamed[name].row_sums, reference.row_sums, rtol=1e-5)
        assert streamed[name].n_units == features.shape[1]
        assert streamed[name].unit_sample.shape == (10, min(50, features.shape[1]))
