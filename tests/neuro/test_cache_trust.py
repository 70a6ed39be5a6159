"""A comparison cache is a folder other users may write to: planted links and FIFOs, entries
owned by someone else and entries with impossible values are misses (with a warning), and
writing never reaches through a link."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from mnc.errors import UserFileError
from mnc.io import cache_entries
from mnc.neuro.cache import CacheWarning, FeatureCache, ScoreCache
from mnc.neuro.representation import FeatureSummary

pytestmark = pytest.mark.neuro


def _summary() -> FeatureSummary:
    features = np.random.default_rng(0).standard_normal((6, 40))
    return FeatureSummary.from_array(features, max_units=10)


def _entry(cache: FeatureCache) -> Path:
    return cache.folder / "VISp4.npz"


def test_a_planted_link_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    cache = FeatureCache(tmp_path / "cache", "key")
    cache.folder.mkdir(parents=True)
    _entry(cache).symlink_to(victim)
    with pytest.warns(CacheWarning, match="symbolic link"):
        assert cache.load(["VISp4"]) is None
    cache.save({"VISp4": _summary()})
    assert victim.read_text() == "precious"
    assert not _entry(cache).is_symlink()
    assert cache.load(["VISp4"]) is not None


def test_a_planted_link_to_a_folder_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "cache"
    (root / "features").mkdir(parents=True)
    (root / "features" / "key").symlink_to(outside)
    with pytest.raises(UserFileError, match="symbolic link"):
        FeatureCache(root, "key").save({"VISp4": _summary()})
    assert list(outside.iterdir()) == []


def test_a_planted_fifo_neither_hangs_reading_nor_writing(tmp_path: Path) -> None:
    store = ScoreCache(tmp_path, "key")
    store.path.parent.mkdir(parents=True)
    os.mkfifo(store.path)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(store.load()), daemon=True)
    with pytest.warns(CacheWarning, match="FIFO"):
        worker.start()
        worker.join(10)
    assert not worker.is_alive() and result == [None]
    store.save({"rsa": [{"ssm": 0.5}]})
    assert store.path.is_file() and store.load() == {"rsa": [{"ssm": 0.5}]}


def test_an_entry_owned_by_another_user_is_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ScoreCache(tmp_path, "key")
    store.save({"rsa": [{"ssm": 0.5}]})
    monkeypatch.setattr(cache_entries, "_user", lambda: os.getuid() + 1)
    with pytest.warns(CacheWarning, match="owned by another user"):
        assert store.load() is None


def test_a_nan_gram_matrix_is_a_miss(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, "key")
    summary = _summary()
    gram = summary.gram.copy()
    gram[1, 2] = np.nan
    cache.save(
        {
            "VISp4": FeatureSummary(
                gram=gram,
                row_sums=summary.row_sums,
                n_units=summary.n_units,
                unit_sample=summary.unit_sample,
            )
        }
    )
    with pytest.warns(CacheWarning, match="NaN or infinite"):
        assert cache.load(["VISp4"]) is None


def test_a_gram_matrix_that_is_not_one_is_a_miss(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, "key")
    summary = _summary()
    cache.save(
        {
            "VISp4": FeatureSummary(
                gram=-np.abs(summary.gram),
                row_sums=summary.row_sums,
                n_units=summary.n_units,
                unit_sample=summary.unit_sample,
            )
        }
    )
    with pytest.warns(CacheWarning, match="not a Gram matrix"):
        assert cache.load(["VISp4"]) is None


@pytest.mark.parametrize(
    "row",
    [
        {"ssm": 7.0},
        {"ssm": float("inf")},
        {"nc_upper": -3.0},
        {"n_cells": -1},
        {"population": {"a": 1}},
        {"samples": [0.1, "x"]},
    ],
)
def test_score_tables_with_impossible_values_are_a_miss(tmp_path: Path, row: dict) -> None:
    store = ScoreCache(tmp_path, "key")
    store.save({"rsa": [row]})
    with pytest.warns(CacheWarning, match="rsa"):
        assert store.load() is None


def test_sound_score_tables_are_read_back(tmp_path: Path) -> None:
    tables = {
        "rsa": [
            {
                "ssm": 0.5,
                "ssm_std": float("nan"),
                "n_cells": 3,
                "region": "VISp",
                "ir_mapped": True,
                "samples": [0.1, -0.2],
            }
        ],
        "predictivity": [{"score": 1.3, "median_r": 0.4}],
    }
    store = ScoreCache(tmp_path, "key")
    store.save(tables)
    loaded = store.load()
    assert loaded is not None and loaded["predictivity"] == tables["predictivity"]


def test_the_measure_cache_is_trusted_the_same_way(tmp_path: Path) -> None:
    """The per-voxel cache of mnc measure: a planted link is a miss and is replaced."""
    from mnc.measure.cache import ResultCache

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "measure"
    folder.mkdir()
    (folder / "key.npz").symlink_to(victim)
    cache = ResultCache(folder)
    assert cache.load("key") is None
    cache.save("key", {"values": np.arange(3)})
    assert victim.read_text() == "precious"
    stored = cache.load("key")
    assert stored is not None and list(stored["values"]) == [0, 1, 2]


@pytest.mark.parametrize(
    "arrays",
    [
        {"responses": np.zeros((4, 3)), "cell_ids": np.arange(3)},
        {"responses": np.full((4, 3, 2), np.nan), "cell_ids": np.arange(2)},
        {"responses": np.zeros((4, 3, 2)), "cell_ids": np.arange(5)},
    ],
)
def test_a_wrong_response_entry_is_a_miss_and_replaced(
    boc_cache: Path, tmp_path: Path, arrays: dict
) -> None:
    from mnc.neuro.sources.allen import load_natural_scenes

    first = load_natural_scenes(boc_cache, areas=["VISl"], response_cache=tmp_path)
    (entry,) = [path for path in tmp_path.iterdir() if not path.name.endswith("images.npy")]
    with open(entry, "wb") as stream:
        np.savez(stream, **arrays)
    with pytest.warns(CacheWarning, match=str(entry)):
        again = load_natural_scenes(boc_cache, areas=["VISl"], response_cache=tmp_path)
    np.testing.assert_array_equal(first.responses, again.responses)
    assert load_natural_scenes(boc_cache, areas=["VISl"], response_cache=tmp_path) is not None
