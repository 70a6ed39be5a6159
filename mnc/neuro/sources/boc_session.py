"""One Allen Brain Observatory session file (``ophys_experiment_data/<id>.nwb``) read with h5py.

The files are NWB 1 (HDF5). Only these datasets are read; every other group is ignored:

=====================================================================  =====================
dataset                                                                 content
=====================================================================  =====================
``processing/brain_observatory_pipeline/DfOverF/imaging_plane_1/data``  (cells, frames) dF/F
``.../DfOverF/imaging_plane_1/timestamps``                              (frames,) seconds
``processing/brain_observatory_pipeline/ImageSegmentation/``            (cells,) integer ids
``cell_specimen_ids``
``stimulus/presentation/.../natural_scenes_stimulus/data``              (presentations,) image
                                                                        index, -1 = blank
``stimulus/presentation/.../natural_scenes_stimulus/frame_duration``    (presentations, 2)
                                                                        start/end frame
``stimulus/templates/natural_scenes_image_stack/data``                  (images, height, width)
=====================================================================  =====================

The ``natural_scenes_stimulus`` (or ``natural_scenes``) group may sit at any depth under
``stimulus/presentation``; exactly one must exist. Presentations are returned sorted by start
frame, then end frame. A file that is not HDF5, is cut short, or lacks a dataset or has one
of the wrong shape or type raises ``UserFileError`` naming the file, the dataset and what was
expected. Each dataset's declared size is checked against ``max_bytes`` (the memory limit,
``MNC_MAX_MEMORY_MB``, unless given) before it is read.

A session file is read from itself alone: a dataset reached through an external link, one
stored in external raw files, or a virtual dataset is refused before any of it is read, so
the file cannot make mnc read (or hang on) files outside the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from mnc.errors import UserFileError

PIPELINE = "processing/brain_observatory_pipeline"
DFF_DATA = f"{PIPELINE}/DfOverF/imaging_plane_1/data"
DFF_TIMESTAMPS = f"{PIPELINE}/DfOverF/imaging_plane_1/timestamps"
CELL_IDS = f"{PIPELINE}/ImageSegmentation/cell_specimen_ids"
PRESENTATIONS = "stimulus/presentation"
NATURAL_SCENES_GROUPS = ("natural_scenes", "natural_scenes_stimulus")
TEMPLATE = "stimulus/templates/natural_scenes_image_stack/data"
DEFAULT_MAX_BYTES = 8 * 2**30
"""Largest dataset read (8 GiB) where the memory limit is unknown; a full session's dF/F is a
few hundred MB."""
MAX_IMAGE_INDEX = 2**31 - 1
"""Image indices beyond this are no index: the survey shows 118 images."""
MIN_FRAME_INTERVAL_S = 1e-4
"""Two-photon frames come at about 30 Hz; an interval below 0.1 ms is no acquisition."""
SUMS_BYTES_PER_SAMPLE = 16
"""Bytes per dF/F sample that the response computation makes (float64 values and sums)."""
LIMIT_ADVICE = "raise --max-memory-mb or MNC_MAX_MEMORY_MB if the file is genuine"


def memory_limit_bytes() -> int:
    """The run's memory limit (``MNC_MAX_MEMORY_MB``); 8 GiB where mnc's limits module cannot
    be imported (the pinned allensdk environment reads session files without pydantic)."""
    try:
        from mnc.limits import current_limits
    except ImportError:
        return DEFAULT_MAX_BYTES
    return current_limits().max_memory_bytes


@dataclass(frozen=True)
class StimulusTable:
    """Natural-scene presentations in the order shown."""

    frame: np.ndarray
    """(presentations,) image index, -1 for a blank."""
    start: np.ndarray
    """(presentations,) acquisition frame of the onset."""
    end: np.ndarray
    """(presentations,) acquisition frame of the offset."""


class SessionFile:
    """A session file opened for reading: ``with SessionFile(path) as session: ...``."""

    def __init__(self, path: str | Path, max_bytes: int | None = None):
        self.path = Path(path)
        self.max_bytes = memory_limit_bytes() if max_bytes is None else max_bytes
        self._file: Any = None

    def __enter__(self) -> SessionFile:
        import h5py

        try:
            self._file = h5py.File(self.path, "r")
        except (OSError, ValueError) as error:
            raise UserFileError(f"{self.path}: not a readable HDF5 (NWB) session file "
                                f"({_reason(error)})") from None
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # ----------------------------------------------------------------------- readers

    def dff(self) -> tuple[np.ndarray, np.ndarray]:
        """(timestamps (frames,), dF/F (cells, frames))."""
        traces = self._read(DFF_DATA, "a (cells, frames) float array", ndim=2, kinds="f",
                            bytes_per_item=SUMS_BYTES_PER_SAMPLE)
        timestamps = self.frame_times()
        if timestamps.shape[0] != traces.shape[1]:
            raise UserFileError(f"{self.path}: {DFF_TIMESTAMPS}: {timestamps.shape[0]} "
                                f"timestamps for {traces.shape[1]} dF/F frames; expected one "
                                "per frame")
        if traces.shape[0] == 0:
            raise UserFileError(f"{self.path}: {DFF_DATA}: no cells (shape {traces.shape})")
        return timestamps, traces

    def frame_times(self) -> np.ndarray:
        """(frames,) acquisition times in seconds: finite, increasing, a two-photon rate."""
        timestamps = self._read(DFF_TIMESTAMPS, "a (frames,) float array", ndim=1, kinds="fiu")
        if not np.isfinite(timestamps).all() or np.any(np.diff(timestamps) <= 0):
            raise UserFileError(f"{self.path}: {DFF_TIMESTAMPS}: expected finite, increasing "
                                "times")
        if timestamps.size > 1 and np.median(np.diff(timestamps)) < MIN_FRAME_INTERVAL_S:
            raise UserFileError(f"{self.path}: {DFF_TIMESTAMPS}: median frame interval "
                                f"{float(np.median(np.diff(timestamps))):.3g} s; expected "
                                f"seconds of a two-photon recording (at least "
                                f"{MIN_FRAME_INTERVAL_S:g} s per frame)")
        return timestamps.astype(np.float64)

    def cell_ids(self) -> np.ndarray:
        """(cells,) int64 cell specimen ids, in the row order of the dF/F traces."""
        return self._read(CELL_IDS, "a (cells,) integer array", ndim=1, kinds="iu"
                          ).astype(np.int64)

    def natural_scenes_table(self) -> StimulusTable:
        group = self._natural_scenes_group()
        data_name, duration_name = f"{group}/data", f"{group}/frame_duration"
        frames = self._read(data_name, "a (presentations,) integer image index", ndim=None,
                            kinds="iuf")
        if frames.ndim == 2 and frames.shape[1] == 1:
            frames = frames[:, 0]
        if frames.ndim != 1:
            raise UserFileError(f"{self.path}: {data_name}: expected a (presentations,) image "
                                f"index, got shape {frames.shape}")
        if frames.dtype.kind == "f" and not np.array_equal(frames, np.round(frames)):
            raise UserFileError(f"{self.path}: {data_name}: expected whole image indices, "
                                "found fractions or NaN")
        durations = self._read(duration_name, "a (presentations, 2) start/end frame array",
                               ndim=2, kinds="iuf")
        if durations.shape != (frames.shape[0], 2):
            raise UserFileError(f"{self.path}: {duration_name}: expected shape "
                                f"({frames.shape[0]}, 2) (start and end frame of each "
                                f"presentation), got {durations.shape}")
        if not np.isfinite(durations).all():
            raise UserFileError(f"{self.path}: {duration_name}: contains NaN or infinite "
                                "frames")
        if frames.size and frames.max() > MAX_IMAGE_INDEX:
            raise UserFileError(f"{self.path}: {data_name}: image index {frames.max():.6g}; "
                                f"expected -1 (blank) or an image number up to "
                                f"{MAX_IMAGE_INDEX:,}")
        if frames.size and frames.min() < -1:
            raise UserFileError(f"{self.path}: {data_name}: image index {int(frames.min())}; "
                                "expected -1 (blank) or an image number >= 0")
        start = durations[:, 0].astype(np.int64)
        end = durations[:, 1].astype(np.int64)
        order = np.lexsort((end, start))
        return StimulusTable(frame=frames.astype(np.int64)[order], start=start[order],
                             end=end[order])

    def template(self) -> np.ndarray:
        """(images, height, width) natural-scene grey levels."""
        images = self._read(TEMPLATE, "an (images, height, width) array of grey levels",
                            ndim=3, kinds="iuf")
        if 0 in images.shape:
            raise UserFileError(f"{self.path}: {TEMPLATE}: empty image stack (shape "
                                f"{images.shape})")
        return images

    # ------------------------------------------------------------------------ helpers

    def _natural_scenes_group(self) -> str:
        import h5py

        presentations = self._file.get(PRESENTATIONS)
        if not isinstance(presentations, h5py.Group):
            raise UserFileError(f"{self.path}: no group {PRESENTATIONS}; expected the "
                                "stimulus presentations of a Brain Observatory session")
        found: list[str] = []

        def visit(name: str | bytes, item: Any) -> None:
            if isinstance(name, bytes):  # not UTF-8: cannot be one of the names looked for
                return
            if isinstance(item, h5py.Group) and name.rsplit("/", 1)[-1] in NATURAL_SCENES_GROUPS:
                found.append(f"{PRESENTATIONS}/{name}")

        try:
            presentations.visititems(visit)
        except (OSError, RuntimeError, KeyError) as error:
            raise UserFileError(f"{self.path}: {PRESENTATIONS}: cannot list groups (file cut "
                                f"short or damaged: {_reason(error)})") from None
        if not found:
            raise UserFileError(f"{self.path}: no {NATURAL_SCENES_GROUPS[1]} group under "
                                f"{PRESENTATIONS}; this session did not show natural scenes")
        if len(found) > 1:
            raise UserFileError(f"{self.path}: {len(found)} natural-scenes groups "
                                f"({', '.join(found)}); expected exactly one")
        return found[0]

    def _check_reach(self, name: str) -> None:
        """Refuse a path that passes through an external link (or a soft link to one)."""
        import h5py

        parts = [part for part in name.split("/") if part]
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            try:
                link = self._file.get(prefix, getlink=True)
            except (OSError, RuntimeError, KeyError):
                return  # reported by the caller when it opens the dataset
            if isinstance(link, h5py.ExternalLink):
                raise UserFileError(f"{self.path}: {name}: {prefix} is an external link to "
                                    f"{link.filename!r}; a session file is read from itself "
                                    "alone")

    def _read(self, name: str, expected: str, ndim: int | None, kinds: str,
              bytes_per_item: int = 0) -> np.ndarray:
        import h5py

        self._check_reach(name)
        try:
            dataset = self._file.get(name)
        except (OSError, RuntimeError, KeyError) as error:
            raise UserFileError(f"{self.path}: {name}: cannot be opened (file cut short or "
                                f"damaged: {_reason(error)})") from None
        if not isinstance(dataset, h5py.Dataset):
            what = "missing" if dataset is None else "a group, not a dataset"
            raise UserFileError(f"{self.path}: {name}: {what}; expected {expected}")
        if (ndim is not None and dataset.ndim != ndim) or dataset.dtype.kind not in kinds:
            raise UserFileError(f"{self.path}: {name}: expected {expected}, got "
                                f"{dataset.dtype} with shape {dataset.shape}")
        if dataset.is_virtual:
            raise UserFileError(f"{self.path}: {name}: is a virtual dataset (made of other "
                                "files); a session file is read from itself alone")
        if dataset.external:
            raise UserFileError(f"{self.path}: {name}: keeps its values in external raw "
                                f"storage ({dataset.external[0][0]!r}); a session file is "
                                "read from itself alone")
        items = int(np.prod(dataset.shape, dtype=np.float64))
        declared = items * dataset.dtype.itemsize
        if declared > self.max_bytes:
            raise UserFileError(f"{self.path}: {name}: declares {declared:,} bytes (shape "
                                f"{dataset.shape}); the limit is {self.max_bytes:,} bytes "
                                f"({LIMIT_ADVICE})")
        needed = items * (dataset.dtype.itemsize + bytes_per_item)
        if needed > self.max_bytes:
            raise UserFileError(f"{self.path}: {name}: shape {dataset.shape} needs "
                                f"{needed:,} bytes to compute responses; the limit is "
                                f"{self.max_bytes:,} bytes ({LIMIT_ADVICE})")
        try:
            return np.asarray(dataset[()])
        except (OSError, RuntimeError, ValueError) as error:
            raise UserFileError(f"{self.path}: {name}: cannot be read (file cut short or "
                                f"damaged: {_reason(error)})") from None


def _reason(error: BaseException) -> str:
    """The first line of an h5py/OS error, without the exception class."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
