"""The strategy registry: it runs exactly the strategies the torch-free name list offers (to the
options, the training config and the CLI), and ``auto`` says why it passes over the strategies
it prefers."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import get_args

import pytest

torch = pytest.importorskip("torch")

import mnc  # noqa: E402
from mnc.strategies import AUTO, DESCRIPTIONS, STRATEGIES  # noqa: E402
from mnc_backends.torch.fast import native  # noqa: E402
from mnc_backends.torch.fast.strategies import AUTO_ORDER, REGISTRY  # noqa: E402

pytestmark = pytest.mark.torch


def test_the_registry_runs_the_listed_strategies() -> None:
    assert (AUTO, *REGISTRY) == STRATEGIES
    assert set(DESCRIPTIONS) == set(STRATEGIES)
    assert {strategy.name for strategy in AUTO_ORDER} == set(REGISTRY)
    assert AUTO_ORDER[-1].name == "plain"  # auto always finds one that runs
    for name, strategy in REGISTRY.items():
        assert strategy.name == name and strategy.description == DESCRIPTIONS[name]


def test_options_config_and_cli_offer_the_listed_names() -> None:
    from mnc.cli.train import add_arguments
    from mnc_backends.torch.backend import TorchOptions
    from mnc_backends.torch.training.config import TrainConfig

    for model in (TorchOptions, TrainConfig):
        assert get_args(model.model_fields["strategy"].annotation) == STRATEGIES
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    choices = next(action.choices for action in parser._actions  # noqa: SLF001
                   if action.dest == "strategy")
    assert tuple(choices) == STRATEGIES


def test_the_name_list_imports_no_torch() -> None:
    code = "import sys, mnc.strategies; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_auto_says_why_it_passes_over_what_it_prefers() -> None:
    model = mnc.compile("tiny-feedback", backend="torch").eval()
    images = torch.rand(2, 3, model.ir.input.height, model.ir.input.width)
    if native.available():
        with torch.inference_mode():  # the kernel runs recurrent networks in inference
            assert model.dispatcher().choose(images) == "sparse"
            assert model.dispatcher().passed_over(images) == []
    model.train()  # with autograd, the batch path wins for feed-forward networks only
    assert model.dispatcher().choose(images) == "merged"
    passed = dict(model.dispatcher().passed_over(images))
    assert passed["sparse"] == ("with autograd, auto runs recurrent and upsampled networks "
                                "with merged") or not native.available()
    assert model.dispatcher().passed_over(images[:0]) == [
        ("sparse", "the batch is empty (nothing to speed up)"),
        ("merged", "the batch is empty (nothing to speed up)")]


def test_auto_passes_over_merged_off_the_cpu_and_sparse_for_float64() -> None:
    model = mnc.compile("tiny", backend="torch").eval().double()
    images = torch.rand(1, 3, model.ir.input.height, model.ir.input.width,
                        dtype=torch.float64)
    with torch.inference_mode():
        passed = dict(model.dispatcher().passed_over(images))
    reason = passed["sparse"]
    if native.available():
        assert reason.startswith("input is torch.float64 on cpu, the kernel needs float32")
    else:
        assert reason.startswith("native kernel unavailable")
    assert "merged" not in passed
    meta = torch.empty(1, 3, model.ir.input.height, model.ir.input.width, device="meta")
    assert REGISTRY["merged"].auto_problem(model.dispatcher(), meta, training=False) == (
        "it is measured on the CPU only, the input is on meta")
