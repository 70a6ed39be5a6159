"""Physiology tables: sparseness distributions of model units against recorded cells."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mnc.neuro.options import AnalysisOptions
from mnc.neuro.regions import Region
from mnc.neuro.representation import FeatureSummary
from mnc.neuro.score_tables import PIXELS, region_fields

PHYSIOLOGY_METRICS = ("lifetime_sparseness", "population_sparseness")
PHYSIOLOGY_TABLES_KIND = "physiology-measure"
"""Score-cache kind of the physiology tables; renamed when their columns change, so tables
stored before the ``response_measure`` column are computed again."""


def metric_values(metric: str, responses: np.ndarray) -> np.ndarray:
    from mnc.neuro.physiology import lifetime_sparseness, population_sparseness

    function = lifetime_sparseness if metric == "lifetime_sparseness" else population_sparseness
    return function(responses)


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
        cells.append({**region_fields(region), **measure,
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
                rows.append({**region_fields(region), **measure, "population": name,
                             "ir_mapped": name == mapped, "metric": metric,
                             **dataclasses.asdict(result)})
    return {"physiology": rows, "physiology_cells": cells}


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
