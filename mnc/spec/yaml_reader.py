"""Safe YAML reading that remembers where every value was written.

PyYAML's composer builds a node tree; we turn it into plain Python ourselves so that we can
refuse anything a spec never needs (tags other than the core schema, duplicate keys, deep
nesting, alias expansion beyond a budget) and record the line and column of every field path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mnc.errors import Location, SpecError
from mnc.io.textfile import TextFileError, check_regular_file, read_bounded_text

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000  # counted after alias expansion: a "billion laughs" file stops here
MAX_DEPTH = 64
CORE_TAGS = {
    "tag:yaml.org,2002:" + name for name in ("null", "bool", "int", "float", "str", "map", "seq")
}

FieldPath = tuple[str | int, ...]


@dataclass
class ReadDocument:
    """Plain data of one YAML file and the location of every field path in it."""

    data: Any
    locations: dict[FieldPath, Location] = field(default_factory=dict)
    size_bytes: int = 0
    """Bytes of UTF-8 text read (``extends`` resolution counts them)."""


def format_field_path(path: FieldPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, str) and not part.isprintable():
            part = part.encode("unicode_escape").decode("ascii")
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = str(part)
    return text


def _problem(file: Path, message: str, mark: Any = None, path: FieldPath = ()) -> SpecError:
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    return SpecError.single(file, message, format_field_path(path), line=line, column=column)


def read_yaml(
    file: Path,
    what: str = "spec",
    max_bytes: int = MAX_FILE_BYTES,
    regular_only: bool = False,
    allow_empty: bool = False,
) -> ReadDocument:
    """Read one YAML file safely; raise SpecError naming file, line and column on any problem.

    At most ``max_bytes`` are read whatever the file is (``-`` is standard input);
    ``regular_only`` refuses devices and FIFOs before opening them (files the user did not
    name directly, such as the bases of ``extends``). ``what`` names the kind of file in
    messages ("spec", "training config"); ``allow_empty`` reads an empty file as ``{}``.
    """
    text = _read_text(file, what, max_bytes, regular_only)
    nodes = _compose(file, text)
    if (not nodes or nodes[0] is None) and allow_empty:
        return ReadDocument({}, {}, len(text.encode("utf-8")))
    if not nodes or nodes[0] is None:
        raise SpecError.single(file, f"file is empty; expected a mapping of {what} fields")
    if len(nodes) > 1:
        raise SpecError.single(file, "holds several YAML documents; expected exactly one")
    converter = _Converter(file, what)
    data = converter.convert(nodes[0], ())
    if not isinstance(data, dict):
        raise _problem(
            file, f"expected a mapping of {what} fields at the top level", nodes[0].start_mark
        )
    return ReadDocument(data, converter.locations, len(text.encode("utf-8")))


def _read_text(file: Path, what: str, max_bytes: int, regular_only: bool) -> str:
    try:
        if regular_only:
            check_regular_file(file, f"YAML {what} file")
        return read_bounded_text(file, max_bytes, f"YAML {what} file")
    except TextFileError as error:
        raise SpecError.single(error.path, error.reason) from None


def _compose(file: Path, text: str) -> list[yaml.Node | None]:
    """The node tree of every document in ``text``; a SpecError with the place on malformed
    YAML."""
    try:
        return list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        reason = error.problem or error.context or "malformed YAML"
        raise _problem(file, f"malformed YAML: {reason}", mark) from None
    except yaml.YAMLError as error:
        raise SpecError.single(file, f"malformed YAML: {error}") from None
    except RecursionError:
        raise SpecError.single(file, f"YAML nested too deeply (limit {MAX_DEPTH})") from None


_PLAIN_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_BOOLEAN_WORDS = ("true", "false")


def _yaml11_surprise(node: yaml.ScalarNode) -> str | None:
    """Why a plain scalar reads as something other than it looks under YAML 1.1, or None:
    ``010`` is octal 8, ``1:30`` base-60 90, ``yes``/``on`` true, ``1_000`` 1000."""
    value, tag = node.value, node.tag
    shown = value if len(value) <= 40 else value[:37] + "..."
    if tag == "tag:yaml.org,2002:int" and not _PLAIN_INT.fullmatch(value):
        if ":" in value:
            kind = "a base-60 (sexagesimal) number"
        elif re.fullmatch(r"[-+]?0[0-7_]+|[-+]?0o[0-7_]+", value):
            kind = "an octal number"
        else:
            kind = "a number in another notation"
        return (f"{shown!r} is read by YAML 1.1 as {kind} "
                f"({_read_as(node)}); write the number in plain decimal digits "
                "(or quote it if it is text)")
    if tag == "tag:yaml.org,2002:float" and (":" in value or "_" in value):
        return (f"{shown!r} is read by YAML 1.1 as a base-60 or grouped number "
                f"({_read_as(node)}); write the number in plain decimal digits (or quote "
                "it if it is text)")
    if tag == "tag:yaml.org,2002:bool" and value.lower() not in _BOOLEAN_WORDS:
        return (f"{shown!r} is read by YAML 1.1 as a boolean; write true or false (or quote "
                "it if it is text)")
    return None


def _read_as(node: yaml.ScalarNode) -> str:
    """What PyYAML would make of a scalar, for messages."""
    try:
        return repr(yaml.constructor.SafeConstructor().construct_object(node))
    except (yaml.constructor.ConstructorError, ValueError, OverflowError):
        return "unreadable"


class _Converter:
    def __init__(self, file: Path, what: str = "spec"):
        self.file = file
        self.what = what
        self.locations: dict[FieldPath, Location] = {}
        self.node_count = 0
        self.scalars = yaml.constructor.SafeConstructor()

    def _location(self, node: yaml.Node) -> Location:
        return Location(str(self.file), node.start_mark.line + 1, node.start_mark.column + 1)

    def convert(self, node: yaml.Node, path: FieldPath) -> Any:
        self.node_count += 1
        if self.node_count > MAX_NODES:
            raise _problem(
                self.file,
                f"more than {MAX_NODES} values after expanding aliases; "
                "refusing to read (alias bomb?)",
                node.start_mark,
            )
        if len(path) > MAX_DEPTH:
            raise _problem(self.file, f"nested deeper than {MAX_DEPTH} levels", node.start_mark)
        if node.tag not in CORE_TAGS:
            raise _problem(
                self.file,
                f"tag {node.tag!r} is not allowed; a {self.what} holds only "
                "plain mappings, lists, strings, numbers and booleans",
                node.start_mark,
            )
        self.locations.setdefault(path, self._location(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, path + (index,)) for index, item in enumerate(node.value)]
        if isinstance(node, yaml.ScalarNode) and node.style is None:  # quoted: text as written
            surprise = _yaml11_surprise(node)
            if surprise is not None:
                raise _problem(self.file, surprise, node.start_mark, path)
        try:
            return self.scalars.construct_object(node)
        except (yaml.constructor.ConstructorError, ValueError, OverflowError) as error:
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            reason = "the number is too large" if "digits" in str(error) else str(error)[:120]
            raise _problem(
                self.file, f"cannot read value {shown!r}: {reason}", node.start_mark
            ) from None

    def _mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _problem(
                    self.file,
                    "merge keys (<<) are not supported; use `extends:`",
                    key_node.start_mark,
                )
            if not isinstance(key_node, yaml.ScalarNode):
                raise _problem(self.file, "mapping keys must be plain names", key_node.start_mark)
            key = str(key_node.value)
            if key in result:
                raise _problem(
                    self.file,
                    f"duplicate key {key!r} in {format_field_path(path) or 'the top level'}",
                    key_node.start_mark,
                )
            result[key] = self.convert(value_node, path + (key,))
            self.locations[path + (key,)] = self._location(key_node)
        return result
