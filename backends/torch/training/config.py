"""The training configuration: one validated model, from defaults, a YAML file and CLI flags.

Precedence, lowest first: the defaults below (the published recipe), ``--config train.yaml``,
then command-line flags. Fields left ``None`` are resolved once the data set and the device are
known (``resolve_for``), so the run directory records what was actually used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mnc.errors import SpecError, UserFileError
from mnc.imaging import IMAGENET_MEAN, IMAGENET_STD
from mnc.spec.yaml_reader import read_yaml
from mnc.strategies import StrategyName
from mnc_backends.torch.training.keep import parse_schedule

DataFormat = Literal["auto", "imagefolder", "downsampled-imagenet", "digits", "dataset"]
"""``dataset``: a torch Dataset handed to ``mnc.train`` from Python (recorded, not re-read)."""
Schedule = Literal["step", "cosine", "constant"]
PositiveInt = Annotated[int, Field(ge=1)]

MAX_CONFIG_BYTES = 1024 * 1024


class TrainConfig(BaseModel):
    """Every hyper-parameter of a training run. Defaults follow the MouseNet recipe."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True,
                              validate_assignment=True)

    data: str = "digits"
    """Data set: ``digits`` (scikit-learn, offline) or a folder (ImageFolder or Downsampled
    ImageNet)."""
    format: DataFormat = "auto"
    """Layout of ``data``; ``auto`` detects it from the folder's files."""
    epochs: PositiveInt = 90
    batch_size: PositiveInt = 256
    """Global batch size: split evenly over the DDP processes."""
    lr: Annotated[float, Field(gt=0)] = 0.01
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    nesterov: bool = False
    schedule: Schedule = "step"
    """Learning-rate schedule per epoch: ``step`` (times ``lr_gamma`` every ``lr_step_epochs``),
    ``cosine`` (to zero at the last epoch) or ``constant``."""
    lr_step_epochs: PositiveInt = 30
    lr_gamma: Annotated[float, Field(gt=0, le=1)] = 0.1
    warmup_epochs: Annotated[int, Field(ge=0)] = 0
    """Epochs of linear warm-up from lr/10 before the schedule starts."""
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    grad_clip_norm: Annotated[float, Field(gt=0)] | None = None

    crop_scale: tuple[float, float] | None = None
    """Random-resized-crop area range as fractions of the image; None: (0.08, 1) for ImageNet,
    (0.6, 1) for digits."""
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    """Random-resized-crop aspect-ratio range."""
    hflip: bool | None = None
    """Random horizontal flips; None: on for ImageNet, off for digits (mirrored digits differ)."""
    eval_crop_fraction: Annotated[float, Field(gt=0, le=1)] = 0.875
    """At evaluation the image is resized so the centre crop of the input size is this fraction
    of its shorter side."""
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    """Held-out share of ``digits`` (a fixed stratified split, the same for every seed)."""

    device: str = "auto"
    """``auto`` (CUDA if present), ``cpu``, ``cuda`` or ``cuda:N``; DDP uses LOCAL_RANK."""
    workers: Annotated[int, Field(ge=0)] | None = None
    """Data-loader worker processes per rank; None: min(8, CPUs per rank), 0 on a CPU run with
    digits."""
    prefetch_factor: PositiveInt = 4
    amp: bool | None = None
    """Mixed precision; None: on for CUDA, off on CPU."""
    amp_dtype: Literal["bfloat16", "float16"] = "bfloat16"
    channels_last: bool | None = None
    """channels_last memory format; None: on for CUDA."""
    sync_batchnorm: bool = False
    """Synchronise BatchNorm statistics across DDP processes (feed-forward networks; the
    per-step BatchNorm of a recurrent network keeps each process's own batch statistics)."""
    strategy: StrategyName = "auto"
    """Execution strategy (``mnc_backends.torch.fast``): ``auto`` (on CPU float32, sparse for
    feed-forward networks and merged for recurrent ones; plain on other devices), ``plain``
    (one masked conv per projection), ``merged`` (one conv per source and stride) or
    ``sparse`` (the native kernel over the kept taps only); all compute the same function."""

    seed: Annotated[int, Field(ge=0, lt=2**31)] = 0
    deterministic: bool = False
    """Deterministic kernels only (identical weights across runs on the same machine)."""
    checkpoint_every_steps: Annotated[int, Field(ge=0)] = 0
    """Also write last.pt every N optimizer steps (0: only at the end of each epoch)."""
    keep_checkpoints: str | None = None
    """Also keep checkpoints along training in ``checkpoints/`` with an index
    ``checkpoints.json``: epochs (``0,1,5``; 0 is the untrained network), ``every:N``, or both
    (``0,every:2``)."""
    max_steps_per_epoch: Annotated[int, Field(ge=1)] | None = None
    """Cap on optimizer steps per epoch (smoke runs, benchmarks)."""
    progress: bool | None = None
    """Progress bars; None: only when stderr is a terminal."""

    @field_validator("keep_checkpoints")
    @classmethod
    def _check_keep(cls, value: str | None) -> str | None:
        parse_schedule(value)  # raises ValueError naming what is expected
        return value

    @model_validator(mode="after")
    def _check_ranges(self) -> TrainConfig:
        for name in ("crop_scale", "crop_ratio"):
            value = getattr(self, name)
            if value is not None and not (0 < value[0] <= value[1]):
                raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {value}")
        if self.crop_scale is not None and self.crop_scale[1] > 1:
            raise ValueError(f"crop_scale high end must be at most 1, got {self.crop_scale[1]}")
        if any(value <= 0 for value in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        return self


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
