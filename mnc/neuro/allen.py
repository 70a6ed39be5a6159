"""Natural-scene responses from a local Allen Brain Observatory cache, through allensdk.

allensdk is imported lazily (it is an optional extra and slow to import) and its warnings are
silenced. Without ``allow_download`` nothing touches the network: the cache's JSON tables and
NWB files must already be there, and whatever is missing is named in one error together with
the command that fetches it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnc.errors import UserFileError
from mnc.io.atomic import atomic_open
from mnc.neuro.layers import layer_for_recording

NATURAL_SCENES = "natural_scenes"
MANIFEST_NAME = "manifest.json"
_REQUIRED_TABLES = ("experiment_containers.json", "ophys_experiments.json")
_RESPONSE_FORMAT = 1


class AllenDependencyError(UserFileError):
    """allensdk (the ``neuro`` extra) is not installed."""


class OfflineError(UserFileError):
    """allensdk tried to reach the network while downloads are not allowed."""


@dataclass(frozen=True)
class ResponseWindow:
    """How a presentation becomes one number per cell: mean dF/F over a window after onset."""

    window_s: float = 0.5
    """Length of the response window after image onset (seconds)."""
    baseline_s: float = 0.0
    """If above 0, the mean dF/F over this long before onset is subtracted."""


@dataclass(frozen=True)
class Recording:
    """Trial responses of one imaging session to the natural scenes."""

    experiment_id: int
    container_id: int
    area: str
    cre_line: str | None
    depth_um: int
    layer: str
    cell_ids: np.ndarray
    responses: np.ndarray
    """(images, trials, cells) mean dF/F in the response window."""


@dataclass(frozen=True)
class NeuralData:
    recordings: list[Recording]
    images: np.ndarray
    """(images, height, width) natural-scene stimulus template, uint8 grey levels."""
    fingerprint: str
    """Hash of the experiments, their files and the response window (keys score caches)."""


@contextlib.contextmanager
def quiet_allensdk() -> Iterator[None]:
    """Silence the deprecation warnings and metadata log lines allensdk emits on every use."""
    logger = logging.getLogger()
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(previous)


def _import_allensdk() -> Any:
    try:
        with quiet_allensdk():
            from allensdk.api.queries.brain_observatory_api import BrainObservatoryApi
            from allensdk.core.brain_observatory_cache import BrainObservatoryCache
    except ImportError as error:
        raise AllenDependencyError(
            f"allensdk is needed to read Brain Observatory data ({error}); install the extra: "
            "pip install 'mnc[neuro]'") from error
    return BrainObservatoryCache, BrainObservatoryApi


def _offline_api(api_class: Any) -> Any:
    """An allensdk API that answers the eye-tracking file list with nothing and never downloads.

    ``BrainObservatoryCache.get_ophys_experiments`` always asks the server which sessions have
    eye tracking; offline that question gets an empty answer (every session then reads as
    without eye tracking, which this analysis does not use).
    """

    class OfflineBrainObservatoryApi(api_class):  # type: ignore[misc, valid-type]
        def template_query(self, template_name: str, entry_name: str, **kwargs: Any) -> Any:
            if entry_name == "all_eye_mapping_files":
                return []
            raise OfflineError(f"allensdk asked the server for '{entry_name}' while downloads "
                               "are off; pass --download to allow it")

        def retrieve_parsed_json_over_http(self, url: str, post: bool = False) -> Any:
            raise OfflineError(f"allensdk tried to download {url} while downloads are off; "
                               "pass --download to allow it")

        def retrieve_file_over_http(self, url: str, file_path: str, zipped: bool = False) -> Any:
            raise OfflineError(f"allensdk tried to download {url} to {file_path} while "
                               "downloads are off; pass --download to allow it")

    return OfflineBrainObservatoryApi()


def open_cache(cache_dir: str | Path, allow_download: bool = False) -> Any:
    """A ``BrainObservatoryCache`` on ``cache_dir/manifest.json``; offline unless allowed."""
    cache_dir = Path(cache_dir).expanduser()
    if not allow_download:
        missing = [name for name in _REQUIRED_TABLES if not (cache_dir / name).is_file()]
        if not cache_dir.is_dir() or missing:
            what = "the folder" if not cache_dir.is_dir() else ", ".join(missing)
            raise UserFileError(
                f"{cache_dir}: Brain Observatory cache lacks {what}; fetch the tables once "
                f"with network access: {fetch_command(cache_dir, [])} (or rerun with --download)")
    cache_class, api_class = _import_allensdk()
    api = None if allow_download else _offline_api(api_class)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with quiet_allensdk():
        return cache_class(manifest_file=str(cache_dir / MANIFEST_NAME), api=api)


def fetch_command(cache_dir: Path, experiment_ids: Sequence[int]) -> str:
    """A one-line shell command that downloads the named tables/sessions into ``cache_dir``."""
    manifest = cache_dir / MANIFEST_NAME
    body = (f"from allensdk.core.brain_observatory_cache import BrainObservatoryCache as C; "
            f"c = C(manifest_file='{manifest}'); c.get_experiment_containers(); "
            f"c.get_ophys_experiments()")
    if experiment_ids:
        body += f"; [c.get_ophys_experiment_data(i) for i in {list(map(int, experiment_ids))}]"
    return f'python -c "{body}"'


def select_experiments(cache: Any, areas: Sequence[str] | None, cre_lines: Sequence[str] | None,
                       depths_um: Sequence[int] | None,
                       max_per_group: int | None = None) -> list[dict[str, Any]]:
    """Natural-scenes sessions of the matching containers, sorted, at most N per area/Cre line."""
    with quiet_allensdk():
        containers = cache.get_experiment_containers(
            targeted_structures=list(areas) if areas else None,
            cre_lines=list(cre_lines) if cre_lines else None,
            imaging_depths=list(depths_um) if depths_um else None)
        ids = [container["id"] for container in containers]
        experiments = cache.get_ophys_experiments(experiment_container_ids=ids,
                                                  stimuli=[NATURAL_SCENES]) if ids else []
    experiments = sorted(experiments, key=lambda e: (e["targeted_structure"],
                                                     str(e["cre_line"]), e["id"]))
    if max_per_group is None:
        return experiments
    kept: list[dict[str, Any]] = []
    counts: dict[tuple[str, str], int] = {}
    for experiment in experiments:
        group = (experiment["targeted_structure"], str(experiment["cre_line"]))
        if counts.get(group, 0) < max_per_group:
            counts[group] = counts.get(group, 0) + 1
            kept.append(experiment)
    return kept


def trial_responses(timestamps: np.ndarray, dff: np.ndarray, table: Any,
                    window: ResponseWindow, where: str) -> np.ndarray:
    """(images, trials, cells) mean dF/F after each presentation's onset frame.

    Images with fewer presentations than others are truncated to the smallest trial count so
    every image has the same number of trials (the survey shows each image 50 times).
    """
    if len(timestamps) < 2:
        raise UserFileError(f"{where}: dF/F has fewer than 2 timestamps")
    frame_s = float(np.median(np.diff(timestamps)))
    window_frames = max(1, int(round(window.window_s / frame_s)))
    baseline_frames = int(round(window.baseline_s / frame_s))
    cumulative = np.zeros((dff.shape[0], dff.shape[1] + 1), dtype=np.float64)
    np.cumsum(dff, axis=1, out=cumulative[:, 1:])
    frames = np.asarray(table["frame"], dtype=int)
    starts = np.asarray(table["start"], dtype=int)
    shown = frames >= 0
    frames, starts = frames[shown], starts[shown]
    if frames.size == 0:
        raise UserFileError(f"{where}: natural_scenes stimulus table has no image presentations")
    n_frames = dff.shape[1]
    ends = np.minimum(starts + window_frames, n_frames)
    if np.any(ends <= starts):
        raise UserFileError(f"{where}: a natural-scene onset lies after the last dF/F sample")
    means = (cumulative[:, ends] - cumulative[:, starts]) / (ends - starts)
    if baseline_frames > 0:
        base_starts = np.maximum(starts - baseline_frames, 0)
        lengths = np.maximum(starts - base_starts, 1)
        means = means - (cumulative[:, starts] - cumulative[:, base_starts]) / lengths
    n_images = int(frames.max()) + 1
    counts = np.bincount(frames, minlength=n_images)
    if counts.min() < 2:
        lacking = int(np.argmin(counts))
        raise UserFileError(f"{where}: image {lacking} is shown {int(counts.min())} time(s); "
                            "split-half analyses need at least 2 trials per image")
    n_trials = int(counts.min())
    responses = np.empty((n_images, n_trials, dff.shape[0]), dtype=np.float32)
    for image in range(n_images):
        columns = np.flatnonzero(frames == image)[:n_trials]
        responses[image] = means[:, columns].T
    return responses


def _file_key(path: Path, window: ResponseWindow) -> str:
    stat = path.stat()
    text = json.dumps([_RESPONSE_FORMAT, path.name, stat.st_size, stat.st_mtime_ns,
                       window.window_s, window.baseline_s])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_natural_scenes(cache_dir: str | Path, areas: Sequence[str] | None = None,
                        cre_lines: Sequence[str] | None = None,
                        depths_um: Sequence[int] | None = None,
                        window: ResponseWindow = ResponseWindow(),
                        max_per_group: int | None = None, allow_download: bool = False,
                        skip_missing: bool = False,
                        response_cache: str | Path | None = None) -> NeuralData:
    """Trial responses of every matching natural-scenes session and the 118 images.

    ``response_cache`` keeps the per-session response arrays (small) so later runs skip
    reading the large dF/F traces.
    """
    cache_dir = Path(cache_dir).expanduser()
    cache = open_cache(cache_dir, allow_download)
    experiments = select_experiments(cache, areas, cre_lines, depths_um, max_per_group)
    if not experiments:
        raise UserFileError(
            f"{cache_dir}: no natural-scenes session matches areas={list(areas or [])} "
            f"cre_lines={list(cre_lines or [])} depths={list(depths_um or [])}")
    paths = {e["id"]: Path(cache.get_cache_path(None, cache.EXPERIMENT_DATA_KEY, e["id"]))
             for e in experiments}
    missing = [eid for eid, path in paths.items() if not path.is_file()]
    if missing and not allow_download:
        if skip_missing and len(missing) < len(experiments):
            experiments = [e for e in experiments if e["id"] not in missing]
        else:
            shown = ", ".join(str(i) for i in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise UserFileError(
                f"{cache_dir}: {len(missing)} natural-scenes session file(s) not in the cache "
                f"(ophys_experiment_data/<id>.nwb for ids {shown}{more}); fetch them with "
                f"{fetch_command(cache_dir, missing)}, rerun with --download, or use "
                "--skip-missing to analyse only the cached sessions")
    recordings: list[Recording] = []
    images: np.ndarray | None = None
    store = Path(response_cache) if response_cache else None
    keys: list[str] = []
    for experiment in experiments:
        eid = int(experiment["id"])
        with quiet_allensdk():
            dataset = cache.get_ophys_experiment_data(eid)
        path = paths[eid]
        key = _file_key(path, window)
        keys.append(f"{eid}:{key}")
        cached = store / f"{eid}-{key}.npz" if store else None
        cached_images = store / f"{eid}-{key}-images.npy" if store else None
        if cached is not None and cached.is_file():
            with np.load(cached) as stored:
                responses, cell_ids = stored["responses"], stored["cell_ids"]
            if images is None:
                images = _template(dataset, cached_images, str(path))
        else:
            responses, cell_ids = _read_session(dataset, window, str(path))
            if cached is not None:
                with atomic_open(cached, "wb") as stream:
                    np.savez(stream, responses=responses, cell_ids=cell_ids)
            if images is None:
                images = _template(dataset, cached_images, str(path))
        if responses.shape[0] != images.shape[0]:
            raise UserFileError(f"{path}: {responses.shape[0]} natural scenes presented but the "
                                f"template holds {images.shape[0]} images")
        depth = int(experiment["imaging_depth"])
        recordings.append(Recording(
            experiment_id=eid, container_id=int(experiment["experiment_container_id"]),
            area=str(experiment["targeted_structure"]), cre_line=experiment["cre_line"],
            depth_um=depth, layer=layer_for_recording(experiment["cre_line"], depth),
            cell_ids=np.asarray(cell_ids), responses=np.asarray(responses)))
    assert images is not None  # experiments is non-empty
    fingerprint = hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:16]
    return NeuralData(recordings=recordings, images=images, fingerprint=fingerprint)


def _read_session(dataset: Any, window: ResponseWindow,
                  where: str) -> tuple[np.ndarray, np.ndarray]:
    from allensdk.brain_observatory.brain_observatory_exceptions import (
        MissingStimulusException,
    )
    try:
        with quiet_allensdk():
            table = dataset.get_stimulus_table(NATURAL_SCENES)
            timestamps, dff = dataset.get_dff_traces()
            cell_ids = np.asarray(dataset.get_cell_specimen_ids())
    except (KeyError, OSError, MissingStimulusException) as error:
        raise UserFileError(f"{where}: not a readable Brain Observatory session with the "
                            f"natural-scenes stimulus ({error})") from error
    responses = trial_responses(np.asarray(timestamps), np.asarray(dff), table, window, where)
    return responses, cell_ids


def _template(dataset: Any, cached: Path | None, where: str) -> np.ndarray:
    """The natural-scenes image stack, from the response cache or the session file."""
    if cached is not None and cached.is_file():
        return np.load(cached)
    try:
        with quiet_allensdk():
            images = np.asarray(dataset.get_stimulus_template(NATURAL_SCENES))
    except (KeyError, OSError) as error:
        raise UserFileError(f"{where}: no natural_scenes_image_stack template ({error})") from error
    if images.ndim != 3 or images.shape[0] == 0:
        raise UserFileError(f"{where}: natural-scenes template has shape {images.shape}, "
                            "expected (images, height, width)")
    if cached is not None:
        with atomic_open(cached, "wb") as stream:
            np.save(stream, images)
    return images
