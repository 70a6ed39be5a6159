"""``NeuralData`` to and from files: ``.npz`` (numpy) and NetCDF (xarray).

``.npz``: one array per field of ``NeuralData`` (see ``mnc.neuro.recordings``)::

    images      (stimuli, height, width)   integers or floats, grey levels 0-255   required
    responses   (stimuli, trials, cells)   floats, NaN-padded trials               required
    area        (cells,)                   unicode strings (numpy ``str_``)        required
    layer       (cells,)                   unicode strings       layer or cre_line required
    cre_line    (cells,)                   unicode strings       ("" = unknown)
    cell_id     (cells,)                   integers                                optional
    session     (cells,)                   unicode strings                         optional
    depth_um    (cells,)                   floats (NaN = unknown)                  optional

Arrays are read with ``allow_pickle=False`` (object arrays are refused), and every array's
declared size is checked against ``max_bytes`` from its header before anything is allocated.

NetCDF: dimensions ``stimulus``, ``trial``, ``cell``, ``y``, ``x``; data variables
``images (stimulus, y, x)`` and ``responses (stimulus, trial, cell)``; the per-cell fields
above as coordinates along ``cell``. Reading needs xarray and a NetCDF engine (netCDF4,
h5netcdf, or scipy for NetCDF 3 files); writing needs xarray with netCDF4 or h5netcdf.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from mnc.errors import UserFileError
from mnc.io.atomic import atomic_open, atomic_path
from mnc.neuro.boc_session import DEFAULT_MAX_BYTES
from mnc.neuro.recordings import CELL_FIELDS, NeuralData

ARRAY_NAMES: tuple[str, ...] = ("images", "responses", *CELL_FIELDS)
REQUIRED = ("images", "responses", "area")
NPZ_SUFFIXES = (".npz",)
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf")
_EXPECTED_KIND = {"images": ("iuf", "numbers"), "responses": ("iuf", "numbers"),
                  "area": ("U", "unicode strings"), "layer": ("U", "unicode strings"),
                  "cre_line": ("U", "unicode strings"), "session": ("U", "unicode strings"),
                  "cell_id": ("iu", "integers"), "depth_um": ("iuf", "numbers")}
_EXPECTED_NDIM = {"images": 3, "responses": 3}
_NETCDF_INSTALL = "pip install xarray netCDF4"


def is_recordings_file(path: str | Path) -> bool:
    """Whether ``path`` names a recordings file (an existing file, or an .npz/NetCDF name)
    rather than a Brain Observatory cache folder."""
    path = Path(path).expanduser()
    return path.is_file() or path.suffix.lower() in NPZ_SUFFIXES + NETCDF_SUFFIXES


def load_recordings(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> NeuralData:
    """Recordings from an ``.npz`` or NetCDF file, chosen by the file's suffix."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix in NPZ_SUFFIXES:
        return load_npz(path, max_bytes)
    if suffix in NETCDF_SUFFIXES:
        return load_netcdf(path, max_bytes)
    raise UserFileError(f"{path}: unknown recordings format {suffix or '(no suffix)'!r}; "
                        f"expected {', '.join(NPZ_SUFFIXES + NETCDF_SUFFIXES)}")


def save_recordings(data: NeuralData, path: str | Path) -> None:
    """Write ``data`` as ``.npz`` or NetCDF, chosen by the suffix; atomic."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix in NPZ_SUFFIXES:
        save_npz(data, path)
    elif suffix in NETCDF_SUFFIXES:
        save_netcdf(data, path)
    else:
        raise UserFileError(f"{path}: unknown recordings format {suffix or '(no suffix)'!r}; "
                            f"expected {', '.join(NPZ_SUFFIXES + NETCDF_SUFFIXES)}")


def _from_fields(arrays: dict[str, np.ndarray], source: str) -> NeuralData:
    if "layer" not in arrays and "cre_line" not in arrays:
        raise UserFileError(f"{source}: needs a 'layer' or a 'cre_line' array (one value per "
                            "cell)")
    return NeuralData.from_arrays(
        arrays["images"], arrays["responses"], arrays["area"], layer=arrays.get("layer"),
        cre_line=arrays.get("cre_line"), cell_id=arrays.get("cell_id"),
        session=arrays.get("session"), depth_um=arrays.get("depth_um"), source=source)


# --------------------------------------------------------------------------------- npz

def _npz_header(stream: Any, name: str, source: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one ``.npy`` member, from its header alone."""
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise UserFileError(f"{source}: array {name!r}: not a readable .npy header "
                            f"({error})") from None
    return tuple(int(n) for n in shape), dtype


