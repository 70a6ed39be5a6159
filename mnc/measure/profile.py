"""Width of one projection from its per-target-voxel connection profiles on the flat map.

For every target voxel the weights from the source population's voxels form a profile over
the source area's flat map. Following the published method (MouseNet, Shi et al. 2022, on the
Knox et al. 2019 voxel model), each profile is

1. averaged over voxels that share a flat-map position (the columns through the layer),
2. smoothed by kernel ridge regression (RBF kernel) onto a grid covering the source area,
3. rejected if the smoothed profile is multimodal (a second peak whose prominence is at least
   ``min_prominence`` of the profile's range) or peaks within ``border_mm`` of the area's edge
   (the true centre may lie outside the area, and the visible part is a truncated tail),
4. otherwise fitted with an isotropic 2-D Gaussian plus a constant background.

The smoothed profile is used only to decide (peak, modes); the width comes from the raw
densities, because smoothing widens a profile and the fit would inherit that widening.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mnc.measure.flatmap import median_spacing_mm

WidthDefinition = Literal["sigma", "rms-radius"]


class Status(IntEnum):
    """What became of one target voxel's profile."""

    ACCEPTED = 0
    EMPTY = 1        # no weight from this source at all
    MULTIMODAL = 2   # a second significant peak
    BORDER = 3       # peak at the edge of the source area
    FIT_FAILED = 4   # the Gaussian fit did not converge or hit a bound


def _flag_help(text: str) -> Any:
    """The one-line help of a field's ``mnc measure connectome`` flag (``mnc.cli.options``)."""
    return {"help": text}


class ProfileSettings(BaseModel):
    """Knobs of the profile analysis; every one is part of the cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              use_attribute_docstrings=True)

    smoothing_mm: float = Field(default=0.1, gt=0, json_schema_extra=_flag_help(
        "RBF length scale of the kernel ridge smoother (default 0.1)"))
    """Length scale of the RBF kernel of the ridge smoother (about one 100 um voxel)."""
    ridge_alpha: float = Field(default=1.0, gt=0, json_schema_extra=_flag_help(
        "ridge penalty of the smoother (default 1)"))
    """Ridge penalty; with kernel values of 1 on the diagonal, 1 damps voxel-scale noise."""
    grid_mm: float | None = Field(default=None, gt=0, json_schema_extra={"flag": None})
    """Pitch of the grid the smoothed profile is evaluated on (default: half the larger of
    the voxel pitch on the flat map and ``smoothing_mm``; nothing finer is resolved)."""
    support_mm: float | None = Field(default=None, gt=0, json_schema_extra={"flag": None})
    """Grid points farther than this from every source voxel lie outside the area (default:
    the larger of the voxel pitch and ``smoothing_mm``, so jittered maps leave no gaps)."""
    border_mm: float = Field(default=0.1, ge=0, json_schema_extra=_flag_help(
        "reject profiles peaking this close to the source area's edge (default 0.1)"))
    """Profiles whose smoothed peak is at most this far inside the area's edge are rejected."""
    min_prominence: float = Field(default=0.2, gt=0, lt=1, json_schema_extra=_flag_help(
        "reject profiles with a second peak this prominent, as a fraction of the profile's "
        "range (default 0.2)"))
    """A second peak this high above its saddle (fraction of the profile's range) rejects."""
    width_definition: WidthDefinition = Field(default="sigma", json_schema_extra=_flag_help(
        "sigma: per-axis standard deviation, as the spec's masks use it (default); rms-radius: "
        "sqrt(2) sigma, as MouseNet's code measured it"))
    """"sigma": the Gaussian's per-axis standard deviation, the sigma of the spec's
    exp(-r^2 / (2 sigma^2)); "rms-radius": root-mean-square distance from the centre,
    sqrt(2) sigma, the quantity MouseNet's code computed."""

    def key(self) -> dict[str, object]:
        return self.model_dump()


@dataclass(frozen=True)
class ProfileResults:
    """Per target voxel: total inbound weight, status, width (NaN unless accepted)."""

    totals: np.ndarray
    status: np.ndarray
    sigma_mm: np.ndarray
    peak_border_mm: np.ndarray
    prominence: np.ndarray

    def count(self, status: Status) -> int:
        return int(np.count_nonzero(self.status == status))

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {"totals": self.totals, "status": self.status, "sigma_mm": self.sigma_mm,
                "peak_border_mm": self.peak_border_mm, "prominence": self.prominence}


