"""Natural-scene responses from a local Allen Brain Observatory cache, as ``NeuralData``.

The cache's JSON tables and session files are read directly (``boc_tables``, ``boc_session``,
h5py); allensdk is needed only to download what is missing (``allow_download``, the ``allen``
extra). Without ``allow_download`` nothing touches the network, and whatever is missing is
named in one error together with the command that fetches it.

Each session becomes ``(images, trials, cells)`` responses: the mean dF/F of each cell over a
window after each presentation's onset (``ResponseWindow``), optionally minus a baseline.
Where the cache also holds the session's detected events
(``ophys_experiment_events/<id>_events.npz``, ``boc_events``), the mean event magnitude over
the same window (no baseline: events are already relative to it) becomes ``events``; the
recordings then hold events only if every chosen session has its events file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnc.errors import UserFileError
from mnc.neuro.layers import layer_for_recording
from mnc.neuro.sources.boc_session import SessionFile, StimulusTable
from mnc.neuro.sources.boc_tables import (
    MANIFEST_NAME,
    CacheLayout,
    Experiment,
    cache_layout,
    natural_scenes_experiments,
)
from mnc.neuro.sources.recordings import NeuralData, SessionRecording

NATURAL_SCENES = "natural_scenes"
ALLEN_INSTALL = "pip install 'mnc[allen]'"
_RESPONSE_FORMAT = 1


class AllenDependencyError(UserFileError):
    """allensdk (the ``allen`` extra) is not installed but a download was asked for."""


@dataclass(frozen=True)
class ResponseWindow:
    """How a presentation becomes one number per cell: mean dF/F over a window after onset."""

    window_s: float = 0.5
    """Length of the response window after image onset (seconds)."""
    baseline_s: float = 0.0
    """If above 0, the mean dF/F over this long before onset is subtracted."""


@contextlib.contextmanager
def quiet_allensdk() -> Iterator[None]:
    """Silence the deprecation warnings and log lines allensdk (and rsatoolbox) emit."""
    logger = logging.getLogger()
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(previous)


def fetch_command(cache_dir: Path, experiment_ids: Sequence[int]) -> str:
    """A one-line shell command that downloads the named tables/sessions into ``cache_dir``.

    It runs wherever allensdk is installed (``pip install 'mnc[allen]'``), for instance in a
    separate environment, and writes the files this module reads.
    """
    manifest = cache_dir / MANIFEST_NAME
    body = (f"from allensdk.core.brain_observatory_cache import BrainObservatoryCache as C; "
            f"c = C(manifest_file='{manifest}'); c.get_experiment_containers(); "
            f"c.get_ophys_experiments()")
    if experiment_ids:
        body += f"; [c.get_ophys_experiment_data(i) for i in {list(map(int, experiment_ids))}]"
    return f'python -c "{body}"'


# ------------------------------------------------------------------------- download

def _allensdk_cache(cache_dir: Path) -> Any:
    """allensdk's ``BrainObservatoryCache`` on ``cache_dir``; only for downloads."""
    try:
        with quiet_allensdk():
            from allensdk.core.brain_observatory_cache import BrainObservatoryCache
    except ImportError as error:
        raise AllenDependencyError(
            f"--download needs allensdk, which is not installed ({error}); install it with "
            f"{ALLEN_INSTALL}, or fetch the files elsewhere and copy them into {cache_dir}"
        ) from None
    cache_dir.mkdir(parents=True, exist_ok=True)
    with quiet_allensdk():
        return BrainObservatoryCache(manifest_file=str(cache_dir / MANIFEST_NAME))


def _download_tables(cache_dir: Path) -> None:
    cache = _allensdk_cache(cache_dir)
    with quiet_allensdk():
        cache.get_experiment_containers()
        cache.get_ophys_experiments()


def _download_sessions(cache_dir: Path, experiment_ids: Sequence[int]) -> None:
    cache = _allensdk_cache(cache_dir)
    for experiment_id in experiment_ids:
        with quiet_allensdk():
            cache.get_ophys_experiment_data(int(experiment_id))


# --------------------------------------------------------------------------- reading

def _layout(cache_dir: Path, allow_download: bool) -> CacheLayout:
    layout = cache_layout(cache_dir) if cache_dir.is_dir() else None
    missing = ([] if layout is None else
               [p.name for p in (layout.containers, layout.experiments) if not p.is_file()])
    if layout is not None and not missing:
        return layout
    if allow_download:
        _download_tables(cache_dir)
        return cache_layout(cache_dir)
    what = "the folder" if layout is None else ", ".join(missing)
    raise UserFileError(
        f"{cache_dir}: Brain Observatory cache lacks {what}; fetch the tables once with "
        f"network access: {fetch_command(cache_dir, [])} (or rerun with --download; both "
        f"need allensdk: {ALLEN_INSTALL})")