def load_npz(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> NeuralData:
    """Recordings from an ``.npz`` archive with the arrays named in the module docstring."""
    path = Path(path).expanduser()
    source = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise UserFileError(f"{source}: file not found") from None
    except (OSError, zipfile.BadZipFile) as error:
        raise UserFileError(f"{source}: not an .npz archive ({error})") from None
    arrays: dict[str, np.ndarray] = {}
    with archive:
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        unknown = sorted(set(members) - set(ARRAY_NAMES))
        if unknown:
            raise UserFileError(f"{source}: unexpected array(s) {', '.join(unknown)}; "
                                f"expected only {', '.join(ARRAY_NAMES)}")
        absent = [name for name in REQUIRED if name not in members]
        if absent:
            raise UserFileError(f"{source}: missing array(s) {', '.join(absent)}; expected "
                                f"{', '.join(REQUIRED)} (and layer or cre_line)")
        total = 0
        for name, info in members.items():
            with archive.open(info) as stream:
                shape, dtype = _npz_header(stream, name, source)
            kinds, wanted = _EXPECTED_KIND[name]
            if dtype.hasobject or dtype.kind not in kinds:
                raise UserFileError(f"{source}: array {name!r}: expected {wanted}, got dtype "
                                    f"{dtype}")
            ndim = _EXPECTED_NDIM.get(name, 1)
            if len(shape) != ndim:
                raise UserFileError(f"{source}: array {name!r}: expected {ndim} dimension(s), "
                                    f"got shape {shape}")
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            total += declared
            if declared > max_bytes or total > max_bytes:
                raise UserFileError(f"{source}: array {name!r} declares shape {shape} "
                                    f"({declared:,} bytes); the limit for all arrays is "
                                    f"{max_bytes:,} bytes")
            if declared > info.file_size:
                raise UserFileError(f"{source}: array {name!r}: shape {shape} needs "
                                    f"{declared:,} bytes but the member holds "
                                    f"{info.file_size:,}; the file is cut short or damaged")
        for name, info in members.items():
            try:
                with archive.open(info) as stream:
                    arrays[name] = np.lib.format.read_array(stream, allow_pickle=False)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
                raise UserFileError(f"{source}: array {name!r} cannot be read (cut short or "
                                    f"damaged: {error})") from None
    return _from_fields(arrays, source)


def save_npz(data: NeuralData, path: str | Path) -> None:
    """Write ``data`` as an uncompressed ``.npz`` (atomic: no half-written file on failure)."""
    arrays = {name: getattr(data, name) for name in ARRAY_NAMES}
    with atomic_open(Path(path).expanduser(), "wb") as stream:
        np.savez(stream, **arrays)


# ------------------------------------------------------------------------------ NetCDF

def _xarray(action: str) -> Any:
    try:
        import xarray
    except ImportError:
        raise UserFileError(f"{action} NetCDF recordings needs xarray and a NetCDF engine; "
                            f"install them with {_NETCDF_INSTALL}") from None
    return xarray


def load_netcdf(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> NeuralData:
    """Recordings from a NetCDF file with the layout in the module docstring."""
    path = Path(path).expanduser()
    source = str(path)
    if not path.is_file():
        raise UserFileError(f"{source}: file not found")
    xarray = _xarray("reading")
    try:
        dataset = xarray.open_dataset(path)
    except ValueError as error:
        raise UserFileError(f"{source}: no installed engine reads this file ({error}); "
                            f"install one with {_NETCDF_INSTALL}") from None
    except (OSError, RuntimeError, KeyError) as error:
        raise UserFileError(f"{source}: not a readable NetCDF file ({error})") from None
    with dataset:
        return from_xarray(dataset, source, max_bytes)


def from_xarray(dataset: Any, source: str = "<xarray.Dataset>",  # noqa: ANN401
                max_bytes: int = DEFAULT_MAX_BYTES) -> NeuralData:
    """Recordings from an ``xarray.Dataset`` (open or in memory) with the NetCDF layout in
    the module docstring; ``source`` starts every error message."""
    dims = {"images": ("stimulus", "y", "x"), "responses": ("stimulus", "trial", "cell")}
    total = 0
    arrays: dict[str, np.ndarray] = {}
    for name in ARRAY_NAMES:
        if name not in dataset.variables:
            if name in REQUIRED:
                raise UserFileError(f"{source}: missing variable {name!r}; expected "
                                    f"{', '.join(REQUIRED)} (and layer or cre_line)")
            continue
        variable = dataset.variables[name]
        expected = dims.get(name, ("cell",))
        if tuple(variable.dims) != expected:
            raise UserFileError(f"{source}: variable {name!r}: expected dimensions "
                                f"{expected}, got {tuple(variable.dims)}")
        itemsize = max(int(variable.dtype.itemsize), 8 if variable.dtype.kind == "O" else 1)
        declared = int(np.prod(variable.shape, dtype=object)) * itemsize
        total += declared
        if declared > max_bytes or total > max_bytes:
            raise UserFileError(f"{source}: variable {name!r} declares shape "
                                f"{variable.shape} ({declared:,} bytes); the limit for "
                                f"all arrays is {max_bytes:,} bytes")
        try:
            values = np.asarray(variable.values)
        except (OSError, RuntimeError, ValueError) as error:
            raise UserFileError(f"{source}: variable {name!r} cannot be read ({error})"
                                ) from None
        arrays[name] = _netcdf_values(values, name, source)
    return _from_fields(arrays, source)


def _netcdf_values(values: np.ndarray, name: str, source: str) -> np.ndarray:
    kinds, wanted = _EXPECTED_KIND[name]
    if kinds == "U" and values.dtype.kind in "OSU":
        try:
            return np.array([v.decode() if isinstance(v, bytes) else str(v)
                             for v in values.reshape(-1)], dtype=np.str_).reshape(values.shape)
        except UnicodeDecodeError:
            raise UserFileError(f"{source}: variable {name!r}: text is not UTF-8") from None
    if values.dtype.kind not in kinds:
        raise UserFileError(f"{source}: variable {name!r}: expected {wanted}, got dtype "
                            f"{values.dtype}")
    return values


def _netcdf_engine() -> str:
    import importlib.util

    for engine, module in (("netcdf4", "netCDF4"), ("h5netcdf", "h5netcdf")):
        if importlib.util.find_spec(module) is not None:
            return engine
    raise UserFileError(f"writing NetCDF recordings needs netCDF4 or h5netcdf; install one "
                        f"with {_NETCDF_INSTALL}")


def to_xarray(data: NeuralData) -> Any:
    """The recordings as an ``xarray.Dataset`` with the NetCDF layout described above."""
    xarray = _xarray("writing")
    coords = {name: ("cell", getattr(data, name)) for name in CELL_FIELDS}
    return xarray.Dataset(
        {"images": (("stimulus", "y", "x"), data.images),
         "responses": (("stimulus", "trial", "cell"), data.responses)},
        coords=coords, attrs={"source": data.source, "fingerprint": data.fingerprint})


def save_netcdf(data: NeuralData, path: str | Path) -> None:
    """Write ``data`` as NetCDF 4 (atomic: no half-written file on failure)."""
    dataset = to_xarray(data)
    engine = _netcdf_engine()
    with atomic_path(Path(path).expanduser()) as temporary:
        dataset.to_netcdf(temporary, engine=engine)
