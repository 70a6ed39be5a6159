"""The training config: YAML file, flags on top, resume rules, and the flags made from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnc.errors import UserFileError

pytest.importorskip("torch")

from mnc_backends.torch.training.config import (  # noqa: E402
    TrainConfig,
    apply_resume_overrides,
    build_config,
    load_config_file,
)

pytestmark = pytest.mark.torch


def test_defaults_follow_the_published_recipe():
    config = TrainConfig()
    assert (config.lr, config.momentum, config.weight_decay, config.batch_size) == \
        (0.01, 0.9, 1e-4, 256)
    assert config.crop_scale is None  # resolved per data set: (0.08, 1) for ImageNet


def test_flags_override_the_yaml_file(tmp_path: Path):
    file = tmp_path / "train.yaml"
    file.write_text("lr: 0.1\nepochs: 7\ncrop_scale: [0.5, 1.0]\n")
    config = build_config(load_config_file(file), {"lr": 0.2, "epochs": None})
    assert (config.lr, config.epochs, config.crop_scale) == (0.2, 7, (0.5, 1.0))


def test_unknown_field_names_the_file_and_field(tmp_path: Path):
    file = tmp_path / "train.yaml"
    file.write_text("learning_rate: 0.1\n")
    with pytest.raises(UserFileError, match=r"train\.yaml: learning_rate: unknown field"):
        load_config_file(file)


def test_bad_value_and_bad_yaml_are_user_errors(tmp_path: Path):
    file = tmp_path / "train.yaml"
    file.write_text("momentum: 1.5\n")
    with pytest.raises(UserFileError, match="momentum"):
        load_config_file(file)
    file.write_text("lr: [0.1\n")
    with pytest.raises(UserFileError, match=r"train\.yaml:\d+:\d+: malformed YAML"):
        load_config_file(file)
    file.write_text("!!python/object:os.system {}\n")
    with pytest.raises(UserFileError, match="tag .* is not allowed"):
        load_config_file(file)


def test_resume_may_extend_epochs_but_not_change_the_recipe():
    stored = TrainConfig(epochs=2)
    assert apply_resume_overrides(stored, {"epochs": 5, "lr": 0.01}, "run/last.pt").epochs == 5
    with pytest.raises(UserFileError, match="cannot change lr"):
        apply_resume_overrides(stored, {"lr": 0.5}, "run/last.pt")


def test_every_config_field_has_a_command_line_flag():
    import argparse

    from mnc.cli.train import add_hyperparameter_flags, hyperparameter_values

    parser = argparse.ArgumentParser()
    add_hyperparameter_flags(parser)
    values = hyperparameter_values(parser.parse_args([]))
    assert values == dict.fromkeys(TrainConfig.model_fields)


def test_duplicate_keys_are_refused_like_in_specs(tmp_path: Path):
    file = tmp_path / "train.yaml"
    file.write_text("lr: 0.1\nepochs: 3\nlr: 0.5\n")
    with pytest.raises(UserFileError, match=r"train\.yaml:3:\d+: duplicate key 'lr'"):
        load_config_file(file)


def test_deeply_nested_config_is_one_message_not_a_recursion_error(tmp_path: Path):
    file = tmp_path / "train.yaml"
    file.write_text("lr: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(UserFileError, match=r"train\.yaml.*nested"):
        load_config_file(file)


def test_config_is_bounded_by_bytes_read_not_by_stat(tmp_path: Path):
    fifo = tmp_path / "train.yaml"
    import os
    import threading

    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as stream:
            try:
                for _ in range(64):
                    stream.write(b"# " + b"x" * 65534 + b"\n")
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with pytest.raises(UserFileError, match="more than"):
        load_config_file(fifo)
    writer.join(timeout=10)
