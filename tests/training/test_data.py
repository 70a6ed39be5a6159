"""Data: augmentations, the ImageFolder and Downsampled ImageNet loaders, digits, detection."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnc.errors import UserFileError

torch = pytest.importorskip("torch")

from mnc_backends.torch.training import transforms  # noqa: E402
from mnc_backends.torch.training.config import TrainConfig  # noqa: E402
from mnc_backends.torch.training.data import build_splits, detect_format  # noqa: E402
from mnc_backends.torch.training.loaders import (  # noqa: E402
    ResumableDistributedSampler,
    ShardSampler,
)

pytestmark = pytest.mark.torch


def test_random_crop_boxes_stay_inside_and_repeat_for_the_same_seed():
    for seed in range(200):
        box = transforms.random_crop_box(37, 53, (0.08, 1.0), (3 / 4, 4 / 3),
                                         torch.Generator().manual_seed(seed))
        top, left, height, width = box
        assert 0 <= top and 0 <= left and top + height <= 37 and left + width <= 53
        assert box == transforms.random_crop_box(37, 53, (0.08, 1.0), (3 / 4, 4 / 3),
                                                 torch.Generator().manual_seed(seed))
    assert transforms.sample_seed(0, 1, 2) != transforms.sample_seed(0, 2, 1)


def test_normalize_batch_matches_the_formula():
    images = torch.tensor([[[[0, 255]], [[51, 102]], [[255, 0]]]], dtype=torch.uint8)
    out = transforms.normalize_batch(images, (0.5, 0.2, 0.5), (0.5, 0.2, 0.25))
    expected = torch.tensor([[[[-1.0, 1.0]], [[0.0, 1.0]], [[2.0, -2.0]]]])
    assert torch.allclose(out, expected)


def _write_image_folder(root: Path, classes: int, per_class: int) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for label in range(classes):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for number in range(per_class):
                size = (int(rng.integers(20, 50)), int(rng.integers(20, 50)))
                pixels = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
                suffix = ".png" if number % 2 else ".jpg"
                Image.fromarray(pixels).save(folder / f"{number}{suffix}")


def test_image_folder_loader_reads_both_splits_at_the_model_size(tmp_path: Path):
    _write_image_folder(tmp_path, classes=3, per_class=2)
    config = TrainConfig(data=str(tmp_path))
    assert detect_format(str(tmp_path), "auto") == "imagefolder"
    splits = build_splits(config, (16, 16), 3, model_classes=3)
    assert len(splits.train) == 6 and len(splits.val) == 6
    image, label = splits.train[(5, 123)]
    assert image.dtype == torch.uint8 and image.shape == (3, 16, 16) and label == 2
    assert torch.equal(image, splits.train[(5, 123)][0])  # same seed, same augmentation
    evaluated, _ = splits.val[0]
    assert evaluated.dtype == torch.float32 and evaluated.shape == (3, 16, 16)


def test_class_count_must_match_the_model(tmp_path: Path):
    _write_image_folder(tmp_path, classes=3, per_class=1)
    with pytest.raises(UserFileError, match="3 classes but the model's readout has 10"):
        build_splits(TrainConfig(data=str(tmp_path)), (16, 16), 3, model_classes=10)


def _batch(rows: int, side: int, first_label: int) -> dict[str, object]:
    rng = np.random.default_rng(rows)
    return {"data": rng.integers(0, 255, (rows, 3 * side * side), dtype=np.uint8),
            "labels": [first_label + row % 5 for row in range(rows)]}


def test_downsampled_imagenet_reads_pickled_and_npz_batches(tmp_path: Path):
    first, second, val = _batch(4, 8, 1), _batch(3, 8, 996), _batch(2, 8, 1)
    with open(tmp_path / "train_data_batch_1", "wb") as stream:
        pickle.dump(first, stream)
    np.savez(tmp_path / "train_data_batch_2.npz", data=second["data"],
             labels=np.asarray(second["labels"]))
    with open(tmp_path / "val_data", "wb") as stream:
        pickle.dump(val, stream)
    assert detect_format(str(tmp_path), "auto") == "downsampled-imagenet"
    config = TrainConfig(data=str(tmp_path), eval_crop_fraction=1.0)  # no resampling at eval
    splits = build_splits(config, (8, 8), 3, model_classes=1000)
    assert len(splits.train) == 7 and len(splits.val) == 2
    image, label = splits.train[(0, 1)]
    assert image.shape == (3, 8, 8) and label == 0  # labels in the files start at 1
    assert splits.train[(6, 1)][1] == 997
    plane = torch.from_numpy(first["data"][1].reshape(3, 8, 8))  # R, G, B planes
    evaluated, _ = splits.train[1]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    assert torch.allclose(evaluated * std + mean, plane.float() / 255, atol=1e-4)


def test_downsampled_imagenet_refuses_pickles_that_run_code(tmp_path: Path):
    class Exploit:
        def __reduce__(self):
            return (print, ("owned",))

    with open(tmp_path / "val_data", "wb") as stream:
        pickle.dump({"data": Exploit(), "labels": [1]}, stream)
    with pytest.raises(UserFileError, match="refusing to load builtins.print"):
        build_splits(TrainConfig(data=str(tmp_path), format="downsampled-imagenet"), (8, 8), 3,
                     1000, splits=("val",))


def test_digits_split_is_stratified_and_fixed():
    config = TrainConfig(data="digits")
    first = build_splits(config, (32, 32), 3, 10)
    second = build_splits(config.model_copy(update={"seed": 9}), (32, 32), 3, 10)
    labels = first.val.labels
    assert len(first.train) + len(first.val) == 1797
    assert np.array_equal(labels, second.val.labels)
    assert all(30 <= int((labels == digit).sum()) <= 40 for digit in range(10))
    image, _ = first.train[(0, 5)]
    assert image.shape == (3, 32, 32) and torch.equal(image[0], image[1])


def test_missing_or_unknown_data_is_a_clear_error(tmp_path: Path):
    with pytest.raises(UserFileError, match="no such data folder"):
        detect_format(str(tmp_path / "nope"), "auto")
    (tmp_path / "stuff.txt").write_text("x")
    with pytest.raises(UserFileError, match="cannot tell the layout"):
        detect_format(str(tmp_path), "auto")


def test_samplers_split_items_over_ranks_and_resume_inside_an_epoch():
    data = list(range(10))
    ranks = [ResumableDistributedSampler(data, 2, rank, seed=1) for rank in range(2)]
    for sampler in ranks:
        sampler.set_epoch(4)
    items = [list(sampler) for sampler in ranks]
    assert sorted(index for part in items for index, _ in part) == data
    ranks[0].start_at(3)
    assert list(ranks[0]) == items[0][3:]
    assert list(ranks[0]) == items[0]  # the skip applies once
    assert sorted(list(ShardSampler(7, 3, 0)) + list(ShardSampler(7, 3, 1))
                  + list(ShardSampler(7, 3, 2))) == list(range(7))
