"""A small NRRD reader for the Allen annotation volume (``annotation_100.nrrd``).

Only what the Allen files use: one attached data block, ``raw`` or ``gzip`` encoding, plain
integer and float types. Saves a dependency on pynrrd; anything else is refused clearly.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from mnc.errors import UserFileError

# NRRD type names (and their synonyms) -> numpy kind and size.
_TYPES: dict[str, str] = {
    **dict.fromkeys(["int8", "int8_t", "signed char"], "i1"),
    **dict.fromkeys(["uint8", "uint8_t", "uchar", "unsigned char"], "u1"),
    **dict.fromkeys(["int16", "int16_t", "short", "short int", "signed short",
                     "signed short int"], "i2"),
    **dict.fromkeys(["uint16", "uint16_t", "ushort", "unsigned short",
                     "unsigned short int"], "u2"),
    **dict.fromkeys(["int32", "int32_t", "int", "signed int"], "i4"),
    **dict.fromkeys(["uint32", "uint32_t", "uint", "unsigned int"], "u4"),
    **dict.fromkeys(["int64", "int64_t", "longlong", "long long", "long long int",
                     "signed long long", "signed long long int"], "i8"),
    **dict.fromkeys(["uint64", "uint64_t", "ulonglong", "unsigned long long",
                     "unsigned long long int"], "u8"),
    "float": "f4",
    "double": "f8",
}


def read_nrrd(path: str | Path) -> np.ndarray:
    """The volume of an NRRD file, indexed like the Allen CCF arrays: [AP, DV, ML].

    NRRD lists the fastest-varying axis first, so the data is laid out in Fortran order over
    ``sizes``; allensdk (through pynrrd) returns the same indexing.
    """
    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as error:
        raise UserFileError(f"{path}: cannot read ({error.strerror or error})") from None
    if not content.startswith(b"NRRD"):
        raise UserFileError(f"{path}: not an NRRD file (it does not start with 'NRRD')")
    fields, data = _split_header(path, content)
    if "data file" in fields or "datafile" in fields:
        raise UserFileError(f"{path}: detached NRRD data files are not supported; "
                            "save the volume with its data attached or as .npy")
    type_name = fields.get("type", "").lower()
    if type_name not in _TYPES:
        raise UserFileError(f"{path}: header field 'type': unsupported NRRD type {type_name!r}")
    try:
        sizes = [int(part) for part in fields["sizes"].split()]
    except (KeyError, ValueError):
        raise UserFileError(f"{path}: header field 'sizes' is missing or not integers") from None
    encoding = fields.get("encoding", "raw").lower()
    if encoding in ("gzip", "gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise UserFileError(f"{path}: gzip data block is corrupt ({error})") from None
    elif encoding != "raw":
        raise UserFileError(f"{path}: header field 'encoding': only raw and gzip are "
                            f"supported, not {encoding!r}")
    endian = "<" if fields.get("endian", "little").lower() == "little" else ">"
    dtype = np.dtype(endian + _TYPES[type_name])
    expected = int(np.prod(sizes)) * dtype.itemsize
    if len(data) < expected:
        raise UserFileError(f"{path}: data block holds {len(data)} bytes, sizes {sizes} "
                            f"of {type_name} need {expected}")
    flat = np.frombuffer(data[len(data) - expected:], dtype=dtype)
    return flat.reshape(sizes, order="F").astype(dtype.newbyteorder("="))


def _split_header(path: Path, content: bytes) -> tuple[dict[str, str], bytes]:
    fields: dict[str, str] = {}
    position = content.index(b"\n") + 1  # skip the magic line
    while True:
        end = content.find(b"\n", position)
        if end < 0:
            raise UserFileError(f"{path}: header has no blank line before the data")
        line = content[position:end].decode("latin-1").rstrip("\r")
        position = end + 1
        if not line:
            return fields, content[position:]
        if line.startswith("#") or ":=" in line:
            continue  # comments and key/value pairs carry no layout
        key, separator, value = line.partition(":")
        if separator:
            fields[key.strip().lower()] = value.strip()
