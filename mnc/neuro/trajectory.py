"""Similarity to the brain along training: every kept checkpoint of a run, scored and tested.

``mnc train --keep-checkpoints 0,every:1`` keeps checkpoints with their validation top-1
(``checkpoints.json``). ``score_run`` scores each one (features and scores cached per
checkpoint: the cache keys hash the weights file) and writes

- ``trajectory.csv``: per checkpoint x region x method x kind (``ir_mapped``: the population
  the IR maps to the region; ``best``: the best population at that checkpoint) the SSM, its
  jackknife interval and the region's noise ceiling; baselines as extra rows,
- ``trajectory_tests.csv`` and ``summary.json``: does similarity keep rising with accuracy?
- ``trajectory.png``: SSM against accuracy per region,
- ``physiology_trajectory.csv`` and ``physiology_before_after.png``: KS distances of response
  statistics, untrained (first kept checkpoint) against trained (last).

Several runs of one spec (training seeds: ``score_runs``, ``mnc rsa --weights RUN_A,RUN_B``)
are scored alike; the test then uses the seed-to-seed variation of the slopes as well as the
image jackknife. The test and its verdicts: ``mnc.neuro.trajectory_test`` (*keeps rising*,
*levels off* only on positive evidence, *falls*, *cannot tell* with its reason). Any torch
module's checkpoints: ``compare_trajectory``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mnc.errors import UserFileError
from mnc.io import checkpoint_index, strict_json
from mnc.io.atomic import write_text_atomic
from mnc.neuro import figures
from mnc.neuro.api import (
    REPLICATES_TABLE,
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
from mnc.neuro.cached_results import output_and_cache_folders
from mnc.neuro.layers import cre_short_name
from mnc.neuro.model_features import LoadedModel
from mnc.neuro.trajectory_test import conclusion_sentence, trajectory_test

TRAJECTORY_COLUMNS = ("model", "instance", "checkpoint", "epoch", "val_top1", "method",
                      "region", "kind", "population", "ssm", "ssm_low", "ssm_high",
                      "ceiling_low", "ceiling_high")
KINDS = {"ir_mapped": "population the IR maps", "best": "best population"}
_COLOURS = {"ir_mapped": "tab:blue", "best": "tab:orange"}
TEST_DESCRIPTION = ("early vs late slope of SSM on validation top-1 with leave-one-image-out "
                    "jackknife intervals (and seed-to-seed variation with several runs); "
                    "'levels off' needs positive evidence (see README)")


@dataclass
class TrajectoryReport:
    output_dir: Path | None
    trajectory: pd.DataFrame = field(default_factory=pd.DataFrame)
    tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    physiology: pd.DataFrame = field(default_factory=pd.DataFrame)
    conclusion: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpoint:
    """One scored point of a trajectory: which instance (run, seed), its name and accuracy."""

    instance: str
    name: str
    epoch: int | None
    accuracy: float
    load: Callable[[], LoadedModel] = field(repr=False, compare=False)


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


def instance_labels(paths: Sequence[str | Path]) -> list[str]:
    """Short distinct labels for runs or weights files: the names, made unique by position."""
    names = [Path(p).name or str(p) for p in paths]
    if len(set(names)) == len(names):
        return names
    return [f"{index}:{name}" for index, name in enumerate(names)]


def score_run(spec: str | Path, run: str | Path, source: Any, output_dir: str | Path,
              cache_dir: str | Path | None = None,
              selection: NeuralSelection | None = None,
              options: AnalysisOptions | None = None,
              baselines: Sequence[LoadedModel] = (),
              analyses: Sequence[str] = ("rsa", "physiology"),
              progress: Callable[[str], Any] | None = None) -> TrajectoryReport:
    """Score every kept checkpoint of ``run`` (and each baseline) against the recordings."""
    return score_runs(spec, [run], source, output_dir, cache_dir, selection, options,
                      baselines, analyses, progress)


def score_runs(spec: str | Path, runs: Sequence[str | Path], source: Any,
               output_dir: str | Path, cache_dir: str | Path | None = None,
               selection: NeuralSelection | None = None,
               options: AnalysisOptions | None = None,
               baselines: Sequence[LoadedModel] = (),
               analyses: Sequence[str] = ("rsa", "physiology"),
               progress: Callable[[str], Any] | None = None) -> TrajectoryReport:
    """Score every kept checkpoint of each run (seeds of one spec) and test the trajectories.

    Runs must keep the same number of checkpoints (matched by position: keep the same epochs).
    """
    from mnc.neuro.model_features import load_model

    folders = [Path(run).expanduser() for run in runs]
    labels = instance_labels(folders)
    instances = []
    for label, folder in zip(labels, folders, strict=True):
        instances.append([Checkpoint(label, item.name, item.epoch, item.val_top1,
                                     partial(load_model, spec, str(item.path(folder))))
                          for item in _kept(folder)])
    return score_checkpoints(instances, source, output_dir, cache_dir, selection, options,
                             baselines, analyses, progress,
                             {"runs": [str(folder) for folder in folders]})


def score_checkpoints(instances: Sequence[Sequence[Checkpoint]], source: Any,
                      output_dir: str | Path | None, cache_dir: str | Path | None = None,
                      selection: NeuralSelection | None = None,
                      options: AnalysisOptions | None = None,
                      baselines: Sequence[LoadedModel] = (),
                      analyses: Sequence[str] = ("rsa", "physiology"),
                      progress: Callable[[str], Any] | None = None,
                      info: Mapping[str, Any] | None = None) -> TrajectoryReport:
    """Score the checkpoints of one or more instances (seeds) and test each trajectory."""
    selection = selection or NeuralSelection()
    options = options or AnalysisOptions()
    _check_pairing(instances)
    out, cache_root = output_and_cache_folders(output_dir, cache_dir)
    data, _ = load_neural(source, selection, cache_root)
    report = TrajectoryReport(output_dir=out)
    flat = [item for items in instances for item in items]
    rsa_reports: list[Report] = []
    physiology_reports: list[Report] = []
    for item in flat:
        loaded = item.load()
        title = f"{item.instance} {item.name}" if len(instances) > 1 else item.name

        def bar(analysis: str, title: str = title) -> Any:
            return progress(f"{title} {analysis}") if progress else None

        if "rsa" in analyses:
            rsa_reports.append(run_rsa(loaded, data, None, cache_root, selection, options,
                                       bar("rsa")))
        if "physiology" in analyses:
            physiology_reports.append(run_physiology(loaded, data, None, cache_root, selection,
                                                     options, bar("physiology")))
    if rsa_reports:
        baseline_reports = [run_rsa(model, data, None, cache_root, selection, options)
                            for model in baselines]
        _rsa_outputs(report, instances, rsa_reports, baseline_reports, options)
    if physiology_reports:
        _physiology_outputs(report, flat, physiology_reports)
    if out is not None:
        _write_summary(out, report, flat, baselines, info)
    return report


def _check_pairing(instances: Sequence[Sequence[Checkpoint]]) -> None:
    """Every instance has checkpoints, as many as the others (they pair by position)."""
    counts = {len(items) for items in instances}
    if not instances or 0 in counts:
        raise UserFileError("a trajectory needs at least one checkpoint")
    if len(counts) > 1:
        sizes = ", ".join(f"{items[0].instance}: {len(items)}" for items in instances)
        raise UserFileError(f"runs keep different numbers of checkpoints ({sizes}); keep the "
                            f"same epochs in every run so checkpoints pair up")


def _write_summary(out: Path, report: TrajectoryReport, flat: Sequence[Checkpoint],
                   baselines: Sequence[LoadedModel], info: Mapping[str, Any] | None) -> None:
    summary = {**(info or {}),
               "checkpoints": [{"instance": c.instance, "name": c.name, "epoch": c.epoch,
                                "val_top1": c.accuracy} for c in flat],
               "baselines": [model.label for model in baselines],
               "test": TEST_DESCRIPTION, "conclusion": report.conclusion,
               "tests": records(report.tests) if not report.tests.empty else [],
               "files": report.files}
    write_text_atomic(out / "summary.json", strict_json.dumps(summary, indent=1))
    report.files["summary"] = str(out / "summary.json")


def compare_trajectory(checkpoints: Sequence[tuple[str, float, Any]]
                       | Mapping[str, Sequence[tuple[str, float, Any]]],
                       layers: Sequence[str], recordings: Any, *, preprocess: Any = None,
                       output_dir: str | Path | None = None,
                       cache_dir: str | Path | None = None, label: str | None = None,
                       selection: NeuralSelection | None = None,
                       options: AnalysisOptions | None = None,
                       baselines: Sequence[LoadedModel] = (),
                       analyses: Sequence[str] = ("rsa",)) -> TrajectoryReport:
    """Similarity along training of any torch module, with the trajectory test.

    ``checkpoints``: ``(label, accuracy, module)`` in training order, or a mapping
    ``{seed label: that sequence}`` for several training seeds (the same number of
    checkpoints in each). Returns a report whose ``tests`` has one row per region and kind
    (``verdict`` column) and ``trajectory`` one row per checkpoint x region x kind.
    """
    from mnc.neuro.any_model import wrap_module

    series = dict(checkpoints) if isinstance(checkpoints, Mapping) else {"run": checkpoints}
    instances = []
    for instance, items in series.items():
        chosen = []
        for index, entry in enumerate(items):
            if not isinstance(entry, tuple | list) or len(entry) != 3:
                raise UserFileError(f"checkpoints[{instance!r}][{index}]: expected (label, "
                                    f"accuracy, module), got {type(entry).__name__}")
            name, accuracy, module = entry
            chosen.append(Checkpoint(str(instance), str(name), None, float(accuracy),
                                     partial(wrap_module, module, layers, label=label,
                                             preprocess=preprocess)))
        instances.append(chosen)
    return score_checkpoints(instances, recordings, output_dir, cache_dir, selection, options,
                             baselines, analyses)


def _replicates(report: Report) -> dict[tuple[str, str, str], np.ndarray]:
    table = report.tables.get(REPLICATES_TABLE)
    if table is None or table.empty:
        return {}
    return {(r["region"], r["method"], r["kind"]): np.asarray(r["samples"], dtype=float)
            for r in table.to_dict(orient="records")}


def _rsa_rows(label: str, instance: str, checkpoint: str, epoch: Any, accuracy: Any,
              report: Report) -> list[dict[str, Any]]:
    rsa = report.tables["rsa"]
    lookup = {(r["region"], r["method"], r["population"]): r
              for r in rsa.to_dict(orient="records")}
    rows = []
    for best in report.tables["rsa_best"].to_dict(orient="records"):
        common = {"model": label, "instance": instance, "checkpoint": checkpoint,
                  "epoch": epoch, "val_top1": accuracy, "method": best["method"],
                  "region": best["region"], "ceiling_low": best["nc_lower"],
                  "ceiling_high": best["nc_upper"]}
        mapped = lookup.get((best["region"], best["method"], best["ir_population"]))
        if mapped is not None:
            rows.append({**common, "kind": "ir_mapped", "population": mapped["population"],
                         "ssm": mapped["ssm"], "ssm_low": mapped["ssm_ci_low"],
                         "ssm_high": mapped["ssm_ci_high"]})
        # the best population's interval has the choice re-made in every replicate
        rows.append({**common, "kind": "best", "population": best["population"],
                     "ssm": best["ssm"], "ssm_low": best["ssm_ci_low"],
                     "ssm_high": best["ssm_ci_high"]})
    return rows


def _rsa_outputs(report: TrajectoryReport, instances: Sequence[Sequence[Checkpoint]],
                 rsa_reports: Sequence[Report], baseline_reports: Sequence[Report],
                 options: AnalysisOptions) -> None:
    """The trajectory table, its tests per region and kind, and their files."""
    table = _trajectory_table(instances, rsa_reports, baseline_reports)
    report.trajectory = table
    primary = options.methods[0]
    report.tests = _trajectory_tests(table, instances, rsa_reports, primary)
    report.conclusion = _conclusion(report.tests)
    out = report.output_dir
    if out is None:
        return
    write_csv(out / "trajectory.csv", table)
    report.files["trajectory"] = str(out / "trajectory.csv")
    write_csv(out / "trajectory_tests.csv", report.tests)
    report.files["trajectory_tests"] = str(out / "trajectory_tests.csv")
    _trajectory_figure(out / "trajectory.png", table, primary)
    report.files["trajectory_figure"] = str(out / "trajectory.png")


def _trajectory_table(instances: Sequence[Sequence[Checkpoint]], rsa_reports: Sequence[Report],
                      baseline_reports: Sequence[Report]) -> pd.DataFrame:
    """One row per checkpoint x region x method x kind, then the baselines' best rows."""
    flat = [item for items in instances for item in items]
    rows: list[dict[str, Any]] = []
    for item, scored in zip(flat, rsa_reports, strict=True):
        rows += _rsa_rows(str(scored.tables["rsa"]["model"].iloc[0]), item.instance, item.name,
                          item.epoch, item.accuracy, scored)
    for scored in baseline_reports:
        label = str(scored.tables["rsa"]["model"].iloc[0])
        rows += [row for row in _rsa_rows(label, label, "baseline", None, np.nan, scored)
                 if row["kind"] == "best"]
    table = pd.DataFrame(rows, columns=list(TRAJECTORY_COLUMNS))
    table["epoch"] = table["epoch"].astype("Int64")
    return table


