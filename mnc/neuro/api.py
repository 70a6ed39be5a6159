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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnc.errors import UserFileError
from mnc.io.atomic import atomic_open, write_text_atomic
from mnc.neuro import figures
from mnc.neuro.allen import ResponseWindow, load_natural_scenes
from mnc.neuro.cache import FeatureCache, ScoreCache, feature_key, stable_key
from mnc.neuro.layers import cre_short_name
from mnc.neuro.model_features import LoadedModel, prepare_images, summarize_features
from mnc.neuro.recording_files import load_recordings
from mnc.neuro.recordings import NeuralData
from mnc.neuro.regions import Region, group_regions
from mnc.neuro.representation import FeatureSummary

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class NeuralSelection:
    """Which recorded cells to use and how Brain Observatory traces become responses.

    ``areas``, ``cre_lines`` and ``depths_um`` filter every source (None: all); the other
    fields apply to a Brain Observatory cache only.
    """

    areas: tuple[str, ...] | None = None
    cre_lines: tuple[str, ...] | None = None
    depths_um: tuple[int, ...] | None = None
    max_per_group: int | None = None
    """At most this many sessions per area and Cre line (None: all)."""
    window: ResponseWindow = ResponseWindow()
    allow_download: bool = False
    skip_missing: bool = False
    min_cells: int = 5
    """Regions with fewer recorded cells are left out."""


@dataclass(frozen=True)
class AnalysisOptions:
    methods: tuple[str, ...] = ("spearman", "pearson")
    """RDM comparison methods; the first one ranks populations and draws the bar plot."""
    n_splits: int = 5
    """Random split-halves of the trials for data RDMs, noise ceilings and reliabilities."""
    n_boot: int = 100
    """Bootstrap resamples of the images for SSM error bars (0: none)."""
    seed: int = 0
    batch_size: int = 32
    max_units: int = 2000
    """Model units kept per population for per-unit statistics (physiology)."""
    normalize: str = "imagenet"
    regressions: tuple[str, ...] = ("ridge", "pls")
    """Predictivity regressions (empty: skip predictivity)."""
    n_folds: int = 5
    min_reliability: float = 0.3


@dataclass
class Report:
    """What a run produced: table rows, written files, and whether caches answered."""

    output_dir: Path
    files: dict[str, str] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    features_cached: bool = False
    scores_cached: bool = False
    feature_key: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"output_dir": str(self.output_dir), "files": self.files,
                "features_cached": self.features_cached, "scores_cached": self.scores_cached,
                "feature_key": self.feature_key, "tables": self.tables}


# ---------------------------------------------------------------------------------- inputs

NeuralSource = NeuralData | str | Path
"""Recordings in memory, a Brain Observatory cache folder, or an ``.npz``/NetCDF file."""


def load_neural(source: NeuralSource, selection: NeuralSelection,
                cache_root: Path) -> tuple[NeuralData, list[Region]]:
    """The selected cells of ``source`` and their regions (each with ``min_cells`` or more)."""
    if isinstance(source, NeuralData) or Path(source).expanduser().is_file():
        data = source if isinstance(source, NeuralData) else load_recordings(source)
        data = data.select(selection.areas, selection.cre_lines, selection.depths_um)
    else:
        data = load_natural_scenes(
            source, areas=selection.areas, cre_lines=selection.cre_lines,
            depths_um=selection.depths_um, window=selection.window,
            max_per_group=selection.max_per_group, allow_download=selection.allow_download,
            skip_missing=selection.skip_missing, response_cache=cache_root / "responses")
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
                         cache_root: Path, progress: Progress | None = None
                         ) -> tuple[dict[str, FeatureSummary], str, bool]:
    """Per-population summaries of the model's responses to the images, from cache if present.

    Returns (summaries in IR order, feature key, whether the cache answered).
    """
    ir = loaded.ir
    model_input = prepare_images(raw_images, ir.input.height, ir.input.width, ir.input.channels,
                                 options.normalize)
    key = feature_key(ir.content_hash, loaded.weights_key, model_input,
                      {"max_units": options.max_units, "seed": options.seed})
    cache = FeatureCache(cache_root, key)
    index = cache.folder / "index.json"
    if index.is_file():
        names = json.loads(index.read_text(encoding="utf-8"))
        cached = cache.load(names)
        if cached is not None:
            return cached, key, True
    summaries = summarize_features(loaded.model, model_input, options.batch_size,
                                   max_units=options.max_units, seed=options.seed,
                                   scratch_dir=None, progress=progress)
    order = [p.name for p in ir.populations if p.name in summaries]
    order += [name for name in summaries if name not in order]
    summaries = {name: summaries[name] for name in order}
    cache.save(summaries)
    write_text_atomic(index, json.dumps(order))
    return summaries, key, False


