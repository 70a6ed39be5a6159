"""Load a spec file: safe YAML, ``extends`` resolution, model validation, semantic checks.

Every problem becomes a ``SpecProblem`` naming file, line, column and field path; all
problems of a file are reported together in one ``SpecError``.
"""

from __future__ import annotations

import errno
import os
import stat
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mnc.errors import Location, SpecError, SpecProblem
from mnc.io.textfile import file_kind
from mnc.spec import models
from mnc.spec.merge import merge_patch
from mnc.spec.models import Spec
from mnc.spec.shipped import base_file, spec_file
from mnc.spec.yaml_reader import FieldPath, ReadDocument, format_field_path, read_yaml
from mnc.text import PRINTABLE_TEXT, suggest

MAX_EXTENDS_DEPTH = 16
MAX_EXTENDS_FILES = 64
"""Files merged by one spec's ``extends``, counting a base each time it is listed."""
MAX_EXTENDS_BYTES = 32 * 1024 * 1024
"""YAML text merged by one spec's ``extends``, counted the same way."""


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with where it came from, for messages and provenance."""

    spec: Spec
    path: Path
    files: tuple[Path, ...]
    locations: dict[FieldPath, Location]

    def locate(self, path: FieldPath) -> Location:
        return locate(self.locations, path, self.path)

    def __repr__(self) -> str:
        """The spec's summary and its files; ``locations`` (one per field) stays out."""
        files = ", ".join(str(file) for file in self.files)
        return f"{self.spec!r}\n  from {files} ({len(self.locations)} located fields)"


def locate(locations: dict[FieldPath, Location], path: FieldPath, file: Path) -> Location:
    """Location of the deepest prefix of ``path`` that was written in a file."""
    for end in range(len(path), -1, -1):
        found = locations.get(tuple(path[:end]))
        if found is not None:
            return found
    return Location(str(file))


class _ExtendsResolver:
    """Resolves ``extends`` with bounded total work, however often the bases repeat.

    Each file is parsed once (cached by its real path); every time a file is merged it counts
    against ``MAX_EXTENDS_FILES`` and its size against ``MAX_EXTENDS_BYTES``, so a diamond of
    bases that lists the same files over and over stops after a fixed amount of work.
    """

    def __init__(self, root: Path):
        self.root = root
        self.documents: dict[str, ReadDocument] = {}
        self.files_merged = 0
        self.bytes_merged = 0

    def read(self, file: Path, is_base: bool) -> ReadDocument:
        key = os.path.realpath(file)
        if key not in self.documents:
            self.documents[key] = read_yaml(file, regular_only=is_base)
        document = self.documents[key]
        self.files_merged += 1
        self.bytes_merged += document.size_bytes
        if self.files_merged > MAX_EXTENDS_FILES or self.bytes_merged > MAX_EXTENDS_BYTES:
            raise SpecError.single(
                self.root,
                f"`extends` pulls in more than {MAX_EXTENDS_FILES} files in total or more "
                f"than {MAX_EXTENDS_BYTES // 2**20} MiB of YAML (a base counts each time it is "
                f"listed; stopped at {file})",
                "extends",
            )
        return document

    def resolve(
        self, file: Path, chain: tuple[str, ...]
    ) -> tuple[dict[str, Any], dict[FieldPath, Location], tuple[Path, ...]]:
        if len(chain) > MAX_EXTENDS_DEPTH:
            raise SpecError.single(file, f"`extends` chain deeper than {MAX_EXTENDS_DEPTH} files")
        document = self.read(file, is_base=bool(chain))
        data = document.data
        extends = data.get("extends")
        if extends is None:
            return data, document.locations, (file,)
        bases = [extends] if isinstance(extends, str) else extends
        if not isinstance(bases, list) or not all(isinstance(base, str) for base in bases):
            where = document.locations.get(("extends",))
            raise SpecError(
                [
                    SpecProblem(
                        where or Location(str(file)),
                        "extends",
                        "expected a file name or a list of file names",
                    )
                ]
            )
        merged: dict[str, Any] = {}
        locations: dict[FieldPath, Location] = {}
        files: tuple[Path, ...] = ()
        own_key = os.path.realpath(file)
        for index, base in enumerate(bases):
            where = document.locations.get(
                ("extends",) if isinstance(extends, str) else ("extends", index)
            ) or Location(str(file))
            given = base_file(file, base, where)
            base_path = Path(os.path.realpath(given))
            if str(base_path) in chain or str(base_path) == own_key:
                raise SpecError(
                    [
                        SpecProblem(
                            where,
                            "extends",
                            f"{base!r} extends itself (cycle through {base_path.name})",
                        )
                    ]
                )
            _check_base(base, given, base_path, where)
            base_data, base_locations, base_files = self.resolve(base_path, chain + (own_key,))
            merged = merge_patch(merged, base_data)
            locations.update(base_locations)
            files += base_files
        own = {key: value for key, value in data.items() if key != "extends"}
        merged = merge_patch(merged, own)
        locations.update(document.locations)
        merged.pop("extends", None)
        return merged, locations, files + (file,)


