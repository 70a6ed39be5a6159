"""The tables of an Allen Brain Observatory cache folder, read as plain JSON.

Layout of a cache folder (as allensdk's ``BrainObservatoryCache`` writes it)::

    manifest.json                      optional; where the files below live
    experiment_containers.json         list of container records
    ophys_experiments.json             list of session (experiment) records
    ophys_experiment_data/<id>.nwb     one session file (see boc_session.py)
    ophys_experiment_events/<id>_events.npz   optional: the session's detected events
                                              (see boc_events.py)

``manifest.json`` holds ``{"manifest": [{"key", "type", "spec", "parent_key"?}, ...]}``
(entries whose type is neither ``dir`` nor ``file`` are skipped); the keys
``EXPERIMENT_CONTAINERS``, ``EXPERIMENTS``, ``EXPERIMENT_DATA`` and ``EVENTS_DATA`` (paths with
``%d`` for the session id) are used, each ``spec`` relative to its parent's path and the root
relative to the manifest's folder. Without a manifest the default names above apply.

Fields read from each record: ``id``, ``imaging_depth``, ``targeted_structure.acronym``,
``specimen.donor.transgenic_lines[].name`` and ``.transgenic_line_type_name`` (the Cre line
is the first ``driver`` line whose name holds ``Cre``), ``failed`` (optional, default false);
sessions also ``experiment_container_id``, ``stimulus_name`` and
``experiment_container.failed`` (optional). A session is left out where it or its container
failed. Anything malformed raises ``UserFileError`` naming the file, the record and the
field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnc.errors import UserFileError
from mnc.io.textfile import read_bounded_text
from mnc.text import shown, unsafe_character

MANIFEST_NAME = "manifest.json"
CONTAINERS_KEY = "EXPERIMENT_CONTAINERS"
EXPERIMENTS_KEY = "EXPERIMENTS"
SESSION_FILE_KEY = "EXPERIMENT_DATA"
EVENTS_FILE_KEY = "EVENTS_DATA"
DEFAULT_PATHS = {CONTAINERS_KEY: "experiment_containers.json",
                 EXPERIMENTS_KEY: "ophys_experiments.json",
                 SESSION_FILE_KEY: "ophys_experiment_data/%d.nwb",
                 EVENTS_FILE_KEY: "ophys_experiment_events/%d_events.npz"}
NATURAL_SCENES_SESSION_TYPES = frozenset({"three_session_B"})
"""Session types that show the natural scenes (the Brain Observatory's session B)."""
MAX_TABLE_BYTES = 512 * 2**20
"""Largest JSON table read (the full survey's tables are a few MB)."""


@dataclass(frozen=True)
class CacheLayout:
    """Where the tables and session files of one cache folder live."""

    folder: Path
    containers: Path
    experiments: Path
    session_pattern: str
    """Session file path with ``%d`` standing for the session id."""
    events_pattern: str = str(Path(DEFAULT_PATHS[EVENTS_FILE_KEY]))
    """Events file path with ``%d`` standing for the session id."""

    def session_file(self, experiment_id: int) -> Path:
        return Path(self.session_pattern.replace("%d", str(int(experiment_id))))

    def events_file(self, experiment_id: int) -> Path:
        """Where the session's detected events would be (the file is often absent)."""
        return Path(self.events_pattern.replace("%d", str(int(experiment_id))))


@dataclass(frozen=True)
class Container:
    """One experiment container: a field of view imaged in up to three sessions."""

    id: int
    area: str
    cre_line: str | None
    depth_um: int
    failed: bool


@dataclass(frozen=True)
class Experiment:
    """One imaging session."""

    id: int
    container_id: int
    area: str
    cre_line: str | None
    depth_um: int
    session_type: str
    failed: bool
    """True where the session or its container failed quality control."""


def cache_layout(cache_dir: str | Path) -> CacheLayout:
    """Paths of the tables and session files, from ``manifest.json`` where present."""
    folder = Path(cache_dir).expanduser()
    manifest = folder / MANIFEST_NAME
    paths = {key: str(folder / spec) for key, spec in DEFAULT_PATHS.items()}
    if manifest.is_file():
        paths.update(_manifest_paths(manifest, set(DEFAULT_PATHS)))
    return CacheLayout(folder=folder, containers=Path(paths[CONTAINERS_KEY]),
                       experiments=Path(paths[EXPERIMENTS_KEY]),
                       session_pattern=paths[SESSION_FILE_KEY],
                       events_pattern=paths[EVENTS_FILE_KEY])


def _manifest_paths(manifest: Path, wanted: set[str]) -> dict[str, str]:
    document = _read_json(manifest)
    entries = document.get("manifest") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise UserFileError(f"{manifest}: manifest: expected an object with a 'manifest' list "
                            "of path entries")
    specs: dict[str, tuple[str, str | None]] = {}
    for index, entry in enumerate(entries):
        place = f"{manifest}: manifest[{index}]"
        if not isinstance(entry, dict):
            raise UserFileError(f"{place}: expected an object with key and spec")
        if entry.get("type") not in ("dir", "file"):
            continue  # e.g. the manifest_version entry
        key, spec, parent = entry.get("key"), entry.get("spec"), entry.get("parent_key")
        if not isinstance(key, str) or not isinstance(spec, str) or \
                not isinstance(parent, str | None):
            raise UserFileError(f"{place}: expected text fields key, spec (and parent_key)")
        specs[key] = (spec, parent)

    def resolve(key: str, seen: tuple[str, ...]) -> str:
        if key in seen:
            raise UserFileError(f"{manifest}: manifest: parent_key cycle "
                                f"{' -> '.join((*seen, key))}")
        if key not in specs:
            raise UserFileError(f"{manifest}: manifest: no entry with key {key!r}")
        spec, parent = specs[key]
        base = resolve(parent, (*seen, key)) if parent else str(manifest.parent)
        return str(Path(base) / spec)

    return {key: resolve(key, ()) for key in wanted if key in specs}


def read_containers(path: Path) -> list[Container]:
    return [Container(id=_integer(record, "id", place), area=_area(record, place),
                      cre_line=_cre_line(record, place),
                      depth_um=_integer(record, "imaging_depth", place),
                      failed=_flag(record, "failed", place))
            for record, place in _records(path)]


def read_experiments(path: Path) -> list[Experiment]:
    experiments = []
    for record, place in _records(path):
        container = record.get("experiment_container", {})
        if not isinstance(container, dict):
            raise UserFileError(f"{place}: field 'experiment_container': expected an object, "
                                f"got {type(container).__name__}")
        stimulus = _field(record, "stimulus_name", place, str | None)
        experiments.append(Experiment(
            id=_integer(record, "id", place),
            container_id=_integer(record, "experiment_container_id", place),
            area=_area(record, place), cre_line=_cre_line(record, place),
            depth_um=_integer(record, "imaging_depth", place),
            session_type=stimulus or "",
            failed=_flag(record, "failed", place)
            or _flag(container, "failed", f"{place}.experiment_container")))
    return experiments


def natural_scenes_experiments(layout: CacheLayout, areas: Sequence[str] | None = None,
                               cre_lines: Sequence[str] | None = None,
                               depths_um: Sequence[int] | None = None) -> list[Experiment]:
    """Sessions showing natural scenes in passing containers that match every given filter,
    sorted by area, Cre line and id. Cre lines compare without regard to case."""
    wanted_lines = None if cre_lines is None else {line.lower() for line in cre_lines}
    chosen = {c.id for c in read_containers(layout.containers)
              if _container_matches(c, areas, wanted_lines, depths_um)}
    experiments = [e for e in read_experiments(layout.experiments)
                   if e.container_id in chosen and not e.failed
                   and e.session_type in NATURAL_SCENES_SESSION_TYPES]
    return sorted(experiments, key=lambda e: (e.area, str(e.cre_line), e.id))


def _container_matches(container: Container, areas: Sequence[str] | None,
                       cre_lines: set[str] | None, depths_um: Sequence[int] | None) -> bool:
    """A passing container in every given filter (``cre_lines`` in lower case; None: any)."""
    return (not container.failed
            and (areas is None or container.area in areas)
            and (cre_lines is None or (container.cre_line or "").lower() in cre_lines)
            and (depths_um is None or container.depth_um in depths_um))


# ---------------------------------------------------------------------------- fields

def _read_json(path: Path) -> Any:
    text = read_bounded_text(path, MAX_TABLE_BYTES, "Brain Observatory table (JSON)")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as error:
        if not isinstance(error, json.JSONDecodeError):
            raise UserFileError(f"{path}: {error}") from None
        raise UserFileError(f"{path}:{error.lineno}:{error.colno}: not valid JSON "
                            f"({error.msg})") from None
    except RecursionError:
        raise UserFileError(f"{path}: JSON nested too deeply") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"holds {name}, which is not JSON; expected finite numbers")


