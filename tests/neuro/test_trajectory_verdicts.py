"""Operating characteristics of the trajectory test, measured on simulated training runs.

Scenarios and their effect sizes are in ``mnc.neuro.trajectory_simulation`` (README: "How much
data a conclusion needs"). Fixed seeds: the frequencies are deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest

from mnc.neuro import jackknife
from mnc.neuro.trajectory_simulation import (
    DENSE_EARLY,
    EVERY_5,
    simulate,
    verdict_frequencies,
)
from mnc.neuro.trajectory_test import conclusion_sentence, trajectory_test

RUNS = 300
SCHEDULES = {"dense early": DENSE_EARLY, "every 5": EVERY_5}


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_null_runs_get_few_directional_verdicts(schedule: str) -> None:
    shares = verdict_frequencies(simulate("null", SCHEDULES[schedule], RUNS), trajectory_test)
    assert 1.0 - shares.get("cannot tell", 0.0) <= 0.05, shares


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("scenario", ["linear rise", "small linear rise"])
def test_a_linear_rise_with_saturating_accuracy_is_not_called_a_plateau(
    schedule: str, scenario: str
) -> None:
    shares = verdict_frequencies(
        simulate(scenario, SCHEDULES[schedule], RUNS, rng_seed=1), trajectory_test
    )
    assert shares.get("levels off", 0.0) <= 0.05, shares
    assert shares.get("falls", 0.0) <= 0.05, shares


def test_a_clear_plateau_is_found_in_most_runs() -> None:
    shares = verdict_frequencies(
        simulate("rise then plateau", DENSE_EARLY, RUNS, rng_seed=2), trajectory_test
    )
    assert shares.get("levels off", 0.0) >= 0.7, shares


def test_a_fall_is_never_called_a_rise_or_a_plateau() -> None:
    shares = verdict_frequencies(simulate("fall", DENSE_EARLY, RUNS, rng_seed=3), trajectory_test)
    assert shares.get("falls", 0.0) >= 0.2, shares
    assert shares.get("keeps rising", 0.0) + shares.get("levels off", 0.0) <= 0.05, shares


def test_seeds_add_their_variation() -> None:
    """With a seed-to-seed effect on the curve, a null stays mostly 'cannot tell' across 3
    seeds, and the plateau is still found."""
    null = verdict_frequencies(
        simulate("null", DENSE_EARLY, 200, seeds=3, seed_sd=0.02, rng_seed=4), trajectory_test
    )
    assert 1.0 - null.get("cannot tell", 0.0) <= 0.05, null
    plateau = verdict_frequencies(
        simulate("rise then plateau", DENSE_EARLY, 200, seeds=3, seed_sd=0.02, rng_seed=5),
        trajectory_test,
    )
    assert plateau.get("levels off", 0.0) >= 0.7, plateau


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_late_slope_interval_covers_the_truth_95_percent(schedule: str) -> None:
    """Coverage of the late-slope interval (nominal 97.5 %) and of the early-slope one."""
    from mnc.neuro.trajectory_test import halves, slope_weights

    simulated = simulate("rise then plateau", SCHEDULES[schedule], RUNS, rng_seed=6)
    accuracy = simulated.accuracy[0, 0]
    late = halves(accuracy.size)[1]
    true_late = float(slope_weights(accuracy[late]) @ simulated.truth[late])
    hits = [
        trajectory_test(a, s, r)
        for a, s, r in zip(simulated.accuracy, simulated.ssm, simulated.replicates, strict=True)
    ]
    covered = np.mean([h["late_slope_low"] <= true_late <= h["late_slope_high"] for h in hits])
    assert 0.90 <= covered <= 0.995, covered


def _rdm_run(rng: np.random.Generator, n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """A model RDM and two split-half data RDMs sharing a 5-dimensional latent cause."""
    mixing = np.random.default_rng(1)
    to_model, to_cells = mixing.standard_normal((5, 40)), mixing.standard_normal((5, 20))
    latent = rng.standard_normal((n_images, 5))
    model = np.maximum(latent @ to_model + 1.5 * rng.standard_normal((n_images, 40)), 0)
    cells = latent @ to_cells
    halves = [cells + rng.standard_normal(cells.shape) for _ in range(2)]
    vectors = [jackknife.rdm_vector(jackknife.pattern_correlation(p)) for p in (model, *halves)]
    return vectors[0][None, :], np.stack(vectors[1:])


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_jackknife_ssm_interval_has_95_percent_coverage(method: str) -> None:
    """Images resampled from the same world: the 95 % interval covers the mean SSM (over
    runs) in 90-99 % of runs."""
    rng = np.random.default_rng(7)
    n_images, runs = 30, 200
    estimates, errors = [], []
    for _ in range(runs):
        model, halves = _rdm_run(rng, n_images)
        estimates.append(jackknife.similarities(model, halves, method).mean())
        errors.append(
            jackknife.jackknife_se(jackknife.jackknife_ssm(model, [halves], method)[0][:, 0])
        )
    estimates_array = np.array(estimates)
    low, high = jackknife.interval(estimates_array, np.array(errors), n_images - 1)
    truth = estimates_array.mean()
    covered = float(np.mean((low <= truth) & (truth <= high)))
    assert 0.90 <= covered <= 0.99, covered


def test_verdict_rows_carry_spans_intervals_and_reasons() -> None:
    simulated = simulate("null", DENSE_EARLY, 1)
    row = trajectory_test(simulated.accuracy[0], simulated.ssm[0], simulated.replicates[0])
    for key in (
        "early_span",
        "late_span",
        "late_slope_low",
        "late_slope_high",
        "slope_drop_low",
        "detectable_late_slope",
        "reason",
    ):
        assert key in row
    assert row["late_span"] == pytest.approx(0.3995 - 0.3245, abs=1e-3)
    few = trajectory_test([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], None)
    assert few["verdict"] == "cannot tell" and "4 or more" in few["reason"]
    flat = trajectory_test([0.1, 0.5, 0.9, 0.9, 0.9, 0.9], [0.1] * 6, None)
    assert "late half spans 0.00%" in flat["reason"]
    assert (
        conclusion_sentence(["cannot tell", "levels off", "cannot tell"], "x")
        == "x: similarity levels off in 1 of 3 regions, cannot tell in 2 of 3 regions"
    )
