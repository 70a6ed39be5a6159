"""``mnc.train`` and ``mnc.evaluate``: training and evaluation from Python.

The data may be a named data set (``"digits"``, an ImageFolder or Downsampled ImageNet
folder: what ``mnc train --data`` takes) or the user's own ``torch.utils.data.Dataset`` /
``DataLoader`` of ``(image, label)`` pairs. Images are (C, H, W) tensors at the network's
input size: uint8 images are scaled to [0, 1] and normalised with ``mean``/``std`` (ImageNet's
by default), float images are used as given. A user's data set is not augmented.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from mnc.errors import UsageError, UserFileError
from mnc.ir.model import IR
from mnc_backends.torch.module import MouseNet
from mnc_backends.torch.training import distributed, loaders, trainer
from mnc_backends.torch.training.config import build_config
from mnc_backends.torch.training.data import DATASET, DataSplits, build_splits, check_data
from mnc_backends.torch.training.evaluation import evaluate_checkpoint, evaluate_loader
from mnc_backends.torch.weights_io import load_model

NamedData = str | Path


class UserData(Dataset):
    """A user's data set as the training loop reads it: items keyed by index (the loop's
    augmentation seed is ignored; the user's data set does its own transforms)."""

    def __init__(self, dataset: Dataset, origin: str):
        self.dataset = dataset
        self.origin = origin

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: Any) -> tuple[torch.Tensor, int]:
        index = int(item[0]) if isinstance(item, tuple) else int(item)
        image, label = self.dataset[index]
        return torch.as_tensor(image), int(label)


def _dataset(data: Any, name: str) -> tuple[Dataset, int | None]:
    """The Dataset inside ``data`` and the batch size its DataLoader asks for (if any)."""
    if isinstance(data, DataLoader):
        return data.dataset, data.batch_size
    if isinstance(data, Dataset) or hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        return data, None
    raise UsageError(f"{name}: expected a torch Dataset or DataLoader of (image, label) pairs, "
                     f"or a data set name ('digits' or a data folder), not "
                     f"{type(data).__name__}")


def check_items(dataset: Dataset, ir: IR, name: str) -> None:
    """The first item has the network's input shape and a label within its classes."""
    if not len(dataset):  # type: ignore[arg-type]
        raise UsageError(f"{name}: the data set is empty")
    try:
        image, label = dataset[0]
    except (TypeError, ValueError) as error:
        raise UsageError(f"{name}: item 0 is not an (image, label) pair ({error})") from None
    shape = tuple(torch.as_tensor(image).shape)
    expected = (ir.input.channels, ir.input.height, ir.input.width)
    if shape != expected and shape != (1, *expected[1:]):
        raise UsageError(f"{name}: item 0 has an image of shape {shape}; network {ir.name!r} "
                         f"takes (channels, height, width) = {expected}")
    classes = ir.readout.classes
    if not 0 <= int(label) < classes:
        raise UsageError(f"{name}: item 0 has label {int(label)}; network {ir.name!r} has "
                         f"{classes} classes (labels 0 to {classes - 1})")


def _class_names(data: Any, ir: IR) -> tuple[str, ...] | None:
    """The ``classes`` list a data set names (torchvision's data sets do), if it fits."""
    dataset = getattr(data, "dataset", data)
    names = getattr(dataset, "classes", None)
    if isinstance(names, list | tuple) and len(names) == ir.readout.classes:
        return tuple(str(name) for name in names)
    return None


def _held_out(dataset: Dataset, fraction: float, seed: int = 0) -> tuple[Subset, Subset]:
    """A fixed random split: (train, held-out ``fraction``), the same for every call."""
    size = len(dataset)  # type: ignore[arg-type]
    held = max(1, round(size * fraction))
    if held >= size:
        raise UsageError(f"train_data has {size} item(s): too few to hold out a validation "
                         f"share; give val_data")
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, order[held:]), Subset(dataset, order[:held])


def _network(model_or_spec: Any) -> tuple[IR | str | Path, dict[str, torch.Tensor] | None]:
    """The IR (or spec) to train and the weights to start from."""
    model = getattr(model_or_spec, "base", model_or_spec)
    if isinstance(model, MouseNet):
        return model.ir, {key: value.detach().cpu() for key, value in
                          model.state_dict().items()}
    if isinstance(model_or_spec, IR | str | Path):
        return model_or_spec, None
    raise UsageError(f"mnc.train: expected a spec (name or file), an IR or a network compiled "
                     f"by mnc, not {type(model_or_spec).__name__}")


