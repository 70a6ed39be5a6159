"""A picture of the architecture: areas by hierarchy level, layers stacked within an area."""

from __future__ import annotations

import math
from pathlib import Path

from mnc.analysis.cost import network_cost
from mnc.errors import UsageError
from mnc.io.atomic import atomic_path
from mnc.ir.model import IR

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}


def node_positions(ir: IR) -> dict[str, tuple[float, float]]:
    """x: hierarchy level; y: areas of a level side by side, layers stacked within an area."""
    areas_by_level: dict[int, list[str]] = {}
    for population in ir.populations:
        areas = areas_by_level.setdefault(population.hierarchy_level, [])
        if population.area not in areas:
            areas.append(population.area)
    layer_rows: dict[str, int] = {}
    for population in ir.populations:
        if population.layer is not None and population.layer not in layer_rows:
            layer_rows[population.layer] = len(layer_rows)
    rows = max(len(layer_rows), 1)
    positions = {}
    for population in ir.populations:
        areas = areas_by_level[population.hierarchy_level]
        slot = areas.index(population.area) - (len(areas) - 1) / 2
        row = (
            layer_rows.get(population.layer, (rows - 1) / 2) if population.layer else (rows - 1) / 2
        )
        positions[population.name] = (
            3.0 * (population.hierarchy_level + 1),
            1.6 * (slot * (rows + 1.5) + row),
        )
    return positions


def draw(ir: IR, output: Path) -> None:
    """Write SVG, PNG or PDF (chosen by the file suffix) atomically."""
    file_format = FORMATS.get(output.suffix.lower())
    if file_format is None:
        raise UsageError(
            f"{output}: unknown picture format {output.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions = node_positions(ir)
    costs = {cost.name: cost for cost in network_cost(ir).projections}
    largest = max((cost.masked_macs for cost in costs.values()), default=1.0) or 1.0
    ys = [y for _x, y in positions.values()]
    figure, axes = plt.subplots(figsize=(12, max(6.0, 0.45 * (max(ys) - min(ys) + 2))))
    for projection in ir.projections:
        (x0, y0), (x1, y1) = positions[projection.source], positions[projection.target]
        share = costs[projection.name].masked_macs / largest
        axes.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={
                "arrowstyle": "-|>",
                "color": "#4a6fa5",
                "alpha": 0.25 + 0.6 * share,
                "lw": 0.5 + 3.0 * share,
                "shrinkA": 8,
                "shrinkB": 8,
                "connectionstyle": "arc3,rad=0.08",
            },
        )
    for population in ir.populations:
        x, y = positions[population.name]
        size = 60 + 12 * math.sqrt(population.channels * population.height * population.width / 64)
        axes.scatter([x], [y], s=size, color="#f2b134", edgecolor="#333333", zorder=3)
        axes.annotate(
            f"{population.name}\n{population.channels}x{population.height}x{population.width}",
            (x, y),
            textcoords="offset points",
            xytext=(10, 0),
            ha="left",
            va="center",
            fontsize=7,
            zorder=4,
        )
    axes.set_title(
        f"{ir.name}: {len(ir.populations)} populations, {len(ir.projections)} "
        f"projections (IR {ir.short_hash}); arrow weight ~ masked MACs",
        fontsize=10,
    )
    axes.set_xlabel("hierarchy level")
    levels = sorted({population.hierarchy_level for population in ir.populations})
    axes.set_xticks(
        [3.0 * (level + 1) for level in levels],
        ["input" if level < 0 else str(level) for level in levels],
    )
    axes.set_yticks([])
    axes.margins(0.08)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    figure.tight_layout()
    with atomic_path(output) as temporary:
        figure.savefig(temporary, format=file_format, dpi=150)
    plt.close(figure)