def trial_responses(timestamps: np.ndarray, dff: np.ndarray, table: StimulusTable,
                    window: ResponseWindow, where: str) -> np.ndarray:
    """(images, trials, cells) mean dF/F after each presentation's onset frame.

    Images with fewer presentations than others are truncated to the smallest trial count so
    every image has the same number of trials (the survey shows each image 50 times).
    """
    if len(timestamps) < 2:
        raise UserFileError(f"{where}: dF/F has fewer than 2 timestamps")
    frame_s = float(np.median(np.diff(timestamps)))
    duration = float(timestamps[-1] - timestamps[0])
    for name, seconds in (("window", window.window_s), ("baseline", window.baseline_s)):
        if not 0 <= seconds <= duration:
            raise UserFileError(f"{where}: --{name} {seconds:g} s: expected from 0 to the "
                                f"recording's length ({duration:.6g} s); it is longer than "
                                "the recording or not a number")
    # At most the whole recording: a window of 1e300 s must not overflow frame arithmetic.
    n_samples = dff.shape[1]
    window_frames = int(min(n_samples, max(1, round(window.window_s / frame_s))))
    baseline_frames = int(min(n_samples, max(0, round(window.baseline_s / frame_s))))
    cumulative = np.zeros((dff.shape[0], dff.shape[1] + 1), dtype=np.float64)
    np.cumsum(dff, axis=1, out=cumulative[:, 1:])
    frames = np.asarray(table.frame, dtype=np.int64)
    starts = np.asarray(table.start, dtype=np.int64)
    shown = frames >= 0
    frames, starts = frames[shown], starts[shown]
    if frames.size == 0:
        raise UserFileError(f"{where}: natural_scenes stimulus table has no image presentations")
    n_frames = dff.shape[1]
    if starts.min() < 0:
        raise UserFileError(f"{where}: a natural-scene onset lies before the first dF/F sample")
    ends = np.minimum(starts + window_frames, n_frames)
    if np.any(ends <= starts):
        raise UserFileError(f"{where}: a natural-scene onset lies after the last dF/F sample")
    means = (cumulative[:, ends] - cumulative[:, starts]) / (ends - starts)
    if baseline_frames > 0:
        base_starts = np.maximum(starts - baseline_frames, 0)
        lengths = np.maximum(starts - base_starts, 1)
        means = means - (cumulative[:, starts] - cumulative[:, base_starts]) / lengths
    if not np.isfinite(means).all():
        raise UserFileError(f"{where}: dF/F holds NaN or infinite values inside a response "
                            "window")
    n_images = int(frames.max()) + 1
    if n_images > frames.size // 2:  # some image is then shown fewer than twice
        raise UserFileError(f"{where}: image index {n_images - 1} among {frames.size} "
                            "presentations; split-half analyses need every image from 0 up "
                            "shown at least 2 trials")
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


