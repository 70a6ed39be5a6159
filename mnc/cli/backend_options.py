"""A backend's typed options (its pydantic ``options_model``) as flags of ``mnc compile``.

The flags come from ``mnc.cli.options`` (the generator every options model uses): field
``merge_convolutions`` becomes ``--merge-convolutions`` unless the field names its flag, with
``(default: X)`` after its help. Only flags given on the command line reach the model, so its
defaults stay the defaults; ranges are the model's to check, so its messages name the backend.
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

from pydantic import BaseModel

from mnc.backend import describe_option_error
from mnc.cli.options import add_model_flags, flag, from_flags

DEST_PREFIX = "backend_option"
__all__ = ["DEST_PREFIX", "add_backend_flags", "dest", "flag", "foreign_options",
           "given_options", "validate"]


def dest(backend: str, field: str) -> str:
    return f"{DEST_PREFIX}:{backend}:{field}"


def add_backend_flags(
    parser: argparse.ArgumentParser, backend: str, model: type[BaseModel]
) -> list[str]:
    """Add a flag per field of ``model`` to ``parser``; returns the flags added (a flag the
    parser already has, from the core or another backend, is left to its first owner)."""
    group = parser.add_argument_group(f"options of the {backend} backend")
    taken = {text for action in parser._actions for text in action.option_strings}
    return add_model_flags(group, model, dest=partial(dest, backend), default=argparse.SUPPRESS,
                           show_default=True, bounds_while_parsing=False, skip=taken)


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
    return from_flags(model, values, lambda error, spell: describe_option_error(
        error, model, backend, spell))  # type: ignore[no-any-return]
