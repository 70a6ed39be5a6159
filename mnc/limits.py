"""The limits policy: how large a network, a file or a task may be, and where the limits
come from.

Limits come from the caller, else the ones a command installed from its flags
(``install_limits``), else the environment (MNC_MAX_PARAMETERS, MNC_MAX_ACTIVATION_MB,
MNC_MAX_KERNEL_SIZE, MNC_MAX_MEMORY_MB, MNC_MAX_GMACS), else the defaults below, which
admit MouseNet at 224x224 input with room to spare. This module knows nothing of networks,
so the lowest layers (file readers) can hold what they read to the memory limit; the checks
of a network against the limits are in ``mnc.analysis.limits``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Protocol

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


@dataclass(frozen=True)
class Limits:
    max_parameters: int = DEFAULT_MAX_PARAMETERS
    max_activation_mb: float = DEFAULT_MAX_ACTIVATION_MB
    """Activation memory of one image (float32), summed over populations and, for a recurrent
    network, over its steps (every step's activity is kept)."""
    max_kernel_size: int = DEFAULT_MAX_KERNEL_SIZE
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB
    """Bytes a build, run, training or export may allocate (``mnc.analysis.memory``)."""
    max_gmacs: float = DEFAULT_MAX_GMACS
    """Billions of multiply-accumulates one image may ask for, every step of a recurrent
    network counted (``mnc predict`` on an ONNX model, ``mnc bench``)."""

    @property
    def max_memory_bytes(self) -> int:
        return int(self.max_memory_mb * 2**20)

    @classmethod
    def from_environment(cls) -> Limits:
        def read(name: str, default: float, kind: type) -> float:
            text = os.environ.get(name)
            if text is None:
                return default
            try:
                value = kind(text)
            except ValueError:
                raise SizeLimitError(
                    f"environment variable {name}={text!r}: expected a positive {kind.__name__}"
                ) from None
            if not math.isfinite(value) or value <= 0:
                raise SizeLimitError(
                    f"environment variable {name}={text!r}: expected a positive number"
                )
            return value

        return cls(
            int(read("MNC_MAX_PARAMETERS", DEFAULT_MAX_PARAMETERS, int)),
            read("MNC_MAX_ACTIVATION_MB", DEFAULT_MAX_ACTIVATION_MB, float),
            int(read("MNC_MAX_KERNEL_SIZE", DEFAULT_MAX_KERNEL_SIZE, int)),
            read("MNC_MAX_MEMORY_MB", DEFAULT_MAX_MEMORY_MB, float),
            read("MNC_MAX_GMACS", DEFAULT_MAX_GMACS, float),
        )


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
