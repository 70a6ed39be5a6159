"""Data sets for training and evaluation: ImageFolder, Downsampled ImageNet and digits.

A data set item is looked up with ``dataset[(index, seed)]`` during training (random crop and
flip drawn from ``seed``) or ``dataset[index]`` for evaluation (deterministic centre crop). It
returns ``(uint8 tensor (C, H, W), label)`` at the model's input size.

An image file that cannot be read (only PNG and JPEG are, see ``mnc.imaging``) becomes a
placeholder labelled ``UNREADABLE``, named once on stderr: batches keep their shape, also
from loader worker processes, and ``drop_unreadable`` removes and counts the placeholders
where the batch is used, so one bad file costs one image, not the run.
"""

from __future__ import annotations

import io
import pickle
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mnc import imaging
from mnc.errors import UserFileError
from mnc_backends.torch.training import transforms

IMAGE_SUFFIXES = imaging.IMAGE_SUFFIXES
UNREADABLE = -1
"""Label of the placeholder that stands for an image file that could not be read."""
SPLIT_FOLDERS = {"train": "train", "val": "val"}


@dataclass(frozen=True)
class Augmentation:
    """What a training item draws at random; ``None`` for evaluation items."""

    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float]
    hflip: bool


@dataclass(frozen=True)
class ViewSettings:
    """Output size and how an item is cropped."""

    size: tuple[int, int]
    channels: int
    eval_crop_fraction: float
    augmentation: Augmentation | None
    mean: tuple[float, float, float] = imaging.IMAGENET_MEAN
    std: tuple[float, float, float] = imaging.IMAGENET_STD

    def preprocessing(self) -> imaging.Preprocessing:
        """The evaluation pipeline ``mnc predict`` applies to photos (mnc.imaging)."""
        return imaging.Preprocessing(self.size[0], self.size[1], self.channels,
                                     self.eval_crop_fraction, self.mean, self.std)


def _key(item: Any) -> tuple[int, int | None]:
    if isinstance(item, tuple):
        return int(item[0]), int(item[1])
    return int(item), None


def _match_channels(image: torch.Tensor, channels: int, origin: str) -> torch.Tensor:
    if image.shape[0] == channels:
        return image
    if image.shape[0] == 1:
        return image.expand(channels, -1, -1).contiguous()
    if channels == 1:
        return image.float().mean(0, keepdim=True).round().to(torch.uint8)
    raise UserFileError(f"{origin}: images have {image.shape[0]} channels; the model expects "
                        f"{channels}")


class ArrayDataset(torch.utils.data.Dataset):
    """Images held in one uint8 (N, C, H, W) array (in memory or memory-mapped)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: list[str],
                 view: ViewSettings, origin: str):
        self.images = images
        self.labels = labels.astype(np.int64)
        self.classes = classes
        self.view = view
        self.origin = origin

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, item: Any) -> tuple[torch.Tensor, int]:
        index, seed = _key(item)
        image = torch.from_numpy(np.ascontiguousarray(self.images[index]))
        image = _match_channels(image, self.view.channels, self.origin)
        return _apply_view(image, seed, self.view), int(self.labels[index])


def _evaluation_view(image: Image.Image, view: ViewSettings) -> torch.Tensor:
    """Normalised float32 (C, H, W), computed by mnc.imaging exactly as at deployment."""
    return torch.from_numpy(imaging.preprocess(image, view.preprocessing()))


def _to_pil(image: torch.Tensor) -> Image.Image:
    array = image.permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def _apply_view(image: torch.Tensor, seed: int | None, view: ViewSettings) -> torch.Tensor:
    height, width = image.shape[-2:]
    augmentation = view.augmentation
    if seed is None or augmentation is None:
        return _evaluation_view(_to_pil(image), view)
    generator = torch.Generator().manual_seed(seed)
    box = transforms.random_crop_box(height, width, augmentation.crop_scale,
                                     augmentation.crop_ratio, generator)
    image = transforms.crop_resize_tensor(image, box, view.size)
    return transforms.maybe_flip(image, generator) if augmentation.hflip else image


class ImageFolderDataset(torch.utils.data.Dataset):
    """``root/<class>/<image>`` files, decoded with PIL (torchvision's ImageFolder layout)."""

    def __init__(self, folder: Path, classes: list[str], view: ViewSettings):
        self.folder = folder
        self.classes = classes
        self.view = view
        index = {name: number for number, name in enumerate(classes)}
        files: list[str] = []
        labels: list[int] = []
        for class_dir in sorted(path for path in folder.iterdir() if path.is_dir()):
            if class_dir.name not in index:
                raise UserFileError(f"{class_dir}: class folder not present in the training "
                                    f"split; both splits need the same class folders")
            for file in sorted(class_dir.rglob("*")):
                if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
                    files.append(str(file))
                    labels.append(index[class_dir.name])
        if not files:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise UserFileError(f"{folder}: no images found in its class folders "
                                f"(expected files ending in {suffixes})")
        self.files = files
        self.labels = np.asarray(labels, dtype=np.int64)
        self._reported: set[str] = set()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: Any) -> tuple[torch.Tensor, int]:
        index, seed = _key(item)
        path = self.files[index]
        augmentation = self.view.augmentation
        try:
            image = imaging.read_image(path)
        except UserFileError as error:
            return self._unreadable(path, error, seed is None or augmentation is None)
        width, height = image.size
        if seed is None or augmentation is None:
            return _evaluation_view(image, self.view), int(self.labels[index])
        generator = torch.Generator().manual_seed(seed)
        box = transforms.random_crop_box(height, width, augmentation.crop_scale,
                                         augmentation.crop_ratio, generator)
        tensor = transforms.crop_resize_pil(image, box, self.view.size)
        if augmentation.hflip:
            tensor = transforms.maybe_flip(tensor, generator)
        return _match_channels(tensor, self.view.channels, path), int(self.labels[index])

    def _unreadable(self, path: str, error: UserFileError,
                    evaluation: bool) -> tuple[torch.Tensor, int]:
        """A zero image of the type and size a readable file gives, labelled UNREADABLE."""
        if path not in self._reported:  # once per file and process, not every epoch
            self._reported.add(path)
            print(f"skipped {error}", file=sys.stderr, flush=True)
        height, width = self.view.size
        dtype = torch.float32 if evaluation else torch.uint8
        return torch.zeros((self.view.channels, height, width), dtype=dtype), UNREADABLE


