"""The training configuration: one validated model, from defaults, a YAML file and CLI flags.

The model is ``mnc.train_options.TrainConfig`` (torch-free, so ``mnc train --help`` reads
it without torch). Precedence, lowest first: its defaults (the published recipe),
``--config train.yaml``, then command-line flags. Fields left ``None`` are resolved once the
data set and the device are known (``resolve_for``), so the run directory records what was
actually used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mnc.errors import SpecError, UserFileError
from mnc.spec.yaml_reader import read_yaml
from mnc.train_options import TrainConfig

__all__ = ["MAX_CONFIG_BYTES", "RESUMABLE_OVERRIDES", "TrainConfig", "apply_resume_overrides",
           "build_config", "config_from_plain", "load_config_file"]

MAX_CONFIG_BYTES = 1024 * 1024


# Fields a resumed run may change; everything else must match the run being resumed.
RESUMABLE_OVERRIDES = frozenset({"epochs", "device", "workers", "prefetch_factor", "progress",
                                 "strategy",
                                 "checkpoint_every_steps", "data", "keep_checkpoints"})


def _describe(error: ValidationError, origin: str) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = f"unknown field; expected one of: {', '.join(TrainConfig.model_fields)}"
        parts.append(f"{origin}: {where}: {message}")
    return "\n".join(parts)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML training config into a plain dict (checked later with the flags).

    The spec reader reads it: core YAML tags only, duplicate keys and deep nesting refused,
    at most ``MAX_CONFIG_BYTES`` read whatever the file is (``-`` is standard input).
    """
    file = Path(path)
    try:
        data = read_yaml(file, "training config", MAX_CONFIG_BYTES, allow_empty=True).data
    except SpecError as error:
        raise UserFileError("\n".join(str(problem) for problem in error.problems)) from None
    _validate(data, str(file))
    return data


def _validate(data: dict[str, Any], origin: str) -> TrainConfig:
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as error:
        raise UserFileError(_describe(error, origin)) from None


def build_config(file_values: dict[str, Any] | None = None,
                 overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the config file's values, then flags (``None`` flags are not given)."""
    merged = dict(file_values or {})
    merged.update({key: value for key, value in (overrides or {}).items() if value is not None})
    return _validate(merged, "training config")


def config_from_plain(data: dict[str, Any], origin: str) -> TrainConfig:
    """The config stored in a run directory or checkpoint (lists come back as tuples)."""
    return _validate(data, origin)


def apply_resume_overrides(stored: TrainConfig, overrides: dict[str, Any],
                           origin: str) -> TrainConfig:
    """The stored config with the flags a resumed run may change; others must agree."""
    changed: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        current = getattr(stored, key)
        if isinstance(current, tuple):
            value = tuple(value)
        if value == current:
            continue
        if key not in RESUMABLE_OVERRIDES:
            allowed = ", ".join(sorted(RESUMABLE_OVERRIDES))
            raise UserFileError(
                f"{origin}: cannot change {key} from {current!r} to {value!r} when resuming "
                f"(a resumed run continues the same recipe); only {allowed} may change")
        changed[key] = value
    return _validate({**stored.model_dump(mode="json"), **changed}, origin)
