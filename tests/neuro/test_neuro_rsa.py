"""Known answers of the RSA: self-similarity 1, shuffled images ~0, noiseless ceiling 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnc.neuro import rsa
from mnc.neuro.regions import group_regions
from mnc.neuro.representation import FeatureSummary
from mnc.neuro.sources.allen import load_natural_scenes

pytestmark = pytest.mark.neuro
pytest.importorskip("rsatoolbox", reason="needs the neuro extra (rsatoolbox)")


def _features(seed: int = 0, units: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.maximum(rng.standard_normal((118, units)) + rng.standard_normal((118, 1)), 0)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_representation_compared_with_itself_gives_one(method: str) -> None:
    features = _features()
    model = rsa.model_rdms({"a": FeatureSummary.from_array(features)})
    data = rsa.rdms_from_patterns([features], ["data"])
    assert rsa.compare_rdms(model, model, method)[0, 0] == pytest.approx(1.0, abs=1e-12)
    assert rsa.compare_rdms(data, data, method)[0, 0] == pytest.approx(1.0, abs=1e-12)
    # Summary path vs full path: equal up to rounding (which can swap ranks of near-ties).
    assert rsa.compare_rdms(model, data, method)[0, 0] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_shuffled_image_labels_give_ssm_near_zero(method: str) -> None:
    features = _features()
    values = []
    for seed in range(5):
        order = np.random.default_rng(seed).permutation(118)
        model = rsa.model_rdms({"shuffled": FeatureSummary.from_array(features[order])})
        values.append(rsa.ssm(model, rsa.split_half_rdms([(features, features)]), method)[0])
    assert abs(float(np.mean(values))) < 0.05
    assert max(abs(v) for v in values) < 0.1


def test_summary_patterns_reproduce_the_full_rdm() -> None:
    features = _features(units=3000)
    full = rsa.rdm_matrices(rsa.rdms_from_patterns([features], ["x"]))[0]
    small = rsa.rdm_matrices(rsa.model_rdms({"x": FeatureSummary.from_array(features)}))[0]
    np.testing.assert_allclose(small, full, atol=1e-10)
    np.testing.assert_allclose(full, 1 - np.corrcoef(features), atol=1e-10)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_noise_ceiling_of_noiseless_data_is_one(noiseless_cache: Path, method: str) -> None:
    regions = group_regions(load_natural_scenes(noiseless_cache))
    rng = np.random.default_rng(0)
    for region in regions:
        halves = rsa.split_half_rdms([region.split_halves(rng) for _ in range(3)])
        lower, upper = rsa.noise_ceiling(halves, method)
        assert lower == pytest.approx(1.0, abs=1e-9)
        assert upper == pytest.approx(1.0, abs=1e-9)


def test_noisy_data_ceiling_is_below_one_and_ordered(boc_cache: Path) -> None:
    region = group_regions(load_natural_scenes(boc_cache, areas=["VISp"]))[0]
    rng = np.random.default_rng(0)
    halves = rsa.split_half_rdms([region.split_halves(rng) for _ in range(3)])
    lower, upper = rsa.noise_ceiling(halves)
    assert 0.0 < lower < upper < 1.0


def test_jackknife_spreads_only_imperfect_matches() -> None:
    features = _features()
    noisy = features + np.random.default_rng(1).standard_normal(features.shape) * 2
    model = rsa.model_rdms({"same": FeatureSummary.from_array(features),
                            "noisy": FeatureSummary.from_array(noisy)})
    halves = rsa.split_half_rdms([(features, features)])
    result = rsa.jackknife_ssms(model, [halves])[0]
    assert result.replicates.shape == (118, 2)
    assert result.std[0] < 1e-9 < 0.005 < result.std[1]
    point = rsa.ssm(model, halves)
    low, high = result.interval(point)
    assert low[1] < point[1] < high[1]


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_jackknife_replicates_are_the_ssm_without_each_image(method: str) -> None:
    """Replicate i equals rsatoolbox's SSM on the RDMs with image i removed."""
    features = _features()[:20]
    other = features + np.random.default_rng(2).standard_normal(features.shape)
    model = rsa.model_rdms({"x": FeatureSummary.from_array(other)})
    halves = rsa.split_half_rdms([(features, features + 0.5 * other)])
    replicates = rsa.jackknife_ssms(model, [halves], method)[0].replicates
    for image in (0, 7, 19):
        keep = [i for i in range(20) if i != image]
        expected = rsa.ssm(model.subset_pattern("index", keep),
                           halves.subset_pattern("index", keep), method)
        assert replicates[image, 0] == pytest.approx(expected[0], abs=1e-12)


