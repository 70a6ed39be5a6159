"""Figures people can read: colour scales from the data, legends off the bars, labelled axes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mnc.neuro import figures

pytest.importorskip("matplotlib")


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Figures handed to ``_save`` (kept open for inspection instead of written)."""
    kept: list[Any] = []
    monkeypatch.setattr(figures, "_save", lambda figure, path, dpi=130: kept.append(figure))
    return kept


def test_ssm_heatmap_scales_colours_to_the_data(captured: list[Any], tmp_path: Path) -> None:
    ssm = np.array([[0.01, 0.03], [0.02, 0.05], [np.nan, 0.04]])
    figures.ssm_heatmap(ssm, ["a", "b", "c"], ["VISp", "VISl"], [(0.5, 0.9), (0.4, 0.8)],
                        {"VISp": "a", "VISl": None}, "spearman", tmp_path / "h.png")
    top, main = captured[0].axes[:2]
    assert main.images[0].get_clim() == pytest.approx((0.01, 0.05))
    ceiling_text = [text.get_text() for text in top.texts]
    assert ceiling_text == ["0.50 to\n0.90", "0.40 to\n0.80"]  # no "-0.90" to misread
    assert all(text.get_fontsize() >= 7 for text in top.texts)


def test_bar_legend_sits_outside_the_bars(captured: list[Any], tmp_path: Path) -> None:
    rows = [{"region": f"region {i}", "population": "VISp4", "ssm": 0.9, "ssm_std": 0.05,
             "nc_lower": 0.8, "nc_upper": 0.95} for i in range(3)]
    figures.best_population_bars(rows, "spearman", tmp_path / "b.png")
    figure = captured[0]
    figure.canvas.draw()
    axis = figure.axes[0]
    legend = axis.get_legend().get_window_extent()
    assert legend.x0 >= axis.get_window_extent().x1  # right of the plotting area


def test_distribution_panels_label_both_axes(captured: list[Any], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    figures.distribution_panels(
        [{"title": "VISp Cux2 L2/3 cells vs MouseNet VISp2/3\n(population the IR maps)",
          "metric": "lifetime_sparseness",
          "series": [(rng.random(50), "VISp2/3 units"), (rng.random(20), "Cux2 cells")]}],
        tmp_path / "d.png")
    axis = captured[0].axes[0]
    assert axis.get_xlabel() == "lifetime sparseness" and axis.get_ylabel() == "density"
    assert "VISp2/3" in axis.get_title()


def test_rdm_panel_titles_do_not_overlap(captured: list[Any], tmp_path: Path) -> None:
    matrix = np.random.default_rng(0).random((10, 10))
    figures.rdm_images({f"MouseNet VISpor2/3 (best for VISam Cux2 L2/3, panel {i})": matrix
                        for i in range(8)},
                       tmp_path / "r.png", columns=4)
    figure = captured[0]
    figure.canvas.draw()
    boxes = [axis.title.get_window_extent() for axis in figure.axes if axis.get_title()]
    for index, first in enumerate(boxes):
        for second in boxes[index + 1:]:
            assert not first.overlaps(second)


def test_the_noise_ceiling_box_does_not_darken_the_bar_it_overlaps(captured: list[Any],
                                                                   tmp_path: Path) -> None:
    rows = [{"region": "VISp", "population": "VISp4", "ssm": 0.9, "ssm_std": 0.05,
             "nc_lower": 0.8, "nc_upper": 0.95}]
    figures.best_population_bars(rows, "spearman", tmp_path / "b.png")
    axis = captured[0].axes[0]
    boxes = [patch for patch in axis.patches if patch.get_hatch()]
    assert boxes and not any(box.get_fill() for box in boxes)
    assert "noise ceiling (lower to upper bound)" in [
        text.get_text() for text in axis.get_legend().get_texts()]
