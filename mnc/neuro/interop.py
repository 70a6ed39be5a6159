"""Recordings and RDMs in the forms other neuroscience tools use: rsatoolbox and xarray.

In: ``as_recordings`` turns what a user hands ``run_rsa``/``compare_model`` into what
``load_neural`` reads: ``NeuralData``, a file or cache folder path, an in-memory
``xarray.Dataset`` (the NetCDF layout of ``mnc.neuro.sources.recording_files``), or an
``rsatoolbox.data.Dataset`` laid out as::

    measurements                       (observations, cells): one row per trial
    obs_descriptors["stimulus"]        (observations,) index of the image shown, 0..stimuli-1
    channel_descriptors["area"]        (cells,) visual area; also "layer" or "cre_line", and
                                       optionally "cell_id", "session", "depth_um"
    descriptors["images"]              (stimuli, height, width) the grey images, 0-255

The observations of one stimulus are its trials, in order (cells share the trial count;
stimuli with fewer trials are padded with NaN). Anything else gets one message listing what
is accepted.

Out: ``report_rdms`` gives a report's RDMs as one rsatoolbox ``RDMs`` object, model
populations and recorded regions alike, with the dissimilarity recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnc.errors import UserFileError
from mnc.neuro.regions import Region
from mnc.neuro.representation import FeatureSummary
from mnc.neuro.sources.recordings import NeuralData

ACCEPTED = (
    "NeuralData, a recordings file (.npz, NetCDF) or Allen cache folder path, an "
    "xarray.Dataset in the NetCDF layout, or an rsatoolbox.data.Dataset"
)
DISSIMILARITY = "correlation"
"""rsatoolbox's name for 1 - Pearson correlation between two images' response patterns."""
RSATOOLBOX_SOURCE = "<rsatoolbox.data.Dataset>"
XARRAY_SOURCE = "<xarray.Dataset>"


def _is_instance_of(value: object, module: str, name: str) -> bool:
    """``isinstance`` by the class's module and name, without importing the library."""
    return any(
        cls.__module__.split(".")[0] == module and cls.__name__ == name
        for cls in type(value).__mro__
    )


def as_recordings(source: Any) -> NeuralData | str | Path:  # noqa: ANN401 - any user input
    """``source`` as ``load_neural`` reads it; UserFileError for anything else."""
    if isinstance(source, NeuralData | str | Path):
        return source
    if _is_instance_of(source, "xarray", "Dataset"):
        from mnc.neuro.sources.recording_files import from_xarray

        return from_xarray(source, str(source.attrs.get("source", XARRAY_SOURCE)))
    if _is_instance_of(source, "rsatoolbox", "Dataset"):
        return from_rsatoolbox(source)
    raise UserFileError(
        f"recordings: got a {type(source).__module__}.{type(source).__name__}; expected {ACCEPTED}"
    )


def from_rsatoolbox(dataset: Any, source: str = RSATOOLBOX_SOURCE) -> NeuralData:  # noqa: ANN401
    """``NeuralData`` from an rsatoolbox Dataset laid out as the module docstring says."""
    measurements = np.asarray(dataset.measurements, dtype=np.float64)
    if measurements.ndim != 2:
        raise UserFileError(
            f"{source}: measurements: expected (observations, cells), got "
            f"shape {measurements.shape}"
        )
    observations = dict(dataset.obs_descriptors or {})
    channels = dict(dataset.channel_descriptors or {})
    images = (dataset.descriptors or {}).get("images")
    if images is None:
        raise UserFileError(
            f"{source}: descriptors['images'] is missing: the (stimuli, height, "
            f"width) grey images shown, which the model is run on"
        )
    images = np.asarray(images)
    if images.ndim != 3:
        raise UserFileError(
            f"{source}: descriptors['images']: expected (stimuli, height, "
            f"width), got shape {images.shape}"
        )
    if "stimulus" not in observations:
        raise UserFileError(
            f"{source}: obs_descriptors['stimulus'] is missing (the index of "
            f"the image each observation saw); it has "
            f"{sorted(observations) or 'none'}"
        )
    stimulus = _stimulus_indices(observations["stimulus"], len(measurements), len(images), source)
    counts = np.bincount(stimulus, minlength=len(images))
    responses = np.full(
        (len(images), max(int(counts.max(initial=0)), 1), measurements.shape[1]),
        np.nan,
        dtype=np.float32,
    )
    seen = np.zeros(len(images), dtype=np.int64)
    for row, index in enumerate(stimulus):
        responses[index, seen[index]] = measurements[row]
        seen[index] += 1
    if "area" not in channels:
        raise UserFileError(
            f"{source}: channel_descriptors['area'] is missing (each cell's "
            f"visual area); it has {sorted(channels) or 'none'}"
        )
    if "layer" not in channels and "cre_line" not in channels:
        raise UserFileError(
            f"{source}: channel_descriptors needs 'layer' or 'cre_line' (one value per cell)"
        )
    return NeuralData.from_arrays(
        images,
        responses,
        channels["area"],
        layer=channels.get("layer"),
        cre_line=channels.get("cre_line"),
        cell_id=channels.get("cell_id"),
        session=channels.get("session"),
        depth_um=channels.get("depth_um"),
        source=source,
    )


def _stimulus_indices(
    values: Any,
    rows: int,
    stimuli: int,
    source: str,  # noqa: ANN401
) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != (rows,) or array.dtype.kind not in "iu":
        raise UserFileError(
            f"{source}: obs_descriptors['stimulus']: expected {rows} integer "
            f"image indices, got {array.dtype} of shape {array.shape}"
        )
    if rows and (array.min() < 0 or array.max() >= stimuli):
        raise UserFileError(
            f"{source}: obs_descriptors['stimulus']: indices must lie in "
            f"0..{stimuli - 1} (one per image in descriptors['images'])"
        )
    return array.astype(np.int64)


def report_rdms(
    summaries: Mapping[str, FeatureSummary], regions: Sequence[Region], label: str
) -> Any:  # noqa: ANN401 - rsatoolbox.rdm.RDMs
    """One rsatoolbox ``RDMs``: a model RDM per population, then a neural RDM per region
    (trial-averaged responses), with descriptors ``name``, ``kind`` (``model``/``neural``),
    ``population`` and ``region`` (empty for the other kind), ``model`` (the label), and the
    images' ``stimulus`` index as pattern descriptor."""
    from mnc.neuro.rsa import _rsatoolbox, model_rdms, rdms_from_patterns

    _, rdm, _ = _rsatoolbox()
    parts: list[Any] = []
    if summaries:
        parts.append(model_rdms(summaries))
    if regions:
        parts.append(
            rdms_from_patterns(
                [region.mean_responses() for region in regions],
                [region.label for region in regions],
            )
        )
    if not parts:
        raise UserFileError("the report holds no RDMs (no population and no region)")
    rdms: Any = rdm.concat(parts) if len(parts) > 1 else parts[0]  # type: ignore[attr-defined]
    rdms.rdm_descriptors["kind"] = ["model"] * len(summaries) + ["neural"] * len(regions)
    rdms.rdm_descriptors["population"] = [*summaries, *[""] * len(regions)]
    rdms.rdm_descriptors["region"] = [*[""] * len(summaries),
                                      *(region.label for region in regions)]
    rdms.rdm_descriptors["model"] = [label] * rdms.n_rdm
    rdms.pattern_descriptors["stimulus"] = list(range(rdms.n_cond))
    return rdms
