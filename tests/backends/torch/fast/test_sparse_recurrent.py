"""The sparse kernel on recurrent and upsampled networks: every step of the time schedule in
one program, equal to the unrolled plain path in eval mode (logits and every step's
features), with each step's own BatchNorm statistics folded in, still and clip input, delays
of two steps, upsampled projections as sub-pixel phases; masked taps are not in the program,
and a batch with NaN runs the plain path."""

from __future__ import annotations

import pytest
import torch

import mnc
from mnc.errors import MncError
from mnc.ir import IR
from mnc.lowering.schedule import time_schedule
from mnc_backends.torch import MouseNet
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.bench import randomise_statistics
from mnc_backends.torch.fast.sparse import SparseExecutor, compile_program
from mnc_backends.torch.names import projection_key
from tests.recurrent_irs import inputs_for, randomised, tiny_recurrent, with_recurrence

pytestmark = [pytest.mark.torch,
              pytest.mark.skipif(not native.available(), reason="sparse kernel not built")]

TOLERANCE = 1e-4


def _ir(tiny_ir: IR, which: str) -> IR:
    if which in ("tiny-feedback", "feedback"):
        return mnc.compile_ir(which)
    if which == "with-time":  # upsampled feedback one step late, a lateral loop two
        return tiny_recurrent(steps=4, readout_steps=(1, 3))
    return with_recurrence(tiny_ir, steps=3, clip=which == "clip", readout_steps=(1, 2))


def _assert_close(got: torch.Tensor, expected: torch.Tensor) -> None:
    """Within 1e-4, relative to the activity's size where it exceeds 1 (float32 sums)."""
    assert got.shape == expected.shape
    scale = max(1.0, float(expected.abs().max()))
    torch.testing.assert_close(got, expected, rtol=0, atol=TOLERANCE * scale)


def _per_step_statistics_differ(model: MouseNet) -> bool:
    norm = model.norms["VISp4"]
    return not torch.equal(norm.running_mean[0], norm.running_mean[1])


@pytest.mark.parametrize("which", ["tiny-feedback", "with-time", "still", "clip"])
def test_sparse_equals_the_unrolled_plain_path(tiny_ir, which) -> None:
    ir = _ir(tiny_ir, which)
    model = randomised(ir).eval()
    assert _per_step_statistics_differ(model)
    images = inputs_for(ir, batch=3)
    names = model.population_names()
    with torch.inference_mode():
        expected = model.plain_forward(images)
        expected_features = model.plain_features(images, names)
        model.set_strategy("sparse")
        assert model.dispatcher().choose(images, training=False) == "sparse"
        logits = model(images)
        features = model.features(images)
        part = model.features(images, ["VISp4"])
        single = SparseExecutor(model, threads=1).forward(images)
        shared = SparseExecutor(model, threads=2).forward(images[:1])  # threads share rows
    torch.testing.assert_close(logits, expected, rtol=0, atol=TOLERANCE)
    torch.testing.assert_close(single, expected, rtol=0, atol=TOLERANCE)
    torch.testing.assert_close(shared, expected[:1], rtol=0, atol=TOLERANCE)
    for name, activity in expected_features.items():
        assert activity.shape[1] == ir.dynamics.steps  # (N, T, C, H, W)
        _assert_close(features[name], activity)
    _assert_close(part["VISp4"], expected_features["VISp4"])


@pytest.mark.slow
def test_sparse_equals_plain_on_the_feedback_spec(tiny_ir) -> None:
    """The network at full size, BatchNorm statistics distinct per step. Untrained, its
    activity grows step by step (logits in the thousands by the last step), so the float32
    sums of every strategy differ from float64 by ~1e-7 of that size: compared at 1e-4 of
    it."""
    ir = _ir(tiny_ir, "feedback")
    model = MouseNet(ir).eval()
    randomise_statistics(model, seed=3)
    assert _per_step_statistics_differ(model)
    images = inputs_for(ir, batch=2)
    with torch.inference_mode():
        expected = model.plain_forward(images)
        expected_features = model.plain_features(images, ["VISp2/3", "VISpor5"])
        logits = model.set_strategy("sparse")(images)
        features = model.features(images, ["VISp2/3", "VISpor5"])
    _assert_close(logits, expected)
    for name, activity in expected_features.items():
        _assert_close(features[name], activity)


