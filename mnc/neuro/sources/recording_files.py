"""``NeuralData`` to and from files: ``.npz`` (numpy) and NetCDF (xarray).

``.npz``: one array per field of ``NeuralData`` (see ``mnc.neuro.sources.recordings``)::

    images      (stimuli, height, width)   integers or floats, grey levels 0-255   required
    responses   (stimuli, trials, cells)   floats, NaN-padded trials               required
    area        (cells,)                   unicode strings (numpy ``str_``)        required
    layer       (cells,)                   unicode strings       layer or cre_line required
    cre_line    (cells,)                   unicode strings       ("" = unknown)
    cell_id     (cells,)                   integers                                optional
    session     (cells,)                   unicode strings                         optional
    depth_um    (cells,)                   floats (NaN = unknown)                  optional
    events      (stimuli, trials, cells)   floats >= 0, NaN where responses are    optional
                                           (detected event magnitude per trial)

Arrays are read with ``allow_pickle=False`` (object arrays are refused), and every array's
declared size is checked against ``max_bytes`` (the memory limit, ``MNC_MAX_MEMORY_MB``,
unless given) from its header before anything is allocated; a member compressed more than
``MAX_COMPRESSION`` times (a deflate bomb) is refused unread, and so are more stimuli than
the comparison's N x N matrices leave room for.

NetCDF: the header of a NetCDF 3 file is walked by ``check_netcdf_header`` (every count and
length within the file) before the C library reads it. Dimensions ``stimulus``, ``trial``,
``cell``, ``y``, ``x``; data variables
``images (stimulus, y, x)``, ``responses (stimulus, trial, cell)`` and optionally
``events (stimulus, trial, cell)``; the per-cell fields above as coordinates along ``cell``.
Reading needs xarray and a NetCDF engine (netCDF4, h5netcdf, or scipy for NetCDF 3 files);
writing needs xarray with netCDF4 or h5netcdf.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from mnc.errors import UserFileError
from mnc.io.atomic import atomic_open, atomic_path
from mnc.neuro.sources.boc_session import memory_limit_bytes
from mnc.neuro.sources.recordings import CELL_FIELDS, NeuralData
from mnc.text import shown

ARRAY_NAMES: tuple[str, ...] = ("images", "responses", *CELL_FIELDS, "events")
REQUIRED = ("images", "responses", "area")
NPZ_SUFFIXES = (".npz",)
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf")
_EXPECTED_KIND = {"images": ("iuf", "numbers"), "responses": ("iuf", "numbers"),
                  "area": ("U", "unicode strings"), "layer": ("U", "unicode strings"),
                  "cre_line": ("U", "unicode strings"), "session": ("U", "unicode strings"),
                  "cell_id": ("iu", "integers"), "depth_um": ("iuf", "numbers"),
                  "events": ("iuf", "numbers")}
_EXPECTED_NDIM = {"images": 3, "responses": 3, "events": 3}
_NETCDF_INSTALL = "pip install xarray netCDF4"
MAX_COMPRESSION = 1000
"""Largest ratio of an ``.npz`` member's size to its compressed size; numbers from
recordings compress a few times, zeros a thousand times."""
MATRICES_PER_STIMULUS_PAIR = 4
"""N x N float64 matrices the comparison holds at once (Gram matrix, correlations, RDM and
its ranks): N stimuli need N * N * 8 bytes this many times."""
LIMIT_ADVICE = "raise --max-memory-mb or MNC_MAX_MEMORY_MB if the file is genuine"


def check_stimulus_count(stimuli: int, limit: int, source: str) -> None:
    """Refuse more stimuli than the comparison's N x N matrices can hold within ``limit``."""
    needed = stimuli * stimuli * 8 * MATRICES_PER_STIMULUS_PAIR
    if needed > limit:
        raise UserFileError(f"{source}: {stimuli:,} stimuli need {needed:,} bytes of N x N "
                            f"matrices to compare; the limit is {limit:,} bytes "
                            f"({LIMIT_ADVICE})")


def is_recordings_file(path: str | Path) -> bool:
    """Whether ``path`` names a recordings file (an existing file, or an .npz/NetCDF name)
    rather than a Brain Observatory cache folder."""
    path = Path(path).expanduser()
    return path.is_file() or path.suffix.lower() in NPZ_SUFFIXES + NETCDF_SUFFIXES