def analyse_profiles(positions: np.ndarray, weights: np.ndarray, settings: ProfileSettings,
                     progress: bool = False, description: str = "") -> ProfileResults:
    """Analyse every column of ``weights`` (source voxels x target voxels).

    ``positions`` are the source voxels' flat-map coordinates in mm, all finite.
    """
    n_targets = weights.shape[1]
    totals = weights.sum(axis=0)
    status = np.full(n_targets, Status.EMPTY, dtype=np.int8)
    sigma = np.full(n_targets, np.nan)
    border = np.full(n_targets, np.nan)
    prominence = np.full(n_targets, np.nan)
    points, density = _column_means(positions, weights)
    pitch = median_spacing_mm(points)
    if len(points) < 3 or pitch <= 0:
        status[totals > 0] = Status.FIT_FAILED
        return ProfileResults(totals, status, sigma, border, prominence)
    reach = max(pitch, settings.smoothing_mm)
    grid = _Grid(points, settings.grid_mm or reach / 2, settings.support_mm or reach)
    scale = density.max(axis=0)
    scale[scale <= 0] = 1.0
    smoothed = _smooth(points, density / scale, grid.cells[grid.inside_index], settings)
    extent = float(np.ptp(points, axis=0).max())

    from mnc.progress import bar

    for target in bar(range(n_targets), desc=description or "profiles", unit="voxel",
                      leave=False, disable=not progress):
        if totals[target] <= 0 or density[:, target].max() <= 0:
            continue
        image = grid.image(smoothed[:, target])
        peak = int(np.argmax(image))
        border[target] = grid.border_mm.flat[peak]
        prominence[target] = _secondary_prominence(image, grid.inside)
        if prominence[target] >= settings.min_prominence:
            status[target] = Status.MULTIMODAL
        elif border[target] <= settings.border_mm:
            status[target] = Status.BORDER
        else:
            width = _fit_width(points, density[:, target], grid.cells[peak], pitch, extent)
            if width is None:
                status[target] = Status.FIT_FAILED
            else:
                status[target] = Status.ACCEPTED
                sigma[target] = width * (np.sqrt(2.0) if settings.width_definition
                                         == "rms-radius" else 1.0)
    return ProfileResults(totals, status, sigma, border, prominence)