def _region_fields(region: Region) -> dict[str, Any]:
    return {"region": region.label, "area": region.area, "cre_line": region.cre_line or "",
            "layer": region.layer, "n_cells": region.n_cells}


# ------------------------------------------------------------------------------------ RSA

def rsa_tables(summaries: Mapping[str, FeatureSummary], regions: Sequence[Region],
               ir_populations: Sequence[Any], options: AnalysisOptions
               ) -> dict[str, list[dict[str, Any]]]:
    """RSA rows (population x region x method) and the best population per region/method."""
    from mnc.neuro import rsa

    names = list(summaries)
    model = rsa.model_rdms(summaries)
    rows: list[dict[str, Any]] = []
    best: list[dict[str, Any]] = []
    for region_index, region in enumerate(regions):
        rng = np.random.default_rng(options.seed + region_index)
        halves = [region.split_halves(rng) for _ in range(options.n_splits)]
        half_rdms = rsa.split_half_rdms(halves)
        mapped = region.model_population(ir_populations)
        for method in options.methods:
            values = rsa.ssm(model, half_rdms, method)
            lower, upper = rsa.noise_ceiling(half_rdms, method)
            boot = rsa.bootstrap_ssm(model, half_rdms, method, options.n_boot,
                                     seed=options.seed + region_index)
            if options.n_boot > 0:
                std = boot.std
                low, high = boot.interval()
            else:
                std = low = high = np.full(len(names), np.nan)
            region_rows = []
            for index, name in enumerate(names):
                region_rows.append({
                    **_region_fields(region), "population": name,
                    "ir_mapped": name == mapped, "method": method,
                    "ssm": float(values[index]), "ssm_std": float(std[index]),
                    "ssm_ci_low": float(low[index]), "ssm_ci_high": float(high[index]),
                    "nc_lower": lower, "nc_upper": upper})
            rows.extend(region_rows)
            top = max(region_rows, key=lambda r: -np.inf if np.isnan(r["ssm"]) else r["ssm"])
            mapped_row = next((r for r in region_rows if r["ir_mapped"]), None)
            best.append({
                **_region_fields(region), "method": method, "population": top["population"],
                "ssm": top["ssm"], "ssm_std": top["ssm_std"], "nc_lower": lower,
                "nc_upper": upper, "ir_population": mapped or "",
                "ir_population_ssm": mapped_row["ssm"] if mapped_row else float("nan")})
    return {"rsa": rows, "rsa_best": best}


def predictivity_tables(summaries: Mapping[str, FeatureSummary], regions: Sequence[Region],
                        ir_populations: Sequence[Any], options: AnalysisOptions
                        ) -> dict[str, list[dict[str, Any]]]:
    """Noise-corrected predictivity of every region from every population, and the summary
    comparing the population the IR maps with the best one found by searching all."""
    from mnc.neuro.predictivity import predictivity, split_half_reliability

    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    embeddings = {name: s.regression_embedding() for name, s in summaries.items()}
    for region_index, region in enumerate(regions):
        reliability = split_half_reliability(region, options.n_splits,
                                             seed=options.seed + region_index)
        mapped = region.model_population(ir_populations)
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
    """KS comparison of sparseness distributions for every population x region, and each
    region's cell reliability."""
    from mnc.neuro.physiology import (
        compare_distributions,
        lifetime_sparseness,
        population_sparseness,
    )
    from mnc.neuro.predictivity import split_half_reliability

    model_stats = {name: {"lifetime_sparseness": lifetime_sparseness(s.unit_sample),
                          "population_sparseness": population_sparseness(s.unit_sample)}
                   for name, s in summaries.items()}
    rows: list[dict[str, Any]] = []
    cells: list[dict[str, Any]] = []
    for region_index, region in enumerate(regions):
        responses = region.mean_responses()
        neural_stats = {"lifetime_sparseness": lifetime_sparseness(responses),
                        "population_sparseness": population_sparseness(responses)}
        reliability = split_half_reliability(region, options.n_splits,
                                             seed=options.seed + region_index)
        cells.append({**_region_fields(region),
                      "median_reliability": float(np.nanmedian(reliability)),
                      "fraction_reliable": float(np.mean(
                          np.nan_to_num(reliability, nan=-1) >= options.min_reliability)),
                      "median_lifetime_sparseness": float(np.nanmedian(
                          neural_stats["lifetime_sparseness"]))})
        mapped = region.model_population(ir_populations)
        for name, stats in model_stats.items():
            for metric, model_values in stats.items():
                result = compare_distributions(model_values, neural_stats[metric])
                rows.append({**_region_fields(region), "population": name,
                             "ir_mapped": name == mapped, "metric": metric,
                             **dataclasses.asdict(result)})
    return {"physiology": rows, "physiology_cells": cells}


# ---------------------------------------------------------------------------------- output