def load_recordings(path: str | Path, max_bytes: int | None = None) -> NeuralData:
    """Recordings from an ``.npz`` or NetCDF file, chosen by the file's suffix."""
    path = Path(path).expanduser()
    max_bytes = memory_limit_bytes() if max_bytes is None else max_bytes
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
        session=arrays.get("session"), depth_um=arrays.get("depth_um"), source=source,
        events=arrays.get("events"))


# --------------------------------------------------------------------------------- npz

_MEMBER_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error,
                  NotImplementedError, RuntimeError)
"""What zipfile and numpy raise on a damaged member (bad offsets, unknown compression,
encryption, short data)."""


def npy_member_header(stream: Any, name: str, source: str) -> tuple[tuple[int, ...], np.dtype]:
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
        reason = str(error)
        if "max_header_size" in reason or "allow_pickle" in reason:
            # numpy's advice to trust the file (allow_pickle) is never passed on
            reason = "the header is larger than numpy reads safely (10,000 bytes)"
        raise UserFileError(f"{source}: array {name!r}: not a readable .npy header "
                            f"({reason})") from None
    return tuple(int(n) for n in shape), dtype


def load_npz(path: str | Path, max_bytes: int | None = None) -> NeuralData:
    """Recordings from an ``.npz`` archive with the arrays named in the module docstring.

    Every member's header is checked (names, types, dimensions, declared size against
    ``max_bytes``, the member's size and its compression) before any array is read."""
    path = Path(path).expanduser()
    max_bytes = memory_limit_bytes() if max_bytes is None else max_bytes
    source = str(path)
    archive = _open_archive(path, source)
    with archive:
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        _check_member_names(members, source)
        total = 0
        stimuli = 0
        for name, info in members.items():
            shape, declared = _member_header(archive, name, info, source)
            total += declared
            _check_member_size(name, info, shape, declared, total, max_bytes, source)
            if name == "images":
                stimuli = shape[0]
        check_stimulus_count(stimuli, max_bytes, source)
        arrays = _read_members(archive, members, source)
    return _from_fields(arrays, source)


