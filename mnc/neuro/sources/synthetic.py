"""Synthetic recordings with a known answer: in memory (``synthetic_recordings``, what
``mnc rsa SPEC --recordings synthetic`` compares with) or as a small Brain Observatory cache in
the layout of the real one (``write_synthetic_cache``; tests, examples).

Each session is an HDF5 file laid out like a Brain Observatory NWB file (dF/F traces, cell ids,
the natural-scenes presentation table and image template, string metadata as fixed-length
bytes) plus the two warehouse JSON tables. Responses are a known function of the images:
cell ``c`` answers image ``i`` with ``relu(w_c . pooled(image_i))`` plus Gaussian trial noise,
so tests know what the analyses must find.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnc.io.atomic import atomic_path, write_text_atomic

FRAME_RATE_HZ = 30.0
ON_FRAMES = 8
"""Frames an image stays on (about 250 ms, as in the survey)."""
GAP_FRAMES = 7
"""Grey frames after each image, so one presentation's response window ends before the next."""
_EXPERIMENT_BASE = 900_000_000
_CONTAINER_BASE = 910_000_000
_CRE_FULL = {"Cux2": "Cux2-CreERT2", "Rorb": "Rorb-IRES2-Cre", "Rbp4": "Rbp4-Cre_KL100",
             "Scnn1a": "Scnn1a-Tg3-Cre", "Emx1": "Emx1-IRES-Cre", "Sst": "Sst-IRES-Cre"}


@dataclass(frozen=True)
class SyntheticSession:
    area: str
    cre: str
    """Short Cre name (Cux2, Rorb, Rbp4, Scnn1a, Emx1, Sst) or a full line name."""
    depth_um: int
    cells: int = 12


DEFAULT_SESSIONS: tuple[SyntheticSession, ...] = (
    SyntheticSession("VISp", "Cux2", 175),
    SyntheticSession("VISp", "Rorb", 275),
    SyntheticSession("VISl", "Cux2", 175),
    SyntheticSession("VISal", "Rbp4", 375),
    SyntheticSession("VISam", "Cux2", 175),
)


