"""Bound what a ``.pt`` file unpacks to, from its zip central directory, before torch reads it.

``torch.save`` writes a zip archive whose entries it stores uncompressed; ``torch.load``
allocates each entry's declared size and inflates compressed entries too. A file of a few
megabytes can therefore declare, or inflate to, gigabytes. The central directory lists every
entry's declared size, so the total is known without reading any data. Files that are not zip
archives (torch's legacy format, which also allocates declared sizes before reading) are not
read at all. Pure Python (``zipfile``): no torch needed to refuse a file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from mnc.errors import SizeLimitError
from mnc.limits import Limits, memory_problem

MAX_ENTRIES = 100_000
"""A saved MouseNet has a few hundred tensors; a checkpoint with its optimizer, about twice."""
MAX_COMPRESSION_RATIO = 100
"""torch stores entries uncompressed; deflate rarely gains 100x on real weights."""
RATIO_CHECKED_ABOVE = 1 << 20
"""Entries smaller than this (1 MiB) may compress as they like."""


def torch_archive_problem(path: str | Path, limits: Limits | None = None) -> str | None:
    """Why ``path`` is not a zip archive torch could read (for the caller's message), or None.

    Raises SizeLimitError naming the file when the archive would unpack to more than the
    memory limit, holds too many entries, or has an entry compressed implausibly well.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile:
        return "not a zip archive as torch.save writes"
    except (OSError, ValueError, EOFError) as error:
        return f"cannot read its zip directory: {error}"
    if len(entries) > MAX_ENTRIES:
        raise SizeLimitError(f"{path}: the archive holds {len(entries):,} entries; a model or "
                             f"checkpoint holds at most {MAX_ENTRIES:,}")
    for entry in entries:
        if entry.file_size > RATIO_CHECKED_ABOVE and \
                entry.file_size > MAX_COMPRESSION_RATIO * max(entry.compress_size, 1):
            raise SizeLimitError(
                f"{path}: entry {entry.filename!r} would expand from {entry.compress_size:,} "
                f"to {entry.file_size:,} bytes, more than {MAX_COMPRESSION_RATIO}x (a "
                f"compression bomb, not a file torch.save writes)")
    total = sum(entry.file_size for entry in entries)
    problem = memory_problem(f"unpacking its {len(entries):,} entries", total, limits)
    if problem is not None:
        raise SizeLimitError(f"{path}: {problem}")
    return None
