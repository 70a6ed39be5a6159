"""Python API of the neural comparison: ``run_rsa`` and ``run_physiology``.

Pipeline: recordings (a Brain Observatory cache, an .npz/NetCDF file or ``NeuralData`` in
memory; ``neural_inputs``) -> (stimuli, trials, cells) responses -> regions (area x Cre line
x layer); the images shown -> model input -> per-population summaries (cached by IR hash +
weights; ``cached_results``) -> RSA and predictivity (``score_tables``), physiology
(``physiology_tables``) -> CSV tables, figures, summary.json (``outputs``) in a ``Report``.
Scores are cached too, keyed by the feature key, the neural data and every option
(``options``: ``NeuralSelection``, ``AnalysisOptions``).

The names these modules offer stay importable from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnc.io import strict_json
from mnc.io.atomic import write_text_atomic
from mnc.neuro.cached_results import (
    Progress,
    cached_tables,
    output_and_cache_folders,
    population_summaries,
)
from mnc.neuro.model_features import LoadedModel, chosen_steps
from mnc.neuro.neural_inputs import NeuralSource, load_neural
from mnc.neuro.options import AnalysisOptions, NeuralSelection
from mnc.neuro.outputs import (
    physiology_figure,
    physiology_panel_choices,
    rsa_figures,
    run_info,
    write_csv,
    write_tables,
)
from mnc.neuro.physiology_tables import (
    PHYSIOLOGY_METRICS,
    PHYSIOLOGY_TABLES_KIND,
    closest_populations,
    metric_values,
    physiology_tables,
)
from mnc.neuro.regions import Region
from mnc.neuro.report import Report, Tables, records, table_frames
from mnc.neuro.representation import FeatureSummary
from mnc.neuro.score_tables import PIXELS, REPLICATES_TABLE, predictivity_tables, rsa_tables
from mnc.neuro.sources.recordings import NeuralData

__all__ = ["PHYSIOLOGY_METRICS", "PHYSIOLOGY_TABLES_KIND", "PIXELS", "REPLICATES_TABLE",
           "AnalysisOptions", "NeuralSelection", "NeuralSource", "Progress", "Report",
           "closest_populations", "load_neural", "metric_values", "physiology_panel_choices",
           "physiology_tables", "population_summaries", "predictivity_tables", "records",
           "rsa_tables", "run_physiology", "run_rsa", "write_csv"]


def _prepare(loaded: LoadedModel, source: Any, output_dir: str | Path | None,
             cache_dir: str | Path | None, selection: NeuralSelection,
             options: AnalysisOptions, progress: Progress | None
             ) -> tuple[Path | None, Path | None, NeuralData, list[Region],
                        dict[str, FeatureSummary], Report]:
    """Options checked against the model, the recordings read, the model's summaries made:
    what both analyses start from."""
    chosen_steps(loaded.model, options.step)  # a step the model lacks, before any work
    out, cache_root = output_and_cache_folders(output_dir, cache_dir)
    data, regions = load_neural(source, selection, cache_root)  # type: ignore[arg-type]
    summaries, key, hit = population_summaries(loaded, data.images, options, cache_root,
                                               progress)
    report = Report(output_dir=out, features_cached=hit, feature_key=key, summaries=summaries,
                    regions=list(regions))
    return out, cache_root, data, regions, summaries, report


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
    out, cache_root, data, regions, summaries, report = _prepare(
        loaded, source, output_dir, cache_dir, selection, options, progress)
    populations = loaded.populations

    def compute() -> Tables:
        tables = rsa_tables(summaries, regions, populations, options)
        if options.regressions:
            tables.update(predictivity_tables(summaries, regions, populations, options))
        return tables

    tables, report.scores_cached = cached_tables(cache_root, "rsa-jackknife",
                                                  report.feature_key, data, selection, options,
                                                  compute)
    report.tables = table_frames(tables, loaded.label)
    if out is None:
        return report
    write_tables(out, report)
    rsa_figures(out, summaries, regions, tables, populations, options, report, loaded.label)
    write_text_atomic(out / "summary.json", strict_json.dumps(
        {**run_info(loaded, data, regions, report, options),
         "best": records(report.tables["rsa_best"]),
         "predictivity_best": records(report.tables["predictivity_best"])
         if "predictivity_best" in report.tables else []}, indent=1))
    report.files["summary"] = str(out / "summary.json")
    return report


def run_physiology(loaded: LoadedModel, source: Any, output_dir: str | Path | None = None,
                   cache_dir: str | Path | None = None,
                   selection: NeuralSelection = NeuralSelection(),
                   options: AnalysisOptions = AnalysisOptions(),
                   progress: Progress | None = None) -> Report:
    """Sparseness and reliability distributions of model units vs recorded cells.

    Writes physiology.csv (population x region x metric, KS statistic), physiology_cells.csv,
    physiology.png and summary.json to ``output_dir`` (None: tables only).
    """
    out, cache_root, data, regions, summaries, report = _prepare(
        loaded, source, output_dir, cache_dir, selection, options, progress)
    populations = loaded.populations
    tables, report.scores_cached = cached_tables(
        cache_root, PHYSIOLOGY_TABLES_KIND, report.feature_key, data, selection, options,
        lambda: physiology_tables(summaries, regions, populations, options))
    report.tables = table_frames(tables, loaded.label)
    if out is None:
        return report
    write_tables(out, report)
    physiology_figure(out / "physiology.png", summaries, regions, tables["physiology"],
                       loaded.label)
    report.files["physiology_figure"] = str(out / "physiology.png")
    closest = closest_populations(tables["physiology"])
    write_text_atomic(out / "summary.json", strict_json.dumps(
        {**run_info(loaded, data, regions, report, options),
         "response_measure": data.response_measure, "closest": closest,
         "cells": records(report.tables["physiology_cells"])}, indent=1))
    report.files["summary"] = str(out / "summary.json")
    return report
