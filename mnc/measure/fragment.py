"""Spec fragments (partial specs) holding derived measurements, ready for ``extends:``.

A fragment holds only the blocks it derives, so a spec that extends ``[mouse.yaml,
fragment.yaml]`` overrides exactly those entries (JSON merge patch: mappings merge). The
text is written by hand, not by a YAML dumper, to keep one projection per line with its
voxel counts as a comment; a test parses it back with a safe loader.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mnc.io.atomic import write_text_atomic
from mnc.measure.connectome import ConnectomeMeasurement
from mnc.measure.names import split_population
from mnc.measure.profile import Status
from mnc.measure.surface import SurfaceMeasurement

KNOX = ("Knox et al. 2019 (Network Neuroscience), voxel-scale (100 um) model of the mouse "
        "connectome")
SOURCE_LIMIT = 2000  # the spec's limit on a provenance text


def number(value: float) -> str:
    """Plain decimal with 6 significant digits; YAML 1.1 loaders read '1e-05' as a string."""
    return np.format_float_positional(value, precision=6, unique=False, fractional=False,
                                      trim="0")


def quoted(text: str) -> str:
    """A double-quoted YAML scalar (JSON string syntax is valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def interareal_fragment(measurement: ConnectomeMeasurement, model: str, date: str) -> str:
    settings = measurement.settings
    width = ("per-axis sigma" if settings.width_definition == "sigma"
             else "root-mean-square radius (sqrt(2) sigma)")
    method = (
        f"projections listed in this fragment derived by mnc measure connectome from {model} "
        f"on {date} (other projections keep their base spec's figures); method (MouseNet, Shi et "
        "al. 2022): per target voxel, the weights from the source population's voxels on the "
        f"cortical flat map, smoothed by kernel ridge regression (RBF {settings.smoothing_mm} "
        f"mm, alpha {settings.ridge_alpha}); profiles with a second peak (prominence >= "
        f"{settings.min_prominence} of the range) or peaking within {settings.border_mm} mm "
        f"of the source area's border rejected; sigma_mm = mean over the remaining target "
        f"voxels of the {width} of a least-squares isotropic Gaussian; strength = mean total "
        "inbound weight per target voxel, normalised over each target's sources listed here; "
        f"{measurement.hemisphere} hemisphere; {KNOX}"
    )
    counts = "; target voxels used/all: " + ", ".join(
        f"{p.key} {p.count(Status.ACCEPTED)}/{p.target_voxels}" for p in measurement.projections)
    source = method + counts if len(method) + len(counts) <= SOURCE_LIMIT else (
        method + "; voxel counts per projection in the comments of the derived fragment")
    lines = [
        "# Derived interareal strengths and widths: a spec fragment.",
        "# Use it from a spec:  extends: [mouse.yaml, <this file>]",
        "# Per projection: target voxels used / all (rejected multimodal, border-peaked, "
        "empty, fit failed),",
        "# and the mean total inbound weight per target voxel before normalisation.",
        "interareal:",
        f"  source: {quoted(source[:SOURCE_LIMIT])}",
        "  projections:",
    ]
    for projection in measurement.projections:
        comment = (f"  # {projection.count(Status.ACCEPTED)}/{projection.target_voxels} used "
                   f"({projection.count(Status.MULTIMODAL)} multimodal, "
                   f"{projection.count(Status.BORDER)} border, "
                   f"{projection.count(Status.EMPTY)} empty, "
                   f"{projection.count(Status.FIT_FAILED)} failed); "
                   f"mean total weight {projection.mean_total_weight:.4g}")
        if projection.strength <= 0:
            lines.append(f"    # {quoted(projection.key)}: no weight in the voxel model; "
                         "left out (a base spec's entry, if any, stays)")
            continue
        fields = [f"strength: {number(projection.strength)}"]
        if projection.sigma_mm is None:
            comment += "; no profile passed the checks, so sigma_mm is left to the base spec"
        else:
            fields.append(f"sigma_mm: {number(projection.sigma_mm)}")
        lines.append(f"    {quoted(projection.key)}: {{{', '.join(fields)}}}{comment}")
    return "\n".join(lines) + "\n"


def surface_fragment(measurement: SurfaceMeasurement, model: str, flatmap: str,
                     date: str) -> str:
    source = (f"populations listed in this fragment derived by mnc measure surface from "
              f"{model} on {date} (others keep their base spec's figures): area of the convex "
              f"hull of the population's voxel centres on the cortical flat map ({flatmap}), "
              f"{measurement.hemisphere} hemisphere; annotation: Allen CCF at 100 um")
    by_area: dict[str, dict[str, float]] = {}
    for population, value in measurement.values_mm2.items():
        area, layer = split_population(population)
        if layer is None:
            continue  # the caller refuses layerless populations before measuring
        by_area.setdefault(area, {})[layer] = value
    lines = [
        "# Derived surface areas: a spec fragment.",
        "# Use it from a spec:  extends: [mouse.yaml, <this file>]",
        "surface_area_mm2:",
        f"  source: {quoted(source[:SOURCE_LIMIT])}",
        "  values:",
    ]
    for area, layers in by_area.items():
        entries = ", ".join(f"{quoted(layer)}: {number(value)}" for layer, value in layers.items())
        lines.append(f"    {area}: {{{entries}}}")
    lines.append("  notes:")
    for population in measurement.values_mm2:
        note = (f"derived: convex hull of {measurement.voxels[population]} voxels on the flat "
                f"map ({measurement.unmapped_voxels[population]} without a flat-map position)")
        lines.append(f"    {quoted(population)}: {quoted(note)}")
    return "\n".join(lines) + "\n"


def write_fragment(path: str | Path, text: str) -> None:
    write_text_atomic(path, text)
