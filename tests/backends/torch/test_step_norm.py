"""Recurrent networks keep BatchNorm running statistics per step (one affine map)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import mnc  # noqa: E402
from mnc.lowering.weights_format import check_state  # noqa: E402
from mnc_backends.torch.step_norm import StepBatchNorm2d  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

MICRO_FEEDBACK = ROOT / "tests" / "data" / "micro-feedback.yaml"
WATCHED = ["VISp2/3", "VISp5", "VISl2/3"]


@pytest.fixture(scope="module")
def model():
    return mnc.compile(MICRO_FEEDBACK, backend="torch", strategy="plain")


def test_each_step_in_evaluation_matches_training_once_statistics_settle(model):
    generator = torch.Generator().manual_seed(0)
    size = model.ir.input.height
    for norm in model.norms.values():
        norm.momentum = None  # a cumulative average: the statistics settle within 20 batches
    model.train()
    with torch.no_grad():
        for _ in range(20):
            model.plain_features(torch.rand(16, 3, size, size, generator=generator), WATCHED)
        images = torch.rand(16, 3, size, size, generator=generator)
        trained = model.plain_features(images, WATCHED)
        model.eval()
        evaluated = model.plain_features(images, WATCHED)
    for name in WATCHED:
        for step in range(model.ir.dynamics.steps):
            train_mean = float(trained[name][:, step].mean())
            eval_mean = float(evaluated[name][:, step].mean())
            # shared statistics gave 0.06 to 1.73 of training's here
            assert eval_mean == pytest.approx(train_mean, rel=0.1), (name, step)


def test_the_statistics_differ_by_step_and_the_affine_map_is_shared(model):
    norm = model.norms["VISp2_3"]
    assert isinstance(norm, StepBatchNorm2d)
    steps, channels = model.ir.dynamics.steps, model.ir.population("VISp2/3").channels
    assert norm.running_mean.shape == norm.running_var.shape == (steps, channels)
    assert norm.weight.shape == (channels,)
    assert not isinstance(mnc.compile("tiny", backend="torch").norms["VISp2_3"], StepBatchNorm2d)


def test_statistics_of_the_earlier_format_load_into_every_step():
    model = mnc.compile(MICRO_FEEDBACK, backend="torch")
    state = model.state_dict()
    steps = model.ir.dynamics.steps
    for name in list(state):
        if name.startswith("norms.") and ".running_" in name:
            shared = torch.linspace(0.5, 2.0, state[name].shape[1])
            state[name] = shared if name.endswith("running_var") else 0.1 * shared
    shared = state["norms.VISp5.running_var"]
    check_state(model.ir, state, "old file", strict=True)  # accepted as it is
    fresh = mnc.compile(MICRO_FEEDBACK, backend="torch")
    with pytest.warns(UserWarning, match="copied to every step"):
        fresh.load_state_dict(state)
    assert torch.equal(fresh.norms["VISp5"].running_var, shared.expand(steps, -1))
    assert torch.equal(fresh.norms["VISp5"].running_mean, 0.1 * shared.expand(steps, -1))


def test_folding_reads_each_step_and_the_earlier_format_alike():
    import numpy as np

    from mnc.lowering.batchnorm import fold_projections
    from mnc.lowering.fresh_weights import fresh_weights

    ir = mnc.compile_ir(MICRO_FEEDBACK)
    tensors = fresh_weights(ir)
    shared = dict(tensors)
    for name, value in tensors.items():
        if ".running_" in name:
            rows = np.linspace(0.5, 1.5, value.size, dtype=np.float32).reshape(value.shape)
            tensors[name] = rows
            shared[name] = rows[1]  # (C,): the earlier format, every step alike
    step1, step2 = (fold_projections(ir, tensors, step=step) for step in (1, 2))
    from_shared = fold_projections(ir, shared, step=2)
    name = "VISp4->VISp2/3"
    np.testing.assert_array_equal(from_shared[name].weight, step1[name].weight)
    assert not np.allclose(step1[name].weight, step2[name].weight)