def _trajectory_tests(table: pd.DataFrame, instances: Sequence[Sequence[Checkpoint]],
                      rsa_reports: Sequence[Report], primary: str) -> pd.DataFrame:
    """The trajectory test of each region and kind (first method) over every instance."""
    seeds, count = len(instances), len(instances[0])
    accuracy = np.array([[item.accuracy for item in items] for items in instances])
    draws = [_replicates(scored) for scored in rsa_reports]
    tests = []
    own = table[(table["checkpoint"] != "baseline") & (table["method"] == primary)]
    for (region, kind), group in own.groupby(["region", "kind"], sort=False):
        if len(group) != seeds * count:
            continue
        ssm = group["ssm"].to_numpy(dtype=float).reshape(seeds, count)
        populations = group["population"].tolist()
        replicates = _stacked_replicates([draw.get((region, primary, kind)) for draw in draws],
                                         seeds, count)
        result = trajectory_test(accuracy, ssm, replicates)
        tests.append({"region": region, "kind": kind, "method": primary,
                      "population_first": populations[0], "population_last": populations[-1],
                      "ssm_first": float(ssm[:, 0].mean()), "ssm_last": float(ssm[:, -1].mean()),
                      "ssm_max": float(np.max(ssm.mean(axis=0))),
                      "ceiling_low": float(group["ceiling_low"].iloc[0]),
                      "ceiling_high": float(group["ceiling_high"].iloc[0]), **result})
    return pd.DataFrame(tests)


