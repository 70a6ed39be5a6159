"""Python API of the neural comparison: ``run_rsa`` and ``run_physiology``.

Pipeline: recordings (a Brain Observatory cache, an .npz/NetCDF file or ``NeuralData`` in
memory) -> (stimuli, trials, cells) responses -> regions (area x Cre line x layer); the
images shown -> model input -> per-population summaries (cached by IR hash + weights) ->
RSA, predictivity, physiology -> CSV tables, figures, summary.json.
Scores are cached too, keyed by the feature key, the neural data and every option.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mnc.errors import UserFileError
from mnc.io import strict_json
from mnc.io.atomic import atomic_open, write_text_atomic
from mnc.neuro import figures
from mnc.neuro.allen import load_natural_scenes
from mnc.neuro.cache import (
    FeatureCache,
    ScoreCache,
    cache_miss,
    entry_exists,
    feature_key,
    read_cached_json,
    stable_key,
    write_cache_text,
)
from mnc.neuro.interop import as_recordings
from mnc.neuro.jackknife import interval as jackknife_interval
from mnc.neuro.jackknife import jackknife_se
from mnc.neuro.layers import cell_class, cre_short_name
from mnc.neuro.model_features import (
    LoadedModel,
    chosen_steps,
    is_stepped,
    summarize_features,
)
from mnc.neuro.options import AnalysisOptions, NeuralSelection
from mnc.neuro.recording_files import is_recordings_file, load_recordings
from mnc.neuro.recordings import NeuralData
from mnc.neuro.regions import Region, group_regions
from mnc.neuro.representation import FeatureSummary

Progress = Callable[[int, int], None]
PIXELS = "input"
"""The image itself: scored as a control (rsa.csv), never chosen as a best population."""
REPLICATES_TABLE = "rsa_jackknife"
"""Table of leave-one-image-out SSM replicates (not written as CSV: a list per row)."""


@dataclass
class Report:
    """What a run produced: tables (pandas DataFrames), written files, whether caches answered.

    Every table's first column is ``model`` (the model's label), so the tables of MouseNet and
    of a baseline concatenate (``pandas.concat``) into one.
    """

    output_dir: Path | None
    files: dict[str, str] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    features_cached: bool = False
    scores_cached: bool = False
    feature_key: str = ""
    summaries: dict[str, FeatureSummary] = field(default_factory=dict, repr=False)
    """Per-population summaries of the model's responses (for RDMs and figures)."""
    regions: list[Region] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"output_dir": str(self.output_dir) if self.output_dir else None,
                "files": self.files, "features_cached": self.features_cached,
                "scores_cached": self.scores_cached, "feature_key": self.feature_key,
                "tables": {name: records(table) for name, table in self.tables.items()}}

    def rdms(self) -> Any:
        """xarray Dataset of the model's RDMs (population, image, image) and the regions',
        the images' stimulus index as coordinates, the dissimilarity in the attrs."""
        from mnc.neuro.arrays import rdm_dataset

        return rdm_dataset(self.summaries, self.regions, self.label)

    def to_rsatoolbox(self) -> Any:
        """The same RDMs as one ``rsatoolbox.rdm.RDMs`` (descriptors ``name``, ``kind``:
        model or neural, ``model``; pattern descriptor ``stimulus``), for rsatoolbox's own
        comparisons, inference and plots."""
        from mnc.neuro.interop import report_rdms

        return report_rdms(self.summaries, self.regions, self.label)

    @property
    def label(self) -> str:
        """The model's label (the ``model`` column of every table)."""
        for table in self.tables.values():
            if "model" in table.columns and len(table):
                return str(table["model"].iloc[0])
        return "model"


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a table as plain dicts (JSON-ready: numpy scalars become Python numbers)."""
    return [{key: _plain(value) for key, value in row.items()}
            for row in table.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _frames(tables: Mapping[str, Sequence[Mapping[str, Any]]], label: str
            ) -> dict[str, pd.DataFrame]:
    """Rows -> DataFrames with the ``model`` column first."""
    frames = {}
    for name, rows in tables.items():
        frame = pd.DataFrame(list(rows))
        if "model" in frame.columns:
            frame = frame.drop(columns="model")
        frame.insert(0, "model", label)
        frames[name] = frame
    return frames


# ---------------------------------------------------------------------------------- inputs

NeuralSource = NeuralData | str | Path
"""Recordings in memory, a Brain Observatory cache folder, or an ``.npz``/NetCDF file."""


def load_neural(source: NeuralSource, selection: NeuralSelection,
                cache_root: Path | None) -> tuple[NeuralData, list[Region]]:
    """The selected cells of ``source`` and their regions (each with ``min_cells`` or more).
    ``source`` may also be an ``xarray.Dataset`` or ``rsatoolbox.data.Dataset``
    (``mnc.neuro.interop``)."""
    source = as_recordings(source)
    if isinstance(source, NeuralData) or is_recordings_file(source):
        data = source if isinstance(source, NeuralData) else load_recordings(source)
        data = data.select(selection.areas, selection.cre_lines, selection.depths_um)
    else:
        data = load_natural_scenes(
            source, areas=selection.areas, cre_lines=selection.cre_lines,
            depths_um=selection.depths_um, window=selection.window,
            max_per_group=selection.max_per_group, allow_download=selection.allow_download,
            skip_missing=selection.skip_missing,
            response_cache=cache_root / "responses" if cache_root else None)
    counts = data.trial_counts
    if counts.min() < 2:
        cell = int(counts.argmin())
        raise UserFileError(f"{data.source}: cell {cell} (session {data.session[cell]}) has "
                            f"{int(counts[cell])} trial(s); split-half analyses need at least 2")
    regions = group_regions(data, min_cells=selection.min_cells)
    if not regions:
        raise UserFileError(f"{data.source}: no brain region has at least "
                            f"{selection.min_cells} recorded cells in the selection (lower "
                            "--min-cells)")
    return data, regions


def population_summaries(loaded: LoadedModel, raw_images: np.ndarray, options: AnalysisOptions,
                         cache_root: Path | None, progress: Progress | None = None
                         ) -> tuple[dict[str, FeatureSummary], str, bool]:
    """Per-population summaries of the model's responses to the images, from cache if present.

    Returns (summaries in network order, feature key, whether the cache answered);
    ``cache_root=None`` computes without a cache.
    """
    model_input = loaded.model_input(raw_images, options.normalize)
    settings: dict[str, Any] = {"max_units": options.max_units, "seed": options.seed}
    if is_stepped(loaded.model):  # feed-forward keys stay as they were
        steps = chosen_steps(loaded.model, options.step)
        settings["steps"] = [steps.start, steps.stop - 1]
    key = feature_key(loaded.network_key, loaded.weights_key, model_input, settings)
    cache = FeatureCache(cache_root, key) if cache_root is not None else None
    index = cache.folder / "index.json" if cache is not None else None
    if cache is not None and index is not None and entry_exists(index):
        names = read_cached_json(index)
        if names is not None and (not isinstance(names, list) or
                                  not all(isinstance(name, str) for name in names)):
            cache_miss(index, "expected a list of population names")
            names = None
        cached = cache.load(names) if names is not None else None
        if cached is not None:
            return cached, key, True
    summaries = summarize_features(loaded.model, model_input, options.batch_size,
                                   max_units=options.max_units, seed=options.seed,
                                   scratch_dir=None, progress=progress, step=options.step)
    order = [p.name for p in loaded.populations if p.name in summaries]
    order += [name for name in summaries if name not in order]
    summaries = {name: summaries[name] for name in order}
    if cache is not None and index is not None:
        cache.save(summaries)
        write_cache_text(cache.root, index, json.dumps(order))
    return summaries, key, False


def _region_fields(region: Region) -> dict[str, Any]:
    return {"region": region.label, "area": region.area, "cre_line": region.cre_line or "",
            "cell_class": cell_class(region.cre_line), "layer": region.layer,
            "n_cells": region.n_cells}


# ------------------------------------------------------------------------------------ RSA

def _each_region(regions: Sequence[Region], analysis: str) -> Any:
    """The regions, counted on a bar (or a line every few seconds in a log): the analyses
    take minutes on large recordings."""
    from mnc import progress

    return progress.bar(regions, desc=analysis, unit="region", leave=False)


def rsa_tables(summaries: Mapping[str, FeatureSummary], regions: Sequence[Region],
               ir_populations: Sequence[Any], options: AnalysisOptions
               ) -> dict[str, list[dict[str, Any]]]:
    """RSA rows (population x region x method) and the best population per region/method.

    Intervals: leave-one-image-out jackknife (``options.n_boot`` 0 turns them off). The best
    population is re-selected in every jackknife replicate, so its interval includes the
    uncertainty of the choice; the replicates of the best and the IR-mapped population are
    kept (``REPLICATES_TABLE``) for tests across checkpoints and instances.
    """
    from mnc.neuro import rsa

    names = list(summaries)
    model = rsa.model_rdms(summaries)
    candidates = [i for i, n in enumerate(names) if n != PIXELS] or list(range(len(names)))
    region_halves = []
    for region_index, region in enumerate(_each_region(regions, "RSA")):
        rng = np.random.default_rng(options.seed + region_index)
        region_halves.append(rsa.split_half_rdms(
            [region.split_halves(rng) for _ in range(options.n_splits)]))
    rows: list[dict[str, Any]] = []
    best: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    for method in options.methods:
        jackknifed = (rsa.jackknife_ssms(model, region_halves, method) if options.n_boot > 0
                      else [None] * len(regions))
        for region, half_rdms, jack in zip(regions, region_halves, jackknifed, strict=True):
            mapped = region.model_population(ir_populations, options.map_inhibitory)
            values = rsa.ssm(model, half_rdms, method)
            lower, upper = rsa.noise_ceiling(half_rdms, method)
            nan = np.full(len(names), np.nan)
            std, (low, high) = (jack.std, jack.interval(values)) if jack else (nan, (nan, nan))
            region_rows = []
            for index, name in enumerate(names):
                region_rows.append({
                    **_region_fields(region), "population": name,
                    "ir_mapped": name == mapped, "method": method,
                    "ssm": float(values[index]), "ssm_std": float(std[index]),
                    "ssm_ci_low": float(low[index]), "ssm_ci_high": float(high[index]),
                    "nc_lower": lower, "nc_upper": upper})
            rows.extend(region_rows)
            finite = [i for i in candidates if np.isfinite(values[i])] or candidates
            top = region_rows[max(finite, key=lambda i: values[i])]
            top_std = top_low = top_high = float("nan")
            if jack is not None:
                # winner's curse: the best population is chosen again without each image
                chosen = np.max(jack.replicates[:, finite], axis=1)
                top_std = float(jackknife_se(chosen))
                ends = jackknife_interval(np.asarray(top["ssm"]), np.asarray(top_std),
                                          chosen.size - 1)
                top_low, top_high = float(ends[0]), float(ends[1])
                samples.append({"region": region.label, "method": method, "kind": "best",
                                "population": top["population"], "samples": chosen.tolist()})
                if mapped in names:
                    samples.append({"region": region.label, "method": method,
                                    "kind": "ir_mapped", "population": mapped,
                                    "samples": jack.replicates[:, names.index(mapped)].tolist()})
            mapped_row = next((r for r in region_rows if r["ir_mapped"]), None)
            best.append({
                **_region_fields(region), "method": method, "population": top["population"],
                "ssm": top["ssm"], "ssm_std": top_std, "ssm_ci_low": top_low,
                "ssm_ci_high": top_high, "nc_lower": lower,
                "nc_upper": upper, "ir_population": mapped or "",
                "ir_population_ssm": mapped_row["ssm"] if mapped_row else float("nan")})
    return {"rsa": rows, "rsa_best": best, REPLICATES_TABLE: samples}


def predictivity_tables(summaries: Mapping[str, FeatureSummary], regions: Sequence[Region],
                        ir_populations: Sequence[Any], options: AnalysisOptions
                        ) -> dict[str, list[dict[str, Any]]]:
    """Noise-corrected predictivity of every region from every population, and the summary
    comparing the population the IR maps with the best one found by searching all."""
    from mnc.neuro.predictivity import predictivity, split_half_reliability

    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    embeddings = {name: s.regression_embedding() for name, s in summaries.items()}
    for region_index, region in enumerate(_each_region(regions, "predictivity")):
        reliability = split_half_reliability(region, options.n_splits,
                                             seed=options.seed + region_index)
        mapped = region.model_population(ir_populations, options.map_inhibitory)
        for regression in options.regressions:
            region_rows = []
            for name, features in embeddings.items():
                score = predictivity(features, region, reliability, regression,
                                     options.n_folds, options.min_reliability, options.seed)
                region_rows.append({
                    **_region_fields(region), "population": name,
                    "ir_mapped": name == mapped, "regression": regression,
                    "score": score.median_corrected, "median_r": score.median_raw,
                    "n_reliable_cells": score.n_cells})
            rows.extend(region_rows)
            finite = [r for r in region_rows if np.isfinite(r["score"])]
            top = max(finite, key=lambda r: r["score"]) if finite else None
            mapped_row = next((r for r in region_rows if r["ir_mapped"]), None)
            summary.append({
                **_region_fields(region), "regression": regression,
                "ir_population": mapped or "",
                "ir_population_score": mapped_row["score"] if mapped_row else float("nan"),
                "best_population": top["population"] if top else "",
                "best_score": top["score"] if top else float("nan"),
                "n_reliable_cells": region_rows[0]["n_reliable_cells"]})
    return {"predictivity": rows, "predictivity_best": summary}


# ----------------------------------------------------------------------------- physiology

def physiology_tables(summaries: Mapping[str, FeatureSummary], regions: Sequence[Region],
                      ir_populations: Sequence[Any], options: AnalysisOptions
                      ) -> dict[str, list[dict[str, Any]]]:
    """KS comparison of sparseness distributions for every population x region (noise-free
    model units and, ``*_noise_matched``, units given the region's trial-noise fraction), and
    each region's cells: split-half reliability and noise fraction.

    Cells' statistics use detected events where the recordings hold them, else dF/F; every
    row says which (``response_measure``)."""
    from mnc.neuro.noise_matched import noise_fraction, with_noise
    from mnc.neuro.physiology import compare_distributions
    from mnc.neuro.predictivity import split_half_reliability

    model_stats = {name: {metric: metric_values(metric, s.unit_sample)
                          for metric in PHYSIOLOGY_METRICS}
                   for name, s in summaries.items()}
    rows: list[dict[str, Any]] = []
    cells: list[dict[str, Any]] = []
    for region_index, recorded in enumerate(regions):
        region = recorded.physiology_view()
        measure = {"response_measure": region.response_measure}
        responses = region.mean_responses()
        neural_stats = {metric: metric_values(metric, responses)
                        for metric in PHYSIOLOGY_METRICS}
        reliability = split_half_reliability(region, options.n_splits,
                                             seed=options.seed + region_index)
        fraction = noise_fraction(region)
        cells.append({**_region_fields(region), **measure,
                      "median_split_half_reliability": float(np.nanmedian(reliability)),
                      "fraction_reliable": float(np.mean(
                          np.nan_to_num(reliability, nan=-1) >= options.min_reliability)),
                      "noise_fraction": fraction,
                      "median_lifetime_sparseness": float(np.nanmedian(
                          neural_stats["lifetime_sparseness"]))})
        mapped = region.model_population(ir_populations, options.map_inhibitory)
        for name, stats in model_stats.items():
            noisy = with_noise(summaries[name].unit_sample, fraction,
                               seed=options.seed + region_index)
            matched = {f"{metric}_noise_matched": metric_values(metric, noisy)
                       for metric in PHYSIOLOGY_METRICS}
            for metric, model_values in {**stats, **matched}.items():
                neural = neural_stats[metric.removesuffix("_noise_matched")]
                result = compare_distributions(model_values, neural)
                rows.append({**_region_fields(region), **measure, "population": name,
                             "ir_mapped": name == mapped, "metric": metric,
                             **dataclasses.asdict(result)})
    return {"physiology": rows, "physiology_cells": cells}


# ---------------------------------------------------------------------------------- output

def write_csv(path: Path, rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> None:
    """A table as CSV (floats to 6 significant digits), written atomically."""
    table = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if table.empty and not len(table.columns):
        write_text_atomic(path, "")
        return
    with atomic_open(path, "w") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(list(table.columns))
        for row in table.itertuples(index=False):
            writer.writerow([f"{v:.6g}" if isinstance(v, float) else _plain(v) for v in row])


def _common(loaded: LoadedModel, source: Any, output_dir: str | Path | None,
            cache_dir: str | Path | None, selection: NeuralSelection,
            options: AnalysisOptions, progress: Progress | None
            ) -> tuple[Path | None, Path | None, NeuralData, list[Region],
                       dict[str, FeatureSummary], Report]:
    chosen_steps(loaded.model, options.step)  # a step the model lacks, before any work
    out = Path(output_dir).expanduser() if output_dir is not None else None
    cache_root = (Path(cache_dir).expanduser() if cache_dir
                  else out / "cache" if out is not None else None)
    data, regions = load_neural(source, selection, cache_root)  # type: ignore[arg-type]
    summaries, key, hit = population_summaries(loaded, data.images, options, cache_root,
                                               progress)
    report = Report(output_dir=out, features_cached=hit, feature_key=key, summaries=summaries,
                    regions=list(regions))
    return out, cache_root, data, regions, summaries, report


Tables = dict[str, list[dict[str, Any]]]


def _cached_tables(cache_root: Path | None, kind: str, key: str, data: NeuralData,
                   selection: NeuralSelection, options: AnalysisOptions,
                   compute: Callable[[], Tables]) -> tuple[Tables, bool]:
    if cache_root is None:
        return compute(), False
    score_key = stable_key(kind, key, data.fingerprint, dataclasses.asdict(selection),
                           dataclasses.asdict(options))
    store = ScoreCache(cache_root, score_key)
    stored = store.load()
    if stored is not None:
        return stored, True
    tables = compute()
    store.save(tables)
    return tables, False


def _write_tables(out: Path, report: Report) -> None:
    for name, table in report.tables.items():
        if name == REPLICATES_TABLE:
            continue
        write_csv(out / f"{name}.csv", table)
        report.files[name] = str(out / f"{name}.csv")


def run_rsa(loaded: LoadedModel, source: Any, output_dir: str | Path | None = None,
            cache_dir: str | Path | None = None,
            selection: NeuralSelection = NeuralSelection(),
            options: AnalysisOptions = AnalysisOptions(),
            progress: Progress | None = None) -> Report:
    """RSA and predictivity of every model population against every recorded brain region.

    ``source``: the neural recordings (see ``load_neural``). Writes rsa.csv, rsa_best.csv,
    predictivity.csv, predictivity_best.csv, summary.json and figures
    (ssm_heatmap_<method>.png, rdms.png, best_population.png) to ``output_dir``; with
    ``output_dir=None`` (and no ``cache_dir``) it only computes the tables.
    """
    out, cache_root, data, regions, summaries, report = _common(
        loaded, source, output_dir, cache_dir, selection, options, progress)
    populations = loaded.populations

    def compute() -> Tables:
        tables = rsa_tables(summaries, regions, populations, options)
        if options.regressions:
            tables.update(predictivity_tables(summaries, regions, populations, options))
        return tables

    tables, report.scores_cached = _cached_tables(cache_root, "rsa-jackknife",
                                                  report.feature_key, data, selection, options,
                                                  compute)
    report.tables = _frames(tables, loaded.label)
    if out is None:
        return report
    _write_tables(out, report)
    _rsa_figures(out, summaries, regions, tables, populations, options, report, loaded.label)
    write_text_atomic(out / "summary.json", strict_json.dumps(
        {**_run_info(loaded, data, regions, report, options),
         "best": records(report.tables["rsa_best"]),
         "predictivity_best": records(report.tables["predictivity_best"])
         if "predictivity_best" in report.tables else []}, indent=1))
    report.files["summary"] = str(out / "summary.json")
    return report


def _run_info(loaded: LoadedModel, data: NeuralData, regions: Sequence[Region],
              report: Report, options: AnalysisOptions) -> dict[str, Any]:
    time: dict[str, Any] = {}
    if is_stepped(loaded.model):
        steps = chosen_steps(loaded.model, options.step)
        time = {"step": options.step, "steps_compared": [steps.start, steps.stop - 1]}
    return {"model": loaded.label, "ir_hash": loaded.network_key, "weights": loaded.weights_key,
            **time,
            "feature_key": report.feature_key, "neural_fingerprint": data.fingerprint,
            "sessions": list(data.sessions),
            "regions": [{**_region_fields(r),
                         "sessions": list(r.sessions)} for r in regions]}


def _rsa_figures(out: Path, summaries: Mapping[str, FeatureSummary], regions: Sequence[Region],
                 tables: Tables, populations: Sequence[Any], options: AnalysisOptions,
                 report: Report, label: str) -> None:
    from mnc.neuro import rsa

    names = list(summaries)
    labels = [r.label for r in regions]
    mapped = {r.label: r.model_population(populations, options.map_inhibitory)
              for r in regions}
    for method in options.methods:
        rows = [r for r in tables["rsa"] if r["method"] == method]
        lookup = {(r["population"], r["region"]): r["ssm"] for r in rows}
        matrix = np.array([[lookup[(n, label)] for label in labels] for n in names], dtype=float)
        ceilings = [next((r["nc_lower"], r["nc_upper"]) for r in rows if r["region"] == label)
                    for label in labels]
        path = out / f"ssm_heatmap_{method}.png"
        figures.ssm_heatmap(matrix, names, labels, ceilings, mapped, method, path, model=label)
        report.files[f"ssm_heatmap_{method}"] = str(path)
    primary = options.methods[0]
    best_rows = [r for r in tables["rsa_best"] if r["method"] == primary]
    figures.best_population_bars(best_rows, primary, out / "best_population.png", model=label)
    report.files["best_population"] = str(out / "best_population.png")
    panels: dict[str, np.ndarray] = {}
    for region, row in list(zip(regions, best_rows, strict=True))[:6]:
        neural = rsa.rdms_from_patterns([region.mean_responses()], [region.label])
        panels[f"{region.label}\nrecorded"] = rsa.rdm_matrices(neural)[0]
        model = rsa.model_rdms({row["population"]: summaries[row["population"]]})
        panels[f"{label} {row['population']}\nbest for {region.label}"] = \
            rsa.rdm_matrices(model)[0]
    figures.rdm_images(panels, out / "rdms.png", columns=4)
    report.files["rdms"] = str(out / "rdms.png")


def run_physiology(loaded: LoadedModel, source: Any, output_dir: str | Path | None = None,
                   cache_dir: str | Path | None = None,
                   selection: NeuralSelection = NeuralSelection(),
                   options: AnalysisOptions = AnalysisOptions(),
                   progress: Progress | None = None) -> Report:
    """Sparseness and reliability distributions of model units vs recorded cells.

    Writes physiology.csv (population x region x metric, KS statistic), physiology_cells.csv,
    physiology.png and summary.json to ``output_dir`` (None: tables only).
    """
    out, cache_root, data, regions, summaries, report = _common(
        loaded, source, output_dir, cache_dir, selection, options, progress)
    populations = loaded.populations
    tables, report.scores_cached = _cached_tables(
        cache_root, PHYSIOLOGY_TABLES_KIND, report.feature_key, data, selection, options,
        lambda: physiology_tables(summaries, regions, populations, options))
    report.tables = _frames(tables, loaded.label)
    if out is None:
        return report
    _write_tables(out, report)
    _physiology_figure(out / "physiology.png", summaries, regions, tables["physiology"],
                       loaded.label)
    report.files["physiology_figure"] = str(out / "physiology.png")
    closest = closest_populations(tables["physiology"])
    write_text_atomic(out / "summary.json", strict_json.dumps(
        {**_run_info(loaded, data, regions, report, options),
         "response_measure": data.response_measure, "closest": closest,
         "cells": records(report.tables["physiology_cells"])}, indent=1))
    report.files["summary"] = str(out / "summary.json")
    return report


def closest_populations(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per region and metric: the population with the smallest KS statistic and the mapped one."""
    result = []
    keys = sorted({(r["region"], r["metric"]) for r in rows})
    for region, metric in keys:
        group = [r for r in rows if r["region"] == region and r["metric"] == metric
                 and np.isfinite(r["ks_statistic"]) and r["population"] != PIXELS]
        if not group:
            continue
        top = min(group, key=lambda r: r["ks_statistic"])
        mapped = next((r for r in group if r["ir_mapped"]), None)
        result.append({"region": region, "metric": metric, "closest": top["population"],
                       "ks_statistic": top["ks_statistic"],
                       "ir_population": mapped["population"] if mapped else "",
                       "ir_population_ks": mapped["ks_statistic"] if mapped else float("nan")})
    return result


PHYSIOLOGY_METRICS = ("lifetime_sparseness", "population_sparseness")
PHYSIOLOGY_TABLES_KIND = "physiology-measure"
"""Score-cache kind of the physiology tables; renamed when their columns change, so tables
stored before the ``response_measure`` column are computed again."""


def metric_values(metric: str, responses: np.ndarray) -> np.ndarray:
    from mnc.neuro.physiology import lifetime_sparseness, population_sparseness

    function = lifetime_sparseness if metric == "lifetime_sparseness" else population_sparseness
    return function(responses)


def physiology_panel_choices(regions: Sequence[Region], rows: Sequence[Mapping[str, Any]],
                             limit: int) -> Iterator[tuple[Region, np.ndarray, str, str, bool]]:
    """(region, its mean responses, metric, population, IR-mapped?) for each physiology panel:
    the population the IR maps to the region, else the closest one, for the first regions."""
    closest = {(c["region"], c["metric"]): c for c in closest_populations(rows)}
    for recorded in regions[:limit]:
        region = recorded.physiology_view()
        responses = region.mean_responses()
        for metric in PHYSIOLOGY_METRICS:
            choice = closest.get((region.label, metric))
            if choice is not None:
                mapped = bool(choice["ir_population"])
                yield (region, responses, metric,
                       choice["ir_population"] if mapped else choice["closest"], mapped)


def _physiology_figure(path: Path, summaries: Mapping[str, FeatureSummary],
                       regions: Sequence[Region], rows: Sequence[Mapping[str, Any]],
                       label: str) -> None:
    panels = []
    for region, responses, metric, name, mapped in physiology_panel_choices(regions, rows, 6):
        how = "population the IR maps" if mapped else "closest population"
        ks = next(r["ks_statistic"] for r in rows if r["region"] == region.label
                  and r["metric"] == metric and r["population"] == name)
        panels.append({"title": f"{region.label} cells vs {label} {name}\n({how})",
                       "metric": metric,
                       "series": [(metric_values(metric, summaries[name].unit_sample),
                                   f"{name} units (KS {ks:.2f})"),
                                  (metric_values(metric, responses),
                                   (f"{cre_short_name(region.cre_line)} cells"
                                    if region.cre_line else "recorded cells")
                                   + f" ({region.response_measure})")]})
    figures.distribution_panels(panels, path, columns=2)
