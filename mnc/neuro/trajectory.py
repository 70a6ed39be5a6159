"""Similarity to the brain along training: every kept checkpoint of a run, scored and tested.

``mnc train --keep-checkpoints 0,every:1`` keeps checkpoints with their validation top-1
(``checkpoints.json``). ``score_run`` scores each one (features and scores cached per
checkpoint: the cache keys hash the weights file) and writes

- ``trajectory.csv``: per checkpoint x region x method x kind (``ir_mapped``: the population
  the IR maps to the region; ``best``: the best population at that checkpoint) the SSM, its
  bootstrap interval and the region's noise ceiling; baselines as extra rows,
- ``trajectory_tests.csv`` and ``summary.json``: does similarity keep rising with accuracy?
- ``trajectory.png``: SSM against accuracy per region,
- ``physiology_trajectory.csv`` and ``physiology_before_after.png``: KS distances of response
  statistics, untrained (first kept checkpoint) against trained (last).

The test (``plateau_test``). Checkpoints in epoch order are split into an early and a late
half (sharing the middle one when their number is odd). In each half the SSM is regressed on
validation accuracy (least squares); the slope's 95 % interval comes from the image bootstrap,
paired across checkpoints (every checkpoint is scored on the same image resamples, so the
slope's uncertainty is that of the stimulus sample). Verdicts: *keeps rising* (late slope
above 0), *falls* (late slope below 0), *levels off* (early slope above 0, late slope
interval covering 0), *falls, then levels off* (early slope below 0, late interval covering
0), otherwise *inconclusive*; fewer than 4 checkpoints, or a half whose
accuracy spans less than half a percentage point, cannot be tested. Assumptions: checkpoints
are fixed (no training-seed variability), images are exchangeable, and SSM is roughly linear
in accuracy within each half. With few checkpoints or few images the test has little power,
so *inconclusive* is common and is not evidence of a plateau.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mnc.errors import UserFileError
from mnc.io import checkpoint_index
from mnc.io.atomic import write_text_atomic
from mnc.neuro import figures
from mnc.neuro.api import (
    BOOTSTRAP_TABLE,
    AnalysisOptions,
    NeuralSelection,
    Report,
    closest_populations,
    load_neural,
    metric_values,
    physiology_panel_choices,
    records,
    run_physiology,
    run_rsa,
    write_csv,
)
from mnc.neuro.layers import cre_short_name
from mnc.neuro.model_features import LoadedModel

LEVEL = 0.95
MIN_ACCURACY_SPAN = 0.005
TRAJECTORY_COLUMNS = ("model", "checkpoint", "epoch", "val_top1", "method", "region", "kind",
                      "population", "ssm", "ssm_low", "ssm_high", "ceiling_low",
                      "ceiling_high")
KINDS = {"ir_mapped": "population the IR maps", "best": "best population"}
_COLOURS = {"ir_mapped": "tab:blue", "best": "tab:orange"}


@dataclass
class TrajectoryReport:
    output_dir: Path
    trajectory: pd.DataFrame = field(default_factory=pd.DataFrame)
    tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    physiology: pd.DataFrame = field(default_factory=pd.DataFrame)
    conclusion: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


def _slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slopes of each row of ``y`` (..., K) on ``x`` (K,)."""
    centred = x - x.mean()
    return ((y - y.mean(axis=-1, keepdims=True)) @ centred) / float(centred @ centred)


