"""Figures of the neural comparison (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

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


def _save(figure: Any, path: Path) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        figure.savefig(stream, format=path.suffix.lstrip(".") or "png", dpi=130,
                       bbox_inches="tight")
    _pyplot().close(figure)


def ssm_heatmap(ssm: np.ndarray, populations: Sequence[str], regions: Sequence[str],
                ceilings: Sequence[tuple[float, float]], mapped: Mapping[str, str | None],
                method: str, path: Path) -> None:
    """Populations x regions SSM, a noise-ceiling row on top, IR-mapped cells outlined."""
    plt = _pyplot()
    upper = np.array([c[1] for c in ceilings])[None, :]
    height = 1.2 + 0.32 * (len(populations) + 1)
    figure, (top, main) = plt.subplots(
        2, 1, figsize=(1.4 + 0.9 * len(regions), height), sharex=True, layout="constrained",
        gridspec_kw={"height_ratios": [1, max(len(populations), 1)]})
    limit = float(np.nanmax(np.abs(np.concatenate([ssm.ravel(), upper.ravel(), [1e-6]]))))
    options = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit, "aspect": "auto"}
    top.imshow(upper, **options)
    for column, (lower, high) in enumerate(ceilings):
        top.text(column, 0, f"{lower:.2f}-{high:.2f}", ha="center", va="center", fontsize=7)
    top.set_yticks([0], ["noise ceiling"])
    image = main.imshow(ssm, **options)
    for row, population in enumerate(populations):
        for column, region in enumerate(regions):
            value = ssm[row, column]
            if np.isfinite(value):
                main.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=6)
            if mapped.get(region) == population:
                main.add_patch(plt.Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False,
                                             edgecolor="black", linewidth=1.5))
    main.set_yticks(range(len(populations)), populations, fontsize=7)
    main.set_xticks(range(len(regions)), regions, rotation=45, ha="right", fontsize=7)
    main.set_xlabel("brain region (area, Cre line, layer); outlined: population the IR maps")
    main.set_ylabel("model population")
    figure.colorbar(image, ax=[top, main], label=f"SSM ({method})", shrink=0.6)
    top.set_title(f"Similarity of RDMs, model x brain ({method})")
    _save(figure, path)


def rdm_images(rdms: Mapping[str, np.ndarray], path: Path, columns: int = 4) -> None:
    """Square RDM images (1 - Pearson r), one panel per named RDM, shared colour scale."""
    plt = _pyplot()
    count = len(rdms)
    columns = min(columns, max(count, 1))
    rows = int(np.ceil(count / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows),
                                squeeze=False)
    image = None
    for axis, (title, matrix) in zip(axes.ravel(), rdms.items(), strict=False):
        image = axis.imshow(matrix, cmap="viridis", vmin=0.0, vmax=2.0)
        axis.set_title(title, fontsize=8)
        axis.set_xticks([])
        axis.set_yticks([])
    for axis in axes.ravel()[count:]:
        axis.axis("off")
    if image is not None:
        figure.colorbar(image, ax=axes.ravel().tolist(), label="1 - Pearson r", shrink=0.7)
    _save(figure, path)


def best_population_bars(rows: Sequence[Mapping[str, Any]], method: str, path: Path) -> None:
    """Per region: SSM of the best population with bootstrap error bars and noise ceiling."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(1.5 + 0.8 * len(rows), 3.4))
    x = np.arange(len(rows))
    values = np.array([r["ssm"] for r in rows], dtype=float)
    errors = np.array([r["ssm_std"] for r in rows], dtype=float)
    axis.bar(x, values, yerr=errors, color="tab:blue", capsize=3, label="best population")
    for index, row in enumerate(rows):
        axis.add_patch(plt.Rectangle((index - 0.4, row["nc_lower"]), 0.8,
                                     max(row["nc_upper"] - row["nc_lower"], 0.004),
                                     color="grey", alpha=0.45, linewidth=0))
        axis.text(index, max(values[index], 0) + errors[index] + 0.02, row["population"],
                  ha="center", va="bottom", fontsize=7, rotation=90)
    axis.plot([], [], color="grey", alpha=0.45, linewidth=6, label="noise ceiling")
    axis.set_xticks(x, [r["region"] for r in rows], rotation=45, ha="right", fontsize=7)
    axis.set_ylabel(f"SSM ({method})")
    axis.set_ylim(min(0.0, float(np.nanmin(values, initial=0)) - 0.05), 1.15)
    axis.axhline(0, color="black", linewidth=0.5)
    axis.legend(fontsize=7, loc="upper right")
    axis.set_title("Best model population per brain region")
    _save(figure, path)


def distribution_panels(panels: Sequence[Mapping[str, Any]], path: Path,
                        columns: int = 3) -> None:
    """Histograms model vs recorded; each panel has title, model, neural, ks, labels."""
    plt = _pyplot()
    count = len(panels)
    columns = min(columns, max(count, 1))
    rows = int(np.ceil(count / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows),
                                squeeze=False)
    bins = np.linspace(0.0, 1.0, 21)
    for axis, panel in zip(axes.ravel(), panels, strict=False):
        for values, label, colour in ((panel["model"], panel["model_label"], "tab:blue"),
                                      (panel["neural"], panel["neural_label"], "tab:orange")):
            finite = np.asarray(values, dtype=float)
            finite = finite[np.isfinite(finite)]
            if finite.size:
                axis.hist(finite, bins=bins, density=True, alpha=0.55, color=colour,
                          label=label)
        axis.set_title(f"{panel['title']}\nKS = {panel['ks']:.2f}", fontsize=8)
        axis.set_xlabel(panel["metric"], fontsize=7)
        axis.legend(fontsize=6)
    for axis in axes.ravel()[count:]:
        axis.axis("off")
    figure.tight_layout()
    _save(figure, path)
