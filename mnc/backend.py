"""Backends: compile a resolved IR into something runnable.

A backend is a subclass of ``Backend`` published under the entry-point group
``mnc.backends`` (built-ins are declared the same way in this project's pyproject.toml), so
another package can add one without touching ``mnc``. Discovery is cached; a plugin that
fails to import becomes a warning, not a crash.
"""

from __future__ import annotations

import functools
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, ClassVar

from mnc.errors import BackendError
from mnc.extras import missing_extra
from mnc.ir.model import IR

ENTRY_POINT_GROUP = "mnc.backends"


@dataclass(frozen=True)
class BackendOptions:
    """Options every backend understands; backend-specific ones go in ``extra``."""

    weights: Path | None = None
    """A weights file (saved model or training checkpoint) to fill the parameters from."""
    outputs: tuple[str, ...] = ()
    """Population names to expose as outputs besides the logits (where the backend can)."""
    emit: str | None = None
    """Alternative artifact, e.g. "python" source for the torch backend."""
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    suffix: ClassVar[str]
    """File suffix of what ``save`` writes, e.g. ".pt"."""
    emits: ClassVar[tuple[str, ...]] = ()
    """Values of ``BackendOptions.emit`` this backend supports."""

    @abstractmethod
    def compile(self, ir: IR, options: BackendOptions) -> Any:
        """Build the backend's artifact from the IR."""

    @abstractmethod
    def save(self, artifact: Any, path: Path, options: BackendOptions) -> None:
        """Write the artifact atomically to ``path``."""

    def describe(self, artifact: Any) -> str:
        """One or two lines for the terminal about what was built."""
        return type(artifact).__name__


class BackendNeedsExtra(BackendError):
    """A built-in backend whose packages come with an extra that is not installed."""


@dataclass(frozen=True)
class BackendInfo:
    name: str
    target: str
    distribution: str | None
    error: str | None = None


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, point)
    return found


def available_backends() -> list[BackendInfo]:
    """Every backend registered under the entry-point group, loadable or not."""
    infos = []
    for name, point in sorted(_entry_points().items()):
        distribution = point.dist.name if point.dist is not None else None
        infos.append(BackendInfo(name, point.value, distribution))
    return infos


def backend_names() -> list[str]:
    return sorted(_entry_points())


@functools.cache
def get_backend(name: str) -> Backend:
    points = _entry_points()
    if name not in points:
        known = ", ".join(sorted(points)) or "none installed"
        raise BackendError(f"unknown backend {name!r}; available: {known}")
    try:
        backend_class = points[name].load()
    except Exception as error:  # a broken plugin must not take the CLI down
        needed = (
            missing_extra(error, needed_by=f"backend {name!r}")
            if isinstance(error, ModuleNotFoundError)
            else None
        )
        if needed is not None:  # not broken: an extra is not installed
            raise BackendNeedsExtra(str(needed)) from None
        warnings.warn(
            f"backend {name!r} ({points[name].value}) failed to load: {error}", stacklevel=2
        )
        raise BackendError(f"backend {name!r} is installed but failed to load: {error}") from None
    if not (isinstance(backend_class, type) and issubclass(backend_class, Backend)):
        raise BackendError(f"backend {name!r} ({points[name].value}) is not an mnc Backend")
    return backend_class()
