"""Image preprocessing shared by training and ``mnc predict``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnc.errors import UserFileError
from mnc.imaging import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocessing,
    find_images,
    load_image,
    preprocess,
    resized_size,
)


def test_constant_colour_is_normalised_per_channel():
    image = Image.new("RGB", (50, 80), (255, 0, 128))
    array = preprocess(image, Preprocessing(height=16, width=16))
    assert array.shape == (3, 16, 16) and array.dtype == np.float32
    expected = (np.array([1.0, 0.0, 128 / 255]) - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(array[:, 8, 8], expected, atol=1e-5)


def test_shorter_side_is_resized_then_centre_cropped():
    preprocessing = Preprocessing(height=64, width=64)
    assert resized_size((200, 100), preprocessing) == (146, 73)  # floor(64 / 0.875) = 73
    assert resized_size((100, 300), preprocessing) == (73, 219)
    # Left half black, right half white: the centre crop keeps both halves equally.
    pixels = np.zeros((100, 200, 3), dtype=np.uint8)
    pixels[:, 100:] = 255
    array = preprocess(Image.fromarray(pixels), preprocessing)
    bright = array[0] > 0
    assert bright[:, :31].sum() == 0 and bright[:, 33:].all()


def test_grayscale_rgba_and_one_channel_inputs():
    rgba = Image.new("RGBA", (20, 20), (10, 20, 30, 0))
    assert preprocess(rgba, Preprocessing(height=8, width=8)).shape == (3, 8, 8)
    gray = Image.new("L", (20, 20), 255)
    assert preprocess(gray, Preprocessing(height=8, width=8)).shape == (3, 8, 8)
    one = preprocess(gray, Preprocessing(height=8, width=8, channels=1))
    assert one.shape == (1, 8, 8)
    np.testing.assert_allclose(one, (1.0 - np.mean(IMAGENET_MEAN)) / np.mean(IMAGENET_STD),
                               rtol=1e-5)


def test_find_images_filters_and_sorts(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("b/z.JPG", "a.png", "c.jpeg", "notes.txt"):
        Image.new("RGB", (4, 4)).save(tmp_path / name, format="PNG")
    found = find_images([tmp_path])
    assert [path.relative_to(tmp_path).as_posix() for path in found] == ["a.png", "b/z.JPG",
                                                                         "c.jpeg"]
    assert find_images([tmp_path / "notes.txt"]) == [tmp_path / "notes.txt"]
    with pytest.raises(UserFileError, match="missing: no such image file or folder"):
        find_images([tmp_path / "missing"])


def test_unreadable_image_names_the_file(tmp_path):
    path = tmp_path / "fake.jpg"
    path.write_text("not an image")
    with pytest.raises(UserFileError, match="fake.jpg: not a readable image"):
        load_image(path, Preprocessing(height=8, width=8))


@pytest.mark.parametrize("channels", [1, 3])
def test_every_preprocessing_path_normalises_grey_the_same_way(channels):
    """Photos (mnc.imaging), stimulus frames and arrays (mnc.neuro) share one rule: a grey
    frame is replicated for a 3-channel input, averaged statistics for a 1-channel one."""
    pytest.importorskip("torch")
    from mnc.neuro.model_features import Preprocess, prepare_images

    frames = np.full((2, 12, 12), 200, dtype=np.uint8)
    photo = preprocess(Image.fromarray(frames[0]),
                       Preprocessing(height=8, width=8, channels=channels))
    stimulus = prepare_images(frames, 8, 8, channels, "imagenet")
    array = Preprocess(8, 8, channels)(frames)
    mean, std = np.asarray(IMAGENET_MEAN), np.asarray(IMAGENET_STD)
    if channels == 1:
        mean, std = mean.mean(keepdims=True), std.mean(keepdims=True)
    expected = (200 / 255 - mean) / std
    for got in (photo[:, 4, 4], stimulus[0, :, 4, 4], array[1, :, 4, 4]):
        np.testing.assert_allclose(got, expected, rtol=1e-4)