def plateau_test(accuracy: Sequence[float] | np.ndarray, ssm: Sequence[float] | np.ndarray,
                 samples: np.ndarray | None, level: float = LEVEL) -> dict[str, Any]:
    """Early and late slopes of SSM on accuracy with paired-bootstrap intervals and a verdict.

    ``samples``: (n_boot, checkpoints) SSM on the same image resamples for every checkpoint.
    """
    x = np.asarray(accuracy, dtype=float)
    y = np.asarray(ssm, dtype=float)
    count = x.size
    result: dict[str, Any] = {"n_checkpoints": count}
    if count < 4 or not np.all(np.isfinite(y)):
        return {**result, "verdict": "not tested (needs 4 or more checkpoints)"}
    half = (count + 1) // 2
    segments = {"early": slice(0, half), "late": slice(count - half, count)}
    tail = (1.0 - level) / 2.0 * 100.0
    for name, part in segments.items():
        xs = x[part]
        if float(np.ptp(xs)) < MIN_ACCURACY_SPAN:
            return {**result, "verdict": f"not tested ({name} checkpoints differ by less "
                                         f"than {MIN_ACCURACY_SPAN:.1%} accuracy)"}
        result[f"{name}_slope"] = float(_slope(xs, y[part]))
        if samples is not None and samples.size:
            draws = _slope(xs, np.asarray(samples, dtype=float)[:, part])
            draws = draws[np.isfinite(draws)]
            low, high = np.percentile(draws, [tail, 100.0 - tail]) if draws.size else (
                np.nan, np.nan)
        else:
            low = high = np.nan
        result[f"{name}_slope_low"] = float(low)
        result[f"{name}_slope_high"] = float(high)
    if result["late_slope_low"] > 0:
        verdict = "keeps rising"
    elif result["late_slope_high"] < 0:
        verdict = "falls"
    elif result["early_slope_low"] > 0:
        verdict = "levels off"
    elif result["early_slope_high"] < 0:
        verdict = "falls, then levels off"
    else:
        verdict = "inconclusive"
    return {**result, "verdict": verdict}


def _kept(run: Path) -> list[checkpoint_index.KeptCheckpoint]:
    kept = checkpoint_index.read_index(run)
    if not kept:
        raise UserFileError(f"{run / checkpoint_index.INDEX_JSON}: lists no checkpoints")
    for item in kept:
        if not item.path(run).is_file():
            raise UserFileError(f"{item.path(run)}: listed in {checkpoint_index.INDEX_JSON} "
                                f"but missing")
    return kept


def is_run_folder(path: str | Path) -> bool:
    return Path(path).is_dir() and checkpoint_index.has_index(Path(path))


def score_run(spec: str | Path, run: str | Path, source: Any, output_dir: str | Path,
              cache_dir: str | Path | None = None,
              selection: NeuralSelection | None = None,
              options: AnalysisOptions | None = None,
              baselines: Sequence[LoadedModel] = (),
              analyses: Sequence[str] = ("rsa", "physiology"),
              progress: Callable[[str], Any] | None = None) -> TrajectoryReport:
    """Score every kept checkpoint of ``run`` (and each baseline) against the recordings."""
    from mnc.neuro.model_features import load_model

    selection = selection or NeuralSelection()
    options = options or AnalysisOptions()
    run = Path(run).expanduser()
    out = Path(output_dir).expanduser()
    cache_root = Path(cache_dir).expanduser() if cache_dir else out / "cache"
    kept = _kept(run)
    data, _ = load_neural(source, selection, cache_root)
    report = TrajectoryReport(output_dir=out)
    rsa_reports: list[Report] = []
    physiology_reports: list[Report] = []
    for item in kept:
        loaded = load_model(spec, str(item.path(run)))
        if "rsa" in analyses:
            rsa_reports.append(run_rsa(loaded, data, None, cache_root, selection, options,
                                       progress(f"{item.name} rsa") if progress else None))
        if "physiology" in analyses:
            physiology_reports.append(run_physiology(
                loaded, data, None, cache_root, selection, options,
                progress(f"{item.name} physiology") if progress else None))
    if rsa_reports:
        baseline_reports = [run_rsa(model, data, None, cache_root, selection, options)
                            for model in baselines]
        _rsa_outputs(report, kept, rsa_reports, baseline_reports, options)
    if physiology_reports:
        _physiology_outputs(report, kept, physiology_reports)
    summary = {"run": str(run), "checkpoints": [vars(item) for item in kept],
               "baselines": [model.label for model in baselines],
               "test": "paired image-bootstrap slopes of SSM on validation top-1, early vs "
                       "late half of the checkpoints (see README)",
               "conclusion": report.conclusion,
               "tests": records(report.tests) if not report.tests.empty else [],
               "files": report.files}
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=1, default=str))
    report.files["summary"] = str(out / "summary.json")
    return report


def _bootstrap(report: Report) -> dict[tuple[str, str, str], np.ndarray]:
    table = report.tables.get(BOOTSTRAP_TABLE)
    if table is None or table.empty:
        return {}
    return {(r["region"], r["method"], r["population"]): np.asarray(r["samples"], dtype=float)
            for r in table.to_dict(orient="records")}