def test_ties_stay_ties_whatever_the_rounding() -> None:
    """A silent image and two identical images give exactly tied dissimilarities, so the
    Spearman SSM does not depend on rounding noise of the summary arithmetic."""
    features = _features()[:40]
    features[5] = 0.0
    features[9] = features[3]
    summary = FeatureSummary.from_array(features)
    vector = rsa.rdm_vectors(rsa.model_rdms({"x": summary}))[0]
    matrix = rsa.rdm_matrices(rsa.model_rdms({"x": summary}))[0]
    assert len({matrix[5, j] for j in range(40) if j != 5}) == 1  # silent: all exactly 1
    assert matrix[3, 9] == 0.0
    np.testing.assert_array_equal(matrix[3], matrix[9])  # identical images: identical rows
    # perturbing the Gram matrix by rounding-sized noise leaves the RDM unchanged
    jitter = np.random.default_rng(0).standard_normal(summary.gram.shape) * 1e-15
    jittered = FeatureSummary(summary.gram * (1 + (jitter + jitter.T) / 2),
                              summary.row_sums, summary.n_units, summary.unit_sample)
    np.testing.assert_array_equal(rsa.rdm_vectors(rsa.model_rdms({"x": jittered}))[0], vector)


def test_silent_image_is_uncorrelated_in_model_and_data_rdms() -> None:
    features = _features()
    features[7] = 0.0
    model = rsa.rdm_matrices(rsa.model_rdms({"x": FeatureSummary.from_array(features)}))[0]
    data = rsa.rdm_matrices(rsa.rdms_from_patterns([features], ["x"]))[0]
    np.testing.assert_allclose(model, data, atol=1e-10)
    assert model[7, 3] == pytest.approx(1.0)


def test_best_population_is_chosen_again_in_every_jackknife_replicate() -> None:
    """Winner's curse: the best population's interval comes from the best of each replicate,
    not from the replicates of the population that won on all images."""
    from mnc.neuro.api import REPLICATES_TABLE, AnalysisOptions, rsa_tables
    from mnc.neuro.jackknife import jackknife_se
    from mnc.neuro.regions import group_regions
    from mnc.neuro.sources.recordings import NeuralData

    rng = np.random.default_rng(0)
    latent = rng.standard_normal((30, 6))
    cells = np.maximum(latent @ rng.standard_normal((6, 10)), 0)
    responses = cells[:, None, :] + rng.normal(0, 0.5, (30, 4, 10))
    data = NeuralData.from_arrays(np.zeros((30, 4, 4), np.uint8), responses.astype(np.float32),
                                  ["VISp"] * 10, cre_line=["Cux2-CreERT2"] * 10,
                                  depth_um=[175] * 10)
    # two nearly identical populations: which one wins depends on the images
    shared = latent @ rng.standard_normal((6, 50)) + rng.standard_normal((30, 50))
    summaries = {name: FeatureSummary.from_array(shared + 0.3 * rng.standard_normal((30, 50)))
                 for name in ("a", "b")}
    options = AnalysisOptions(methods=("spearman",), n_splits=2, regressions=())
    tables = rsa_tables(summaries, group_regions(data), [], options)
    best = tables["rsa_best"][0]
    draws = {row["kind"]: np.array(row["samples"]) for row in tables[REPLICATES_TABLE]}
    model = rsa.model_rdms(summaries)
    rng_halves = np.random.default_rng(options.seed)
    halves = rsa.split_half_rdms([group_regions(data)[0].split_halves(rng_halves)
                                  for _ in range(2)])
    replicates = rsa.jackknife_ssms(model, [halves])[0].replicates
    assert len(set(replicates.argmax(axis=1))) > 1  # the winner changes with the images
    np.testing.assert_allclose(draws["best"], replicates.max(axis=1))
    assert best["ssm_std"] == pytest.approx(float(jackknife_se(replicates.max(axis=1))))
    assert best["ssm_ci_low"] < best["ssm"] < best["ssm_ci_high"]
