"""Cache files of the neural comparison are read back bounded and never unpickled: a damaged,
mistyped or oversized entry is a cache miss with a warning naming the file, not a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnc.neuro import cache as cache_module
from mnc.neuro.cache import CacheWarning, FeatureCache, ScoreCache
from mnc.neuro.representation import FeatureSummary
from mnc.neuro.sources.allen import load_natural_scenes

pytestmark = pytest.mark.neuro


def _summary() -> FeatureSummary:
    features = np.random.default_rng(0).standard_normal((6, 40))
    return FeatureSummary.from_array(features, max_units=10)


@pytest.fixture
def feature_cache(tmp_path: Path) -> FeatureCache:
    cache = FeatureCache(tmp_path, "key")
    cache.save({"VISp4": _summary()})
    return cache


def _entry(cache: FeatureCache) -> Path:
    (path,) = cache.folder.iterdir()
    return path


def test_a_sound_entry_is_read_back(feature_cache: FeatureCache) -> None:
    loaded = feature_cache.load(["VISp4"])
    assert loaded is not None
    np.testing.assert_array_equal(loaded["VISp4"].gram, _summary().gram)


@pytest.mark.parametrize("content", [b"damaged", b"PK\x03\x04" + b"\x00" * 40, b""])
def test_damaged_feature_entry_is_a_miss(feature_cache: FeatureCache, content: bytes) -> None:
    path = _entry(feature_cache)
    path.write_bytes(content)
    with pytest.warns(CacheWarning, match=str(path)):
        assert feature_cache.load(["VISp4"]) is None


def test_pickled_feature_entry_is_never_unpickled(feature_cache: FeatureCache) -> None:
    path = _entry(feature_cache)
    with open(path, "wb") as stream:
        np.savez(stream, gram=np.array([object()], dtype=object), row_sums=np.zeros(1),
                 n_units=np.int64(1), unit_sample=np.zeros((1, 1)))
    with pytest.warns(CacheWarning, match="pickle"):
        assert feature_cache.load(["VISp4"]) is None


def test_feature_entry_with_arrays_that_disagree_is_a_miss(feature_cache: FeatureCache) -> None:
    path = _entry(feature_cache)
    summary = _summary()
    with open(path, "wb") as stream:
        np.savez(stream, gram=summary.gram, row_sums=summary.row_sums[:3],
                 n_units=np.int64(summary.n_units), unit_sample=summary.unit_sample)
    with pytest.warns(CacheWarning, match="row_sums"):
        assert feature_cache.load(["VISp4"]) is None


def test_feature_entry_over_the_memory_limit_is_a_miss(feature_cache: FeatureCache,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    size = _entry(feature_cache).stat().st_size
    monkeypatch.setenv("MNC_MAX_MEMORY_MB", str((size // 2) / 2**20))
    with pytest.warns(CacheWarning, match="holds more than"):
        assert feature_cache.load(["VISp4"]) is None


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"rsa": [1]}', "\x00"])
def test_damaged_score_entry_is_a_miss(tmp_path: Path, text: str) -> None:
    store = ScoreCache(tmp_path, "key")
    store.save({"rsa": [{"r": 0.5}]})
    store.path.write_text(text)
    with pytest.warns(CacheWarning, match=str(store.path)):
        assert store.load() is None


def test_score_entry_over_its_bound_is_a_miss(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store = ScoreCache(tmp_path, "key")
    store.save({"rsa": [{"r": 0.5}] * 100})
    monkeypatch.setattr(cache_module, "MAX_SCORE_BYTES", 100)
    with pytest.warns(CacheWarning, match="holds more than 100 bytes"):
        assert store.load() is None


def test_response_cache_over_the_memory_limit_is_read_again(
        boc_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_natural_scenes(boc_cache, areas=["VISl"], response_cache=tmp_path)
    largest = max(entry.stat().st_size for entry in tmp_path.iterdir())
    monkeypatch.setenv("MNC_MAX_MEMORY_MB", str((largest - 1) / 2**20))
    with pytest.warns(CacheWarning, match="holds more than"):
        again = load_natural_scenes(boc_cache, areas=["VISl"], response_cache=tmp_path)
    np.testing.assert_array_equal(first.responses, again.responses)
