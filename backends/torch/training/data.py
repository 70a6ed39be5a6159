"""Pick the data set a config names, detect its layout, and check it fits the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mnc.class_names import imagenet_class_names
from mnc.errors import UserFileError
from mnc.extras import require
from mnc_backends.torch.training import datasets
from mnc_backends.torch.training.config import TrainConfig

DIGITS = "digits"
DATASET = "dataset"


@dataclass(frozen=True)
class DataSplits:
    train: torch.utils.data.Dataset | None
    val: torch.utils.data.Dataset | None
    """Either split is None when it was not asked for (``mnc evaluate --split``)."""
    classes: int
    format: str
    names: tuple[str, ...] | None = None
    """The classes' names in label order, recorded in checkpoints (and ONNX exports)."""


def detect_format(data: str, requested: str) -> str:
    """``auto`` -> digits, imagefolder (train/ val/ class folders) or downsampled-imagenet."""
    if requested == DATASET:
        raise UserFileError(f"{data}: a data set handed to mnc.train from Python; give the data "
                            f"again (--data) to use it here")
    if requested != "auto":
        if requested != DIGITS and not Path(data).is_dir():
            raise UserFileError(f"{data}: no such data folder (format {requested})")
        return requested
    if data == DIGITS:
        return DIGITS
    root = Path(data)
    if not root.exists():
        raise UserFileError(f"{data}: no such data folder; give a folder with train/ and val/ "
                            f"class folders, a Downsampled ImageNet folder, or 'digits'")
    if not root.is_dir():
        raise UserFileError(f"{data}: is a file; expected a data folder or 'digits'")
    if datasets.is_downsampled_imagenet(root):
        return "downsampled-imagenet"
    if (root / "train").is_dir() or (root / "val").is_dir():
        return "imagefolder"
    raise UserFileError(f"{data}: cannot tell the layout: expected train/ and val/ class folders "
                        f"(ImageFolder) or train_data_batch_<n> and val_data files (Downsampled "
                        f"ImageNet); pass --format to say which")


def check_data(config: TrainConfig, command: str) -> str:
    """The layout of ``config.data``, checked (and its extra found) before anything is made."""
    data_format = detect_format(config.data, config.format)
    if data_format == DIGITS:
        require("digits", command, ("sklearn",))
    return data_format


def default_augmentation(config: TrainConfig, data_format: str) -> TrainConfig:
    """Fill the augmentation fields left unset: the ImageNet recipe, or milder for digits."""
    update: dict[str, object] = {}
    if config.crop_scale is None:
        update["crop_scale"] = (0.6, 1.0) if data_format == DIGITS else (0.08, 1.0)
    if config.hflip is None:
        update["hflip"] = data_format != DIGITS
    return config.model_copy(update=update) if update else config


def _view(config: TrainConfig, size: tuple[int, int], channels: int,
          train: bool) -> datasets.ViewSettings:
    augmentation = None
    if train:
        augmentation = datasets.Augmentation(tuple(config.crop_scale or (0.08, 1.0)),
                                             tuple(config.crop_ratio), bool(config.hflip))
    return datasets.ViewSettings(size, channels, config.eval_crop_fraction, augmentation,
                                 tuple(config.mean), tuple(config.std))


def build_splits(config: TrainConfig, size: tuple[int, int], channels: int,
                 model_classes: int, splits: tuple[str, ...] = ("train", "val")) -> DataSplits:
    """The train and val data sets at the model's input size; class counts must agree."""
    data_format = detect_format(config.data, config.format)
    config = default_augmentation(config, data_format)
    built: dict[str, torch.utils.data.Dataset] = {}
    names: tuple[str, ...] | None = None
    if data_format == DIGITS:
        names = tuple(str(digit) for digit in range(10))
        arrays = datasets.digits_split(size, config.val_fraction)
        classes = 10
        for split in splits:
            images, labels = arrays[split]
            built[split] = datasets.ArrayDataset(images, labels, [str(n) for n in range(10)],
                                                 _view(config, size, channels, split == "train"),
                                                 DIGITS)
    elif data_format == "downsampled-imagenet":
        for split in splits:
            built[split] = datasets.downsampled_imagenet(
                Path(config.data), split, _view(config, size, channels, split == "train"),
                classes=1000)
        classes = 1000
        names = imagenet_class_names()
    else:
        root = Path(config.data)
        folders = datasets.image_folder_classes(root)
        names = tuple(folders)
        classes = len(folders)
        for split in splits:
            folder = root / split
            if not folder.is_dir():
                raise UserFileError(f"{folder}: missing; an ImageFolder data set needs "
                                    f"{root}/train/<class>/ and {root}/val/<class>/")
            built[split] = datasets.ImageFolderDataset(
                folder, folders, _view(config, size, channels, split == "train"))
    if classes != model_classes:
        raise UserFileError(
            f"{config.data}: the data set has {classes} classes but the model's readout has "
            f"{model_classes} (readout.classes in the spec); use a spec whose readout matches "
            f"the data")
    return DataSplits(built.get("train"), built.get("val"), classes, data_format, names)
