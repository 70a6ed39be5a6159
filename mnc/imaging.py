"""Image files -> network input arrays, shared by training and ``mnc predict``.

Both sides must turn a photo into exactly the same numbers, or a deployed model sees inputs it
was never trained on. Evaluation preprocessing (the ImageNet convention): scale the image so
that its shorter side is ``floor(size / crop_fraction)``, cut the centre ``height x width``
window, scale pixel values to [0, 1] and normalise every channel with the ImageNet mean and
standard deviation. numpy and PIL only (no torch), so a deployment needs neither torch nor
the training code.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnc.errors import UserFileError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
"""Suffixes picked up when a folder is given (case-insensitive)."""
IMAGE_FORMATS = ("PNG", "JPEG")
"""The only decoders Pillow may use, whatever a file's name or first bytes say: other plug-ins
(EPS, for one, which starts Ghostscript) never see a user's file."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EVAL_CROP_FRACTION = 0.875
"""Share of the resized shorter side kept by the centre crop (224 of 256 in ImageNet use)."""


@dataclass(frozen=True)
class Preprocessing:
    """Everything that decides how a photo becomes an input array (stored in ONNX metadata)."""

    height: int
    width: int
    channels: int = 3
    crop_fraction: float = EVAL_CROP_FRACTION
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def channel_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and std for this input (see ``channel_statistics``)."""
        return channel_statistics(self.channels, self.mean, self.std)


def channel_statistics(
    channels: int,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per input channel, float32 arrays of length ``channels``.

    A one-channel (grey) input gets the average of the three colour statistics, since a grey
    value stands for all three channels at once; grey images fed to a three-channel input are
    replicated to every channel first and then use the per-channel statistics as they are.
    Other channel counts repeat the given statistics cyclically.
    """
    mean_array = np.asarray(mean, dtype=np.float32)
    std_array = np.asarray(std, dtype=np.float32)
    if channels == 1 and mean_array.size == 3:
        return mean_array.mean(keepdims=True), std_array.mean(keepdims=True)
    return np.resize(mean_array, channels), np.resize(std_array, channels)


def resized_size(image_size: tuple[int, int], preprocessing: Preprocessing) -> tuple[int, int]:
    """(width, height) the image is scaled to before the centre crop."""
    image_width, image_height = image_size
    need_height = max(preprocessing.height,
                      math.floor(preprocessing.height / preprocessing.crop_fraction))
    need_width = max(preprocessing.width,
                     math.floor(preprocessing.width / preprocessing.crop_fraction))
    scale = max(need_height / image_height, need_width / image_width)
    return (max(need_width, round(image_width * scale)),
            max(need_height, round(image_height * scale)))


def preprocess(image: Image.Image, preprocessing: Preprocessing) -> np.ndarray:
    """One PIL image -> (channels, height, width) float32, normalised."""
    if preprocessing.channels not in (1, 3):
        raise UserFileError(f"images can feed a 1- or 3-channel input, not "
                            f"{preprocessing.channels} channels")
    image = image.convert("L" if preprocessing.channels == 1 else "RGB")
    width, height = resized_size(image.size, preprocessing)
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    left = round((width - preprocessing.width) / 2)
    top = round((height - preprocessing.height) / 2)
    image = image.crop((left, top, left + preprocessing.width, top + preprocessing.height))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    mean, std = preprocessing.channel_statistics()
    return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1), dtype=np.float32)


def eight_bit(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit grey ("L") or colour ("RGB") with its information kept.

    Pillow's own ``convert`` clips 16-bit grey to white and drops transparency to whatever
    colour hides under it: 16-bit values are scaled (65535 -> 255), palettes expanded,
    transparent pixels shown over white (as a viewer shows them), CMYK converted to RGB.
    """
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode.startswith("I"):  # 16-bit grey (PNG): I;16, I;16B or I, values 0-65535
        values = np.asarray(image, dtype=np.float64) * (255.0 / 65535.0)
        return Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), "L")
    if mode == "1":
        return image.convert("L")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "RGBa", "La"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(background, image.convert("RGBA"))
        return flat.convert("L" if image.mode.startswith("L") else "RGB")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def read_image(path: str | Path) -> Image.Image:
    """Decode an image file fully (EXIF rotation applied) as 8-bit grey or RGB (``eight_bit``);
    UserFileError naming it if it can't."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as opened:
                opened.load()
                return eight_bit(ImageOps.exif_transpose(opened))
    except FileNotFoundError:
        raise UserFileError(f"{path}: no such image file") from None
    except UnidentifiedImageError:
        raise UserFileError(f"{path}: not a readable image (not PNG or JPEG, the formats mnc "
                            f"reads)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UserFileError(f"{path}: not a readable image ({error})") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise UserFileError(f"{path}: not a readable image ({error})") from None


def load_image(path: str | Path, preprocessing: Preprocessing) -> np.ndarray:
    """Read and preprocess one image file."""
    return preprocess(read_image(path), preprocessing)


def find_images(paths: Iterable[str | Path]) -> list[Path]:
    """Files given by name are kept as given; folders contribute their PNG/JPEG files
    (recursively, sorted) so results come out in a stable order."""
    found: list[Path] = []
    for each in paths:
        path = Path(each)
        if path.is_dir():
            found.extend(sorted(child for child in path.rglob("*")
                                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise UserFileError(f"{path}: no such image file or folder")
    return found

