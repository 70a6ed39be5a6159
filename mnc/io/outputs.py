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
from mnc.text import shown


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
                f"{flag} {shown(output)}: is also an input of this command "
                f"({shown(Path(given))}); writing it would destroy the input; choose another file"
            )


def output_file(text: str) -> Path:
    """argparse type of ``-o FILE``: a non-empty path."""
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file name, got an empty string")
    return Path(text)


def refuse_output_folder_over_inputs(
    output: str | os.PathLike[str],
    inputs: Iterable[tuple[str, str | os.PathLike[str] | None]],
    may_lie_inside: Iterable[tuple[str, str | os.PathLike[str] | None]] = (),
    flag: str = "-o",
) -> None:
    """UsageError if the output folder is an existing file, or is, holds or lies inside one of
    ``inputs`` (pairs of the option that named it and the path).

    Outputs written next to recordings, a model or a cache could replace them or be read back
    as inputs. ``may_lie_inside`` names folders the output may hold but not be or lie inside
    (a feature cache, which by default is ``OUTPUT/cache``). Inputs that do not exist are left
    to the code that reads them.
    """
    folder = Path(output).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {shown(output)}: is a file; expected a folder for the "
                         f"outputs (tables, figures, summary.json)")
    real_output = Path(os.path.realpath(folder))
    checks = [(name, given, False) for name, given in inputs]
    checks += [(name, given, True) for name, given in may_lie_inside]
    for name, given, may_be_held in checks:
        if given is None or not str(given) or not os.path.lexists(Path(given).expanduser()):
            continue
        real_input = Path(os.path.realpath(Path(given).expanduser()))
        if real_output == real_input:
            relation = "is"
        elif real_output.is_relative_to(real_input):
            relation = "lies inside"
        elif real_input.is_relative_to(real_output) and not may_be_held:
            relation = "holds"
        else:
            continue
        raise UsageError(
            f"{flag} {shown(output)}: the output folder {relation} the input of {name} "
            f"({shown(Path(given))}); outputs would overwrite or mix with it; choose a folder "
            f"apart from the inputs"
        )
