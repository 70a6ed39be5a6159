"""Images keep their information whatever Pillow mode they decode to: 16-bit grey is scaled
(not clipped to white), palettes expanded, transparency shown over white, CMYK converted; the
same numbers reach predict and training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnc.imaging import Preprocessing, load_image, read_image


def _grey16(path: Path, value: int) -> Path:
    Image.fromarray(np.full((8, 8), value, dtype=np.uint16)).save(path)
    return path


@pytest.mark.parametrize("value", [0, 257 * 64, 32768, 65535])
def test_sixteen_bit_grey_is_scaled(tmp_path: Path, value: int) -> None:
    path = _grey16(tmp_path / "grey16.png", value)
    with Image.open(path) as opened:
        assert opened.mode.startswith("I")
    image = read_image(path)
    assert image.mode == "L"
    assert np.asarray(image).max() == round(value / 257)


def test_palette_is_expanded(tmp_path: Path) -> None:
    image = Image.new("P", (4, 4))
    image.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    image.putpixel((1, 1), 1)
    path = tmp_path / "palette.png"
    image.save(path)
    image = read_image(path)
    assert image.mode == "RGB" and tuple(np.asarray(image)[1, 1]) == (200, 100, 50)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparent_pixels_are_shown_over_white(tmp_path: Path, mode: str) -> None:
    channels = 4 if mode == "RGBA" else 2
    pixels = np.zeros((4, 4, channels), dtype=np.uint8)  # black, fully transparent
    pixels[0, 0] = 255 if mode == "LA" else (255, 0, 0, 255)[:channels]  # one opaque pixel
    path = tmp_path / f"{mode}.png"
    Image.fromarray(pixels, mode).save(path)
    array = np.asarray(read_image(path))
    assert np.all(array[2, 2] == 255)  # transparent: white, not the hidden black
    assert tuple(np.atleast_1d(array[0, 0])) == ((255, 0, 0) if mode == "RGBA" else (255,))


def test_palette_with_transparency_is_shown_over_white(tmp_path: Path) -> None:
    image = Image.new("P", (4, 4))
    image.putpalette([0, 0, 0] * 256)
    image.info["transparency"] = 0
    path = tmp_path / "palette-alpha.png"
    image.save(path, transparency=0)
    assert np.all(np.asarray(read_image(path)) == 255)


def test_cmyk_jpeg_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, quality=100)  # red
    image = read_image(path)
    assert image.mode == "RGB"
    red, green, blue = np.asarray(image)[4, 4].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_predict_and_training_see_the_same_sixteen_bit_image(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from mnc_backends.torch.training.datasets import ImageFolderDataset, ViewSettings

    folder = tmp_path / "data" / "cat"
    folder.mkdir(parents=True)
    path = _grey16(folder / "a.png", 32768)
    preprocessing = Preprocessing(height=8, width=8)
    expected = load_image(path, preprocessing)
    assert abs(float(expected[0, 0, 0]) * 0.229 + 0.485 - 128 / 255) < 1e-3
    dataset = ImageFolderDataset(
        tmp_path / "data",
        ["cat"],
        ViewSettings(size=(8, 8), channels=3, eval_crop_fraction=0.875, augmentation=None),
    )
    image, _ = dataset[0]
    torch.testing.assert_close(image, torch.from_numpy(expected))
