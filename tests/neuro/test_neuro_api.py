"""The whole comparison on synthetic Brain Observatory files (read with h5py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("rsatoolbox", reason="needs the neuro extra (rsatoolbox)")

import pandas as pd

from mnc.neuro.api import (
    AnalysisOptions,
    NeuralSelection,
    population_summaries,
    run_physiology,
    run_rsa,
)
from mnc.neuro.model_features import LoadedModel
from mnc.neuro.sources.allen import load_natural_scenes
from tests.neuro.conftest import FakeModel

pytestmark = pytest.mark.neuro

FAST = AnalysisOptions(n_boot=8, n_splits=2, n_folds=3, min_reliability=0.2)
REGIONS = ["VISal Rbp4 L5", "VISam Cux2 L2/3", "VISl Cux2 L2/3", "VISp Cux2 L2/3",
           "VISp Rorb L4"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.slow
def test_rsa_writes_tables_figures_and_reuses_caches(fake_loaded, boc_cache, tmp_path) -> None:
    out = tmp_path / "rsa"
    report = run_rsa(fake_loaded, boc_cache, out, options=FAST)
    assert not report.features_cached and not report.scores_cached
    for name in ("rsa.csv", "rsa_best.csv", "predictivity.csv", "predictivity_best.csv",
                 "summary.json", "ssm_heatmap_spearman.png", "ssm_heatmap_pearson.png",
                 "rdms.png", "best_population.png"):
        assert (out / name).stat().st_size > 0, name
    rows = _rows(out / "rsa.csv")
    assert len(rows) == 5 * len(REGIONS) * 2  # populations x regions x methods
    assert sorted({r["region"] for r in rows}) == REGIONS
    mapped = {r["region"]: r["population"] for r in rows if r["ir_mapped"] == "True"}
    assert mapped == {"VISal Rbp4 L5": "VISal5", "VISl Cux2 L2/3": "VISl2/3",
                      "VISp Cux2 L2/3": "VISp2/3", "VISp Rorb L4": "VISp4"}  # no VISam
    for row in rows:
        assert -1.0 <= float(row["ssm"]) <= 1.0
        assert float(row["nc_lower"]) <= float(row["nc_upper"]) <= 1.0
    best = _rows(out / "rsa_best.csv")
    assert len(best) == len(REGIONS) * 2
    for row in best:
        region_rows = [r for r in rows if r["region"] == row["region"]
                       and r["method"] == row["method"]]
        assert float(row["ssm"]) == max(float(r["ssm"]) for r in region_rows)
    predictivity = _rows(out / "predictivity.csv")
    assert {r["regression"] for r in predictivity} == {"ridge", "pls"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ir_hash"] == "fake-ir-16" and len(summary["sessions"]) == 5

    calls = fake_loaded.model.calls
    again = run_rsa(fake_loaded, boc_cache, out, options=FAST)
    assert again.features_cached and again.scores_cached
    assert fake_loaded.model.calls == calls  # no forward pass on a rerun
    assert sorted(again.tables) == sorted(report.tables)
    for name, table in report.tables.items():
        pd.testing.assert_frame_equal(again.tables[name], table)

    images = load_natural_scenes(boc_cache).images
    other = LoadedModel(model=FakeModel(seed=1), weights_key="untrained-seed1")
    _, key, hit = population_summaries(other, images, FAST, out / "cache")
    assert not hit and key != report.feature_key
    _, same_key, hit = population_summaries(fake_loaded, images, FAST, out / "cache")
    assert hit and same_key == report.feature_key


def test_cache_dir_option_and_selection(fake_loaded, boc_cache, tmp_path) -> None:
    selection = NeuralSelection(areas=("VISp",), min_cells=1)
    options = AnalysisOptions(n_boot=0, n_splits=1, regressions=(), methods=("pearson",))
    report = run_rsa(fake_loaded, boc_cache, tmp_path / "out", tmp_path / "cache", selection,
                     options)
    assert (tmp_path / "cache" / "features" / report.feature_key).is_dir()
    assert not (tmp_path / "out" / "cache").exists()
    assert set(report.tables["rsa"]["region"]) == {"VISp Cux2 L2/3", "VISp Rorb L4"}
    assert "predictivity" not in report.tables


def test_physiology_compares_every_population_and_region(fake_loaded, boc_cache,
                                                         tmp_path) -> None:
    out = tmp_path / "phys"
    report = run_physiology(fake_loaded, boc_cache, out, options=FAST)
    rows = _rows(out / "physiology.csv")
    assert len(rows) == 5 * len(REGIONS) * 4  # populations x regions x metrics
    assert {r["metric"] for r in rows} == {
        "lifetime_sparseness", "population_sparseness", "lifetime_sparseness_noise_matched",
        "population_sparseness_noise_matched"}
    for row in rows:
        assert 0.0 <= float(row["ks_statistic"]) <= 1.0
        assert int(row["n_neural"]) > 0 and int(row["n_model"]) > 0
    cells = _rows(out / "physiology_cells.csv")
    assert len(cells) == len(REGIONS)
    assert all(0.0 < float(c["median_split_half_reliability"]) <= 1.0 for c in cells)
    assert all(0.0 <= float(c["noise_fraction"]) < 1.0 for c in cells)
    assert (out / "physiology.png").stat().st_size > 0
    assert report.files["physiology_figure"].endswith("physiology.png")
