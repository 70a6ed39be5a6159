"""The specs shipped with mnc, and the rule that tells a spec name from a file path.

A spec reference written only with letters, digits, ``-`` and ``_``, starting with a letter or
digit (``mouse``, ``tiny``, ``no-vispor``), names a shipped spec; anything else
(``specs/mouse.yaml``, ``my.yaml``, ``./mouse``, ``-`` for standard input) is a file path.
The rule looks at the text alone, never at the disk, so it means
the same in every folder: a local file named ``mouse`` is read only as ``./mouse``. In Python,
a ``pathlib.Path`` is always a file path.

The specs live in ``specs/`` of the source tree; a wheel installs that same folder as
``mnc/specs`` (see pyproject.toml), so both places are looked at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mnc.errors import Location, SpecError, SpecProblem, UsageError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # "-" alone is standard input
SPEC_SUFFIXES = (".yaml", ".yml")
DEFAULT_NAME = "mouse"


class UnknownSpecName(UsageError):
    """A spec name that no shipped spec has."""


@dataclass(frozen=True)
class ShippedSpec:
    name: str
    path: Path


def shipped_dir() -> Path:
    """The folder of the shipped specs: ``mnc/specs`` in a wheel, ``specs/`` in a checkout."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "specs", package.parent / "specs"):
        if (candidate / f"{DEFAULT_NAME}.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"the shipped specs are missing (looked in {package / 'specs'})")


def shipped_specs() -> dict[str, ShippedSpec]:
    """Every shipped spec by name: the file's stem, the default spec first."""
    folder = shipped_dir()
    files = sorted(
        (path for path in folder.rglob("*") if path.suffix in SPEC_SUFFIXES),
        key=lambda path: (path.stem != DEFAULT_NAME, len(path.relative_to(folder).parts),
                          path.stem),
    )
    found: dict[str, ShippedSpec] = {}
    for path in files:
        found.setdefault(path.stem, ShippedSpec(path.stem, path))
    return found


def is_spec_name(reference: str) -> bool:
    """True for a shipped-spec name (``mouse``), False for a file path (``mouse.yaml``)."""
    return NAME_PATTERN.fullmatch(reference) is not None


def shipped_spec(name: str) -> Path:
    """The file of the shipped spec ``name``; UnknownSpecName lists the names there are."""
    specs = shipped_specs()
    if name in specs:
        return specs[name].path
    from mnc.text import suggest

    raise UnknownSpecName(
        f"no shipped spec is named {name!r}{suggest(name, specs)}; shipped: "
        f"{', '.join(specs)} (`mnc specs` describes them). A file path needs a folder or a "
        f"suffix, e.g. ./{name} or {name}.yaml"
    )


def spec_file(reference: str | Path) -> Path:
    """The file a spec reference stands for: a shipped spec's file, or the path itself."""
    if isinstance(reference, str) and is_spec_name(reference):
        return shipped_spec(reference)
    path = Path(reference)
    stem = path.stem if path.suffix in SPEC_SUFFIXES else path.name
    if stem and not path.exists() and stem in shipped_specs():
        raise SpecError.single(
            path, f"file not found; the shipped spec of that name is written {stem!r}"
        )
    return path


def base_file(spec: Path, base: str, where: Location) -> Path:
    """The file an ``extends`` entry of ``spec`` stands for: a shipped spec, or a path
    relative to ``spec``'s folder."""
    if not is_spec_name(base):
        return spec.parent / base
    try:
        return shipped_spec(base)
    except UnknownSpecName as error:
        raise SpecError([SpecProblem(where, "extends", str(error))]) from None
