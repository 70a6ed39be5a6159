"""Figures of the neural comparison (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnc.io.atomic import atomic_path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path, dpi: int = 130) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        figure.savefig(stream, format=path.suffix.lstrip(".") or "png", dpi=dpi,
                       bbox_inches="tight")
    _pyplot().close(figure)


def _label(metric: str) -> str:
    return metric.replace("_", " ")


def ssm_heatmap(ssm: np.ndarray, populations: Sequence[str], regions: Sequence[str],
                ceilings: Sequence[tuple[float, float]], mapped: Mapping[str, str | None],
                method: str, path: Path, model: str = "MouseNet") -> None:
    """Populations x regions SSM, the noise ceiling written above, IR-mapped cells outlined.

    Colours span the data's own range (SSMs of untrained networks may all lie near 0), so
    differences between populations stay visible; the numbers are printed in every cell.
    """
    plt = _pyplot()
    finite = ssm[np.isfinite(ssm)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high - low < 1e-6:
        low, high = low - 0.05, high + 0.05
    width = 2.4 + 0.75 * len(regions)
    height = 1.8 + 0.3 * len(populations)
    figure, (top, main) = plt.subplots(
        2, 1, figsize=(width, height), sharex=True, layout="constrained",
        gridspec_kw={"height_ratios": [1.1, max(len(populations), 1)]})
    top.imshow(np.zeros((1, len(regions))), cmap="Greys", vmin=0, vmax=1, aspect="auto")
    for column, (lower, upper) in enumerate(ceilings):
        # "0.16 to 0.76": a dash before the upper bound would read as a minus sign
        top.text(column, 0, ceiling_text(lower, upper), ha="center", va="center", fontsize=7)
    top.set_yticks([0], ["noise\nceiling"], fontsize=8)
    top.tick_params(axis="x", length=0)
    image = main.imshow(ssm, cmap="viridis", vmin=low, vmax=high, aspect="auto")
    middle = (low + high) / 2
    for row, population in enumerate(populations):
        for column, region in enumerate(regions):
            value = ssm[row, column]
            if np.isfinite(value):
                main.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=6,
                          color="black" if value > middle else "white")
            if mapped.get(region) == population:
                main.add_patch(plt.Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False,
                                             edgecolor="red", linewidth=1.8))
    main.set_yticks(range(len(populations)), populations, fontsize=7)
    main.set_xticks(range(len(regions)), regions, rotation=45, ha="right", fontsize=7)
    main.set_xlabel("brain region (area, Cre line, layer)")
    main.set_ylabel(f"{model} population")
    figure.colorbar(image, ax=main, label=f"SSM ({method})", shrink=0.8)
    outlined = " (red box: population the IR maps to the region)" if any(mapped.values()) \
        else ""
    top.set_title(f"RDM similarity, {model} x brain ({method}){outlined}", fontsize=9)
    _save(figure, path)


def ceiling_text(lower: float, upper: float) -> str:
    """A noise ceiling's bounds on two lines, written so neither reads as negative."""
    return f"{lower:.2f} to\n{upper:.2f}"