def drop_unreadable(images: torch.Tensor, labels: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A batch without its unreadable-image placeholders, and how many there were."""
    keep = labels != UNREADABLE
    dropped = int(keep.numel() - int(keep.sum()))
    if not dropped:
        return images, labels, 0
    return images[keep], labels[keep], dropped


def image_folder_classes(root: Path) -> list[str]:
    train = root / SPLIT_FOLDERS["train"]
    classes = sorted(path.name for path in train.iterdir() if path.is_dir())
    if not classes:
        raise UserFileError(f"{train}: no class folders (expected {train}/<class>/<image>)")
    return classes


# --- Downsampled ImageNet (Chrabaszcz, Loshchilov & Hutter 2017) ------------------------------
# Files: train_data_batch_1 .. train_data_batch_10 and val_data, each a pickled dict (or the
# same dict saved as .npz) with "data" (N, 3 * side * side) uint8, channel planes R, G, B, and
# "labels" 1..1000.

_ALLOWED_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists and numpy arrays only: a data file cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _read_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        if file.suffix == ".npz":
            with np.load(file, allow_pickle=False) as archive:
                data, labels = archive["data"], archive["labels"]
        else:
            with open(file, "rb") as stream:
                content = _NumpyOnlyUnpickler(io.BufferedReader(stream)).load()
            data, labels = content["data"], content["labels"]
    except (OSError, ValueError, KeyError, EOFError, TypeError,
            pickle.UnpicklingError) as error:
        raise UserFileError(f"{file}: not a Downsampled ImageNet batch with 'data' and 'labels' "
                            f"({type(error).__name__}: {error})") from None
    data = np.asarray(data)
    labels = np.asarray(labels).reshape(-1)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[0] != labels.shape[0]:
        raise UserFileError(f"{file}: 'data' must be uint8 (N, 3*side*side) with one label per "
                            f"row, got {data.dtype} {data.shape} and {labels.shape[0]} labels")
    side = int(round((data.shape[1] / 3) ** 0.5))
    if 3 * side * side != data.shape[1]:
        raise UserFileError(f"{file}: rows of {data.shape[1]} values are not 3 square planes")
    return data.reshape(-1, 3, side, side), labels.astype(np.int64) - 1


def _batch_files(root: Path, split: str) -> list[Path]:
    pattern = re.compile(r"^train_data_batch_(\d+)(\.npz)?$" if split == "train"
                         else r"^val_data(\.npz)?$")
    found = [path for path in root.iterdir() if pattern.match(path.name)]

    def order(path: Path) -> int:
        match = pattern.match(path.name)
        return int(match.group(1)) if split == "train" and match else 0

    return sorted(found, key=order)


def is_downsampled_imagenet(root: Path) -> bool:
    return root.is_dir() and bool(_batch_files(root, "train") or _batch_files(root, "val"))


def downsampled_imagenet(root: Path, split: str, view: ViewSettings,
                         classes: int = 1000) -> ArrayDataset:
    """All batches of one split in memory (64x64: 15 GB for train; 12 KB per image)."""
    files = _batch_files(root, split)
    if not files:
        expected = "train_data_batch_<n>[.npz]" if split == "train" else "val_data[.npz]"
        raise UserFileError(f"{root}: no {split} files of Downsampled ImageNet "
                            f"(expected {expected})")
    parts = [_read_batch(file) for file in files]
    images = np.concatenate([part[0] for part in parts])
    labels = np.concatenate([part[1] for part in parts])
    if labels.min() < 0 or labels.max() >= classes:
        raise UserFileError(f"{root}: {split} labels run from {labels.min() + 1} to "
                            f"{labels.max() + 1}; expected 1..{classes}")
    return ArrayDataset(images, labels, [str(number) for number in range(classes)], view,
                        str(root))


# --- digits (scikit-learn, offline) ------------------------------------------------------------

def digits_split(size: tuple[int, int], val_fraction: float) -> dict[str, tuple[np.ndarray,
                                                                              np.ndarray]]:
    """scikit-learn's 8x8 digits upsampled to ``size``, split into train and val.

    The split is stratified by class and drawn from a fixed seed, so every training seed is
    judged on the same held-out images.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    raw = torch.from_numpy(digits.images.astype(np.float32) * (255.0 / 16.0)).unsqueeze(1)
    upsampled = torch.nn.functional.interpolate(raw, size=size, mode="bilinear",
                                                align_corners=False)
    images = upsampled.round().clamp(0, 255).to(torch.uint8).numpy()
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(0)
    val_mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen = rng.permutation(members)[:int(round(len(members) * val_fraction))]
        val_mask[chosen] = True
    return {"train": (images[~val_mask], labels[~val_mask]),
            "val": (images[val_mask], labels[val_mask])}
