"""A backend's typed options (its pydantic ``options_model``) as flags of ``mnc compile``.

Field ``merge_convolutions`` becomes ``--merge-convolutions`` unless the field names its flag
(``json_schema_extra={"flag": "merge-convs"}``; ``"flag": None`` keeps a field off the command
line). Booleans get ``--x/--no-x``, ``Literal`` fields a choice, numbers and text their type;
``"flag_type": "path"`` passes a file path to the model, which reads it. Only flags given on
the command line reach the model, so its defaults stay the defaults.
"""

from __future__ import annotations

import argparse
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from mnc.backend import describe_option_error
from mnc.errors import UsageError

DEST_PREFIX = "backend_option"


def dest(backend: str, field: str) -> str:
    return f"{DEST_PREFIX}:{backend}:{field}"


def flag(name: str, info: FieldInfo) -> str | None:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    spelled = extra.get("flag", name.replace("_", "-"))
    return f"--{spelled}" if isinstance(spelled, str) else None


def add_backend_flags(
    parser: argparse.ArgumentParser, backend: str, model: type[BaseModel]
) -> list[str]:
    """Add a flag per field of ``model`` to ``parser``; returns the flags added (a flag the
    parser already has, from the core or another backend, is left to its first owner)."""
    group = parser.add_argument_group(f"options of the {backend} backend")
    taken = {text for action in parser._actions for text in action.option_strings}
    added = []
    for name, info in model.model_fields.items():
        option = flag(name, info)
        if option is None or option in taken:
            continue
        group.add_argument(option, dest=dest(backend, name), default=argparse.SUPPRESS,
                           help=_help(info), **_kind(name, info))
        added.append(option)
    return added


def given_options(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    """The options of ``backend`` given on the command line, by field name."""
    prefix = dest(backend, "")
    return {key[len(prefix):]: value for key, value in vars(args).items()
            if key.startswith(prefix)}


def foreign_options(args: argparse.Namespace, backend: str) -> list[tuple[str, str]]:
    """(flag owner, field) of every option given that belongs to another backend."""
    found = []
    for key in vars(args):
        if key.startswith(f"{DEST_PREFIX}:") and not key.startswith(dest(backend, "")):
            _, owner, field = key.split(":", 2)
            found.append((owner, field))
    return found


def validate(model: type[BaseModel], values: dict[str, Any], backend: str) -> BaseModel:
    """The typed options; a bad value is one UsageError that names its flag."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        def spell(field: str) -> str:
            return flag(field, model.model_fields[field]) or field

        raise UsageError(describe_option_error(error, model, backend, spell)) from None


def _kind(name: str, info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if extra.get("flag_type") == "path":
        return {"type": Path, "metavar": extra.get("metavar", "FILE")}
    kinds = _plain_types(info.annotation)
    if kinds == [bool]:
        return {"action": argparse.BooleanOptionalAction}
    if len(kinds) == 1 and typing.get_origin(kinds[0]) is Literal:
        return {"choices": [str(choice) for choice in typing.get_args(kinds[0])]}
    metavar = extra.get("metavar")
    metavar = metavar if isinstance(metavar, str) else name.upper()
    if len(kinds) == 1 and kinds[0] in (int, float, str, Path):
        return {"type": kinds[0], "metavar": metavar}
    return {"type": str, "metavar": metavar}  # the model checks and converts what it is given


def _plain_types(annotation: Any) -> list[Any]:
    """The annotation's types without None: ``int | None`` -> [int]."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [kind for kind in typing.get_args(annotation) if kind is not type(None)]
    return [annotation]


def _help(info: FieldInfo) -> str:
    text = " ".join((info.description or "").split())
    if info.default is not None and not isinstance(info.default, bool):
        text += f" (default: {info.default})"
    return text.replace("%", "%%")
