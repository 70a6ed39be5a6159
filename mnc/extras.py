"""Optional dependencies: which extra of ``pip install 'mnc[...]'`` brings which import.

The core install compiles, trains and benchmarks with PyTorch; the rest comes in extras
(pyproject.toml lists them; a test keeps this table in step). A command that needs a package
that is missing stops with one message naming the extra to install.
"""

from __future__ import annotations

import importlib.util

from mnc.errors import MncError

EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "onnx": ("onnx", "onnxruntime"),
    "plot": ("matplotlib",),
    "digits": ("sklearn",),
    "measure": ("scipy", "sklearn"),
    "neuro": ("h5py", "matplotlib", "netCDF4", "pandas", "rsatoolbox", "sklearn", "scipy",
              "xarray"),
    "allen": ("allensdk",),
}
"""Extra -> the top-level modules it installs (import names, not distribution names)."""

COMMAND_EXTRAS: dict[str, tuple[str, ...]] = {
    "compile": ("onnx",),
    "predict": ("onnx",),
    "bench": ("onnx",),
    "draw": ("plot",),
    "plot": ("plot",),
    "train": ("digits",),
    "evaluate": ("digits",),
    "measure": ("measure",),
    "rsa": ("neuro", "allen"),
    "physiology": ("neuro", "allen"),
}
"""Command -> the extras it may need, the first that brings a missing module is named."""


class MissingExtraError(MncError):
    """An optional package is not installed; the message names the extra that brings it."""


def extra_for(module: str, command: str | None = None) -> str | None:
    """The extra to install for ``module`` (a top-level import name) when ``command`` runs."""
    owners = [extra for extra, modules in EXTRA_MODULES.items() if module in modules]
    for extra in COMMAND_EXTRAS.get(command or "", ()):
        if extra in owners:
            return extra
    return owners[0] if owners else None


def missing_extra(error: ModuleNotFoundError, command: str | None = None,
                  needed_by: str | None = None) -> MissingExtraError | None:
    """The error to report for ``error`` if an extra is missing, else None (a real bug).

    Only a module that an extra installs and that cannot be found counts; a module that is
    installed but fails inside is left to its traceback.
    """
    module = (error.name or "").partition(".")[0]
    extra = extra_for(module, command)
    if extra is None or importlib.util.find_spec(module) is not None:
        return None
    what = f"{needed_by} needs {module}, which" if needed_by else module
    return MissingExtraError(
        f"{what} is not installed; install the extra: pip install 'mnc[{extra}]'"
    )


def require(extra: str, command: str, modules: tuple[str, ...] | None = None) -> None:
    """Stop before ``command`` reads or creates anything if ``extra`` is not installed.

    ``modules``: the ones this use needs (default: every module of the extra). Finding a
    module does not import it, so the check costs milliseconds.
    """
    missing = [module for module in (modules or EXTRA_MODULES[extra])
               if importlib.util.find_spec(module) is None]
    if missing:
        which = "is" if len(missing) == 1 else "are"
        raise MissingExtraError(
            f"{command} needs {', '.join(missing)}, which {which} not installed; install the "
            f"extra: pip install 'mnc[{extra}]'")
