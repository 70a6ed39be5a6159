"""Does similarity keep rising with task accuracy? A verdict that says only what data support.

Checkpoints in training order are split into an early and a late half (sharing the middle one
when their number is odd). In each half the SSM is regressed on validation accuracy (least
squares): the *slope* is SSM gained per unit of accuracy. With several training seeds each
seed's slopes are computed on its own checkpoints and averaged.

Uncertainty (``jackknife``): leave-one-image-out replicates of every checkpoint's SSM, paired
across checkpoints and seeds, give the variance of each slope and of their difference. With
two or more seeds the seed-to-seed variance of the slopes is added (variance of the mean over
seeds), with Welch-Satterthwaite degrees of freedom, so a conclusion rests on the variation
between training runs as well as on the stimulus sample.

Verdicts (the three directional ones share a 5 % error budget, Bonferroni):

- *keeps rising*: the late slope's 97.5 % interval lies above 0;
- *falls*: the late slope's 97.5 % interval lies below 0;
- *levels off*: positive evidence only: the early slope exceeds the late slope (one-sided
  2.5 % test on their paired difference) and the early slope is above 0 (same level);
- *cannot tell*, with its reason: fewer than 4 checkpoints, a half whose accuracy spans less
  than ``MIN_ACCURACY_SPAN``, no interval, or intervals that settle nothing; the row then gives
  ``detectable_late_slope``, the late slope these data would detect with 80 % power.

A late interval covering 0 is never read as a plateau: when accuracy saturates, the late half
spans little accuracy and its slope is barely identified.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mnc.neuro.jackknife import combined_error, jackknife_se, mean_variance, t_quantile

VERDICTS = ("keeps rising", "levels off", "falls", "cannot tell")
ALPHA = 0.05
"""Error budget of the directional verdicts, split evenly (Bonferroni)."""
LATE_LEVEL = 1.0 - ALPHA / 2.0
"""Two-sided level of the late-slope interval (keeps rising / falls)."""
MIN_CHECKPOINTS = 4
MIN_ACCURACY_SPAN = 0.005
POWER = 0.8
"""Power at which ``detectable_late_slope`` is stated."""


def halves(count: int) -> tuple[slice, slice]:
    half = (count + 1) // 2
    return slice(0, half), slice(count - half, count)


def slope_weights(accuracy: np.ndarray) -> np.ndarray:
    """(K,) weights w with w . y the least-squares slope of y on ``accuracy``."""
    centred = accuracy - accuracy.mean()
    return centred / float(centred @ centred)


def _contrasts(accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, K) early and late slope weights, each seed's on its own accuracies."""
    early, late = halves(accuracy.shape[1])
    w_early = np.zeros_like(accuracy)
    w_late = np.zeros_like(accuracy)
    for seed, row in enumerate(accuracy):
        w_early[seed, early] = slope_weights(row[early])
        w_late[seed, late] = slope_weights(row[late])
    return w_early, w_late


def _cannot_tell(result: dict[str, Any], reason: str) -> dict[str, Any]:
    return {**result, "verdict": "cannot tell", "reason": reason}


def trajectory_test(
    accuracy: Sequence[Any] | np.ndarray,
    ssm: Sequence[Any] | np.ndarray,
    replicates: np.ndarray | None,
) -> dict[str, Any]:
    """Verdict on SSM against accuracy for one region and kind of population.

    ``accuracy`` and ``ssm``: (K,) for one run or (seeds, K), checkpoints in training order.
    ``replicates``: leave-one-image-out SSM, (N, K) or (N, seeds, K) (None: no interval).
    Returns a flat dict (a row of ``trajectory_tests.csv``).
    """
    x = np.atleast_2d(np.asarray(accuracy, dtype=np.float64))
    y = np.atleast_2d(np.asarray(ssm, dtype=np.float64))
    seeds, count = x.shape
    result: dict[str, Any] = {"n_checkpoints": count, "n_seeds": seeds}
    nan = float("nan")
    for key in (
        "early_span",
        "late_span",
        "early_slope",
        "early_slope_low",
        "late_slope",
        "late_slope_low",
        "late_slope_high",
        "slope_drop",
        "slope_drop_low",
        "detectable_late_slope",
        "df",
    ):
        result[key] = nan
    if y.shape != x.shape:
        raise ValueError(f"accuracy {x.shape} and SSM {y.shape} differ in shape")
    doubt = _data_doubt(x, y, result)
    if doubt is not None:
        return _cannot_tell(result, doubt)
    w_early, w_late = _contrasts(x)
    per_seed = {"early_slope": (w_early * y).sum(axis=1), "late_slope": (w_late * y).sum(axis=1)}
    per_seed["slope_drop"] = per_seed["early_slope"] - per_seed["late_slope"]
    result.update({name: float(values.mean()) for name, values in per_seed.items()})
    if replicates is None or not np.size(replicates):
        return _cannot_tell(result, "no interval (no image replicates)")
    reps = np.asarray(replicates, dtype=np.float64)
    reps = reps.reshape(reps.shape[0], seeds, count)
    if not np.all(np.isfinite(reps)):
        return _cannot_tell(result, "an image replicate is missing")
    _add_intervals(result, reps, {"early_slope": w_early, "late_slope": w_late,
                                  "slope_drop": w_early - w_late}, per_seed)
    return _verdict(result)