def _records(path: Path) -> list[tuple[dict[str, Any], str]]:
    if not path.is_file():
        raise UserFileError(f"{path}: Brain Observatory table not found")
    document = _read_json(path)
    if not isinstance(document, list):
        raise UserFileError(f"{path}: expected a JSON list of records, got "
                            f"{type(document).__name__}")
    records = []
    for index, record in enumerate(document):
        place = f"{path}: record {index}"
        if not isinstance(record, dict):
            raise UserFileError(f"{place}: expected an object, got {type(record).__name__}")
        records.append((record, place))
    return records


def _field(record: dict[str, Any], name: str, place: str, kind: Any) -> Any:
    if name not in record:
        raise UserFileError(f"{place}: missing field {name!r}")
    value = record[name]
    if not isinstance(value, kind):
        raise UserFileError(f"{place}: field {name!r}: expected {_kind_name(kind)}, got "
                            f"{type(value).__name__} {shown(repr(value))[:60]}")
    if isinstance(value, str) and unsafe_character(value) is not None:
        raise UserFileError(f"{place}: field {name!r}: {shown(value)[:80]!r} holds control "
                            "or bidirectional characters; expected plain text")
    return value


def _kind_name(kind: Any) -> str:
    names = {dict: "an object", str: "text", list: "a list", bool: "true or false"}
    return names.get(kind, "text or null" if kind == str | None else str(kind))