def rdm_images(rdms: Mapping[str, np.ndarray], path: Path, columns: int = 4) -> None:
    """Square RDM images (1 - Pearson r), one panel per named RDM, shared colour scale."""
    plt = _pyplot()
    count = len(rdms)
    columns = min(columns, max(count, 1))
    rows = int(np.ceil(count / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(2.2 * columns + 0.8, 2.6 * rows),
                                squeeze=False, layout="constrained")
    values = np.concatenate([np.ravel(m) for m in rdms.values()]) if rdms else np.zeros(1)
    finite = values[np.isfinite(values)]
    vmax = float(np.percentile(finite, 99)) if finite.size else 2.0
    image = None
    for axis, (title, matrix) in zip(axes.ravel(), rdms.items(), strict=False):
        # Nearest-neighbour: one block per image pair (and a file a tenth the size).
        image = axis.imshow(matrix, cmap="viridis", vmin=0.0, vmax=max(vmax, 1e-6),
                            interpolation="nearest")
        # Long titles wrap to the panel's width so neighbours do not collide.
        lines = [part for line in title.split("\n") for part in textwrap.wrap(line, 28)]
        axis.set_title("\n".join(lines), fontsize=7)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_xlabel("image", fontsize=7)
        axis.set_ylabel("image", fontsize=7)
    for axis in axes.ravel()[count:]:
        axis.axis("off")
    if image is not None:
        figure.colorbar(image, ax=axes.ravel().tolist(), label="1 - Pearson r", shrink=0.7)
    _save(figure, path, dpi=100)


def best_population_bars(rows: Sequence[Mapping[str, Any]], method: str, path: Path,
                         model: str = "MouseNet") -> None:
    """Per region: SSM of the best population with jackknife error bars and noise ceiling."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(2.6 + 0.8 * len(rows), 3.6), layout="constrained")
    x = np.arange(len(rows))
    values = np.array([r["ssm"] for r in rows], dtype=float)
    errors = np.array([r["ssm_std"] for r in rows], dtype=float)
    axis.bar(x, values, yerr=np.nan_to_num(errors), color="tab:blue", capsize=3,
             label=f"best {model} population")
    for index, row in enumerate(rows):
        # An outlined, hatched box over the bar: a filled grey one would darken the bar where
        # they overlap and read as a third quantity.
        axis.add_patch(plt.Rectangle((index - 0.4, row["nc_lower"]), 0.8,
                                     max(row["nc_upper"] - row["nc_lower"], 0.004),
                                     fill=False, edgecolor="dimgrey", hatch="////",
                                     linewidth=0.8, zorder=3))
        axis.text(index, max(values[index], 0) + np.nan_to_num(errors[index]) + 0.02,
                  row["population"], ha="center", va="bottom", fontsize=7, rotation=90)
    axis.add_patch(plt.Rectangle((0, 0), 0, 0, fill=False, edgecolor="dimgrey", hatch="////",
                                 linewidth=0.8, label="noise ceiling (lower to upper bound)"))
    axis.set_xticks(x, [r["region"] for r in rows], rotation=45, ha="right", fontsize=7)
    axis.set_xlabel("brain region")
    axis.set_ylabel(f"SSM ({method})")
    axis.set_ylim(min(0.0, float(np.nanmin(values, initial=0)) - 0.05), 1.15)
    axis.axhline(0, color="black", linewidth=0.5)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axis.set_title(f"Best {model} population per brain region", fontsize=9)
    _save(figure, path)


_SERIES_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def distribution_panels(panels: Sequence[Mapping[str, Any]], path: Path,
                        columns: int = 3) -> None:
    """Histograms per panel; each panel has ``title``, ``metric`` and ``series``, a list of
    (values, label) drawn as overlaid densities."""
    plt = _pyplot()
    count = len(panels)
    columns = min(columns, max(count, 1))
    rows = int(np.ceil(count / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.9 * rows),
                                squeeze=False, layout="constrained")
    bins = np.linspace(0.0, 1.0, 21)
    for axis, panel in zip(axes.ravel(), panels, strict=False):
        for (values, label), colour in zip(panel["series"], _SERIES_COLOURS, strict=False):
            finite = np.asarray(values, dtype=float)
            finite = finite[np.isfinite(finite)]
            if finite.size:
                axis.hist(finite, bins=bins, density=True, histtype="stepfilled", alpha=0.35,
                          color=colour, edgecolor=colour, linewidth=1.2, label=label)
        axis.set_title(panel["title"], fontsize=7)
        axis.set_xlabel(_label(panel["metric"]), fontsize=7)
        axis.set_ylabel("density", fontsize=7)
        axis.tick_params(labelsize=6)
        axis.legend(fontsize=6, loc="upper left")
    for axis in axes.ravel()[count:]:
        axis.axis("off")
    _save(figure, path)


def trajectory(panels: Sequence[Mapping[str, Any]], path: Path, method: str,
               columns: int = 3) -> None:
    """SSM against validation top-1 along training, one panel per brain region.

    Each panel has ``title``, ``ceiling`` (low, high), ``lines``: a list of dicts with
    ``label``, ``accuracy``, ``ssm``, ``low``, ``high`` (95 % interval), ``epochs``,
    ``colour`` (optional; the same label should keep its colour across panels), and
    optionally ``baselines``: (label, ssm) drawn as horizontal dashed lines.
    """
    plt = _pyplot()
    count = len(panels)
    columns = min(columns, max(count, 1))
    rows = int(np.ceil(count / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.9 * rows),
                                squeeze=False, layout="constrained", sharey=True)
    handles: dict[str, Any] = {}
    for axis, panel in zip(axes.ravel(), panels, strict=False):
        low, high = panel["ceiling"]
        band = axis.axhspan(low, max(high, low + 0.004), color="grey", alpha=0.3, linewidth=0)
        handles.setdefault("noise ceiling", band)
        for number, line in enumerate(panel["lines"]):
            colour = line.get("colour", _SERIES_COLOURS[number % len(_SERIES_COLOURS)])
            x = np.asarray(line["accuracy"], dtype=float) * 100
            y = np.asarray(line["ssm"], dtype=float)
            error = np.vstack([y - np.asarray(line["low"], float),
                               np.asarray(line["high"], float) - y])
            drawn = axis.errorbar(x, y, yerr=np.nan_to_num(np.clip(error, 0, None)),
                                  color=colour, marker="o", markersize=3, capsize=2,
                                  linewidth=1.2)
            handles.setdefault(line["label"], drawn)
            for epoch, xi, yi in zip(line.get("epochs", []), x, y, strict=False):
                axis.annotate(str(epoch), (xi, yi), textcoords="offset points",
                              xytext=(2, 3), fontsize=5, color=colour)
        for (label, value), style in zip(panel.get("baselines", []), ("--", ":", "-."),
                                         strict=False):
            drawn = axis.axhline(value, color="black", linestyle=style, linewidth=1)
            handles.setdefault(label, drawn)
        axis.set_title(panel["title"], fontsize=8)
        axis.set_xlabel("validation top-1 (%)", fontsize=7)
        axis.set_ylabel(f"SSM ({method})", fontsize=7)
        axis.tick_params(labelsize=6)
    for axis in axes.ravel()[count:]:
        axis.axis("off")
    figure.legend(list(handles.values()), list(handles), loc="outside lower center",
                  ncol=min(4, len(handles)), fontsize=7)
    figure.suptitle("Similarity to the brain along training (numbers: epochs)", fontsize=9)
    _save(figure, path)


def instance_comparison(rows: Sequence[Mapping[str, Any]], path: Path, method: str) -> None:
    """Per region, side by side per model: each instance's best-population SSM (dots) and
    the mean over instances with its interval (bar with error bar). ``rows``: the table of
    ``instances.instance_table``."""
    plt = _pyplot()
    regions = list(dict.fromkeys(r["region"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    width = 0.8 / max(len(models), 1)
    figure, axis = plt.subplots(figsize=(2.6 + 0.9 * len(regions), 3.6), layout="constrained")
    for number, model in enumerate(models):
        colour = _SERIES_COLOURS[number % len(_SERIES_COLOURS)]
        for row in (r for r in rows if r["model"] == model):
            x = regions.index(row["region"]) - 0.4 + width * (number + 0.5)
            low, high = row["ssm_low"], row["ssm_high"]
            error = [[row["ssm_mean"] - low], [high - row["ssm_mean"]]] if np.isfinite(low) \
                else None
            axis.bar(x, row["ssm_mean"], width * 0.9, yerr=error, color=colour, alpha=0.5,
                     capsize=3, label=model if row["region"] == regions[0] else None)
            dots = [float(v) for v in str(row["ssm_instances"]).split(";") if v]
            axis.scatter([x] * len(dots), dots, color=colour, s=10, zorder=3)
    axis.set_xticks(np.arange(len(regions)), regions, rotation=45, ha="right", fontsize=7)
    axis.set_ylabel(f"best-population SSM ({method})")
    axis.axhline(0, color="black", linewidth=0.5)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axis.set_title("Instances per model: dots; mean and 95 % interval: bars", fontsize=9)
    _save(figure, path)
