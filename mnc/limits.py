"""The limits policy: how large a network, a file or a task may be, and where the limits
come from.

Limits come from the caller, else the ones a command installed from its flags
(``install_limits``), else the environment (MNC_MAX_PARAMETERS, MNC_MAX_ACTIVATION_MB,
MNC_MAX_KERNEL_SIZE, MNC_MAX_MEMORY_MB, MNC_MAX_GMACS), else the defaults below, which
admit MouseNet at 224x224 input with room to spare. ``Limits`` is a pydantic model: each
field is above zero and finite (a bad value names the field), carries its environment
variable, and those with a flag become the commands' ``--max-...`` flags through the one
options generator (``mnc.cli.options.add_limit_flags``). This module knows nothing of networks,
so the lowest layers (file readers) can hold what they read to the memory limit; the checks
of a network against the limits are in ``mnc.analysis.limits``.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from mnc.errors import SizeLimitError
from mnc.text import format_bytes


class Described(Protocol):
    """An estimate that can say what its bytes are made of."""

    def describe(self) -> str: ...


DEFAULT_MAX_PARAMETERS = 500_000_000
DEFAULT_MAX_ACTIVATION_MB = 2048.0
DEFAULT_MAX_KERNEL_SIZE = 1025
DEFAULT_MAX_MEMORY_MB = 8192.0
DEFAULT_MAX_GMACS = 250.0
"""About 100 times the default network's 2.5 GMAC per image: a recurrent network of 100 steps,
minutes per image on a CPU."""


def _limit(default: float, variable: str, flag: str | None = None, metavar: str = "MB",
           flag_help: str = "") -> Any:
    """A limit field: above zero and finite; ``variable`` is the environment variable that
    sets it, ``flag`` its command-line flag (None: none) with ``flag_help`` as help."""
    return Field(default, gt=0, json_schema_extra={
        "environment": variable, "flag": flag, "metavar": metavar, "help": flag_help})


class Limits(BaseModel):
    """How large a network, a file or a task may be. Each field is above zero and finite,
    read from its environment variable (``from_environment``); the ones with a flag become
    the command line's ``--max-...`` flags (``mnc.cli.options``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False,
                              use_attribute_docstrings=True)

    max_parameters: int = _limit(
        DEFAULT_MAX_PARAMETERS, "MNC_MAX_PARAMETERS", "max-parameters", metavar="N",
        flag_help="size guard: refuse networks with more parameters "
             "(default 500,000,000 or MNC_MAX_PARAMETERS)")
    max_activation_mb: float = _limit(
        DEFAULT_MAX_ACTIVATION_MB, "MNC_MAX_ACTIVATION_MB", "max-activation-mb",
        flag_help="size guard: refuse networks whose activations per image exceed this "
             "(default 2048 or MNC_MAX_ACTIVATION_MB)")
    """Activation memory of one image (float32), summed over populations and, for a recurrent
    network, over its steps (every step's activity is kept)."""
    max_kernel_size: int = _limit(DEFAULT_MAX_KERNEL_SIZE, "MNC_MAX_KERNEL_SIZE")
    max_memory_mb: float = _limit(
        DEFAULT_MAX_MEMORY_MB, "MNC_MAX_MEMORY_MB", "max-memory-mb",
        flag_help="size guard: refuse to build, run, train, export or read what would allocate "
             "more (estimated before allocating; default 8192 or MNC_MAX_MEMORY_MB)")
    """Bytes a build, run, training or export may allocate (``mnc.analysis.memory``)."""
    max_gmacs: float = _limit(DEFAULT_MAX_GMACS, "MNC_MAX_GMACS")
    """Billions of multiply-accumulates one image may ask for, every step of a recurrent
    network counted (``mnc predict`` on an ONNX model, ``mnc bench``)."""

    @property
    def max_memory_bytes(self) -> int:
        return int(self.max_memory_mb * 2**20)

    @classmethod
    def from_environment(cls) -> Limits:
        """The defaults, each overridden by its environment variable where it is set; a value
        that is no positive finite number is a ``SizeLimitError`` naming the variable."""
        given: dict[str, float] = {}
        for name, info in cls.model_fields.items():
            variable = _variable(info)
            text = os.environ.get(variable)
            if text is None:
                continue
            kind = info.annotation if info.annotation in (int, float) else float
            try:
                given[name] = kind(text)
            except ValueError:
                raise SizeLimitError(f"environment variable {variable}={text!r}: expected a "
                                     f"positive {kind.__name__}") from None
        try:
            return cls.model_validate(given)
        except ValidationError as error:
            field = str(error.errors(include_url=False)[0]["loc"][0])
            variable = _variable(cls.model_fields[field])
            raise SizeLimitError(f"environment variable {variable}={os.environ[variable]!r}: "
                                 "expected a positive number") from None


def _variable(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    assert isinstance(extra, dict)
    return str(extra["environment"])


_installed: Limits | None = None
_flags: frozenset[str] | None = None


def install_limits(limits: Limits | None, flags: frozenset[str] | None = None) -> None:
    """Make ``limits`` the default of every later check in this process (a command's flags);
    None goes back to the environment's. ``flags`` are the limit flags the running command
    offers, so that messages name only those; None (outside a command) names them all."""
    global _installed, _flags
    _installed = limits
    _flags = flags


def remedy(flag: str, variable: str) -> str:
    """``raise with FLAG or VARIABLE``, naming the flag only where the command has it."""
    if _flags is None or flag in _flags:
        return f"raise with {flag} or {variable}"
    return f"raise with {variable}"


def current_limits() -> Limits:
    """The limits a check without explicit ones applies."""
    return _installed or Limits.from_environment()


def memory_problem(what: str, needed_bytes: int, limits: Limits | None = None,
                   estimate: Described | None = None) -> str | None:
    """``what would allocate about N (parts); the limit is M (raise with ...)``, or None if it
    fits."""
    limits = limits or current_limits()
    if needed_bytes <= limits.max_memory_bytes:
        return None
    amount = estimate.describe() if estimate is not None else format_bytes(needed_bytes)
    return (f"{what} would allocate about {amount}; the limit is "
            f"{format_bytes(limits.max_memory_bytes)} "
            f"({remedy('--max-memory-mb', 'MNC_MAX_MEMORY_MB')})")