def _open_archive(path: Path, source: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise UserFileError(f"{source}: file not found") from None
    except (OSError, zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as error:
        raise UserFileError(f"{source}: not an .npz archive ({error})") from None


def _check_member_names(members: dict[str, zipfile.ZipInfo], source: str) -> None:
    unknown = sorted(set(members) - set(ARRAY_NAMES))
    if unknown:
        raise UserFileError(f"{source}: unexpected array(s) {', '.join(unknown)}; "
                            f"expected only {', '.join(ARRAY_NAMES)}")
    absent = [name for name in REQUIRED if name not in members]
    if absent:
        raise UserFileError(f"{source}: missing array(s) {', '.join(absent)}; expected "
                            f"{', '.join(REQUIRED)} (and layer or cre_line)")


def _member_header(archive: zipfile.ZipFile, name: str, info: zipfile.ZipInfo, source: str
                   ) -> tuple[tuple[int, ...], int]:
    """A member's shape and the bytes it declares, its type and dimensions checked."""
    try:
        with archive.open(info) as stream:
            shape, dtype = npy_member_header(stream, name, source)
    except _MEMBER_ERRORS as error:
        raise UserFileError(f"{source}: array {name!r} cannot be opened (cut short or "
                            f"damaged: {error})") from None
    kinds, wanted = _EXPECTED_KIND[name]
    if dtype.hasobject or dtype.kind not in kinds:
        raise UserFileError(f"{source}: array {name!r}: expected {wanted}, got dtype "
                            f"{dtype}")
    ndim = _EXPECTED_NDIM.get(name, 1)
    if len(shape) != ndim:
        raise UserFileError(f"{source}: array {name!r}: expected {ndim} dimension(s), "
                            f"got shape {shape}")
    return shape, int(np.prod(shape, dtype=object)) * dtype.itemsize


def _check_member_size(name: str, info: zipfile.ZipInfo, shape: tuple[int, ...],
                       declared: int, total: int, max_bytes: int, source: str) -> None:
    """The declared size within the limit (alone and with the members before it), within
    what the member holds, and not compressed beyond ``MAX_COMPRESSION``."""
    if declared > max_bytes or total > max_bytes:
        raise UserFileError(f"{source}: array {name!r} declares shape {shape} "
                            f"({declared:,} bytes); the limit for all arrays is "
                            f"{max_bytes:,} bytes ({LIMIT_ADVICE})")
    if declared > info.file_size:
        raise UserFileError(f"{source}: array {name!r}: shape {shape} needs "
                            f"{declared:,} bytes but the member holds "
                            f"{info.file_size:,}; the file is cut short or damaged")
    if declared > MAX_COMPRESSION * max(info.compress_size, 1):
        raise UserFileError(f"{source}: array {name!r}: compressed "
                            f"{declared / max(info.compress_size, 1):,.0f} times "
                            f"({info.compress_size:,} bytes for {declared:,}); at most "
                            f"{MAX_COMPRESSION} times is accepted (a deflate bomb?)")


def _read_members(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], source: str
                  ) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for name, info in members.items():
        try:
            with archive.open(info) as stream:
                arrays[name] = np.lib.format.read_array(stream, allow_pickle=False)
        except _MEMBER_ERRORS as error:
            raise UserFileError(f"{source}: array {name!r} cannot be read (cut short or "
                                f"damaged: {error})") from None
    return arrays


def save_npz(data: NeuralData, path: str | Path) -> None:
    """Write ``data`` as an uncompressed ``.npz`` (atomic: no half-written file on failure)."""
    arrays = {name: getattr(data, name) for name in ARRAY_NAMES
              if getattr(data, name) is not None}
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


def load_netcdf(path: str | Path, max_bytes: int | None = None) -> NeuralData:
    """Recordings from a NetCDF file with the layout in the module docstring."""
    path = Path(path).expanduser()
    max_bytes = memory_limit_bytes() if max_bytes is None else max_bytes
    source = str(path)
    if not path.is_file():
        raise UserFileError(f"{source}: file not found")
    xarray = _xarray("reading")
    check_netcdf_header(path)
    try:
        dataset = xarray.open_dataset(path)
    except ValueError as error:
        raise UserFileError(f"{source}: no installed engine reads this file ({error}); "
                            f"install one with {_NETCDF_INSTALL}") from None
    except (OSError, RuntimeError, KeyError, LookupError, TypeError) as error:
        raise UserFileError(f"{source}: not a readable NetCDF file ({shown(str(error))})"
                            ) from None
    with dataset:
        return from_xarray(dataset, source, max_bytes)


def from_xarray(dataset: Any, source: str = "<xarray.Dataset>",  # noqa: ANN401
                max_bytes: int | None = None) -> NeuralData:
    """Recordings from an ``xarray.Dataset`` (open or in memory) with the NetCDF layout in
    the module docstring; ``source`` starts every error message. ``max_bytes``: the memory
    limit by default."""
    max_bytes = memory_limit_bytes() if max_bytes is None else max_bytes
    dims = {"images": ("stimulus", "y", "x"), "responses": ("stimulus", "trial", "cell"),
            "events": ("stimulus", "trial", "cell")}
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
                                f"all arrays is {max_bytes:,} bytes ({LIMIT_ADVICE})")
        if name == "images":
            check_stimulus_count(int(variable.shape[0]), max_bytes, source)
        try:
            values = np.asarray(variable.values)
        except (OSError, RuntimeError, ValueError, LookupError, TypeError) as error:
            # LookupError: an unknown _Encoding attribute names no codec
            raise UserFileError(f"{source}: variable {name!r} cannot be read "
                                f"({shown(str(error))})") from None
        arrays[name] = _netcdf_values(values, name, source)
    return _from_fields(arrays, source)


_NC_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}
_NC_DIMENSION, _NC_VARIABLE, _NC_ATTRIBUTE = 0x0A, 0x0B, 0x0C


def check_netcdf_header(path: Path) -> None:
    """Walk a NetCDF 3 (classic, 64-bit offset or CDF-5) header and refuse any count or length
    that reaches past the file's end, before the C library allocates what it declares.
    NetCDF 4 files (HDF5) are left to the checks of the variables' shapes."""
    with open(path, "rb") as stream:
        magic = stream.read(4)
        if magic[:3] != b"CDF":
            return
        if len(magic) < 4:
            raise UserFileError(f"{shown(str(path))}: NetCDF header ends after its first 3 "
                                f"bytes; the file is damaged or not NetCDF")
        size = os.fstat(stream.fileno()).st_size
        stream.seek(0)
        # The header ends before the data; no header is larger than the file.
        header = stream.read(min(size, 64 * 2**20))
    try:
        _NetcdfHeader(header, size, magic[3]).walk()
    except _HeaderProblem as problem:
        raise UserFileError(f"{path}: NetCDF header: {problem}; the file is damaged or "
                            "was made to exhaust memory") from None


