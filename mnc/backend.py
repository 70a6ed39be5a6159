"""Backends: compile a resolved IR into something runnable.

A backend is a subclass of ``Backend`` published under the entry-point group
``mnc.backends`` (built-ins are declared the same way in this project's pyproject.toml), so
another package can add one without touching ``mnc``. Discovery is cached; a plugin that
fails to import becomes a warning, not a crash, and two packages claiming one name are reported.

Each backend declares its own options as a pydantic model (``options_model``); ``mnc compile
--backend NAME`` turns its fields into flags, so a plug-in gets flags without touching ``mnc``.
"""

from __future__ import annotations

import functools
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

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
    extra: Mapping[str, Any] | BaseModel = field(default_factory=dict)
    """The backend's own options: a mapping checked against its ``options_model``, or an
    instance of that model."""


class NoOptions(BaseModel):
    """The options of a backend that has none of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)


OptionsModel = TypeVar("OptionsModel", bound=BaseModel)


def read_options(
    model: type[OptionsModel], options: BackendOptions, backend: str
) -> OptionsModel:
    """``options.extra`` as the backend's typed options; a bad value is one BackendError."""
    if isinstance(options.extra, model):
        return options.extra
    given = dict(options.extra) if isinstance(options.extra, Mapping) else options.extra
    try:
        return model.model_validate(given)
    except ValidationError as error:
        raise BackendError(describe_option_error(error, model, backend)) from None


def describe_option_error(
    error: ValidationError, model: type[BaseModel], backend: str, spell: Any = None
) -> str:
    """The first problem of ``error`` in one line; ``spell`` names a field (e.g. as a flag)."""
    problem = error.errors()[0]
    key = str(problem["loc"][0]) if problem["loc"] else ""
    shown = spell(key) if spell is not None and key in model.model_fields else repr(key)
    if problem["type"] == "extra_forbidden":
        known = ", ".join(model.model_fields) or "none"
        return f"the {backend} backend has no option {key!r} (its options: {known})"
    return f"the {backend} backend's option {shown}: {problem['msg']}"


class Backend(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    suffix: ClassVar[str]
    """File suffix of what ``save`` writes, e.g. ".pt"."""
    emits: ClassVar[tuple[str, ...]] = ()
    """Values of ``BackendOptions.emit`` this backend supports."""
    options_model: ClassVar[type[BaseModel]] = NoOptions
    """The backend's own options (``BackendOptions.extra``); each field becomes a flag of
    ``mnc compile --backend NAME`` (see ``mnc.cli.backend_options``)."""

    @abstractmethod
    def compile(self, ir: IR, options: BackendOptions) -> Any:
        """Build the backend's artifact from the IR."""

    @abstractmethod
    def save(self, artifact: Any, path: Path, options: BackendOptions) -> None:
        """Write the artifact atomically to ``path``."""

    def describe(self, artifact: Any) -> str:
        """One or two lines for the terminal about what was built."""
        return type(artifact).__name__

    def load(self, path: Path) -> Any:
        """Rebuild what ``save`` wrote; a backend that cannot read its files back says so."""
        raise BackendError(f"the {self.name} backend cannot load saved files ({path})")


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
        first = found.setdefault(point.name, point)
        if first is not point and (_origin(first) != _origin(point)):
            # Two packages claim one name: say which one is used rather than hide the other.
            warnings.warn(
                f"backend {point.name!r} is claimed twice: by {_describe(first)} (used) and by "
                f"{_describe(point)} (ignored); uninstall one of them",
                stacklevel=2,
            )
    return found


def _origin(point: EntryPoint) -> tuple[str | None, str]:
    return (point.dist.name if point.dist is not None else None, point.value)


def _describe(point: EntryPoint) -> str:
    distribution, target = _origin(point)
    return f"{target} from {distribution or 'an unnamed distribution'}"


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
    return backend_class(name)()


@functools.cache
def backend_class(name: str) -> type[Backend]:
    """The class registered under ``name``, imported now (its options, before building one)."""
    points = _entry_points()
    if name not in points:
        known = ", ".join(sorted(points)) or "none installed"
        raise BackendError(f"unknown backend {name!r}; available: {known}")
    try:
        loaded = points[name].load()
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
    if not (isinstance(loaded, type) and issubclass(loaded, Backend)):
        raise BackendError(f"backend {name!r} ({points[name].value}) is not an mnc Backend")
    return loaded