def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        write_text_atomic(path, "")
        return
    with atomic_open(path, "w") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                             for k, v in row.items()})


def _common(loaded: LoadedModel, neural: NeuralSource, output_dir: str | Path,
            cache_dir: str | Path | None, selection: NeuralSelection,
            options: AnalysisOptions, progress: Progress | None
            ) -> tuple[Path, Path, NeuralData, list[Region], dict[str, FeatureSummary], Report]:
    _check_options(options)
    out = Path(output_dir).expanduser()
    cache_root = Path(cache_dir).expanduser() if cache_dir else out / "cache"
    data, regions = load_neural(neural, selection, cache_root)
    summaries, key, hit = population_summaries(loaded, data.images, options, cache_root,
                                               progress)
    report = Report(output_dir=out, features_cached=hit, feature_key=key)
    return out, cache_root, data, regions, summaries, report


def _check_options(options: AnalysisOptions) -> None:
    from mnc.neuro.rsa import SSM_METHODS

    for method in options.methods:
        if method not in SSM_METHODS:
            raise UserFileError(f"--methods: unknown method {method!r}; expected one of "
                                f"{', '.join(SSM_METHODS)}")
    for regression in options.regressions:
        if regression not in ("ridge", "pls"):
            raise UserFileError(f"--regressions: unknown regression {regression!r}; "
                                "expected ridge or pls")
    if options.n_splits < 1 or options.n_folds < 2 or options.n_boot < 0:
        raise UserFileError("--splits must be >= 1, --folds >= 2 and --bootstrap >= 0")


def _cached_tables(cache_root: Path, kind: str, key: str, data: NeuralData,
                   selection: NeuralSelection, options: AnalysisOptions,
                   compute: Callable[[], dict[str, list[dict[str, Any]]]]
                   ) -> tuple[dict[str, list[dict[str, Any]]], bool]:
    score_key = stable_key(kind, key, data.fingerprint, dataclasses.asdict(selection),
                           dataclasses.asdict(options))
    store = ScoreCache(cache_root, score_key)
    stored = store.load()
    if stored is not None:
        return stored, True
    tables = compute()
    store.save(tables)
    return tables, False


def run_rsa(loaded: LoadedModel, neural: NeuralSource, output_dir: str | Path,
            cache_dir: str | Path | None = None,
            selection: NeuralSelection = NeuralSelection(),
            options: AnalysisOptions = AnalysisOptions(),
            progress: Progress | None = None) -> Report:
    """RSA and predictivity of every model population against every recorded brain region.

    Writes rsa.csv, rsa_best.csv, predictivity.csv, predictivity_best.csv, summary.json and
    figures (ssm_heatmap_<method>.png, rdms.png, best_population.png) to ``output_dir``.
    """
    out, cache_root, data, regions, summaries, report = _common(
        loaded, neural, output_dir, cache_dir, selection, options, progress)
    ir_populations = list(loaded.ir.populations)

    def compute() -> dict[str, list[dict[str, Any]]]:
        tables = rsa_tables(summaries, regions, ir_populations, options)
        if options.regressions:
            tables.update(predictivity_tables(summaries, regions, ir_populations, options))
        return tables

    tables, report.scores_cached = _cached_tables(cache_root, "rsa", report.feature_key, data,
                                                  selection, options, compute)
    report.tables = tables
    for name, rows in tables.items():
        write_csv(out / f"{name}.csv", rows)
        report.files[name] = str(out / f"{name}.csv")
    _rsa_figures(out, summaries, regions, tables, ir_populations, options, report)
    write_text_atomic(out / "summary.json", json.dumps(
        {**_run_info(loaded, data, regions, report), "best": tables["rsa_best"],
         "predictivity_best": tables.get("predictivity_best", [])}, indent=1))
    report.files["summary"] = str(out / "summary.json")
    return report


def _run_info(loaded: LoadedModel, data: NeuralData, regions: Sequence[Region],
              report: Report) -> dict[str, Any]:
    return {"ir_hash": loaded.ir.content_hash, "weights": loaded.weights_key,
            "feature_key": report.feature_key, "neural_fingerprint": data.fingerprint,
            "sessions": list(data.sessions),
            "regions": [{**_region_fields(r),
                         "sessions": list(r.sessions)} for r in regions]}