def _stacked_replicates(found: Sequence[np.ndarray | None], seeds: int, count: int
                        ) -> np.ndarray | None:
    """The checkpoints' jackknife replicates as (replicate, seed, checkpoint), or None unless
    every checkpoint has as many."""
    present = [s for s in found if s is not None]
    if len(present) != len(found) or len({s.size for s in present}) != 1:
        return None
    return np.stack(present, axis=1).reshape(-1, seeds, count)


def _conclusion(tests: pd.DataFrame) -> dict[str, str]:
    lines = {}
    for kind, description in KINDS.items():
        part = tests[tests["kind"] == kind] if not tests.empty else tests
        if part.empty:
            continue
        lines[kind] = conclusion_sentence(part["verdict"].tolist(), description)
    return lines


def _trajectory_figure(path: Path, table: pd.DataFrame, method: str) -> None:
    chosen = table[table["method"] == method]
    own = chosen[chosen["checkpoint"] != "baseline"]
    panels = []
    for region, group in own.groupby("region", sort=False):
        lines = []
        several = group["instance"].nunique() > 1
        for kind, description in KINDS.items():
            for instance, part in group[group["kind"] == kind].groupby("instance", sort=False):
                lines.append({"label": f"{description} ({instance})" if several
                              else description,
                              "accuracy": part["val_top1"].to_numpy(float),
                              "ssm": part["ssm"].to_numpy(float),
                              "low": part["ssm_low"].to_numpy(float),
                              "high": part["ssm_high"].to_numpy(float),
                              "epochs": [e for e in part["epoch"].tolist() if e is not pd.NA],
                              "colour": _COLOURS[kind]})
        baselines = [(f"{row['model']} (best layer)", float(row["ssm"]))
                     for row in chosen[(chosen["checkpoint"] == "baseline")
                                       & (chosen["region"] == region)].to_dict("records")]
        mapped = group[group["kind"] == "ir_mapped"]["population"]
        title = f"{region} (IR: {mapped.iloc[0]})" if len(mapped) else str(region)
        panels.append({"title": title, "lines": lines, "baselines": baselines,
                       "ceiling": (float(group["ceiling_low"].iloc[0]),
                                   float(group["ceiling_high"].iloc[0]))})
    figures.trajectory(panels, path, method)