def _rsa_rows(label: str, checkpoint: str, epoch: Any, accuracy: Any,
              report: Report) -> list[dict[str, Any]]:
    rsa = report.tables["rsa"]
    lookup = {(r["region"], r["method"], r["population"]): r
              for r in rsa.to_dict(orient="records")}
    rows = []
    for best in report.tables["rsa_best"].to_dict(orient="records"):
        common = {"model": label, "checkpoint": checkpoint, "epoch": epoch,
                  "val_top1": accuracy, "method": best["method"], "region": best["region"],
                  "ceiling_low": best["nc_lower"], "ceiling_high": best["nc_upper"]}
        for kind, population in (("ir_mapped", best["ir_population"]),
                                 ("best", best["population"])):
            row = lookup.get((best["region"], best["method"], population))
            if row is None:
                continue
            rows.append({**common, "kind": kind, "population": population, "ssm": row["ssm"],
                         "ssm_low": row["ssm_ci_low"], "ssm_high": row["ssm_ci_high"]})
    return rows


def _rsa_outputs(report: TrajectoryReport, kept: Sequence[checkpoint_index.KeptCheckpoint],
                 rsa_reports: Sequence[Report], baseline_reports: Sequence[Report],
                 options: AnalysisOptions) -> None:
    out = report.output_dir
    rows: list[dict[str, Any]] = []
    for item, scored in zip(kept, rsa_reports, strict=True):
        rows += _rsa_rows(str(scored.tables["rsa"]["model"].iloc[0]), item.name, item.epoch,
                          item.val_top1, scored)
    for scored in baseline_reports:
        label = str(scored.tables["rsa"]["model"].iloc[0])
        rows += [row for row in _rsa_rows(label, "baseline", np.nan, np.nan, scored)
                 if row["kind"] == "best"]
    table = pd.DataFrame(rows, columns=list(TRAJECTORY_COLUMNS))
    table["epoch"] = table["epoch"].astype("Int64")
    report.trajectory = table
    write_csv(out / "trajectory.csv", table)
    report.files["trajectory"] = str(out / "trajectory.csv")

    primary = options.methods[0]
    accuracy = np.array([item.val_top1 for item in kept])
    draws = [_bootstrap(scored) for scored in rsa_reports]
    tests = []
    own = table[(table["checkpoint"] != "baseline") & (table["method"] == primary)]
    for (region, kind), group in own.groupby(["region", "kind"], sort=False):
        if len(group) != len(kept):
            continue
        ssm = group["ssm"].to_numpy(dtype=float)
        populations = group["population"].tolist()
        found = [draw.get((region, primary, name)) for draw, name in
                 zip(draws, populations, strict=True)]
        samples = [s for s in found if s is not None and s.size]
        matrix = (np.stack(samples, axis=1) if len(samples) == len(found)
                  and len({s.size for s in samples}) == 1 else None)
        result = plateau_test(accuracy, ssm, matrix)
        tests.append({"region": region, "kind": kind, "method": primary,
                      "population_first": populations[0], "population_last": populations[-1],
                      "ssm_first": ssm[0], "ssm_last": ssm[-1],
                      "ssm_max": float(np.max(ssm)),
                      "ceiling_low": float(group["ceiling_low"].iloc[0]),
                      "ceiling_high": float(group["ceiling_high"].iloc[0]), **result})
    report.tests = pd.DataFrame(tests)
    write_csv(out / "trajectory_tests.csv", report.tests)
    report.files["trajectory_tests"] = str(out / "trajectory_tests.csv")
    report.conclusion = _conclusion(report.tests)
    _trajectory_figure(out / "trajectory.png", table, primary, kept)
    report.files["trajectory_figure"] = str(out / "trajectory.png")


def _conclusion(tests: pd.DataFrame) -> dict[str, str]:
    lines = {}
    for kind, description in KINDS.items():
        part = tests[tests["kind"] == kind] if not tests.empty else tests
        if part.empty:
            continue
        counts = part["verdict"].value_counts()
        text = ", ".join(f"{verdict} in {count} of {len(part)} regions"
                         for verdict, count in counts.items())
        lines[kind] = f"{description}: similarity {text}"
    return lines