def _check_base(base: str, given: Path, base_path: Path, where: Location) -> None:
    """A base must be a regular file; devices and FIFOs are named, never opened (they hang)."""
    reason = ""
    try:
        mode = os.stat(given).st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            reason = "is a loop of symbolic links (too many levels of symbolic links)"
        elif error.errno in (errno.ENOENT, errno.ENOTDIR):
            reason = "not found"
        else:
            reason = f"cannot be read ({error.strerror})"
    else:
        if not stat.S_ISREG(mode):
            reason = f"is {file_kind(mode)}"
    if reason:
        raise SpecError(
            [
                SpecProblem(
                    where,
                    "extends",
                    f"base spec {base!r} {reason} (looked for {base_path}); expected a "
                    "YAML spec file",
                )
            ]
        )


def read_merged(
    path: str | Path,
) -> tuple[dict[str, Any], dict[FieldPath, Location], tuple[Path, ...]]:
    """The raw merged data of a spec and its bases, before validation."""
    file = spec_file(path)
    return _ExtendsResolver(file).resolve(file, ())


_EXPECTATIONS = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field",
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "finite_number": "expected a finite number (not inf or nan)",
    "string_type": "expected text",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "dict_type": "expected a mapping",
    "list_type": "expected a list",
    "literal_error": "expected one of the allowed values",
}


def _pydantic_problems(
    error: ValidationError, locations: dict[FieldPath, Location], file: Path, data: dict[str, Any]
) -> list[SpecProblem]:
    problems = []
    every = error.errors(include_url=False)
    items = [item for item in every if not _other_branch(item["loc"], data)] or every
    paths = [_clean_loc(item["loc"]) for item in items]
    alternatives = _mapping_alternatives(every, data)
    for item, path in zip(items, paths, strict=True):
        deeper = any(len(other) > len(path) and other[: len(path)] == path for other in paths)
        if deeper and isinstance(item.get("input"), dict | list):
            continue  # the other branch of a union (count or table) explains it better
        message = _problem_message(item, path) + alternatives.get(path, "")
        problems.append(
            SpecProblem(locate(locations, path, file), format_field_path(path), message)
        )
    return problems


def _mapping_alternatives(errors: list[Any], data: dict[str, Any]) -> dict[FieldPath, str]:
    """Where a mapping would also have been accepted in place of the text written: which."""
    return {
        _clean_loc(item["loc"][: index]): f" (or a mapping with {', '.join(model.model_fields)})"
        for item in errors if _other_branch(item["loc"], data)
        for index, part in enumerate(item["loc"])
        if isinstance(part, str) and (model := getattr(models, part, None)) is not None
        and isinstance(model, type) and issubclass(model, BaseModel)
    }


