"""The hyper-parameters of a training run as one validated model (``TrainConfig``), and the
schedule of checkpoints kept along it (``--keep-checkpoints``: epochs and ``every:N`` terms,
separated by commas, ``0,1,5`` or ``0,every:2``).

Defaults are the published MouseNet recipe. ``mnc_backends.torch.training.config`` reads it from
a YAML file and flags; ``mnc.cli.options`` makes a flag of ``mnc train`` (and ``mnc evaluate``)
from each field, with the help kept in the field (``_cli``). Nothing here imports torch, so
``mnc train --help`` works without it; for the same reason this module sits below the torch
trainer it configures (which imports it), beside the other entry points' options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mnc.imaging import IMAGENET_MEAN, IMAGENET_STD
from mnc.strategies import StrategyName

EVERY = "every:"


@dataclass(frozen=True)
class KeepSchedule:
    """Which finished-epoch counts get a kept checkpoint."""

    epochs: frozenset[int] = frozenset()
    every: int | None = None

    def keeps(self, epoch: int) -> bool:
        return epoch in self.epochs or (self.every is not None and epoch % self.every == 0)

    def __bool__(self) -> bool:
        return bool(self.epochs) or self.every is not None


def parse_schedule(text: str | None) -> KeepSchedule:
    """``"0,every:2"`` -> KeepSchedule; raises ValueError saying what was expected."""
    if text is None or not text.strip():
        return KeepSchedule()
    epochs: set[int] = set()
    every: int | None = None
    for term in (part.strip() for part in text.split(",")):
        expected = (f"expected epochs and every:N terms separated by commas (e.g. "
                    f"'0,1,5' or '0,every:2'), got {term!r} in {text!r}")
        if term.startswith(EVERY):
            count = term[len(EVERY):]
            if not count.isdigit() or int(count) < 1:
                raise ValueError(expected + "; N must be a positive integer")
            if every is not None and every != int(count):
                raise ValueError(f"give at most one every:N term, got {text!r}")
            every = int(count)
        elif term.isdigit():
            epochs.add(int(term))
        else:
            raise ValueError(expected)
    return KeepSchedule(frozenset(epochs), every)


def _cli(help: str, **extra: Any) -> dict[str, Any]:
    """A field's command-line help (and metavar, choices) for ``mnc.cli.options``."""
    return {"help": help, **extra}


DataFormat = Literal["auto", "imagefolder", "downsampled-imagenet", "digits", "dataset"]
"""``dataset``: a torch Dataset handed to ``mnc.train`` from Python (recorded, not re-read)."""
Schedule = Literal["step", "cosine", "constant"]
PositiveInt = Annotated[int, Field(ge=1)]


