"""A picture of the architecture: areas by hierarchy level, layers stacked within an area;
recurrent projections (feedback, lateral) dashed and labelled with their delay."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mnc.analysis.cost import network_cost
from mnc.analysis.recurrence import describe_recurrence, projection_kind
from mnc.errors import UsageError
from mnc.io.atomic import atomic_path
from mnc.ir.model import IR, Projection

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


KIND_COLOURS = {"feedforward": "#4a6fa5", "delayed forward": "#6a9a3a", "feedback": "#c0392b",
                "lateral": "#8e44ad"}


def _time_label(projection: Projection) -> str:
    """``d1`` (delay in steps), ``d1 x2`` when the source is upsampled twofold."""
    return f"d{projection.delay}" + (f" x{projection.upsample}" if projection.upsample != 1
                                     else "")


def architecture_figure(ir: IR) -> Any:
    """The matplotlib figure ``draw`` saves. Feed-forward projections are solid arrows;
    recurrent ones (delay >= 1) dashed, coloured by kind (feedback, lateral, delayed
    forward) and labelled with their delay and upsampling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions = node_positions(ir)
    costs = {cost.name: cost for cost in network_cost(ir).projections}
    largest = max((cost.masked_macs for cost in costs.values()), default=1.0) or 1.0
    ys = [y for _x, y in positions.values()]
    figure, axes = plt.subplots(figsize=(12, max(6.0, 0.45 * (max(ys) - min(ys) + 2))))
    labels: list[tuple[Projection, str, tuple[float, float], tuple[float, float], float]] = []
    for projection in ir.projections:
        (x0, y0), (x1, y1) = positions[projection.source], positions[projection.target]
        share = costs[projection.name].masked_macs / largest
        kind = projection_kind(ir, projection)
        recurrent = kind != "feedforward"
        (x0, y0), (x1, y1), bend = _arrow_ends(projection, kind, (x0, y0), (x1, y1))
        axes.annotate("", xy=(x1, y1), xytext=(x0, y0),
                      arrowprops=_arrow_style(projection, kind, share, bend))
        if recurrent:
            labels.append((projection, KIND_COLOURS[kind], (x0, y0), (x1, y1), bend))
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
    title = (f"{ir.name}: {len(ir.populations)} populations, {len(ir.projections)} "
             f"projections (IR {ir.short_hash}); arrow weight ~ masked MACs")
    if ir.is_recurrent:
        title += (f"\n{describe_recurrence(ir)}; dashed: recurrent, labelled d<delay in "
                  f"steps> x<upsampling>")
    axes.set_title(title, fontsize=10)
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
    to_display = axes.transData
    for projection, colour, start, end, bend in labels:
        # The middle of the arc3 curve, which bends in display coordinates.
        (x0, y0), (x1, y1) = to_display.transform([start, end])
        middle = ((x0 + x1) / 2 + bend * (y1 - y0) / 2, (y0 + y1) / 2 - bend * (x1 - x0) / 2)
        label_x, label_y = to_display.inverted().transform(middle)
        axes.annotate(_time_label(projection), (label_x, label_y),
                      fontsize=6, color=colour, ha="center", va="center", zorder=5,
                      bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none",
                            "alpha": 0.8})
    return figure


def _arrow_ends(projection: Projection, kind: str, start: tuple[float, float],
                end: tuple[float, float]
                ) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Start, end and arc bend of one arrow: a loop onto the population itself runs from
    above the node round to its right; feedback bends the other way from feed-forward."""
    if projection.source == projection.target:
        return (start[0] - 0.05, start[1] + 0.35), (end[0] + 0.25, end[1] + 0.05), -1.6
    return start, end, -0.25 if kind == "feedback" else 0.08


def _arrow_style(projection: Projection, kind: str, share: float, bend: float
                 ) -> dict[str, Any]:
    """Feed-forward arrows fade and thin with their share of the cost; recurrent ones are
    dashed and always visible."""
    recurrent = kind != "feedforward"
    shrink = 0 if projection.source == projection.target else 8
    return {
        "arrowstyle": "-|>",
        "color": KIND_COLOURS[kind],
        "alpha": 0.25 + 0.6 * share if not recurrent else 0.85,
        "lw": 0.5 + 3.0 * share if not recurrent else 1.0 + 2.0 * share,
        "linestyle": "--" if recurrent else "-",
        "shrinkA": shrink,
        "shrinkB": shrink,
        "connectionstyle": f"arc3,rad={bend}",
    }


def draw(ir: IR, output: Path) -> None:
    """Write SVG, PNG or PDF (chosen by the file suffix) atomically."""
    file_format = FORMATS.get(output.suffix.lower())
    if file_format is None:
        raise UsageError(
            f"{output}: unknown picture format {output.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    import matplotlib.pyplot as plt

    figure = architecture_figure(ir)
    with atomic_path(output) as temporary:
        figure.savefig(temporary, format=file_format, dpi=150)
    plt.close(figure)
