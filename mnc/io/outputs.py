"""An output never lands on one of the command's own inputs.

``mnc compile spec.yaml --emit ir -o spec.yaml`` would replace the spec with its IR, and
``mnc predict model.onnx ... -o model.onnx`` the model with predictions. The same file is
recognised through links and different spellings of its path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from mnc.errors import UsageError


def same_file(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> bool:
    """True if both paths name one file (hard or symbolic links included)."""
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return os.path.realpath(first) == os.path.realpath(second)


def refuse_output_over_inputs(
    output: str | os.PathLike[str] | None,
    inputs: Iterable[str | os.PathLike[str] | None],
    flag: str = "-o",
) -> None:
    """UsageError if ``output`` is the same file as any of ``inputs``."""
    if output is None:
        return
    for given in inputs:
        if given is not None and str(given) and same_file(output, given):
            raise UsageError(
                f"{flag} {output}: is also an input of this command ({Path(given)}); writing "
                f"it would destroy the input; choose another file"
            )


def output_file(text: str) -> Path:
    """argparse type of ``-o FILE``: a non-empty path."""
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file name, got an empty string")
    return Path(text)
