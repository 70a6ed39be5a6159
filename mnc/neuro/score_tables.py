"""RSA and predictivity tables: every model population against every recorded region."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mnc.neuro.jackknife import interval as jackknife_interval
from mnc.neuro.jackknife import jackknife_se
from mnc.neuro.layers import cell_class
from mnc.neuro.options import AnalysisOptions
from mnc.neuro.regions import Region
from mnc.neuro.representation import FeatureSummary

PIXELS = "input"
"""The image itself: scored as a control (rsa.csv), never chosen as a best population."""
REPLICATES_TABLE = "rsa_jackknife"
"""Table of leave-one-image-out SSM replicates (not written as CSV: a list per row)."""


def region_fields(region: Region) -> dict[str, Any]:
    return {"region": region.label, "area": region.area, "cre_line": region.cre_line or "",
            "cell_class": cell_class(region.cre_line), "layer": region.layer,
            "n_cells": region.n_cells}


def each_region(regions: Sequence[Region], analysis: str) -> Any:
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
    for region_index, region in enumerate(each_region(regions, "RSA")):
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
            ceiling = rsa.noise_ceiling(half_rdms, method)
            region_rows = _population_rows(region, names, mapped, method, values, jack, ceiling)
            rows.extend(region_rows)
            finite = [i for i in candidates if np.isfinite(values[i])] or candidates
            top = region_rows[max(finite, key=lambda i: values[i])]
            # winner's curse: the best population is chosen again without each image
            chosen = np.max(jack.replicates[:, finite], axis=1) if jack is not None else None
            if jack is not None and chosen is not None:
                samples.extend(_replicate_rows(region.label, method, top["population"], chosen,
                                               mapped, names, jack.replicates))
            best.append(_best_row(region, method, top, chosen, ceiling, mapped, region_rows))
    return {"rsa": rows, "rsa_best": best, REPLICATES_TABLE: samples}


def _population_rows(region: Region, names: Sequence[str], mapped: str | None, method: str,
                     values: np.ndarray, jack: Any, ceiling: tuple[float, float]
                     ) -> list[dict[str, Any]]:
    """One rsa.csv row per population for one region and method."""
    nan = np.full(len(names), np.nan)
    std, (low, high) = (jack.std, jack.interval(values)) if jack else (nan, (nan, nan))
    return [{**region_fields(region), "population": name, "ir_mapped": name == mapped,
             "method": method, "ssm": float(values[index]), "ssm_std": float(std[index]),
             "ssm_ci_low": float(low[index]), "ssm_ci_high": float(high[index]),
             "nc_lower": ceiling[0], "nc_upper": ceiling[1]}
            for index, name in enumerate(names)]


def _replicate_rows(region: str, method: str, top: str, chosen: np.ndarray, mapped: str | None,
                    names: Sequence[str], replicates: Any) -> list[dict[str, Any]]:
    """The jackknife replicates of the best population (chosen again in each) and of the
    IR-mapped one."""
    found = [{"region": region, "method": method, "kind": "best", "population": top,
              "samples": chosen.tolist()}]
    if mapped is not None and mapped in names:
        found.append({"region": region, "method": method, "kind": "ir_mapped",
                      "population": mapped,
                      "samples": replicates[:, list(names).index(mapped)].tolist()})
    return found


def _best_row(region: Region, method: str, top: dict[str, Any], chosen: np.ndarray | None,
              ceiling: tuple[float, float], mapped: str | None,
              region_rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The rsa_best.csv row: the best population with the interval of the re-chosen best."""
    top_std = top_low = top_high = float("nan")
    if chosen is not None:
        top_std = float(jackknife_se(chosen))
        ends = jackknife_interval(np.asarray(top["ssm"]), np.asarray(top_std), chosen.size - 1)
        top_low, top_high = float(ends[0]), float(ends[1])
    mapped_row = next((r for r in region_rows if r["ir_mapped"]), None)
    return {**region_fields(region), "method": method, "population": top["population"],
            "ssm": top["ssm"], "ssm_std": top_std, "ssm_ci_low": top_low,
            "ssm_ci_high": top_high, "nc_lower": ceiling[0], "nc_upper": ceiling[1],
            "ir_population": mapped or "",
            "ir_population_ssm": mapped_row["ssm"] if mapped_row else float("nan")}


def predictivity_tables(summaries: Mapping[str, FeatureSummary], regions: Sequence[Region],
                        ir_populations: Sequence[Any], options: AnalysisOptions
                        ) -> dict[str, list[dict[str, Any]]]:
    """Noise-corrected predictivity of every region from every population, and the summary
    comparing the population the IR maps with the best one found by searching all."""
    from mnc.neuro.predictivity import predictivity, split_half_reliability

    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    embeddings = {name: s.regression_embedding() for name, s in summaries.items()}
    for region_index, region in enumerate(each_region(regions, "predictivity")):
        reliability = split_half_reliability(region, options.n_splits,
                                             seed=options.seed + region_index)
        mapped = region.model_population(ir_populations, options.map_inhibitory)
        for regression in options.regressions:
            region_rows = []
            for name, features in embeddings.items():
                score = predictivity(features, region, reliability, regression,
                                     options.n_folds, options.min_reliability, options.seed)
                region_rows.append({
                    **region_fields(region), "population": name,
                    "ir_mapped": name == mapped, "regression": regression,
                    "score": score.median_corrected, "median_r": score.median_raw,
                    "n_reliable_cells": score.n_cells})
            rows.extend(region_rows)
            finite = [r for r in region_rows if np.isfinite(r["score"])]
            top = max(finite, key=lambda r: r["score"]) if finite else None
            mapped_row = next((r for r in region_rows if r["ir_mapped"]), None)
            summary.append({
                **region_fields(region), "regression": regression,
                "ir_population": mapped or "",
                "ir_population_score": mapped_row["score"] if mapped_row else float("nan"),
                "best_population": top["population"] if top else "",
                "best_score": top["score"] if top else float("nan"),
                "n_reliable_cells": region_rows[0]["n_reliable_cells"]})
    return {"predictivity": rows, "predictivity_best": summary}