_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}
_PYDANTIC_WORDING = {"literal_error", "too_short", "too_long", "string_too_short",
                     "string_too_long"}


def _problem_message(item: Any, path: FieldPath) -> str:
    """What was expected at ``path``, and what was written, for one pydantic error."""
    kind = item["type"]
    message = _EXPECTATIONS.get(kind)
    if kind in _BOUNDS:
        limit = next(iter(item.get("ctx", {}).values()), "")
        message = f"expected a number {_BOUNDS[kind]} {limit}"
    elif kind == "string_pattern_mismatch":
        message = _pattern_expectation(item)
    elif kind in _PYDANTIC_WORDING:
        message = item["msg"][0].lower() + item["msg"][1:]
    if message is None:
        message = item["msg"]
    if kind == "extra_forbidden":
        parent_fields = _allowed_fields(path[:-1])
        message = f"unknown field {path[-1]!r}{suggest(str(path[-1]), parent_fields)}"
        if parent_fields:
            message += f"; allowed: {', '.join(sorted(parent_fields))}"
    elif kind not in {"missing"} and "input" in item:
        message += f", got {_show(item['input'])}"
    return message


def _pattern_expectation(item: Any) -> str:
    if (item.get("ctx") or {}).get("pattern") == PRINTABLE_TEXT:
        return "expected printable text (no control characters or bidirectional overrides)"
    return ("expected a name of letters, digits, '/', '_' or '-' (at most 64 characters)"
            + (", as SOURCE->TARGET" if "->" in str(item["ctx"]) else ""))


def _other_branch(loc: tuple[Any, ...], data: Any) -> bool:
    """True for the error of a union branch that does not match the kind of value written:
    text written where text or a mapping is allowed is reported against the text branch, a
    mapping against the mapping branch (one message, not one per branch)."""
    value = data
    for part in loc:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        elif _is_union_branch(part):
            mapping_branch = part in _MODEL_NAMES or part.startswith(("dict[", "list["))
            return mapping_branch != isinstance(value, dict)
        else:
            return False
    return False


_MODEL_NAMES = frozenset(name for name, value in vars(models).items()
                         if isinstance(value, type) and issubclass(value, BaseModel))
_SCALAR_LABELS = frozenset({"int", "float", "str", "constrained-int", "constrained-str"})


def _is_union_branch(part: object) -> bool:
    """pydantic names the branch of a union in an error's location: 'constrained-str',
    'literal[...]', 'dict[...]', a model's class name."""
    return isinstance(part, str) and (
        part in _SCALAR_LABELS or part in _MODEL_NAMES
        or part.startswith(("dict[", "list[", "literal[")))


def _is_branch_label(part: object) -> bool:
    """Parts of an error's location that name no field: union branches, '[key]'."""
    return _is_union_branch(part) or (isinstance(part, str) and "[" in part)


def _clean_loc(loc: tuple[Any, ...]) -> FieldPath:
    # pydantic adds union-branch labels such as 'int' or 'dict[...]' to locations; drop them.
    cleaned: list[str | int] = []
    for part in loc:
        if _is_branch_label(part):
            continue
        cleaned.append(part)
    return tuple(cleaned)


def _allowed_fields(path: FieldPath) -> list[str]:
    model: Any = Spec
    for part in path:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The spec model an annotation holds: itself, or inside a list or a union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _show(value: Any) -> str:
    text = repr(value)  # repr escapes control characters, so messages stay one clean line
    return text if len(text) <= 60 else text[:57] + "..."


def load_spec(path: str | Path) -> LoadedSpec:
    """Read, merge and validate a spec; raise SpecError listing every problem found."""
    file = spec_file(path)
    data, locations, files = read_merged(file)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as error:
        raise SpecError(_pydantic_problems(error, locations, file, data)) from None
    loaded = LoadedSpec(spec, file, files, locations)
    from mnc.spec.semantics import check_semantics

    problems = check_semantics(loaded)
    if problems:
        raise SpecError(problems)
    return loaded
