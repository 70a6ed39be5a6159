"""Simulated training runs with a known truth, for the operating characteristics of the
trajectory test (how often each verdict comes out in each scenario).

Each checkpoint's SSM is a mean over images of per-image contributions (the form a
leave-one-image-out jackknife sees), with an image effect shared across checkpoints
(correlation ``rho``: the same images are scored at every checkpoint) and, with several
seeds, a seed effect on the curve. Accuracy saturates like a real learning curve,
``0.4 (1 - exp(-epoch / 6))``. Vectorised over runs: thousands of runs take seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

DENSE_EARLY = (0, 1, 2, 5, 10, 20, 30, 40)
EVERY_5 = (0, 5, 10, 15, 20, 25, 30, 35, 40)


def saturating_accuracy(epochs: np.ndarray) -> np.ndarray:
    return 0.4 * (1.0 - np.exp(-np.asarray(epochs, dtype=float) / 6.0))


SCENARIOS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "null": lambda acc: np.full_like(acc, 0.1),
    "linear rise": lambda acc: 0.1 + 0.25 * acc,
    "small linear rise": lambda acc: 0.1 + 0.1 * acc,
    "rise then plateau": lambda acc: 0.1 + 0.5 * np.minimum(acc, 0.2),
    "fall": lambda acc: 0.2 - 0.25 * acc,
}
"""Expected SSM as a function of accuracy. The plateau rises 0.1 over the first 20 accuracy
points and is flat after."""


@dataclass(frozen=True)
class Simulated:
    accuracy: np.ndarray
    """(runs, seeds, K)"""
    ssm: np.ndarray
    """(runs, seeds, K)"""
    replicates: np.ndarray
    """(runs, N, seeds, K) leave-one-image-out SSM"""
    truth: np.ndarray
    """(K,) expected SSM"""


def simulate(
    scenario: str,
    epochs: tuple[int, ...] = DENSE_EARLY,
    runs: int = 400,
    n_images: int = 118,
    seeds: int = 1,
    sd: float = 0.02,
    rho: float = 0.8,
    seed_sd: float = 0.0,
    rng_seed: int = 0,
) -> Simulated:
    """``runs`` simulated trajectories; ``sd``: each checkpoint's SSM sampling SD."""
    rng = np.random.default_rng(rng_seed)
    accuracy = saturating_accuracy(np.array(epochs))
    truth = SCENARIOS[scenario](accuracy)
    count = accuracy.size
    scale = sd * np.sqrt(n_images)
    shared = rng.standard_normal((runs, n_images, 1, 1))
    own = rng.standard_normal((runs, n_images, seeds, count))
    contributions = scale * (np.sqrt(rho) * shared + np.sqrt(1.0 - rho) * own)
    contributions += truth + seed_sd * rng.standard_normal((runs, 1, seeds, 1))
    ssm = contributions.mean(axis=1)
    replicates = (contributions.sum(axis=1, keepdims=True) - contributions) / (n_images - 1)
    acc = np.broadcast_to(accuracy, (runs, seeds, count)).copy()
    return Simulated(acc, ssm, replicates, truth)


def verdict_frequencies(
    simulated: Simulated, test: Callable[[np.ndarray, np.ndarray, np.ndarray], dict]
) -> dict[str, float]:
    """Fraction of runs given each verdict by ``test(accuracy, ssm, replicates)``."""
    counts: dict[str, int] = {}
    runs = simulated.ssm.shape[0]
    for run in range(runs):
        verdict = test(simulated.accuracy[run], simulated.ssm[run], simulated.replicates[run])[
            "verdict"
        ]
        counts[verdict] = counts.get(verdict, 0) + 1
    return {verdict: count / runs for verdict, count in sorted(counts.items())}


def late_interval_rule(
    accuracy: np.ndarray,
    ssm: np.ndarray,
    replicates: np.ndarray,
    n_boot: int = 200,
    rng_seed: int = 0,
) -> dict:
    """The rule mnc applied before ``trajectory_test``, for comparison only: paired image-
    bootstrap 95 % percentile intervals of the early and late slopes; *levels off* when the
    early interval lies above 0 and the late one covers 0 (absence of evidence read as a
    plateau). Here the bootstrap resamples the per-image contributions of a single run, so
    its intervals are calibrated: what goes wrong is the rule, not the width."""
    from mnc.neuro.trajectory_test import halves, slope_weights

    x, y = np.asarray(accuracy)[0], np.asarray(ssm)[0]
    reps = np.asarray(replicates)[:, 0, :]
    n = reps.shape[0]
    contributions = n * y - (n - 1) * reps
    draws = np.random.default_rng(rng_seed).integers(0, n, (n_boot, n))
    samples = contributions[draws].mean(axis=1)
    result = {}
    for name, part in zip(("early", "late"), halves(x.size), strict=True):
        if np.ptp(x[part]) < 0.005:
            return {"verdict": "not tested"}
        weights = slope_weights(x[part])
        draws_slope = samples[:, part] @ weights
        result[name] = np.percentile(draws_slope, [2.5, 97.5])
    if result["late"][0] > 0:
        return {"verdict": "keeps rising"}
    if result["late"][1] < 0:
        return {"verdict": "falls"}
    if result["early"][0] > 0:
        return {"verdict": "levels off"}
    if result["early"][1] < 0:
        return {"verdict": "falls, then levels off"}
    return {"verdict": "inconclusive"}


def operating_characteristics(runs: int = 400) -> str:
    """Markdown table: scenario x schedule x verdict frequencies of both rules."""
    from mnc.neuro.trajectory_test import trajectory_test

    lines = ["| rule | schedule | scenario | verdict frequencies |", "|---|---|---|---|"]
    for rule_name, rule in (
        ("late-interval rule (before)", late_interval_rule),
        ("trajectory_test", trajectory_test),
    ):
        for schedule_name, schedule in (
            ("0,1,2,5,10,20,30,40", DENSE_EARLY),
            ("every 5 epochs to 40", EVERY_5),
        ):
            for scenario in SCENARIOS:
                frequencies = verdict_frequencies(simulate(scenario, schedule, runs), rule)
                shown = ", ".join(
                    f"{verdict} {share:.1%}" for verdict, share in frequencies.items()
                )
                lines.append(f"| {rule_name} | {schedule_name} | {scenario} | {shown} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(operating_characteristics())