class TrainConfig(BaseModel):
    """Every hyper-parameter of a training run. Defaults follow the MouseNet recipe."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True,
                              validate_assignment=True)

    data: str = Field(default="digits", json_schema_extra=_cli(
        "'digits' (scikit-learn, offline) or a data folder: ImageFolder (train/<class>/*, "
        "val/<class>/*) or Downsampled ImageNet batches"))
    """Data set: ``digits`` (scikit-learn, offline) or a folder (ImageFolder or Downsampled
    ImageNet)."""
    format: DataFormat = Field(default="auto", json_schema_extra=_cli(
        "layout of --data (default: detect)",
        choices=["auto", "imagefolder", "downsampled-imagenet", "digits"]))
    """Layout of ``data``; ``auto`` detects it from the folder's files."""
    epochs: PositiveInt = Field(default=90, json_schema_extra=_cli("epochs to train (default 90)"))
    batch_size: PositiveInt = Field(default=256, json_schema_extra=_cli(
        "global batch size, split over DDP processes (default 256)"))
    """Global batch size: split evenly over the DDP processes."""
    lr: Annotated[float, Field(gt=0)] = Field(default=0.01, json_schema_extra=_cli(
        "SGD learning rate (default 0.01)"))
    momentum: Annotated[float, Field(ge=0, lt=1)] = Field(default=0.9, json_schema_extra=_cli(
        "SGD momentum (default 0.9)"))
    weight_decay: Annotated[float, Field(ge=0)] = Field(default=1e-4, json_schema_extra=_cli(
        "SGD weight decay (default 1e-4)"))
    nesterov: bool = Field(default=False, json_schema_extra=_cli("Nesterov momentum (default off)"))
    schedule: Schedule = Field(default="step", json_schema_extra=_cli(
        "learning-rate schedule (default step)"))
    """Learning-rate schedule per epoch: ``step`` (times ``lr_gamma`` every ``lr_step_epochs``),
    ``cosine`` (to zero at the last epoch) or ``constant``."""
    lr_step_epochs: PositiveInt = Field(default=30, json_schema_extra=_cli(
        "step schedule: epochs between decays (30)"))
    lr_gamma: Annotated[float, Field(gt=0, le=1)] = Field(default=0.1, json_schema_extra=_cli(
        "step schedule: decay factor (0.1)"))
    warmup_epochs: Annotated[int, Field(ge=0)] = Field(default=0, json_schema_extra=_cli(
        "linear warm-up epochs from lr/10 (0)"))
    """Epochs of linear warm-up from lr/10 before the schedule starts."""
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = Field(
        default=0.0, json_schema_extra=_cli("cross-entropy label smoothing (0)"))
    grad_clip_norm: Annotated[float, Field(gt=0)] | None = Field(
        default=None, json_schema_extra=_cli("clip the gradient norm (default: no clipping)"))

    crop_scale: tuple[float, float] | None = Field(default=None, json_schema_extra=_cli(
        "random-resized-crop area range (ImageNet 0.08 1; digits 0.6 1)", metavar=("LOW", "HIGH")))
    """Random-resized-crop area range as fractions of the image; None: (0.08, 1) for ImageNet,
    (0.6, 1) for digits."""
    crop_ratio: tuple[float, float] = Field(default=(3 / 4, 4 / 3), json_schema_extra=_cli(
        "random-resized-crop aspect ratio range (0.75 1.333)", metavar=("LOW", "HIGH")))
    """Random-resized-crop aspect-ratio range."""
    hflip: bool | None = Field(default=None, json_schema_extra=_cli(
        "random horizontal flips (ImageNet on, digits off)"))
    """Random horizontal flips; None: on for ImageNet, off for digits (mirrored digits differ)."""
    eval_crop_fraction: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.875, json_schema_extra=_cli("evaluation centre-crop fraction (0.875)"))
    """At evaluation the image is resized so the centre crop of the input size is this fraction
    of its shorter side."""
    mean: tuple[float, float, float] = Field(default=IMAGENET_MEAN, json_schema_extra=_cli(
        "normalisation mean (ImageNet's)", metavar=("R", "G", "B")))
    std: tuple[float, float, float] = Field(default=IMAGENET_STD, json_schema_extra=_cli(
        "normalisation standard deviation (ImageNet's)", metavar=("R", "G", "B")))
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = Field(default=0.2, json_schema_extra=_cli(
        "digits: held-out share (0.2, fixed split)"))
    """Held-out share of ``digits`` (a fixed stratified split, the same for every seed)."""

    device: str = Field(
        default="auto", json_schema_extra=_cli("auto (default), cpu, cuda or cuda:N"))
    """``auto`` (CUDA if present), ``cpu``, ``cuda`` or ``cuda:N``; DDP uses LOCAL_RANK."""
    workers: Annotated[int, Field(ge=0)] | None = Field(default=None, json_schema_extra=_cli(
        "data-loader processes per rank (default: automatic)"))
    """Data-loader worker processes per rank; None: min(8, CPUs per rank), 0 on a CPU run with
    digits."""
    prefetch_factor: PositiveInt = Field(default=4, json_schema_extra=_cli(
        "batches prefetched per worker (4)"))
    amp: bool | None = Field(
        default=None, json_schema_extra=_cli("mixed precision (default: on for CUDA)"))
    """Mixed precision; None: on for CUDA, off on CPU."""
    amp_dtype: Literal["bfloat16", "float16"] = Field(default="bfloat16", json_schema_extra=_cli(
        "AMP type (bfloat16)"))
    channels_last: bool | None = Field(default=None, json_schema_extra=_cli(
        "channels_last memory format (default: on for CUDA)"))
    """channels_last memory format; None: on for CUDA."""
    sync_batchnorm: bool = Field(default=False, json_schema_extra=_cli(
        "synchronise BatchNorm over DDP processes"))
    """Synchronise BatchNorm statistics across DDP processes (feed-forward networks; the
    per-step BatchNorm of a recurrent network keeps each process's own batch statistics)."""
    strategy: StrategyName = Field(
        default="auto", json_schema_extra=_cli(
            "execution strategy: auto (default: on CPU sparse for feed-forward and merged for "
            "recurrent networks, plain on GPU), plain (one masked convolution per projection), "
            "merged (one convolution per source and stride) or sparse (the kept taps only, CPU "
            "float32)"))
    """Execution strategy (``mnc_backends.torch.fast``): ``auto`` (on CPU float32, sparse for
    feed-forward networks and merged for recurrent ones; plain on other devices), ``plain``
    (one masked conv per projection), ``merged`` (one conv per source and stride) or
    ``sparse`` (the native kernel over the kept taps only); all compute the same function."""

    seed: Annotated[int, Field(ge=0, lt=2**31)] = Field(default=0, json_schema_extra=_cli(
        "seed of data order, augmentation and RNGs (0)"))
    deterministic: bool = Field(default=False, json_schema_extra=_cli(
        "deterministic kernels: two runs give identical weights"))
    """Deterministic kernels only (identical weights across runs on the same machine)."""
    checkpoint_every_steps: Annotated[int, Field(ge=0)] = Field(default=0, json_schema_extra=_cli(
        "also write last.pt every N steps (0: each epoch only)"))
    """Also write last.pt every N optimizer steps (0: only at the end of each epoch)."""
    keep_checkpoints: str | None = Field(default=None, json_schema_extra=_cli(
        "keep checkpoints along training in RUN/checkpoints/ with their validation top-1 (index "
        "checkpoints.json): epochs '0,1,5' (0: untrained), 'every:N', or both '0,every:2'",
        metavar="LIST"))
    """Also keep checkpoints along training in ``checkpoints/`` with an index
    ``checkpoints.json``: epochs (``0,1,5``; 0 is the untrained network), ``every:N``, or both
    (``0,every:2``)."""
    max_steps_per_epoch: Annotated[int, Field(ge=1)] | None = Field(
        default=None, json_schema_extra=_cli("cap steps per epoch (smoke runs)"))
    """Cap on optimizer steps per epoch (smoke runs, benchmarks)."""
    progress: bool | None = Field(default=None, json_schema_extra=_cli(
        "progress bars (default: when on a terminal)"))
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