def _physiology_outputs(report: TrajectoryReport, kept: Sequence[Checkpoint],
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
                rows.append({"model": row["model"], "instance": item.instance,
                             "checkpoint": item.name, "epoch": item.epoch,
                             "val_top1": item.accuracy,
                             "region": row["region"], "metric": row["metric"], "kind": kind,
                             "response_measure": row["response_measure"],
                             "population": row["population"],
                             "ks_statistic": row["ks_statistic"], "p_value": row["p_value"],
                             "median_model": row["median_model"],
                             "median_neural": row["median_neural"]})
    report.physiology = pd.DataFrame(rows)
    if out is None:
        return
    write_csv(out / "physiology_trajectory.csv", report.physiology)
    report.files["physiology_trajectory"] = str(out / "physiology_trajectory.csv")
    # the first instance's first and last checkpoints
    count = sum(1 for item in kept if item.instance == kept[0].instance)
    _before_after_figure(out / "physiology_before_after.png", kept[:count], scored[:count])
    report.files["physiology_before_after"] = str(out / "physiology_before_after.png")


def _before_after_figure(path: Path, kept: Sequence[Checkpoint],
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
             f"{_when(kept[0])} units (KS {before.get(key, np.nan):.2f})"),
            (metric_values(metric, last.summaries[name].unit_sample),
             f"{_when(kept[-1])} units (KS {after.get(key, np.nan):.2f})"),
        ]
        panels.append({"title": f"{region.label} cells vs {name} units\n({how})",
                       "metric": metric, "series": series})
    figures.distribution_panels(panels, path, columns=2)


def _when(item: Checkpoint) -> str:
    return f"epoch {item.epoch}" if item.epoch is not None else item.name


def _ks_lookup(table: pd.DataFrame) -> Mapping[tuple[str, str, str], float]:
    return {(r["region"], r["metric"], r["population"]): float(r["ks_statistic"])
            for r in table.to_dict(orient="records")}
