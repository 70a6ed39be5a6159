"""Profile analysis on hand-made flat-map profiles: widths, rejections, prominence."""

from __future__ import annotations

import numpy as np
import pytest

from mnc.measure.profile import ProfileSettings, Status, _secondary_prominence, analyse_profiles

PITCH = 0.1


def sheet(side: int = 24, depth: int = 2) -> np.ndarray:
    """Flat positions of a square area, ``depth`` voxels per column."""
    x, y = np.meshgrid(np.arange(side) * PITCH, np.arange(side) * PITCH, indexing="ij")
    return np.repeat(np.column_stack([x.ravel(), y.ravel()]), depth, axis=0)


def gaussian(points: np.ndarray, centre: tuple[float, float], sigma: float) -> np.ndarray:
    return np.exp(-np.sum((points - np.array(centre)) ** 2, axis=1) / (2 * sigma**2))


@pytest.mark.parametrize("sigma", [0.15, 0.25, 0.4])
def test_widths_recovered_within_5_percent_with_noise(sigma: float) -> None:
    rng = np.random.default_rng(1)
    points = sheet()
    centres = [(1.1, 1.2), (0.9, 1.4), (1.3, 1.0), (0.6, 1.15)]  # the last is near the edge
    columns = [gaussian(points, c, sigma) * (1 + 0.05 * rng.standard_normal(len(points)))
               for c in centres]
    results = analyse_profiles(points, np.column_stack(columns), ProfileSettings())
    assert list(results.status) == [Status.ACCEPTED] * len(centres)
    assert np.all(np.abs(results.sigma_mm / sigma - 1) < 0.05), results.sigma_mm


def test_width_unbiased_by_background_and_truncation() -> None:
    points = sheet()
    # centre 0.25 mm inside the edge: a second moment would see a truncated, lifted profile
    profile = gaussian(points, (0.25, 1.2), 0.3) + 0.05
    results = analyse_profiles(points, profile[:, None], ProfileSettings())
    assert results.status[0] == Status.ACCEPTED
    assert results.sigma_mm[0] == pytest.approx(0.3, rel=0.02)


def test_rms_radius_definition_is_sqrt2_sigma() -> None:
    points = sheet()
    profile = gaussian(points, (1.2, 1.1), 0.25)[:, None]
    sigma = analyse_profiles(points, profile, ProfileSettings()).sigma_mm[0]
    radius = analyse_profiles(points, profile,
                              ProfileSettings(width_definition="rms-radius")).sigma_mm[0]
    assert radius == pytest.approx(np.sqrt(2) * sigma, rel=1e-9)


def test_multimodal_border_and_empty_profiles_rejected() -> None:
    points = sheet()
    two_peaks = gaussian(points, (0.6, 0.6), 0.15) + 0.7 * gaussian(points, (1.8, 1.7), 0.15)
    outside = gaussian(points, (-0.4, 1.2), 0.3)  # centre beyond the area's edge
    on_edge = gaussian(points, (0.0, 1.2), 0.3)   # centre on the outermost voxels
    empty = np.zeros(len(points))
    good = gaussian(points, (1.2, 1.2), 0.3)
    weights = np.column_stack([two_peaks, outside, on_edge, empty, good])
    results = analyse_profiles(points, weights, ProfileSettings())
    assert list(results.status) == [Status.MULTIMODAL, Status.BORDER, Status.BORDER,
                                    Status.EMPTY, Status.ACCEPTED]
    assert np.isnan(results.sigma_mm[:4]).all()
    assert results.totals[3] == 0 and results.totals[4] > 0


def test_weak_second_peak_below_threshold_is_kept() -> None:
    points = sheet()
    profile = gaussian(points, (1.0, 1.0), 0.2) + 0.1 * gaussian(points, (1.9, 1.9), 0.15)
    results = analyse_profiles(points, profile[:, None], ProfileSettings(min_prominence=0.2))
    assert results.status[0] == Status.ACCEPTED
    assert 0 < results.prominence[0] < 0.2
    strict = analyse_profiles(points, profile[:, None], ProfileSettings(min_prominence=0.05))
    assert strict.status[0] == Status.MULTIMODAL


def test_prominence_of_hand_built_images() -> None:
    inside = np.ones((7, 9), dtype=bool)
    x = np.arange(9)
    one_peak = np.tile(-(x - 4.0) ** 2, (7, 1))
    assert _secondary_prominence(one_peak, inside) == 0.0
    flat_top = np.zeros((7, 9))
    flat_top[2:5, 3:6] = 1.0  # a plateau is one peak, not nine
    assert _secondary_prominence(flat_top, inside) == 0.0
    two_peaks = np.full((7, 9), -1.0)
    two_peaks[3] = [0.2, 1.0, 0.5, 0.4, 0.3, 0.4, 0.6, 0.8, 0.2]  # a ridge with two summits
    # the lower summit (0.8) joins the higher one over a saddle at 0.3: prominence 0.5 of the
    # range 2.0
    assert _secondary_prominence(two_peaks, inside) == pytest.approx(0.25)
    islands = inside.copy()
    islands[:, 4] = False  # an area in two pieces: the second piece's peak counts in full
    assert _secondary_prominence(two_peaks, islands) == pytest.approx(0.9)


@pytest.mark.parametrize(("field", "value"), [("smoothing_mm", 0), ("border_mm", -0.1),
                                              ("min_prominence", 1), ("width_definition", "fwhm")])
def test_settings_out_of_range_are_refused_naming_the_field(field: str, value: object) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=field):
        ProfileSettings(**{field: value})


def test_the_cache_key_keeps_its_fields_and_order() -> None:
    assert ProfileSettings().key() == {
        "smoothing_mm": 0.1, "ridge_alpha": 1.0, "grid_mm": None, "support_mm": None,
        "border_mm": 0.1, "min_prominence": 0.2, "width_definition": "sigma"}