def _integer(record: dict[str, Any], name: str, place: str) -> int:
    value = _field(record, name, place, int | float)
    if isinstance(value, bool) or not math.isfinite(value) or value != int(value):
        raise UserFileError(f"{place}: field {name!r}: expected an integer, got {value!r}")
    return int(value)


def _flag(record: dict[str, Any], name: str, place: str) -> bool:
    """An optional true/false field (absent: false)."""
    if name not in record:
        return False
    return bool(_field(record, name, place, bool))


def _area(record: dict[str, Any], place: str) -> str:
    structure = _field(record, "targeted_structure", place, dict)
    return str(_field(structure, "acronym", f"{place}.targeted_structure", str))


def _cre_line(record: dict[str, Any], place: str) -> str | None:
    specimen = _field(record, "specimen", place, dict)
    donor = _field(specimen, "donor", f"{place}.specimen", dict)
    lines = _field(donor, "transgenic_lines", f"{place}.specimen.donor", list)
    for index, line in enumerate(lines):
        where = f"{place}.specimen.donor.transgenic_lines[{index}]"
        if not isinstance(line, dict):
            raise UserFileError(f"{where}: expected an object with name and "
                                "transgenic_line_type_name")
        name = _field(line, "name", where, str)
        kind = _field(line, "transgenic_line_type_name", where, str | None)
        if kind == "driver" and "Cre" in name:
            return str(name)
    return None
