"""Several trained instances of a model (seeds, initialisations), and model A against model B.

Per model and region: the best population's SSM of each instance (the best re-chosen per
instance), their mean and an interval whose variance adds the instance-to-instance variance
of the mean to the image jackknife's (``jackknife.combined_error``). Model A against model B:
the difference of the mean best-population SSMs, its interval and two-sided p value (Welch t
with the images' jackknife variance of the paired difference added), and the effect size
(Cohen's d: the difference over the pooled instance SD; needs two instances of each).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mnc.neuro.api import REPLICATES_TABLE, Report
from mnc.neuro.jackknife import combined_error, jackknife_se, mean_variance, t_quantile

LEVEL = 0.95


def _best(report: Report, method: str) -> dict[str, tuple[float, str, np.ndarray | None]]:
    """region -> (best SSM, population, its jackknife replicates)."""
    draws = {}
    table = report.tables.get(REPLICATES_TABLE)
    if table is not None and not table.empty:
        draws = {
            r["region"]: np.asarray(r["samples"], dtype=float)
            for r in table.to_dict(orient="records")
            if r["method"] == method and r["kind"] == "best"
        }
    return {
        r["region"]: (float(r["ssm"]), str(r["population"]), draws.get(r["region"]))
        for r in report.tables["rsa_best"].to_dict(orient="records")
        if r["method"] == method
    }


def _values(
    reports: Sequence[Report], region: str, method: str
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    found = [_best(report, method).get(region) for report in reports]
    if any(item is None for item in found):
        raise ValueError(f"region {region!r} is missing from an instance's tables")
    values = np.array([item[0] for item in found])  # type: ignore[index]
    replicates = [item[2] for item in found]  # type: ignore[index]
    present = [r for r in replicates if r is not None]
    stacked = (
        np.stack(present, axis=1)
        if len(present) == len(replicates) and len({r.size for r in present}) == 1
        else None
    )
    return values, stacked, [item[1] for item in found]  # type: ignore[index]


def _regions(reports: Sequence[Report], method: str) -> list[str]:
    return list(_best(reports[0], method))


def instance_table(
    models: Mapping[str, Sequence[Report]], method: str = "spearman"
) -> pd.DataFrame:
    """One row per model and region: per-instance best SSMs, their mean and its interval."""
    rows = []
    for label, reports in models.items():
        for region in _regions(reports, method):
            values, replicates, populations = _values(reports, region, method)
            mean = float(values.mean())
            components = [mean_variance(values)]
            if replicates is not None:
                components.append(
                    (
                        float(jackknife_se(replicates.mean(axis=1)) ** 2),
                        float(replicates.shape[0] - 1),
                    )
                )
            se, df = combined_error(components)
            half = t_quantile(LEVEL, df) * se if se > 0 else float("nan")
            rows.append(
                {
                    "model": label,
                    "region": region,
                    "method": method,
                    "n_instances": values.size,
                    "ssm_mean": mean,
                    "ssm_sd": float(np.std(values, ddof=1)) if values.size > 1 else float("nan"),
                    "ssm_low": mean - half,
                    "ssm_high": mean + half,
                    "ssm_instances": ";".join(f"{v:.4f}" for v in values),
                    "populations": ";".join(populations),
                }
            )
    return pd.DataFrame(rows)


def compare_models(
    first: tuple[str, Sequence[Report]],
    second: tuple[str, Sequence[Report]],
    method: str = "spearman",
) -> pd.DataFrame:
    """Per region: instances of model A against instances of model B (best-population SSM)."""
    (label_a, reports_a), (label_b, reports_b) = first, second
    rows = []
    for region in _regions(reports_a, method):
        a, reps_a, _ = _values(reports_a, region, method)
        b, reps_b, _ = _values(reports_b, region, method)
        difference = float(a.mean() - b.mean())
        components = [mean_variance(a), mean_variance(b)]
        if reps_a is not None and reps_b is not None and reps_a.shape[0] == reps_b.shape[0]:
            paired = reps_a.mean(axis=1) - reps_b.mean(axis=1)  # same images left out
            components.append((float(jackknife_se(paired) ** 2), float(paired.size - 1)))
        se, df = combined_error(components)
        pooled = (
            float(
                np.sqrt(
                    ((a.size - 1) * np.var(a, ddof=1) + (b.size - 1) * np.var(b, ddof=1))
                    / (a.size + b.size - 2)
                )
            )
            if a.size > 1 and b.size > 1
            else float("nan")
        )
        from scipy.stats import t

        p_value = float(2 * t.sf(abs(difference) / se, df)) if se > 0 else float("nan")
        half = t_quantile(LEVEL, df) * se if se > 0 else float("nan")
        rows.append(
            {
                "region": region,
                "method": method,
                "model_a": label_a,
                "model_b": label_b,
                "n_a": a.size,
                "n_b": b.size,
                "ssm_a": float(a.mean()),
                "ssm_b": float(b.mean()),
                "difference": difference,
                "difference_low": difference - half,
                "difference_high": difference + half,
                "df": df,
                "p_value": p_value,
                "cohens_d": difference / pooled if pooled and pooled > 0 else float("nan"),
                "basis": "instances and images"
                if a.size > 1 and b.size > 1
                else "images only (one instance of a model)",
            }
        )
    return pd.DataFrame(rows)


def comparison_figure(
    models: Mapping[str, Sequence[Report]], path: Path, method: str = "spearman"
) -> None:
    """Per region: each model's instances (dots) and mean with its interval (bar)."""
    from mnc.neuro import figures

    table = instance_table(models, method)
    figures.instance_comparison(table.to_dict(orient="records"), path, method)


def write_outputs(
    models: Mapping[str, Sequence[Report]], output_dir: Path, method: str = "spearman"
) -> dict[str, pd.DataFrame]:
    """instances.csv, instances.png and (two models or more) comparison.csv against the first
    model; returns the tables."""
    from mnc.neuro.api import write_csv

    tables = {"instances": instance_table(models, method)}
    labels = list(models)
    if len(labels) > 1:
        tables["comparison"] = pd.concat(
            [
                compare_models((labels[0], models[labels[0]]), (other, models[other]), method)
                for other in labels[1:]
            ],
            ignore_index=True,
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        write_csv(output_dir / f"{name}.csv", table)
    comparison_figure(models, output_dir / "instances.png", method)
    return tables


def reports_by_model(reports: Sequence[Report]) -> dict[str, list[Report]]:
    """Reports grouped by their model label, in order."""
    grouped: dict[str, list[Report]] = {}
    for report in reports:
        grouped.setdefault(str(report.tables["rsa"]["model"].iloc[0]), []).append(report)
    return grouped


def describe(row: Mapping[str, Any]) -> str:
    """One line for a comparison row."""
    return (
        f"{row['region']}: {row['model_a']} {row['ssm_a']:.3f} vs {row['model_b']} "
        f"{row['ssm_b']:.3f}, difference {row['difference']:+.3f} "
        f"({row['difference_low']:+.3f} to {row['difference_high']:+.3f}), "
        f"p = {row['p_value']:.2g}, d = {row['cohens_d']:.2f} ({row['basis']})"
    )