def _data_doubt(x: np.ndarray, y: np.ndarray, result: dict[str, Any]) -> str | None:
    """Why the checkpoints cannot carry a verdict (too few, too little accuracy in a half,
    an SSM missing), or None; records each half's accuracy span in ``result``."""
    count = x.shape[1]
    if count < MIN_CHECKPOINTS:
        return f"needs {MIN_CHECKPOINTS} or more checkpoints, has {count}"
    early, late = halves(count)
    result["early_span"] = float(np.mean(np.ptp(x[:, early], axis=1)))
    result["late_span"] = float(np.mean(np.ptp(x[:, late], axis=1)))
    for name in ("early", "late"):
        if result[f"{name}_span"] < MIN_ACCURACY_SPAN:
            return (f"the {name} half spans {result[f'{name}_span']:.2%} "
                    f"accuracy, under {MIN_ACCURACY_SPAN:.1%}")
    if not np.all(np.isfinite(y)):
        return "an SSM is missing"
    return None


def _add_intervals(result: dict[str, Any], reps: np.ndarray,
                   contrast: dict[str, np.ndarray], per_seed: dict[str, np.ndarray]) -> None:
    """Standard errors from the image jackknife combined with the spread over seeds; the
    one-sided lower bounds of the early slope and the drop, the late slope's interval and
    the late slope the test would detect."""
    n_images = reps.shape[0]
    ses: dict[str, float] = {}
    dfs: dict[str, float] = {}
    for name, weights in contrast.items():
        image = jackknife_se((reps * weights).sum(axis=2).mean(axis=1)) ** 2
        ses[name], dfs[name] = combined_error(
            [(float(image), float(n_images - 1)), mean_variance(per_seed[name])]
        )
    result["df"] = dfs["late_slope"]
    late_t = t_quantile(LATE_LEVEL, dfs["late_slope"])
    for name in ("early_slope", "slope_drop"):  # one-sided ALPHA / 2 = two-sided 1 - ALPHA
        result[f"{name}_low"] = result[name] - t_quantile(1.0 - ALPHA, dfs[name]) * ses[name]
    result["late_slope_low"] = result["late_slope"] - late_t * ses["late_slope"]
    result["late_slope_high"] = result["late_slope"] + late_t * ses["late_slope"]
    from scipy.stats import norm

    result["detectable_late_slope"] = float((late_t + norm.ppf(POWER)) * ses["late_slope"])


def _verdict(result: dict[str, Any]) -> dict[str, Any]:
    if result["late_slope_low"] > 0:
        return {**result, "verdict": "keeps rising", "reason": ""}
    if result["late_slope_high"] < 0:
        return {**result, "verdict": "falls", "reason": ""}
    if result["slope_drop_low"] > 0 and result["early_slope_low"] > 0:
        return {**result, "verdict": "levels off", "reason": ""}
    return _cannot_tell(
        result,
        f"late slope {LATE_LEVEL:.1%} interval {result['late_slope_low']:.3g} to "
        f"{result['late_slope_high']:.3g} covers 0 (late half spans "
        f"{result['late_span']:.1%} accuracy); a late slope of "
        f"+-{result['detectable_late_slope']:.3g} would be detected 80 % of the time, "
        f"and no drop from the early slope is shown",
    )


def conclusion_sentence(verdicts: Sequence[str], description: str) -> str:
    """One sentence counting verdicts: says no more than the verdicts do."""
    total = len(verdicts)
    counts = {v: sum(1 for item in verdicts if item == v) for v in VERDICTS}
    parts = [
        f"{verdict} in {counts[verdict]} of {total} regions"
        for verdict in VERDICTS
        if counts[verdict]
    ]
    return f"{description}: similarity {', '.join(parts)}"