def test_each_step_folds_its_own_statistics(tiny_ir) -> None:
    """Statistics of step 0 copied to every step change the logits: the program must too."""
    ir = _ir(tiny_ir, "still")
    model = randomised(ir).eval()
    images = inputs_for(ir)
    with torch.inference_mode():
        before = SparseExecutor(model).forward(images)
        for norm in model.norms.values():
            norm.running_mean.copy_(norm.running_mean[:1].expand_as(norm.running_mean))
            norm.running_var.copy_(norm.running_var[:1].expand_as(norm.running_var))
        expected = model.plain_forward(images)
        after = SparseExecutor(model).forward(images)
    torch.testing.assert_close(after, expected, rtol=0, atol=TOLERANCE)
    assert float((after - before).abs().max()) > 1e-3


def test_masked_taps_are_not_in_the_program(tiny_ir) -> None:
    """Huge weights under the masks change nothing, and the direct reads' taps are exactly
    the masks' nonzero ones (upsampled reads: at most that many, fine taps merged)."""
    ir = _ir(tiny_ir, "still")
    model = randomised(ir).eval()
    images = inputs_for(ir)
    with torch.inference_mode():
        expected = SparseExecutor(model).forward(images)
        for conv in model.convs.values():
            conv.weight.masked_fill_(conv.mask == 0, 1e6)
        got = SparseExecutor(model).forward(images)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    # multiply-accumulates per image: the masks' nonzero taps times the target's pixels, for
    # each read the schedule makes; an upsampled read's sub-pixel taps can only be fewer,
    # plus one per pixel and channel that adds its target's scratch grid in
    kept = 0
    for computation in time_schedule(ir).computations:
        target = ir.population(computation.population)
        for read in computation.inputs:
            projection = ir.projection(read.projection)
            conv = model.convs[projection_key(projection.source, projection.target)]
            kept += int(conv.mask.count_nonzero()) * target.height * target.width
        if any(ir.projection(read.projection).upsample > 1 for read in computation.inputs):
            kept += target.channels * target.height * target.width
    program = compile_program(model)
    assert 0 < program.macs <= kept


def test_nan_input_runs_the_plain_path(tiny_ir) -> None:
    ir = _ir(tiny_ir, "clip")
    model = randomised(ir).eval().set_strategy("sparse")
    images = inputs_for(ir)
    images[0, 1, 0, 3, 3] = float("nan")  # frame 1 of the first clip
    with torch.inference_mode():
        expected = model.plain_forward(images)
        logits = model(images)
        features = model.features(images, ["VISp5"])["VISp5"]
    assert torch.equal(torch.isnan(logits), torch.isnan(expected))
    assert bool(torch.isnan(features[0]).any()) and not bool(torch.isnan(features[1]).any())


def test_a_clip_of_the_wrong_length_is_refused_by_shape(tiny_ir) -> None:
    ir = _ir(tiny_ir, "clip")
    model = randomised(ir).eval().set_strategy("sparse")
    images = inputs_for(ir)[:, :2]
    with torch.inference_mode(), pytest.raises(MncError,
                                                     match=r"is not \(N, 3, 3, 32, 32\)"):
        model(images)


def test_a_population_with_no_input_present_rests_at_its_batchnorm_shift() -> None:
    """VISp2/3 reading VISp4 one step late: at step 0 none of its inputs is present, so it
    rests at ReLU(BN(0)), and everything it feeds sees that."""
    ir = tiny_recurrent(steps=3, readout_steps=(0, 2))
    late = [q.model_copy(update={"delay": 1}) if q.name == "VISp4->VISp2/3" else q
            for q in ir.projections]
    ir = ir.model_copy(update={"projections": late})
    assert [read.projection for read in time_schedule(ir, ["VISp2/3"], [0]).at(0)[0].inputs] \
        == []
    model = randomised(ir).eval()
    images = inputs_for(ir)
    with torch.inference_mode():
        expected = model.plain_forward(images)
        expected_features = model.plain_features(images, ["VISp2/3"])["VISp2/3"]
        executor = SparseExecutor(model)
        logits = executor.forward(images)
        features = executor.populations(images, ["VISp2/3"])["VISp2/3"]
    torch.testing.assert_close(logits, expected, rtol=0, atol=TOLERANCE)
    _assert_close(features, expected_features)
    resting = features[:, 0]  # one value per channel, whatever the image
    assert torch.equal(resting, resting[:1, :, :1, :1].expand_as(resting))
    assert float(resting.abs().max()) > 0
