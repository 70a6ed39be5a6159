"""The comparison's feature path is held to the memory limit before any image runs: for a
recurrent network it keeps every step's activity and copies it before averaging, about twice
what running it takes, and a population's N x N Gram matrix grows with the images squared."""

from __future__ import annotations

import numpy as np
import pytest

from mnc.analysis.memory import estimate_memory
from mnc.errors import SizeLimitError
from mnc.neuro.model_features import feature_path_bytes, summarize_features

pytestmark = [pytest.mark.neuro, pytest.mark.torch]
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def recurrent_model():  # noqa: ANN201
    from tests.recurrent_irs import randomised, tiny_recurrent

    model = randomised(tiny_recurrent(steps=4))
    model.eval()
    return model


def _images(count: int, ir) -> np.ndarray:  # noqa: ANN001
    shape = (count, ir.input.channels, ir.input.height, ir.input.width)
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def test_a_recurrent_feature_path_over_the_limit_is_refused_before_running(
    recurrent_model, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    ir = recurrent_model.ir
    run = estimate_memory(ir, "run", 4).total_bytes
    needed = feature_path_bytes(ir, 8, 4)
    assert needed > 1.25 * run  # every step's activity, copied before the steps are averaged
    monkeypatch.setenv("MNC_MAX_MEMORY_MB", str((run + needed) / 2 / 2**20))
    called: list[int] = []
    monkeypatch.setattr(recurrent_model, "features", lambda *args, **kwargs: called.append(1))
    with pytest.raises(SizeLimitError, match="comparing the features of 8 image.*4 steps"):
        summarize_features(recurrent_model, _images(8, ir), batch_size=4)
    assert called == []


def test_many_images_are_refused_for_their_gram_matrices(
    recurrent_model, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    ir = recurrent_model.ir
    monkeypatch.setenv("MNC_MAX_MEMORY_MB", str(feature_path_bytes(ir, 100, 4) / 2**20))
    assert feature_path_bytes(ir, 20_000, 4) > feature_path_bytes(ir, 100, 4)
    with pytest.raises(SizeLimitError, match="20000 image"):
        summarize_features(recurrent_model, np.zeros((20_000, 1, 1, 1), np.float32), batch_size=4)


def test_within_the_limit_the_features_are_computed(
    recurrent_model, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    ir = recurrent_model.ir
    monkeypatch.setenv("MNC_MAX_MEMORY_MB", str(2 * feature_path_bytes(ir, 3, 2) / 2**20))
    summaries = summarize_features(recurrent_model, _images(3, ir), batch_size=2)
    assert all(summary.gram.shape == (3, 3) for summary in summaries.values())