def _column_means(positions: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct flat positions and the mean weight of the voxels at each (a density)."""
    from scipy import sparse

    points, inverse = np.unique(positions, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse, minlength=len(points)).astype(np.float64)
    averaging = sparse.csr_matrix((1.0 / counts[inverse], (inverse, np.arange(len(inverse)))),
                                  shape=(len(points), len(inverse)))
    return points, np.asarray(averaging @ weights)


class _Grid:
    """Regular grid over the source area; ``inside`` marks points near a source voxel."""

    def __init__(self, points: np.ndarray, step: float, support: float):
        from scipy.ndimage import binary_fill_holes, distance_transform_edt
        from scipy.spatial import cKDTree

        low = points.min(axis=0) - support - step
        high = points.max(axis=0) + support + step
        xs = np.arange(low[0], high[0] + step / 2, step)
        ys = np.arange(low[1], high[1] + step / 2, step)
        self.shape = (len(xs), len(ys))
        gx, gy = np.meshgrid(xs, ys, indexing="ij")
        self.cells = np.column_stack([gx.ravel(), gy.ravel()])
        distance, _ = cKDTree(points).query(self.cells)
        # an area has no holes: gaps between sparse voxels are not borders
        self.inside = binary_fill_holes((distance <= support + 1e-9).reshape(self.shape))
        self.inside_index = np.flatnonzero(self.inside)
        # Distance from a grid point to the outermost voxels: to the nearest outside grid point,
        # less the support band that surrounds the voxels.
        edge = distance_transform_edt(self.inside, sampling=step) - support
        self.border_mm = np.clip(edge, 0.0, None)

    def image(self, values: np.ndarray) -> np.ndarray:
        image = np.full(self.shape, -np.inf)
        image.flat[self.inside_index] = values
        return image


def _smooth(points: np.ndarray, density: np.ndarray, cells: np.ndarray,
            settings: ProfileSettings) -> np.ndarray:
    """Kernel ridge regression of every profile at once (one solve shared by all targets)."""
    from sklearn.kernel_ridge import KernelRidge

    gamma = 1.0 / (2.0 * settings.smoothing_mm ** 2)
    model = KernelRidge(alpha=settings.ridge_alpha, kernel="rbf", gamma=gamma)
    model.fit(points, density)
    predicted = model.predict(cells)
    return predicted.reshape(len(cells), -1)


def _secondary_prominence(image: np.ndarray, inside: np.ndarray) -> float:
    """Prominence of the highest secondary peak, as a fraction of the profile's range.

    A peak's prominence is its height above the highest saddle over which it connects to a
    higher point (the topographic definition); grid ties are broken by position so that a
    flat top counts once. 0 for a unimodal profile.
    """
    from scipy.ndimage import label, maximum_filter

    low = image[inside].min()
    span = image[inside].max() - low
    if span <= 0:
        return 0.0
    local = (maximum_filter(image, size=3, mode="constant", cval=-np.inf) == image) & inside
    candidates = np.flatnonzero(local)
    if len(candidates) < 2:
        return 0.0
    order = np.full(image.size, -1)
    order[np.argsort(image, axis=None, kind="stable")] = np.arange(image.size)
    rank = order.reshape(image.shape)
    candidates = candidates[np.argsort(-rank.flat[candidates])][1:]
    levels = np.unique(image[inside])
    best = 0.0
    for candidate in candidates.tolist():
        height = image.flat[candidate]
        if height - low <= best:
            break  # sorted by height: no later candidate can be more prominent

        def joins_higher(level: float, candidate: int = candidate) -> bool:
            labels, _ = label(inside & (image >= level), structure=np.ones((3, 3)))
            component = labels == labels.flat[candidate]
            return bool(np.any(rank[component] > rank.flat[candidate]))

        if best > 0 and joins_higher(height - best):
            continue  # joins a higher point above the best saddle so far: less prominent
        # The saddle is the highest level at which the candidate joins a higher point.
        usable = levels[levels <= height]
        lo, hi = 0, len(usable) - 1
        if not joins_higher(usable[lo]):
            saddle = low  # an island of the area with no higher point: the full height counts
        else:
            while lo < hi:
                middle = (lo + hi + 1) // 2
                if joins_higher(usable[middle]):
                    lo = middle
                else:
                    hi = middle - 1
            saddle = usable[lo]
        best = max(best, height - saddle)
    return float(best / span)


def _fit_width(points: np.ndarray, density: np.ndarray, peak: np.ndarray, pitch: float,
               extent: float) -> float | None:
    """Per-axis sigma (mm) of an isotropic Gaussian plus background fitted to the densities.

    Least squares rather than the profile's second moment: the second moment is biased low
    when the area's edge cuts off part of the profile and biased high by any background,
    while the fit uses the shape of the visible part and absorbs a constant background. The
    second moment around the smoothed peak only seeds the fit.
    """
    from scipy.optimize import least_squares

    scale = density.max()
    values = density / scale
    background = max(float(np.median(values)), 0.0)
    excess = np.clip(values - background, 0.0, None)
    squared = np.sum((points - peak) ** 2, axis=1)
    spread = np.sqrt(np.sum(excess * squared) / (2.0 * max(excess.sum(), 1e-12)))
    low_sigma, high_sigma = pitch / 4.0, 4.0 * max(extent, pitch)
    start_sigma = float(np.clip(spread, low_sigma * 1.01, high_sigma * 0.99))

    def residuals(params: np.ndarray) -> np.ndarray:
        amplitude, cx, cy, log_sigma, offset = params
        distance = (points[:, 0] - cx) ** 2 + (points[:, 1] - cy) ** 2
        return amplitude * np.exp(-distance / (2.0 * np.exp(2.0 * log_sigma))) + offset - values

    start = np.array([max(1.0 - background, 1e-3), peak[0], peak[1], np.log(start_sigma),
                      background])
    margin = max(extent, pitch)
    lower = [0.0, points[:, 0].min() - margin, points[:, 1].min() - margin, np.log(low_sigma),
             0.0]
    upper = [np.inf, points[:, 0].max() + margin, points[:, 1].max() + margin,
             np.log(high_sigma), np.inf]
    try:
        fit = least_squares(residuals, start, bounds=(lower, upper), x_scale="jac")
    except (ValueError, np.linalg.LinAlgError):
        return None
    log_sigma = fit.x[3]
    at_bound = min(log_sigma - lower[3], upper[3] - log_sigma) < 1e-3
    if not fit.success or at_bound or fit.x[0] <= 0:
        return None
    return float(np.exp(log_sigma))