def _rsa_figures(out: Path, summaries: Mapping[str, FeatureSummary], regions: Sequence[Region],
                 tables: Mapping[str, list[dict[str, Any]]], ir_populations: Sequence[Any],
                 options: AnalysisOptions, report: Report) -> None:
    from mnc.neuro import rsa

    names = list(summaries)
    labels = [r.label for r in regions]
    mapped = {r.label: r.model_population(ir_populations) for r in regions}
    for method in options.methods:
        rows = [r for r in tables["rsa"] if r["method"] == method]
        lookup = {(r["population"], r["region"]): r["ssm"] for r in rows}
        matrix = np.array([[lookup[(n, label)] for label in labels] for n in names], dtype=float)
        ceilings = [next((r["nc_lower"], r["nc_upper"]) for r in rows if r["region"] == label)
                    for label in labels]
        path = out / f"ssm_heatmap_{method}.png"
        figures.ssm_heatmap(matrix, names, labels, ceilings, mapped, method, path)
        report.files[f"ssm_heatmap_{method}"] = str(path)
    primary = options.methods[0]
    best_rows = [r for r in tables["rsa_best"] if r["method"] == primary]
    figures.best_population_bars(best_rows, primary, out / "best_population.png")
    report.files["best_population"] = str(out / "best_population.png")
    panels: dict[str, np.ndarray] = {}
    for region, row in list(zip(regions, best_rows, strict=True))[:6]:
        neural = rsa.rdms_from_patterns([region.mean_responses()], [region.label])
        panels[f"{region.label} (recorded)"] = rsa.rdm_matrices(neural)[0]
        model = rsa.model_rdms({row["population"]: summaries[row["population"]]})
        panels[f"{row['population']} (best for {region.label})"] = rsa.rdm_matrices(model)[0]
    figures.rdm_images(panels, out / "rdms.png", columns=4)
    report.files["rdms"] = str(out / "rdms.png")


def run_physiology(loaded: LoadedModel, neural: NeuralSource, output_dir: str | Path,
                   cache_dir: str | Path | None = None,
                   selection: NeuralSelection = NeuralSelection(),
                   options: AnalysisOptions = AnalysisOptions(),
                   progress: Progress | None = None) -> Report:
    """Sparseness and reliability distributions of model units vs recorded cells.

    Writes physiology.csv (population x region x metric, KS statistic), physiology_cells.csv,
    physiology.png and summary.json to ``output_dir``.
    """
    out, cache_root, data, regions, summaries, report = _common(
        loaded, neural, output_dir, cache_dir, selection, options, progress)
    ir_populations = list(loaded.ir.populations)
    tables, report.scores_cached = _cached_tables(
        cache_root, "physiology", report.feature_key, data, selection, options,
        lambda: physiology_tables(summaries, regions, ir_populations, options))
    report.tables = tables
    for name, rows in tables.items():
        write_csv(out / f"{name}.csv", rows)
        report.files[name] = str(out / f"{name}.csv")
    _physiology_figure(out / "physiology.png", summaries, regions, tables["physiology"],
                       ir_populations)
    report.files["physiology_figure"] = str(out / "physiology.png")
    closest = _closest_populations(tables["physiology"])
    write_text_atomic(out / "summary.json", json.dumps(
        {**_run_info(loaded, data, regions, report), "closest": closest,
         "cells": tables["physiology_cells"]}, indent=1))
    report.files["summary"] = str(out / "summary.json")
    return report


def _closest_populations(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per region and metric: the population with the smallest KS statistic and the mapped one."""
    result = []
    keys = sorted({(r["region"], r["metric"]) for r in rows})
    for region, metric in keys:
        group = [r for r in rows if r["region"] == region and r["metric"] == metric
                 and np.isfinite(r["ks_statistic"])]
        if not group:
            continue
        top = min(group, key=lambda r: r["ks_statistic"])
        mapped = next((r for r in group if r["ir_mapped"]), None)
        result.append({"region": region, "metric": metric, "closest": top["population"],
                       "ks_statistic": top["ks_statistic"],
                       "ir_population": mapped["population"] if mapped else "",
                       "ir_population_ks": mapped["ks_statistic"] if mapped else float("nan")})
    return result


def _physiology_figure(path: Path, summaries: Mapping[str, FeatureSummary],
                       regions: Sequence[Region], rows: Sequence[Mapping[str, Any]],
                       ir_populations: Sequence[Any]) -> None:
    from mnc.neuro.physiology import lifetime_sparseness, population_sparseness

    panels = []
    closest = {(c["region"], c["metric"]): c for c in _closest_populations(rows)}
    for region in regions[:6]:
        responses = region.mean_responses()
        for metric, function in (("lifetime_sparseness", lifetime_sparseness),
                                 ("population_sparseness", population_sparseness)):
            choice = closest.get((region.label, metric))
            if choice is None:
                continue
            name = choice["ir_population"] or choice["closest"]
            ks = next(r["ks_statistic"] for r in rows if r["region"] == region.label
                      and r["metric"] == metric and r["population"] == name)
            panels.append({"title": f"{region.label} vs {name}", "metric": metric,
                           "model": function(summaries[name].unit_sample),
                           "neural": function(responses), "ks": ks,
                           "model_label": f"{name} units",
                           "neural_label": f"{cre_short_name(region.cre_line)} cells"})
    figures.distribution_panels(panels, path, columns=2)