def read_session(path: Path, window: ResponseWindow,
                 max_bytes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(responses (images, trials, cells), cell ids (cells,)) of one session file."""
    with SessionFile(path, max_bytes) as session:
        timestamps, dff = session.dff()
        cell_ids = session.cell_ids()
        table = session.natural_scenes_table()
    if cell_ids.shape[0] != dff.shape[0]:
        raise UserFileError(f"{path}: {cell_ids.shape[0]} cell ids for {dff.shape[0]} dF/F "
                            "traces; expected one id per trace")
    return trial_responses(timestamps, dff, table, window, str(path)), cell_ids


def read_session_events(path: Path, events_path: Path, window: ResponseWindow,
                        max_bytes: int | None = None) -> np.ndarray:
    """(images, trials, cells) mean event magnitude in each presentation's response window,
    from the session's events file and the frame times and stimulus table of its session file."""
    from mnc.neuro.sources.boc_events import read_events_file

    with SessionFile(path, max_bytes) as session:
        timestamps = session.frame_times()
        cells = session.cell_ids().shape[0]
        table = session.natural_scenes_table()
        limit = session.max_bytes
    events = read_events_file(events_path, cells, timestamps.shape[0], limit)
    return trial_responses(timestamps, events, table, ResponseWindow(window.window_s, 0.0),
                           str(events_path))


def read_template(path: Path, max_bytes: int | None = None) -> np.ndarray:
    with SessionFile(path, max_bytes) as session:
        return session.template()


def _file_key(path: Path, window: ResponseWindow) -> str:
    stat = path.stat()
    text = json.dumps([_RESPONSE_FORMAT, path.name, stat.st_size, stat.st_mtime_ns,
                       window.window_s, window.baseline_s])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _limit_per_group(experiments: list[Experiment], max_per_group: int | None
                     ) -> list[Experiment]:
    if max_per_group is None:
        return experiments
    kept: list[Experiment] = []
    counts: dict[tuple[str, str], int] = {}
    for experiment in experiments:
        group = (experiment.area, str(experiment.cre_line))
        if counts.get(group, 0) < max_per_group:
            counts[group] = counts.get(group, 0) + 1
            kept.append(experiment)
    return kept


def load_natural_scenes(cache_dir: str | Path, areas: Sequence[str] | None = None,
                        cre_lines: Sequence[str] | None = None,
                        depths_um: Sequence[int] | None = None,
                        window: ResponseWindow = ResponseWindow(),
                        max_per_group: int | None = None, allow_download: bool = False,
                        skip_missing: bool = False,
                        response_cache: str | Path | None = None,
                        max_bytes: int | None = None) -> NeuralData:
    """Trial responses of every matching natural-scenes session and the images shown.

    Sessions are the natural-scenes sessions of passing containers matching ``areas``,
    ``cre_lines`` and ``depths_um`` (None: all), sorted by area, Cre line and id, at most
    ``max_per_group`` per area and Cre line. ``response_cache`` keeps the per-session
    response arrays (small) so later runs skip reading the large dF/F traces.
    """
    cache_dir = Path(cache_dir).expanduser()
    layout = _layout(cache_dir, allow_download)
    experiments = _limit_per_group(
        natural_scenes_experiments(layout, areas, cre_lines, depths_um), max_per_group)
    if not experiments:
        raise UserFileError(
            f"{cache_dir}: no natural-scenes session matches areas={list(areas or [])} "
            f"cre_lines={list(cre_lines or [])} depths={list(depths_um or [])}")
    paths = {e.id: layout.session_file(e.id) for e in experiments}
    experiments = _with_session_files(cache_dir, experiments, paths, allow_download,
                                      skip_missing)
    store = Path(response_cache) if response_cache else None
    recordings: list[SessionRecording] = []
    images: np.ndarray | None = None
    keys: list[str] = []
    for experiment in experiments:
        path = paths[experiment.id]
        key = _file_key(path, window)
        recording, session_key = _session_recording(
            experiment, path, layout.events_file(experiment.id), key, window, store, max_bytes)
        keys.append(session_key)
        if images is None:
            images = _cached_template(store / f"{experiment.id}-{key}-images.npy"
                                      if store else None, path, max_bytes)
        if recording.responses.shape[0] != images.shape[0]:
            raise UserFileError(f"{path}: {recording.responses.shape[0]} natural scenes "
                                f"presented but the template holds {images.shape[0]} images")
        recordings.append(recording)
    assert images is not None  # experiments is non-empty
    fingerprint = hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:16]
    return NeuralData.from_sessions(images, recordings, source=str(cache_dir),
                                    fingerprint=fingerprint)


def _with_session_files(cache_dir: Path, experiments: list[Experiment],
                        paths: dict[int, Path], allow_download: bool, skip_missing: bool
                        ) -> list[Experiment]:
    """The experiments, their session files in the cache: missing ones are downloaded
    (``allow_download``) or left out (``skip_missing``, while any remain); else one message
    says how to fetch them."""
    missing = [eid for eid, path in paths.items() if not path.is_file()]
    if not missing:
        return experiments
    if allow_download:
        _download_sessions(cache_dir, missing)
        return experiments
    if skip_missing and len(missing) < len(experiments):
        return [e for e in experiments if e.id not in missing]
    shown = ", ".join(str(i) for i in missing[:10])
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    raise UserFileError(
        f"{cache_dir}: {len(missing)} natural-scenes session file(s) not in the cache "
        f"(ophys_experiment_data/<id>.nwb for ids {shown}{more}); fetch them with "
        f"{fetch_command(cache_dir, missing)}, rerun with --download (both need "
        f"allensdk: {ALLEN_INSTALL}), or use --skip-missing to analyse only the cached "
        "sessions")