def synthetic_images(n_images: int = 118, height: int = 46, width: int = 59,
                     seed: int = 0) -> np.ndarray:
    """Smooth random grey-level images (uint8), standing in for the natural scenes."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n_images, height, width))
    smooth = np.stack([gaussian_filter(image, sigma=3.0) for image in noise])
    smooth = (smooth - smooth.min()) / (np.ptp(smooth) + 1e-12)
    return np.round(smooth * 255).astype(np.uint8)


def _pooled(images: np.ndarray, side: int = 6) -> np.ndarray:
    n, height, width = images.shape
    rows = np.array_split(np.arange(height), side)
    cols = np.array_split(np.arange(width), side)
    values = np.asarray(images, dtype=np.float64)
    by_rows = np.stack([values[:, r].mean(axis=1) for r in rows], axis=1)
    pooled = np.stack([by_rows[:, :, c].mean(axis=2) for c in cols], axis=2).reshape(n, -1)
    pooled = pooled - pooled.mean(axis=0)
    return pooled / (pooled.std(axis=0) + 1e-12)


def synthetic_rates(images: np.ndarray, cells: int, seed: int) -> np.ndarray:
    """(images, cells) noiseless mean dF/F: rectified random projections of the pooled images."""
    rng = np.random.default_rng(seed)
    pooled = _pooled(images)
    weights = rng.standard_normal((pooled.shape[1], cells)) / np.sqrt(pooled.shape[1])
    return np.maximum(pooled @ weights, 0.0) * 0.5


SYNTHETIC = "synthetic"
"""The ``--recordings`` value that names ``synthetic_recordings()`` instead of a file."""


def synthetic_recordings(sessions: Sequence[SyntheticSession] = DEFAULT_SESSIONS,
                         trials: int = 10, noise_sd: float = 0.3, n_images: int = 118,
                         image_height: int = 46, image_width: int = 59,
                         seed: int = 0) -> Any:
    """``NeuralData`` of synthetic cells: one block of ``cells`` per session entry, each cell
    answering image ``i`` with ``relu(w_c . pooled(image_i))`` plus Gaussian trial noise.

    The same responses ``write_synthetic_cache`` writes (same seeds), without the files: a
    data set to try ``mnc rsa``/``mnc physiology`` and ``mnc.neuro.compare_model`` on, whose
    cells are known to depend on the images. Not a stand-in for real recordings.
    """
    from mnc.neuro.sources.recordings import NeuralData

    images = synthetic_images(n_images, image_height, image_width, seed)
    blocks, areas, cres, depths, names, ids = [], [], [], [], [], []
    for index, session in enumerate(sessions):
        rates = synthetic_rates(images, session.cells, seed=seed * 1000 + index + 1)
        rng = np.random.default_rng(seed * 1000 + index + 500)
        noise = rng.standard_normal((n_images, trials, session.cells)) * noise_sd
        blocks.append(rates[:, None, :] + noise)
        cells = session.cells
        areas += [session.area] * cells
        cres += [_CRE_FULL.get(session.cre, session.cre)] * cells
        depths += [float(session.depth_um)] * cells
        names += [f"synthetic-{index}"] * cells
        ids += list((_EXPERIMENT_BASE + index) * 100 + np.arange(cells))
    return NeuralData.from_arrays(
        images, np.concatenate(blocks, axis=2).astype(np.float32), np.array(areas),
        cre_line=np.array(cres), depth_um=np.array(depths), session=np.array(names),
        cell_id=np.array(ids, dtype=np.int64), source=f"synthetic recordings (seed {seed})")


def _bytes(text: str) -> np.bytes_:
    return np.bytes_(text.encode())


def write_session_file(path: Path, experiment_id: int, container_id: int,
                       session: SyntheticSession, images: np.ndarray, rates: np.ndarray,
                       trials: int, noise_sd: float, seed: int) -> None:
    """One session file: every image shown ``trials`` times in random order, blank-free."""
    import h5py

    rng = np.random.default_rng(seed)
    n_images, cells = rates.shape
    order = np.concatenate([rng.permutation(n_images) for _ in range(trials)])
    period = ON_FRAMES + GAP_FRAMES
    lead = 30
    n_frames = lead + order.size * period + 30
    dff = rng.standard_normal((cells, n_frames)).astype(np.float32) * np.float32(noise_sd)
    starts = lead + np.arange(order.size) * period
    for start, image in zip(starts, order, strict=True):
        dff[:, start:start + period] += rates[image][:, None].astype(np.float32)
    timestamps = np.arange(n_frames) / FRAME_RATE_HZ
    cre_line = _CRE_FULL.get(session.cre, session.cre)
    with atomic_path(path) as temporary, h5py.File(temporary, "w", locking=False) as nwb:
        pipeline = nwb.create_group("processing/brain_observatory_pipeline")
        plane = pipeline.create_group("DfOverF/imaging_plane_1")
        plane["data"] = dff
        plane["timestamps"] = timestamps
        segmentation = pipeline.create_group("ImageSegmentation")
        segmentation["cell_specimen_ids"] = experiment_id * 100 + np.arange(cells)
        segmentation["roi_ids"] = np.array([_bytes(str(i)) for i in range(cells)])
        group = nwb.create_group("stimulus/presentation/natural_scenes_stimulus")
        group["data"] = order.astype(np.int32)
        group["frame_duration"] = np.stack([starts, starts + ON_FRAMES], axis=1).astype(float)
        nwb["stimulus/templates/natural_scenes_image_stack/data"] = images
        general = nwb.create_group("general")
        general["subject/age"] = _bytes("90 days")
        general["subject/sex"] = _bytes("female")
        general["subject/genotype"] = _bytes(f"{cre_line}/wt;Ai93(TITL-GCaMP6f)/wt")
        general["optophysiology/imaging_plane_1/imaging depth"] = _bytes(
            f"{session.depth_um} microns")
        general["optophysiology/imaging_plane_1/location"] = _bytes(
            f"area: {session.area}; depth: {session.depth_um} microns")
        general["session_id"] = _bytes(str(experiment_id))
        general["experiment_container_id"] = _bytes(str(container_id))
        general["session_type"] = _bytes("three_session_B")
        general["specimen_name"] = _bytes(f"synthetic-{experiment_id}")
        general["generated_by"] = np.array([_bytes("mnc synthetic"), _bytes("2.0")])
        nwb["session_start_time"] = _bytes("2016-03-01T10:00:00")


def _specimen(session: SyntheticSession, index: int) -> dict[str, object]:
    cre_line = _CRE_FULL.get(session.cre, session.cre)
    return {
        "name": f"{cre_line};Ai93-{index}",
        "donor": {
            "external_donor_name": f"synthetic-{index}",
            "date_of_birth": "2015-12-01T00:00:00Z",
            "conditions": [],
            "transgenic_lines": [
                {"name": cre_line, "transgenic_line_type_name": "driver"},
                {"name": "Ai93(TITL-GCaMP6f)", "transgenic_line_type_name": "reporter"},
            ],
        },
    }


def write_synthetic_cache(cache_dir: str | Path,
                          sessions: Sequence[SyntheticSession] = DEFAULT_SESSIONS,
                          trials: int = 10, noise_sd: float = 0.3, image_height: int = 46,
                          image_width: int = 59, n_images: int = 118, seed: int = 0,
                          omit_files: Sequence[int] = ()) -> list[int]:
    """Write a Brain Observatory cache with one natural-scenes session per entry of ``sessions``.

    Returns the experiment ids. ``omit_files`` lists session indices whose NWB file is left out
    (to test the message about missing data). ``noise_sd=0`` gives noiseless trials.
    """
    cache_dir = Path(cache_dir)
    images = synthetic_images(n_images, image_height, image_width, seed)
    containers: list[dict[str, object]] = []
    experiments: list[dict[str, object]] = []
    ids: list[int] = []
    for index, session in enumerate(sessions):
        experiment_id = _EXPERIMENT_BASE + index
        container_id = _CONTAINER_BASE + index
        ids.append(experiment_id)
        common = {
            "imaging_depth": session.depth_um,
            "targeted_structure": {"acronym": session.area},
            "specimen": _specimen(session, index),
        }
        containers.append({"id": container_id, "failed": False, **common})
        experiments.append({
            "id": experiment_id, "experiment_container_id": container_id,
            "stimulus_name": "three_session_B", "date_of_acquisition": "2016-03-01T10:00:00Z",
            "experiment_container": {"failed": False}, "failed": False, **common})
        if index in omit_files:
            continue
        rates = synthetic_rates(images, session.cells, seed=seed * 1000 + index + 1)
        write_session_file(cache_dir / "ophys_experiment_data" / f"{experiment_id}.nwb",
                           experiment_id, container_id, session, images, rates, trials,
                           noise_sd, seed=seed * 1000 + index + 500)
    write_text_atomic(cache_dir / "experiment_containers.json", json.dumps(containers, indent=1))
    write_text_atomic(cache_dir / "ophys_experiments.json", json.dumps(experiments, indent=1))
    return ids


def write_one_session_cache(cache_dir: str | Path, noise_sd: float = 0.0) -> Path:
    """A cache of one small session (4 images of 6 x 7 pixels, 3 trials): a file for tests to
    damage. Returns the session file."""
    write_synthetic_cache(cache_dir, sessions=DEFAULT_SESSIONS[:1], trials=3, n_images=4,
                          image_height=6, image_width=7, noise_sd=noise_sd)
    return next((Path(cache_dir) / "ophys_experiment_data").glob("*.nwb"))
