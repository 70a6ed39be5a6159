"""Image augmentations in torch and PIL (torchvision cannot be installed beside our torch).

Every random choice draws from a ``torch.Generator`` seeded per sample (see ``sample_seed``), so
the augmented data stream is a pure function of (seed, epoch, sample index): it does not depend
on the number of loader workers or processes, and a resumed run sees exactly the same images.
Datasets return uint8 (C, H, W) tensors; conversion to float and normalisation happen on the
training device, per batch (``normalize_batch``), which moves four times fewer bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

Box = tuple[int, int, int, int]  # top, left, height, width

_MASK64 = (1 << 64) - 1


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for one sample in one epoch (splitmix64 finaliser)."""
    value = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (value ^ (value >> 31)) >> 1


def random_crop_box(height: int, width: int, scale: Sequence[float], ratio: Sequence[float],
                    generator: torch.Generator) -> Box:
    """A box covering a random share ``scale`` of the area with aspect ratio in ``ratio``.

    Tries ten draws (area uniform, log-ratio uniform); if none fits, falls back to the largest
    centred box whose ratio is within range. This is the Inception-style crop of the recipe.
    """
    area = height * width
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        draws = torch.rand(2, generator=generator).tolist()
        target_area = area * (scale[0] + (scale[1] - scale[0]) * draws[0])
        aspect = math.exp(log_low + (log_high - log_low) * draws[1])
        crop_width = int(round(math.sqrt(target_area * aspect)))
        crop_height = int(round(math.sqrt(target_area / aspect)))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            top = int(torch.randint(0, height - crop_height + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - crop_width + 1, (1,), generator=generator))
            return top, left, crop_height, crop_width
    in_ratio = width / height
    if in_ratio < ratio[0]:
        crop_width, crop_height = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        crop_height, crop_width = height, int(round(height * ratio[1]))
    else:
        crop_width, crop_height = width, height
    return (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width


def crop_resize_tensor(image: torch.Tensor, box: Box, size: tuple[int, int]) -> torch.Tensor:
    """Crop a uint8 (C, H, W) tensor to ``box`` and resize it (bilinear, antialiased) to uint8."""
    top, left, height, width = box
    crop = image[:, top:top + height, left:left + width]
    if (height, width) == tuple(size):
        return crop.contiguous()
    resized = F.interpolate(crop.unsqueeze(0).float(), size=size, mode="bilinear",
                            align_corners=False, antialias=True)
    return resized.squeeze(0).round_().clamp_(0, 255).to(torch.uint8)


def crop_resize_pil(image: Image.Image, box: Box, size: tuple[int, int]) -> torch.Tensor:
    """Crop and resize a PIL image in one PIL call, returned as a uint8 (3, H, W) tensor."""
    top, left, height, width = box
    resized = image.convert("RGB").resize((size[1], size[0]), Image.Resampling.BILINEAR,
                                          box=(left, top, left + width, top + height))
    array = torch.frombuffer(bytearray(resized.tobytes()), dtype=torch.uint8)
    return array.view(size[0], size[1], 3).permute(2, 0, 1).contiguous()


def maybe_flip(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror left-right with probability 1/2."""
    if float(torch.rand(1, generator=generator)) < 0.5:
        return image.flip(-1)
    return image


def normalize_batch(images: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                    channels_last: bool = False) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 normalised, on the device the batch already lives on.

    Float batches (evaluation items, already normalised by mnc.imaging) pass through.
    """
    if images.dtype == torch.uint8:
        mean_t = torch.tensor(mean, device=images.device, dtype=torch.float32)
        std_t = torch.tensor(std, device=images.device, dtype=torch.float32)
        if images.shape[1] == 1 and mean_t.numel() > 1:  # as mnc.imaging does for grey input
            mean_t, std_t = mean_t.mean(0, keepdim=True), std_t.mean(0, keepdim=True)
        scaled = images.float().div_(255.0).sub_(mean_t.view(1, -1, 1, 1)).div_(
            std_t.view(1, -1, 1, 1))
    else:
        scaled = images.float()
    if channels_last:
        scaled = scaled.contiguous(memory_format=torch.channels_last)
    return scaled
