"""Command-line flags from a pydantic options model: the one generator every command uses.

A field becomes a flag: ``merge_convolutions`` -> ``--merge-convolutions`` unless the field
names its flag (``json_schema_extra={"flag": "merge-convs"}``; ``"flag": None`` keeps it off
the command line). Its annotation chooses the flag's form:

- ``bool``: ``--x/--no-x``, or a plain switch ``--x`` with ``"flag_action": "store_true"``;
- ``Literal``: a choice (``"choices"`` narrows them); ``tuple[X, ...]``: a comma-separated
  list, repeatable, whose items are X (or one of its choices); ``tuple[X, X]``: two values;
- ``int``, ``float``, ``str``: their type; with ``bounds_while_parsing``, a lower bound
  (``gt=0``, ``ge=0``, ``ge=N`` for whole numbers) is checked while parsing, so a ``--config``
  file's line is named; other ranges by the model afterwards (``from_flags``);
- ``"flag_type": "path"``: a file path the model reads.

Help is the field's ``"help"`` (extra) or its description; ``"metavar"`` names the value.
``from_flags`` validates what was given; a bad value is one ``UsageError`` naming its flag.
The size guard's ``--max-...`` flags are made the same way from ``mnc.limits.Limits``
(``add_limit_flags``, applied by ``install_flag_limits``).
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from mnc.cli.common import comma_list, positive_number
from mnc.errors import UsageError
from mnc.limits import Limits, install_limits

ArgumentType = Callable[[str], Any]
FIELD_DEFAULT = object()
"""``add_model_flags(default=...)``: each flag defaults to its field's default."""


def _extra(info: FieldInfo) -> dict[str, Any]:
    return info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}


def flag(name: str, info: FieldInfo) -> str | None:
    """The flag of field ``name`` (``--name-with-dashes`` unless the field names its own)."""
    spelled = _extra(info).get("flag", name.replace("_", "-"))
    return f"--{spelled}" if isinstance(spelled, str) else None


def add_model_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                    model: type[BaseModel], fields: Iterable[str] | None = None, *,
                    dest: Callable[[str], str] = str, default: Any = FIELD_DEFAULT,
                    show_default: bool = False, bounds_while_parsing: bool = True,
                    parse_as: Mapping[str, ArgumentType] | None = None,
                    skip: Iterable[str] = ()) -> list[str]:
    """Add a flag per field of ``model`` (``fields``: only these, in this order) to ``parser``.

    ``default``: what a flag not given leaves in the namespace: its field's default, or one
    value for every flag (``argparse.SUPPRESS``: nothing, so the model's default applies
    later; ``None``: "not given", for a file's values underneath); ``parse_as``: argparse
    types by field name, for values the command line spells its own way; ``skip``: flags left
    out (another owner has them). Returns the flags added.
    """
    chosen = model.model_fields if fields is None else {
        name: model.model_fields[name] for name in fields}
    skipped = set(skip)
    added = []
    for name, info in chosen.items():
        option = flag(name, info)
        if option is None or option in skipped:
            continue
        form = _form(name, info, bounds_while_parsing)
        if parse_as and name in parse_as:
            form = {key: value for key, value in form.items() if key != "choices"}
            form["type"] = parse_as[name]
        parser.add_argument(option, dest=dest(name),
                            default=info.default if default is FIELD_DEFAULT else default,
                            help=_help(info, show_default), **form)
        added.append(option)
    return added


def given_values(args: argparse.Namespace, model: type[BaseModel],
                 dest: Callable[[str], str] = str) -> dict[str, Any]:
    """The values of ``model``'s fields in ``args``, by field name."""
    return {name: getattr(args, dest(name)) for name in model.model_fields
            if hasattr(args, dest(name))}


