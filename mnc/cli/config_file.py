"""``--config FILE.yaml`` for commands whose options are argparse flags (``mnc rsa``,
``mnc physiology``).

The file's keys are the flags' names with ``_`` (``cre_lines: [Cux2-CreERT2]``); each value
goes through the flag's own type and choices, so a file accepts exactly what the command line
does. The values become the parser's defaults before it parses, so flags given on the command
line override the file (a list flag given there replaces the file's list). ``mnc train`` keeps
its own config model, whose fields are validated by pydantic with the recipe's defaults.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mnc.errors import Location, MncError, SpecError, SpecProblem, UserFileError

CONFIG_FLAG = "--config"
MAX_CONFIG_BYTES = 1024 * 1024
_NOT_OPTIONS = ("help", "version", "config", "verbose")


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        CONFIG_FLAG,
        metavar="YAML",
        help="options file: its keys are the flags' names with _ (e.g. "
        "cre_lines: [Cux2-CreERT2], skip_missing: true); flags given on "
        "the command line override it; - reads standard input",
    )


def config_path(argv: list[str]) -> str | None:
    """The file ``--config`` names in ``argv`` (also ``--config=FILE`` and ``--conf FILE``);
    the last one if given twice, as argparse keeps."""
    found = None
    for index, token in enumerate(argv):
        if token == "--":
            break
        name, equals, value = token.partition("=")
        if len(name) >= 5 and CONFIG_FLAG.startswith(name):
            found = value if equals else (argv[index + 1] if index + 1 < len(argv) else None)
    if found is not None and found.startswith("-") and found != "-":
        return None  # a flag where the file should be: argparse says what is missing
    return found


def apply_config_file(parser: argparse.ArgumentParser, argv: list[str], command: str) -> None:
    """Read the ``--config`` file ``argv`` names (if any) into ``parser``'s defaults; a bad
    file ends the command with one message and exit status 2."""
    from mnc.text import shown_message

    path = config_path(argv)
    if path is None:
        return
    try:
        values = read_config(parser, path)
    except MncError as error:
        parser.exit(2, f"mnc {command}: error: {shown_message(str(error))}\n")
    install_defaults(parser, values)


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {
        action.dest: action
        for action in parser._actions
        if action.dest not in _NOT_OPTIONS and action.default is not argparse.SUPPRESS
    }


def read_config(parser: argparse.ArgumentParser, path: str) -> dict[str, Any]:
    """The options a YAML file sets, as argparse destinations and converted values."""
    from mnc.spec.yaml_reader import read_yaml

    file = Path(path)
    try:
        document = read_yaml(file, "options", MAX_CONFIG_BYTES, allow_empty=True)
    except SpecError as error:
        raise UserFileError("\n".join(str(problem) for problem in error.problems)) from None
    options = _options(parser)
    values: dict[str, Any] = {}
    for key, value in document.data.items():
        location = document.locations.get((key,), Location(str(file)))

        def problem(message: str, key: str = key, location: Location = location) -> UserFileError:
            return UserFileError(str(SpecProblem(location, key, message)))

        action = options.get(key)
        if action is None:
            raise problem("unknown option; expected one of: " + ", ".join(options))
        if value is None:  # written but empty: the flag's default
            continue
        try:
            values[key] = _convert(action, value)
        except (argparse.ArgumentTypeError, ValueError, TypeError) as error:
            raise problem(str(error)) from None
    for group in parser._mutually_exclusive_groups:
        given = sorted(
            (document.locations[(action.dest,)].line or 0, action.dest)
            for action in group._group_actions
            if action.dest in values
        )
        if len(given) > 1:  # named where the second one is written
            (_, first), (_, second) = given[:2]
            raise UserFileError(
                str(
                    SpecProblem(
                        document.locations[(second,)], second, f"give {first} or {second}, not both"
                    )
                )
            )
    return values


def _convert(action: argparse.Action, value: Any) -> Any:
    if action.nargs == 0:  # store_true, store_false, --flag/--no-flag: the value itself
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {value!r}")
        return value
    gathers = isinstance(action, argparse._AppendAction | argparse._ExtendAction)
    if not gathers and action.nargs in (None, "?"):
        return _one(action, value)
    items = value if isinstance(value, list) else [value]
    if isinstance(action, argparse._ExtendAction):
        result: list[Any] = []
        for item in items:
            converted = _one(action, item)
            result.extend(converted if isinstance(converted, list) else [converted])
        return result
    result = [_one(action, item) for item in items]
    if isinstance(action.nargs, int) and len(result) != action.nargs:
        raise ValueError(f"expected a list of {action.nargs} values, got {len(result)}")
    return result


def _one(action: argparse.Action, item: Any) -> Any:
    if isinstance(item, dict | list) or isinstance(item, bool):
        raise TypeError(
            f"expected {'text' if action.type is None else 'a value'}, got "
            f"{'a mapping' if isinstance(item, dict) else repr(item)}"
        )
    if action.type is None:
        if not isinstance(item, str):
            raise TypeError(f"expected text, got {item!r} (quote it if it is text)")
        converted: Any = item
    else:
        try:
            converted = action.type(str(item))  # type: ignore[operator]
        except ValueError:
            kind = getattr(action.type, "__name__", "value")
            raise ValueError(
                f"expected {'an' if kind == 'int' else 'a'} {kind}, got {item!r}"
            ) from None
    if action.choices is not None and converted not in action.choices:
        raise ValueError(f"expected one of {', '.join(map(str, action.choices))}, got {item!r}")
    return converted


class _ReplacesFileValue(argparse.Action):
    """Mixed into an action the file set: given on the command line, it replaces the file's
    value (a list is not extended) and clears the file's value of flags it excludes."""

    excludes: tuple[argparse.Action, ...] = ()

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, self.dest, None) is self.default:
            setattr(namespace, self.dest, None)
        for other in self.excludes:
            if other.default is not None and getattr(namespace, other.dest, None) is other.default:
                setattr(namespace, other.dest, None)
        super().__call__(parser, namespace, values, option_string)  # type: ignore[misc]


def install_defaults(parser: argparse.ArgumentParser, values: dict[str, Any]) -> None:
    """The file's values as defaults: what the file gives is no longer required, and the
    command line's flags (and the flags they exclude) replace the file's values."""
    parser.set_defaults(**values)
    excludes: dict[str, list[argparse.Action]] = {}
    for group in parser._mutually_exclusive_groups:
        members = group._group_actions
        if any(action.dest in values for action in members):
            group.required = False
        for action in members:
            excludes.setdefault(action.dest, []).extend(
                other for other in members if other is not action and other.dest in values
            )
    for action in parser._actions:
        if action.dest in values or excludes.get(action.dest):
            if action.dest in values:
                action.required = False
            original = type(action)
            action.__class__ = type(original.__name__, (_ReplacesFileValue, original), {})
            action.excludes = tuple(excludes.get(action.dest, ()))  # type: ignore[attr-defined]
