"""``mnc.train`` / ``mnc.evaluate`` / ``mnc.save`` / ``mnc.load`` from Python, as the README shows
them: a user's own TensorDataset, a DataLoader, a named data set, and the checks that stop a
mistake before any run folder is made."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import mnc
from mnc.errors import MncError, UsageError

torch = pytest.importorskip("torch")

FAST = {"epochs": 1, "batch_size": 8, "max_steps_per_epoch": 1, "device": "cpu", "workers": 0,
        "progress": False}


@pytest.fixture(scope="module")
def tiny_data():
    ir = mnc.compile("tiny", backend="ir")
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (24, ir.input.channels, ir.input.height, ir.input.width),
                           dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, ir.readout.classes, (24,), generator=generator)
    return ir, torch.utils.data.TensorDataset(images, labels)


def test_a_users_tensor_dataset_trains_saves_and_loads(tiny_data, tmp_path: Path):
    ir, dataset = tiny_data
    untrained = mnc.compile(ir)
    before = {key: value.clone() for key, value in untrained.state_dict().items()}
    trained = mnc.train(untrained, dataset, output=tmp_path / "run", lr=0.5, **FAST)
    assert trained.ir.content_hash == ir.content_hash
    changed = [key for key, value in trained.state_dict().items()
               if value.dtype.is_floating_point and not torch.equal(value, before[key])]
    assert changed  # one SGD step moved the weights it started from
    assert not (tmp_path / "run" / ".mnc-train.lock").exists()  # no lock outlives its run
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 1

    result = mnc.evaluate(trained, dataset, batch_size=8)
    assert result["images"] == len(dataset) and 0.0 <= result["top1"] <= result["top5"] <= 1.0

    saved = mnc.save(trained, tmp_path / "model.pt")
    again = mnc.load(saved)
    for key, value in trained.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    assert mnc.evaluate(tmp_path / "model.pt", dataset, batch_size=8)["top1"] == result["top1"]


def test_a_dataloader_sets_the_batch_and_no_output_leaves_no_folder(tiny_data, tmp_path):
    ir, dataset = tiny_data
    loader = torch.utils.data.DataLoader(dataset, batch_size=4)
    settings = {key: value for key, value in FAST.items() if key != "batch_size"}
    model = mnc.train("tiny", loader, dataset, **settings)
    assert isinstance(model, torch.nn.Module)


def test_wrong_images_labels_or_data_are_refused_before_training(tiny_data, tmp_path):
    ir, dataset = tiny_data
    wrong_size = torch.utils.data.TensorDataset(torch.zeros(4, 3, 8, 8), torch.zeros(4).long())
    with pytest.raises(UsageError, match=r"shape \(3, 8, 8\).*\(channels, height, width\)"):
        mnc.train("tiny", wrong_size, output=tmp_path / "a", **FAST)
    wrong_label = torch.utils.data.TensorDataset(dataset.tensors[0][:4],
                                                 torch.full((4,), ir.readout.classes))
    with pytest.raises(UsageError, match="label 10.*labels 0 to 9"):
        mnc.train("tiny", wrong_label, output=tmp_path / "b", **FAST)
    with pytest.raises(UsageError, match="expected a torch Dataset"):
        mnc.train("tiny", 42, output=tmp_path / "c", **FAST)
    with pytest.raises(MncError, match="no such data folder"):
        mnc.train("tiny", str(tmp_path / "missing"), output=tmp_path / "d", **FAST)
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_digits_without_scikit_learn_stops_before_the_run_folder(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "sklearn" else real(name, *rest))
    with pytest.raises(MncError, match=r"needs sklearn.*pip install 'mnc\[digits\]'"):
        mnc.train("tiny", "digits", output=tmp_path / "run", **FAST)
    assert not (tmp_path / "run").exists()


def test_the_command_line_also_checks_the_extra_first(monkeypatch, tmp_path, capsys):
    from mnc.cli.main import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "sklearn" else real(name, *rest))
    code = main(["train", "tiny", "--data", "digits", "-o", str(tmp_path / "run")])
    assert code != 0 and "mnc[digits]" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_digits_without_epochs_says_it_runs_the_imagenet_recipe(monkeypatch, tmp_path):
    pytest.importorskip("sklearn", reason="digits needs scikit-learn (the digits extra)")
    from mnc_backends.torch.training import trainer

    class Started(Exception):
        pass

    def stop(*args, **kwargs):
        raise Started

    monkeypatch.setattr(trainer, "_train", stop)
    said: list[str] = []
    with pytest.raises(Started):
        trainer.train("tiny", tmp_path / "a", overrides={"data": "digits"}, announce=said.append)
    assert "ImageNet recipe's 90 epochs unless --epochs" in said[-1]
    said.clear()
    with pytest.raises(Started):
        trainer.train("tiny", tmp_path / "b", overrides={"data": "digits", "epochs": 3},
                      announce=said.append)
    assert len(said) == 1 and "3 epochs" in said[0]
