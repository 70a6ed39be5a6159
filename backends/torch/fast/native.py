"""Find and load the compiled sparse-tap kernel (a C library, loaded with ctypes).

The library is built from ``_native/sparse_taps.c`` by the package's own build (setuptools,
as the extension module ``mnc_backends.torch.fast._sparse_taps``) when mnc is installed. If it
is missing (no compiler at install time, an unusual platform), everything still works: the
``auto`` strategy then uses ``merged``. ``MNC_SPARSE_ISA=generic|avx2|avx512`` caps the
instruction set (for tests and comparisons); by default the best the CPU supports is used.
``MNC_SPARSE_LIBRARY=PATH`` loads the kernel from another build of the same source (an
instrumented one, say, for the memory-safety tests).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os

ISA_NAMES = ("generic", "avx2", "avx512")
MODULE = "mnc_backends.torch.fast._sparse_taps"
LIBRARY_VARIABLE = "MNC_SPARSE_LIBRARY"


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str]:
    # torch first: its libgomp.so.1 is then the one the kernel links against (same soname),
    # so both share one OpenMP thread pool.
    import torch  # noqa: F401

    path = os.environ.get(LIBRARY_VARIABLE, "").strip()
    if not path:
        try:
            spec = importlib.util.find_spec(MODULE)
        except (ImportError, ValueError) as error:
            return None, f"cannot look up {MODULE}: {error}"
        if spec is None or not spec.origin:
            return None, (f"extension {MODULE} is not built (reinstall mnc with a C compiler: "
                          f"pip install -e .)")
        path = spec.origin
    try:
        library = ctypes.CDLL(path)
    except OSError as error:
        return None, f"cannot load {path}: {error}"
    library.mnc_sparse_best_isa.restype = ctypes.c_int
    library.mnc_sparse_best_isa.argtypes = []
    library.mnc_sparse_run.restype = ctypes.c_int
    library.mnc_sparse_run.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
        ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_int]
    pointer, count, size = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    library.mnc_train_correlate.restype = ctypes.c_int
    library.mnc_train_correlate.argtypes = [
        pointer, count, size, size, size, pointer, pointer, size, size, size, pointer, pointer,
        pointer, pointer, pointer, pointer, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    library.mnc_train_tap_gradient.restype = ctypes.c_int
    library.mnc_train_tap_gradient.argtypes = [
        pointer, pointer, count, size, size, size, size, size, size, pointer, pointer, pointer,
        pointer, pointer, ctypes.c_int, ctypes.c_int]
    library.mnc_dense_readout.restype = ctypes.c_int
    library.mnc_dense_readout.argtypes = [pointer, count, count, pointer, pointer, count, pointer,
                                          ctypes.c_int]
    return library, ""


def library() -> ctypes.CDLL:
    loaded, reason = _load()
    if loaded is None:
        raise RuntimeError(reason)
    return loaded


def available() -> bool:
    return _load()[0] is not None


def unavailable_reason() -> str:
    return _load()[1]


def isa() -> int:
    """Instruction set to use: the best supported, capped by ``MNC_SPARSE_ISA`` if set."""
    best = library().mnc_sparse_best_isa()
    requested = os.environ.get("MNC_SPARSE_ISA", "").strip().lower()
    if requested in ISA_NAMES:
        return min(best, ISA_NAMES.index(requested))
    return best


def isa_name() -> str:
    return ISA_NAMES[isa()] if available() else "unavailable"
