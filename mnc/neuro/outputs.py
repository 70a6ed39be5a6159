"""What a run writes: CSV tables, summary facts and figures."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mnc.io.atomic import atomic_open, write_text_atomic
from mnc.neuro import figures
from mnc.neuro.layers import cre_short_name
from mnc.neuro.model_features import LoadedModel, chosen_steps, is_stepped
from mnc.neuro.options import AnalysisOptions
from mnc.neuro.physiology_tables import PHYSIOLOGY_METRICS, closest_populations, metric_values
from mnc.neuro.regions import Region
from mnc.neuro.report import Report, Tables, plain_value
from mnc.neuro.representation import FeatureSummary
from mnc.neuro.score_tables import REPLICATES_TABLE, region_fields
from mnc.neuro.sources.recordings import NeuralData


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
            writer.writerow([f"{v:.6g}" if isinstance(v, float) else plain_value(v) for v in row])


def write_tables(out: Path, report: Report) -> None:
    for name, table in report.tables.items():
        if name == REPLICATES_TABLE:
            continue
        write_csv(out / f"{name}.csv", table)
        report.files[name] = str(out / f"{name}.csv")


def run_info(loaded: LoadedModel, data: NeuralData, regions: Sequence[Region],
              report: Report, options: AnalysisOptions) -> dict[str, Any]:
    time: dict[str, Any] = {}
    if is_stepped(loaded.model):
        steps = chosen_steps(loaded.model, options.step)
        time = {"step": options.step, "steps_compared": [steps.start, steps.stop - 1]}
    return {"model": loaded.label, "ir_hash": loaded.network_key, "weights": loaded.weights_key,
            **time,
            "feature_key": report.feature_key, "neural_fingerprint": data.fingerprint,
            "sessions": list(data.sessions),
            "regions": [{**region_fields(r),
                         "sessions": list(r.sessions)} for r in regions]}


def rsa_figures(out: Path, summaries: Mapping[str, FeatureSummary], regions: Sequence[Region],
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


def physiology_figure(path: Path, summaries: Mapping[str, FeatureSummary],
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