class _HeaderProblem(Exception):
    pass


class _NetcdfHeader:
    def __init__(self, data: bytes, file_size: int, version: int):
        if version not in (1, 2, 5):
            raise _HeaderProblem(f"unknown format version {version}")
        self.data, self.file_size, self.at = data, file_size, 4
        self.count_bytes = 8 if version == 5 else 4

    def _take(self, size: int, what: str) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise _HeaderProblem(f"{what} reaches past the end of the file")
        chunk = self.data[self.at:self.at + size]
        self.at += size
        return chunk

    def _int(self, what: str, size: int = 4) -> int:
        return int.from_bytes(self._take(size, what), "big", signed=size == 4)

    def _count(self, what: str, each: int = 1) -> int:
        value = self._int(what, self.count_bytes)
        if value < 0 or value * each > len(self.data) - self.at:
            raise _HeaderProblem(f"{what} declares {value:,} entries of {each} bytes, more "
                                 "than the file holds")
        return value

    def _name(self, what: str) -> str:
        length = self._count(f"{what} name", 1)
        raw = self._take(length + (-length % 4), f"{what} name")[:length]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _HeaderProblem(f"{what} name is not UTF-8") from None

    def _list(self, tag: int, what: str) -> int:
        found = self._int(f"{what} list")
        count = self._count(f"{what} list", 4)
        if found == 0 and count == 0:
            return 0
        if found != tag:
            raise _HeaderProblem(f"expected the {what} list, found tag {found}")
        return count

    def _attributes(self, owner: str) -> None:
        for _ in range(self._list(_NC_ATTRIBUTE, f"{owner} attribute")):
            name = self._name("attribute")
            kind = self._int(f"attribute {name!r} type")
            if kind not in _NC_TYPE_BYTES:
                raise _HeaderProblem(f"attribute {name!r} has unknown type {kind}")
            each = _NC_TYPE_BYTES[kind]
            count = self._count(f"attribute {name!r}", each)
            self._take(count * each + (-(count * each) % 4), f"attribute {name!r}")

    def walk(self) -> None:
        self._int("record count", self.count_bytes)
        dimensions = self._list(_NC_DIMENSION, "dimension")
        for _ in range(dimensions):
            name = self._name("dimension")
            self._int(f"dimension {name!r} length", self.count_bytes)
        self._attributes("global")
        for _ in range(self._list(_NC_VARIABLE, "variable")):
            name = self._name("variable")
            rank = self._count(f"variable {name!r} dimensions", 4)
            for _ in range(rank):
                if not 0 <= self._int(f"variable {name!r} dimension") < dimensions:
                    raise _HeaderProblem(f"variable {name!r} names a dimension that does not "
                                         "exist")
            self._attributes(f"variable {name!r}")
            kind = self._int(f"variable {name!r} type")
            if kind not in _NC_TYPE_BYTES:
                raise _HeaderProblem(f"variable {name!r} has unknown type {kind}")
            self._int(f"variable {name!r} size", self.count_bytes)
            begin = self._int(f"variable {name!r} offset", 4 if self.count_bytes == 4
                              and self.data[3] == 1 else 8)
            if not 0 <= begin <= self.file_size:
                raise _HeaderProblem(f"variable {name!r} starts past the end of the file")


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
    variables = {"images": (("stimulus", "y", "x"), data.images),
                 "responses": (("stimulus", "trial", "cell"), data.responses)}
    if data.events is not None:
        variables["events"] = (("stimulus", "trial", "cell"), data.events)
    return xarray.Dataset(
        variables,
        coords=coords, attrs={"source": data.source, "fingerprint": data.fingerprint})


def save_netcdf(data: NeuralData, path: str | Path) -> None:
    """Write ``data`` as NetCDF 4 (atomic: no half-written file on failure)."""
    dataset = to_xarray(data)
    engine = _netcdf_engine()
    with atomic_path(Path(path).expanduser()) as temporary:
        dataset.to_netcdf(temporary, engine=engine)
