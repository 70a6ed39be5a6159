"""Arrays kept in a cache folder (per-session responses, events, image templates of a Brain
Observatory cache), read back with the memory limit as bound and never unpickled; an unusable
entry is a warning and a miss, so the value is computed again and replaced.

The cache folder's layout and the trust rules for its entries are in ``mnc.neuro.cache``.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import numpy as np

from mnc.io.cache_entries import read_entry
from mnc.io.textfile import TextFileError
from mnc.limits import current_limits


class CacheWarning(UserWarning):
    """A cache entry could not be read back; it is computed again and replaced."""


def cache_miss(path: Path, reason: str) -> None:
    """Warn that ``path`` is ignored: a damaged or oversized entry costs a recomputation."""
    warnings.warn(f"{path}: unusable cache entry ({reason}); computing it again",
                  CacheWarning, stacklevel=3)


def read_cached_arrays(path: Path, names: tuple[str, ...] = ()) -> dict[str, np.ndarray] | None:
    """The arrays of a cached ``.npz`` or ``.npy`` file (key ``""`` for ``.npy``), read with
    the memory limit as bound and never unpickled; None with a warning if unusable."""
    try:
        raw = read_entry(path, current_limits().max_memory_bytes)
        loaded = np.load(io.BytesIO(raw), allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"": loaded}
        with loaded:
            return {name: loaded[name] for name in names}
    except TextFileError as error:
        cache_miss(path, error.reason)
    except KeyError as error:
        cache_miss(path, f"no array {error}")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else \
            type(error).__name__
        if "max_header_size" in reason:  # numpy's advice to trust the file is not passed on
            reason = "its .npy header is larger than numpy reads safely"
        elif "pickle" in reason:  # numpy's advice to load it unsafely is not passed on
            reason = "holds pickled (object) data, which is never loaded"
        cache_miss(path, reason)
    return None