def _announce(line: str) -> None:
    print(f"mnc.train: {line}", file=sys.stderr, flush=True)


def train(model_or_spec: Any, train_data: Any, val_data: Any = None, *,
          output: str | Path | None = None, **config: Any) -> MouseNet:
    """Train and return the trained network (see ``mnc.train``)."""
    network, weights = _network(model_or_spec)
    overrides = dict(config)
    splits = None
    if isinstance(train_data, NamedData):
        if val_data is not None:
            raise UsageError("val_data goes with a Dataset; a named data set brings its own "
                             "validation split")
        overrides["data"] = str(train_data)
        check_data(build_config({}, overrides), "mnc.train")
    else:
        ir = network if isinstance(network, IR) else _compile(network)
        network = ir
        train_set, batch_size = _dataset(train_data, "train_data")
        val_set: Dataset
        check_items(train_set, ir, "train_data")
        if val_data is None:
            fraction = build_config({}, overrides).val_fraction
            train_set, val_set = _held_out(train_set, fraction)
        else:
            val_set, _ = _dataset(val_data, "val_data")
            check_items(val_set, ir, "val_data")
        if batch_size and "batch_size" not in overrides:
            overrides["batch_size"] = batch_size
        items = len(train_set)  # type: ignore[arg-type]
        overrides.update(data=f"{type(train_set).__name__} of {items} items",
                         format=DATASET)
        splits = DataSplits(UserData(train_set, "train_data"), UserData(val_set, "val_data"),
                            ir.readout.classes, DATASET, _class_names(train_data, ir))
    with tempfile.TemporaryDirectory(prefix="mnc-train-") as scratch:
        folder = Path(output) if output is not None else Path(scratch) / "run"
        trainer.train(network, folder, overrides=overrides, announce=_announce, data=splits,
                      initial_weights=weights)
        return load_model(folder / "last.pt", MouseNet)


def _compile(spec: str | Path) -> IR:
    from mnc.compiler import compile_ir

    return compile_ir(spec)


def evaluate(model: Any, data: Any, *, split: str = "val", **config: Any) -> dict[str, Any]:
    """Loss, top-1 and top-5 of ``model`` on ``data`` (see ``mnc.evaluate``)."""
    if isinstance(model, str | Path):
        if not Path(model).is_file():
            raise UserFileError(f"{model}: no such checkpoint or saved model")
        if isinstance(data, NamedData):
            overrides = {**config, "data": str(data)}
            check_data(build_config({}, overrides), "mnc.evaluate")
            return evaluate_checkpoint(model, overrides, split=split)
        model = load_model(model, MouseNet)
    network = getattr(model, "base", model)
    if not isinstance(network, MouseNet):
        raise UsageError(f"mnc.evaluate: expected a network compiled by mnc or a checkpoint "
                         f"file, not {type(model).__name__}")
    ir = network.ir
    settings = build_config({}, {**config, "data": str(data)} if isinstance(data, NamedData)
                            else config)
    if isinstance(data, NamedData):
        check_data(settings, "mnc.evaluate")
        built = build_splits(settings, (ir.input.height, ir.input.width), ir.input.channels,
                             ir.readout.classes, splits=(split,))
        dataset = built.train if split == "train" else built.val
        batch_size = None
    else:
        user_set, batch_size = _dataset(data, "data")
        check_items(user_set, ir, "data")
        dataset = UserData(user_set, "data")
    context = distributed.setup(settings.device)
    try:
        on_cuda = context.device.type == "cuda"
        settings = settings.model_copy(update={
            "amp": on_cuda if settings.amp is None else settings.amp,
            "channels_last": False})
        size = batch_size or settings.batch_size
        loader = loaders.make_loader(dataset, loaders.ShardSampler(len(dataset), 1, 0), size,
                                     settings.workers or 0, on_cuda, settings.prefetch_factor)
        was_device = next(network.parameters()).device
        network.to(context.device)
        try:
            amp_dtype = torch.bfloat16 if settings.amp_dtype == "bfloat16" else torch.float16
            result = evaluate_loader(network, loader, context, settings, amp_dtype,
                                     settings.progress)
        finally:
            network.to(was_device)
    finally:
        distributed.teardown()
    return {"data": str(data) if isinstance(data, NamedData) else type(data).__name__,
            "split": split, "content_hash": ir.content_hash, **result}