def _session_recording(experiment: Experiment, path: Path, events_path: Path, key: str,
                       window: ResponseWindow, store: Path | None, max_bytes: int | None
                       ) -> tuple[SessionRecording, str]:
    """One session's trial responses (and events, where its events file lies in the cache),
    from the response cache when it holds them; and the session's part of the fingerprint."""
    fingerprint = f"{experiment.id}:{key}"
    cached = store / f"{experiment.id}-{key}.npz" if store else None
    responses, cell_ids = _cached_responses(cached, path, window, max_bytes)
    events = None
    if os.path.lexists(events_path):  # a link is refused by the reader, not passed over
        events_key = _file_key(events_path, window)
        fingerprint += f":events:{events_key}"
        events = _cached_events(store / f"{experiment.id}-{key}-{events_key}-events.npz"
                                if store else None, path, events_path, window,
                                responses.shape, max_bytes)
    return SessionRecording(
        session=str(experiment.id), area=experiment.area, cre_line=experiment.cre_line,
        depth_um=float(experiment.depth_um),
        layer=layer_for_recording(experiment.cre_line, experiment.depth_um),
        cell_ids=cell_ids, responses=responses, events=events), fingerprint


def _cached_responses(cached: Path | None, path: Path, window: ResponseWindow,
                      max_bytes: int | None) -> tuple[np.ndarray, np.ndarray]:
    if cached is not None and os.path.lexists(cached):
        # Imported here: this module also runs in the pinned allensdk test environment,
        # which has numpy and h5py but not the IR's pydantic that the cache module needs.
        from mnc.neuro.sources.cache_files import cache_miss, read_cached_arrays

        stored = read_cached_arrays(cached, ("responses", "cell_ids"))
        if stored is not None:  # a damaged cache entry is computed again and replaced
            problem = _responses_problem(stored["responses"], stored["cell_ids"])
            if problem is None:
                return stored["responses"], stored["cell_ids"]
            cache_miss(cached, problem)
    responses, cell_ids = read_session(path, window, max_bytes)
    if cached is not None:
        from mnc.io.cache_entries import cache_open

        with cache_open(cached.parent, cached) as stream:
            np.savez(stream, responses=responses, cell_ids=cell_ids)
    return responses, cell_ids


def _cached_events(cached: Path | None, path: Path, events_path: Path, window: ResponseWindow,
                   shape: tuple[int, ...], max_bytes: int | None) -> np.ndarray:
    """The session's per-trial events, from the response cache or the events file."""
    if cached is not None and os.path.lexists(cached):
        from mnc.neuro.sources.cache_files import cache_miss, read_cached_arrays

        stored = read_cached_arrays(cached, ("events",))
        if stored is not None:  # a damaged cache entry is computed again and replaced
            events = stored["events"]
            if events.shape == shape and events.dtype.kind == "f" and \
                    np.isfinite(events).all() and not (events < 0).any():
                return events
            cache_miss(cached, f"events: expected finite magnitudes >= 0 of shape {shape}, "
                               f"got {events.dtype} of shape {events.shape}")
    events = read_session_events(path, events_path, window, max_bytes)
    if events.shape != shape:
        raise UserFileError(f"{events_path}: events give {events.shape} (images, trials, cells) "
                            f"but the session's dF/F gives {shape}")
    if cached is not None:
        from mnc.io.cache_entries import cache_open

        with cache_open(cached.parent, cached) as stream:
            np.savez(stream, events=events)
    return events


def _responses_problem(responses: np.ndarray, cell_ids: np.ndarray) -> str | None:
    """What keeps cached arrays from being one session's responses, or None."""
    if responses.ndim != 3 or responses.dtype.kind != "f" or 0 in responses.shape:
        return f"responses: expected (images, trials, cells) floats, got {responses.dtype} " \
               f"of shape {responses.shape}"
    if cell_ids.shape != (responses.shape[2],) or cell_ids.dtype.kind not in "iu":
        return f"cell_ids: expected {responses.shape[2]} integers, got {cell_ids.dtype} of " \
               f"shape {cell_ids.shape}"
    if not np.isfinite(responses).all():
        return "responses hold NaN or infinite values"
    return None


def _cached_template(cached: Path | None, path: Path, max_bytes: int | None
                     ) -> np.ndarray:
    """The natural-scenes image stack, from the response cache or the session file."""
    if cached is not None and os.path.lexists(cached):
        from mnc.neuro.sources.cache_files import cache_miss, read_cached_arrays

        stored = read_cached_arrays(cached)
        if stored is not None and "" in stored:  # a damaged entry is read again and replaced
            images = stored[""]
            if images.ndim == 3 and 0 not in images.shape and images.dtype.kind in "iuf" \
                    and np.isfinite(images).all():
                return images
            cache_miss(cached, f"expected a finite (images, height, width) stack, got "
                               f"{images.dtype} of shape {images.shape}")
    images = read_template(path, max_bytes)
    if cached is not None:
        from mnc.io.cache_entries import cache_open

        with cache_open(cached.parent, cached) as stream:
            np.save(stream, images)
    return images
