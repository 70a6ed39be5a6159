"""Recurrent IRs in ONNX: the graph unrolled in time computes what a plain step-by-step
computation does, with merged Convs per step, in float32 and float16, still images or clips."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mnc
from mnc.backend import BackendOptions
from mnc.errors import UserFileError
from mnc.ir import Dynamics
from mnc.lowering.merged import merged_groups
from mnc_backends.onnx import OnnxBackend
from mnc_backends.onnx.runtime import open_model
from tests.backends.onnx.helpers import random_state, reference_forward, run_onnx
from tests.recurrent_irs import FEEDBACK, with_time

pytestmark = [pytest.mark.onnx, pytest.mark.torch]
pytest.importorskip("torch")

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def tiny():
    return mnc.compile_ir("tiny")


def delayed(ir, name, delay):
    """``ir`` with projection ``name`` delayed by ``delay`` steps."""
    return ir.model_copy(update={"projections": [
        q.model_copy(update={"delay": delay}) if q.name == name else q
        for q in ir.projections]})


def with_strided_upsampling(ir):
    """``ir`` plus VISl2/3 -> VISal2/3 read upsampled twofold with stride 2 (same grid)."""
    template = ir.projection("VISl2/3->VISl5")
    source, target = ir.population("VISl2/3"), ir.population("VISal2/3")
    projection = template.model_copy(update={
        "target": target.name, "out_channels": target.channels, "kernel_size": 3,
        "padding_lrtb": (1, 1, 1, 1), "stride": 2, "upsample": 2, "delay": 1})
    assert (source.height * 2 + 2 - 3) // 2 + 1 == target.height
    return ir.model_copy(update={"projections": [*ir.projections, projection]})


def compile_with(ir, state, outputs=(), **extra):
    return OnnxBackend().compile(ir, BackendOptions(outputs=outputs,
                                                    extra={"state_dict": state, **extra}))


def assert_matches(ir, model, images, state):
    expected = reference_forward(ir, state, images)
    got = run_onnx(model, images)
    for name, value in got.items():
        assert value.shape == expected[name].shape, name
        np.testing.assert_allclose(value, expected[name], rtol=0, atol=TOLERANCE, err_msg=name)
    assert np.abs(expected["logits"]).max() > 0.05
    return got


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "per-projection"])
def test_unrolled_graph_matches_the_step_by_step_computation(tiny, merge):
    # Feedback (upsampled, delay 1), a lateral loop (delay 2), and VISp5 whose only input is
    # delayed: it rests at ReLU(BN(0)) at step 0
    ir = delayed(with_time(tiny, steps=4, readout_steps=(1, 3)), "VISp2/3->VISp5", 1)
    ir = with_strided_upsampling(ir)
    state = random_state(ir, seed=2)
    populations = tuple(ir.population_names()[1:])
    model = compile_with(ir, state, populations, merge_convolutions=merge)
    images = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    got = assert_matches(ir, model, images, state)
    assert got["VISp2/3"].shape == (2, 4, 21, 32, 32)
    # The loops matter: the steps differ, and a delayed input really arrives late
    assert np.abs(got["VISp2/3"][:, 3] - got["VISp2/3"][:, 0]).max() > 1e-3
    resting = got["VISp5"][:, 0]
    assert np.ptp(resting, axis=(0, 2, 3)).max() == 0 and np.abs(resting).max() > 0
    ops = [node.op_type for node in model.graph.node]
    groups = merged_groups(ir) if merge else ir.projections
    assert ops.count("Conv") == sum(4 - group.delay for group in groups)
    # The stride-1 feedback folds its upsampling into the kernel; the strided one resizes
    assert ops.count("DepthToSpace") == 4 - ir.projection(FEEDBACK).delay
    assert ops.count("Resize") == 4 - 1
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert json.loads(metadata["mnc.dynamics"])["readout_steps"] == [1, 2, 3]


def test_clip_input_shows_frame_t_at_step_t(tiny, tmp_path):
    ir = with_time(tiny, steps=3).model_copy(update={"dynamics": Dynamics(steps=3,
                                                                          input="clip")})
    state = random_state(ir, seed=4)
    model = compile_with(ir, state, ("VISp4",))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 3, 32, 32]
    clip = np.random.default_rng(1).normal(size=(2, 3, 3, 32, 32)).astype(np.float32)
    got = assert_matches(ir, model, clip, state)
    frozen = np.repeat(clip[:, :1], 3, axis=1)
    assert np.abs(run_onnx(model, frozen)["logits"] - got["logits"]).max() > 1e-3
    path = tmp_path / "clip.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(UserFileError, match=r"clip.onnx: the model takes clips .*steps"):
        open_model(path, "cpu")


def test_float16_unrolled_graph_merges_and_keeps_its_tolerance(tiny):
    ir = with_time(tiny, steps=2, feedback_delay=1, lateral_delay=1)
    state = random_state(ir, seed=5)
    full = compile_with(ir, state, ("VISp2/3",))
    half = compile_with(ir, state, ("VISp2/3",), fp16=True)
    count = [[node.op_type for node in model.graph.node].count("Conv") for model in (full, half)]
    assert count[0] == count[1] < 2 * len(ir.projections)
    images = np.random.default_rng(5).normal(size=(3, 3, 32, 32)).astype(np.float32)
    expected, got = run_onnx(full, images), run_onnx(half, images)
    for name in ("logits", "VISp2/3"):
        scale = max(1.0, float(np.abs(expected[name]).max()))
        assert np.abs(got[name] - expected[name]).max() <= 1e-2 * scale, name




def test_a_graph_holds_only_what_its_outputs_need(tiny):
    """Readout at step 1 of 3 and no exported population: the schedule stops at step 1, and
    the pruned graph still computes what the step-by-step computation does."""
    from tests.recurrent_irs import with_recurrence

    ir = with_recurrence(tiny, steps=3, readout_steps=(1, 1))
    state = random_state(ir, seed=3)
    pruned = compile_with(ir, state)
    full = compile_with(ir, state, tuple(ir.population_names()[1:]))
    images = np.random.default_rng(2).normal(size=(2, 3, 32, 32)).astype(np.float32)
    expected = reference_forward(ir, state, images)["logits"]
    np.testing.assert_allclose(run_onnx(pruned, images)["logits"], expected, rtol=0,
                               atol=TOLERANCE)
    convs = [[node.op_type for node in model.graph.node].count("Conv")
             for model in (pruned, full)]
    assert 0 < convs[0] < convs[1]
    assert not any(node.output[0].endswith("@2") for node in pruned.graph.node)