def from_flags(model: type[BaseModel], values: Mapping[str, Any],
               describe: Callable[[ValidationError, Callable[[str], str]], str] | None = None
               ) -> Any:
    """``model`` validated from flag values; a bad value is one UsageError naming its flag
    (``describe``: how a command words it, given the error and a field -> flag speller)."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as error:
        def spell(field: str) -> str:
            info = model.model_fields.get(field)
            return (flag(field, info) if info is not None else None) or field

        if describe is not None:
            raise UsageError(describe(error, spell)) from None
        problem = error.errors(include_url=False)[0]
        where = spell(str(problem["loc"][0])) if problem["loc"] else model.__name__
        raise UsageError(f"{where}: {problem['msg']}") from None


LIMIT_FLAGS = ("max_memory_mb",)
SIZE_LIMIT_FLAGS = ("max_parameters", "max_activation_mb", "max_memory_mb")


def add_limit_flags(parser: argparse.ArgumentParser, sizes: bool = False) -> None:
    """The size guard's flags (``mnc.limits.Limits``): ``--max-memory-mb``, and with
    ``sizes`` also ``--max-parameters`` and ``--max-activation-mb``. Each overrides its
    environment variable; ``install_flag_limits`` applies them."""
    add_model_flags(parser, Limits, SIZE_LIMIT_FLAGS if sizes else LIMIT_FLAGS, default=None)


def install_flag_limits(args: argparse.Namespace) -> Limits:
    """The limits of the flags given over the environment's, installed as the default of every
    check this command makes (also those deep in loaders); returns them."""
    given = given_values(args, Limits)
    limits = from_flags(Limits, {**Limits.from_environment().model_dump(),
                                 **{name: value for name, value in given.items()
                                    if value is not None}})
    offered = frozenset(option for name in given
                        if (option := flag(name, Limits.model_fields[name])) is not None)
    install_limits(limits, offered)
    return limits


def _form(name: str, info: FieldInfo, bounds_while_parsing: bool) -> dict[str, Any]:
    """The argparse keywords (type, action, choices, metavar) of a field."""
    extra = _extra(info)
    metavar = extra.get("metavar")
    if extra.get("flag_type") == "path":
        return {"type": Path, "metavar": metavar or "FILE"}
    if extra.get("flag_action") == "store_true":
        return {"action": "store_true"}
    kinds = _plain_types(info.annotation)
    named = metavar if isinstance(metavar, str) else name.upper()
    kind = kinds[0] if len(kinds) == 1 else None
    if kind is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(kind) is Literal:
        return {"choices": extra.get("choices") or
                [str(choice) for choice in typing.get_args(kind)]}
    if typing.get_origin(kind) is tuple:
        return _tuple_form(kind, metavar, named)
    if kind in (int, float, str, Path):
        bounded = _lower_bound_type(kind, info) if bounds_while_parsing else None
        return {"type": bounded or kind, "metavar": named}
    return {"type": str, "metavar": named}  # the model checks and converts what it is given


def _tuple_form(annotation: Any, metavar: Any, named: str) -> dict[str, Any]:
    """``tuple[X, X]``: that many values after the flag; ``tuple[X, ...]``: a comma-separated
    list, repeatable, of X (or of the choices of a ``Literal`` X)."""
    items = typing.get_args(annotation)
    if Ellipsis not in items:  # a fixed number of values: --mean R G B
        return {"type": items[0], "nargs": len(items),
                "metavar": tuple(metavar) if metavar else None}
    item = items[0]
    if typing.get_origin(item) is Literal:
        choices = tuple(str(choice) for choice in typing.get_args(item))
        return {"type": comma_list(choices=choices), "action": "extend", "metavar": named}
    return {"type": comma_list(item if item in (int, float) else str), "action": "extend",
            "metavar": named}


def _lower_bound_type(kind: type, info: FieldInfo) -> ArgumentType | None:
    """positive_number for a field whose lower bound is zero (above, or at), else None."""
    if kind not in (int, float):
        return None
    for bound in [*info.metadata, *_inner_metadata(info.annotation)]:
        if isinstance(bound, annotated_types.Gt) and bound.gt == 0:
            return positive_number(kind)
        if isinstance(bound, annotated_types.Ge) and bound.ge == 1 and kind is int:
            return positive_number(int)
        if isinstance(bound, annotated_types.Ge) and bound.ge == 0:
            return positive_number(kind, zero_allowed=True)
        if isinstance(bound, annotated_types.Ge) and kind is int:
            return _at_least(typing.cast(int, bound.ge))
    return None


def _at_least(least: int) -> ArgumentType:
    """argparse type for a whole number of at least ``least`` (e.g. 2 cross-validation folds),
    checked while parsing so that a ``--config`` file's line is named."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"expected {least} or more, not {text!r}")
        return value

    return parse


def _plain_types(annotation: Any) -> list[Any]:
    """The annotation's types without None and constraints: ``int | None`` -> [int],
    ``Annotated[int, Field(ge=1)] | None`` -> [int]."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [kind for kind in typing.get_args(annotation) if kind is not type(None)]
    else:
        kinds = [annotation]
    return [typing.get_args(kind)[0] if typing.get_origin(kind) is typing.Annotated else kind
            for kind in kinds]


def _inner_metadata(annotation: Any) -> list[Any]:
    """Constraints inside an optional annotation (``Annotated[int, Field(ge=1)] | None``),
    which pydantic leaves off the field's own metadata."""
    found: list[Any] = []
    for kind in typing.get_args(annotation):
        if typing.get_origin(kind) is typing.Annotated:
            for item in typing.get_args(kind)[1:]:
                found.extend(getattr(item, "metadata", [item]))
    return found


def _help(info: FieldInfo, show_default: bool) -> str:
    given = _extra(info).get("help")
    text = " ".join(str(given if given is not None else info.description or "").split())
    if show_default and info.default is not None and not isinstance(info.default, bool):
        text += f" (default: {info.default})"
    return text.replace("%", "%%")