def _trajectory_figure(path: Path, table: pd.DataFrame, method: str,
                       kept: Sequence[checkpoint_index.KeptCheckpoint]) -> None:
    chosen = table[table["method"] == method]
    own = chosen[chosen["checkpoint"] != "baseline"]
    panels = []
    for region, group in own.groupby("region", sort=False):
        lines = []
        for kind, description in KINDS.items():
            part = group[group["kind"] == kind]
            if part.empty:
                continue
            lines.append({"label": description, "accuracy": part["val_top1"].to_numpy(float),
                          "ssm": part["ssm"].to_numpy(float),
                          "low": part["ssm_low"].to_numpy(float),
                          "high": part["ssm_high"].to_numpy(float),
                          "epochs": part["epoch"].tolist(), "colour": _COLOURS[kind]})
        baselines = [(f"{row['model']} (best layer)", float(row["ssm"]))
                     for row in chosen[(chosen["checkpoint"] == "baseline")
                                       & (chosen["region"] == region)].to_dict("records")]
        mapped = group[group["kind"] == "ir_mapped"]["population"]
        title = f"{region} (IR: {mapped.iloc[0]})" if len(mapped) else str(region)
        panels.append({"title": title, "lines": lines, "baselines": baselines,
                       "ceiling": (float(group["ceiling_low"].iloc[0]),
                                   float(group["ceiling_high"].iloc[0]))})
    figures.trajectory(panels, path, method)


def _physiology_outputs(report: TrajectoryReport,
                        kept: Sequence[checkpoint_index.KeptCheckpoint],
                        scored: Sequence[Report]) -> None:
    out = report.output_dir
    rows = []
    for item, result in zip(kept, scored, strict=True):
        table = result.tables["physiology"]
        closest = {(c["region"], c["metric"]): c["closest"]
                   for c in closest_populations(table.to_dict(orient="records"))}
        for row in table.to_dict(orient="records"):
            kinds = (["ir_mapped"] if row["ir_mapped"] else []) + (
                ["closest"] if closest.get((row["region"], row["metric"])) == row["population"]
                else [])
            for kind in kinds:
                rows.append({"model": row["model"], "checkpoint": item.name,
                             "epoch": item.epoch, "val_top1": item.val_top1,
                             "region": row["region"], "metric": row["metric"], "kind": kind,
                             "population": row["population"],
                             "ks_statistic": row["ks_statistic"], "p_value": row["p_value"],
                             "median_model": row["median_model"],
                             "median_neural": row["median_neural"]})
    report.physiology = pd.DataFrame(rows)
    write_csv(out / "physiology_trajectory.csv", report.physiology)
    report.files["physiology_trajectory"] = str(out / "physiology_trajectory.csv")
    _before_after_figure(out / "physiology_before_after.png", kept, scored)
    report.files["physiology_before_after"] = str(out / "physiology_before_after.png")


def _before_after_figure(path: Path, kept: Sequence[checkpoint_index.KeptCheckpoint],
                         scored: Sequence[Report]) -> None:
    """Per region (IR-mapped population, else the one closest after training) and metric:
    recorded cells, the untrained network and the trained one, with KS statistics."""
    first, last = scored[0], scored[-1]
    before = _ks_lookup(first.tables["physiology"])
    after = _ks_lookup(last.tables["physiology"])
    rows = last.tables["physiology"].to_dict(orient="records")
    panels = []
    for region, responses, metric, name, mapped in physiology_panel_choices(last.regions, rows,
                                                                            4):
        how = "population the IR maps" if mapped else "closest after training"
        key = (region.label, metric, name)
        series = [
            (metric_values(metric, responses), f"{cre_short_name(region.cre_line)} cells"),
            (metric_values(metric, first.summaries[name].unit_sample),
             f"epoch {kept[0].epoch} units (KS {before.get(key, np.nan):.2f})"),
            (metric_values(metric, last.summaries[name].unit_sample),
             f"epoch {kept[-1].epoch} units (KS {after.get(key, np.nan):.2f})"),
        ]
        panels.append({"title": f"{region.label} cells vs {name} units\n({how})",
                       "metric": metric, "series": series})
    figures.distribution_panels(panels, path, columns=2)


def _ks_lookup(table: pd.DataFrame) -> Mapping[tuple[str, str, str], float]:
    return {(r["region"], r["metric"], r["population"]): float(r["ks_statistic"])
            for r in table.to_dict(orient="records")}
