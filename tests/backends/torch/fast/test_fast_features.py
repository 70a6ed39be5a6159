"""``features`` by the fast strategies: every population's activity equals the plain path's."""

from __future__ import annotations

import copy

import pytest
import torch

from mnc.lowering.schedule import time_schedule
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.merged import MergedExecutor
from mnc_backends.torch.module import INPUT, MouseNet
from tests.backends.torch.fast.helpers import images_for, model_pair
from tests.conftest import DEFAULT_SPEC, SPECS, TINY_SPEC

pytestmark = pytest.mark.torch

TOLERANCE = 1e-5
"""Of a population's largest activity (or absolute, below 1): float32 sums in another order
differ by a few ulps of it, and activity reaches about 100 in these networks."""
SPECS_TESTED = [TINY_SPEC, SPECS / "variants" / "no-vispor.yaml"]
FAST = ["merged"] + (["sparse"] if native.available() else [])
needs_native = pytest.mark.skipif(not native.available(),
                                  reason=f"sparse kernel not built: {native.unavailable_reason()}")


def _names(model: MouseNet) -> list[str]:
    return [name for name in model.ir.population_names() if name != INPUT]


def _spy(monkeypatch: pytest.MonkeyPatch, cls: type, method: str) -> list[tuple]:
    """Record the arguments of every call to ``cls.method`` (still calling it)."""
    calls: list[tuple] = []
    original = getattr(cls, method)

    def spy(self, *args):  # noqa: ANN001, ANN002, ANN202
        calls.append(args)
        return original(self, *args)

    monkeypatch.setattr(cls, method, spy)
    return calls


def _check_equal(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert list(got) == list(expected)
    for name, activity in expected.items():
        assert got[name].shape == activity.shape, name
        difference = float((got[name] - activity).detach().abs().max())
        scale = max(1.0, float(activity.detach().abs().max()))
        assert difference <= TOLERANCE * scale, (name, difference, scale)


def _sparse_executor_class() -> type:
    from mnc_backends.torch.fast.sparse import SparseExecutor

    return SparseExecutor


@pytest.mark.parametrize("strategy", FAST)
@pytest.mark.parametrize("spec", SPECS_TESTED, ids=lambda path: path.stem)
@pytest.mark.parametrize("batch", [1, 5])
def test_every_population_equals_plain(spec, strategy, batch, monkeypatch):
    model, _ = model_pair(spec)
    executor = MergedExecutor if strategy == "merged" else _sparse_executor_class()
    calls = _spy(monkeypatch, executor, "populations")
    images = images_for(model, batch, seed=batch)
    names = _names(model)
    with torch.inference_mode():
        expected = model.plain_features(images, names)
        got = model.set_strategy(strategy).eval().features(images, names)
    assert len(calls) == 1  # the fast strategy computed them, not the plain path
    _check_equal(got, expected)


@pytest.mark.parametrize("strategy", FAST)
def test_non_square_populations(strategy, write_variant, monkeypatch):
    spec = write_variant({"input": {"height_px": 24, "width_px": 40, "source": "test"}},
                         base=TINY_SPEC)
    model, _ = model_pair(spec)
    executor = MergedExecutor if strategy == "merged" else _sparse_executor_class()
    calls = _spy(monkeypatch, executor, "populations")
    images = images_for(model, 3)
    names = ["VISp5", INPUT, "VISl4", "VISp5"]  # any order, the image, a repeated name
    with torch.inference_mode():
        got = model.set_strategy(strategy).eval().features(images, names)
        expected = model.plain_features(images, names)
    assert len(calls) == 1
    assert got[INPUT] is images
    _check_equal(got, expected)


@needs_native
@pytest.mark.parametrize(("height", "width"), [(26, 40), (26, 56), (14, 98)])
def test_stride_two_populations_of_every_row_width(height, width, write_variant):
    """The kernel splits a stride-2 population's rows into phase rows 32 floats at a time,
    masking the rest: row widths that leave 8, 24 and 2 floats after the last whole 32 (the
    tiny spec has populations with both parities of left padding) equal the plain path."""
    spec = write_variant({"input": {"height_px": height, "width_px": width, "source": "test"}},
                         base=TINY_SPEC)
    model, _ = model_pair(spec)
    images = images_for(model, 2)
    names = _names(model)
    with torch.inference_mode():
        got = model.set_strategy("sparse").eval().features(images, names)
        expected = model.plain_features(images, names)
    _check_equal(got, expected)


def test_auto_features_take_the_forward_strategy(monkeypatch):
    model = copy.deepcopy(model_pair(TINY_SPEC)[0])
    images = images_for(model, 2)
    chosen = model.dispatcher().choose
    sparse = (_spy(monkeypatch, _sparse_executor_class(), "populations")
              if native.available() else [])
    merged = _spy(monkeypatch, MergedExecutor, "populations")
    with torch.inference_mode():
        strategy = chosen(images)
        model.features(images, ["VISp5"])
    assert (len(sparse), len(merged)) == ((1, 0) if strategy == "sparse" else (0, 1))
    model.set_strategy("plain")
    with torch.inference_mode():
        model.features(images, ["VISp5"])
    assert len(sparse) + len(merged) == 1


@needs_native
def test_sparse_features_program_computes_only_the_ancestors():
    from mnc_backends.torch.fast.sparse import compile_program

    model, _ = model_pair(DEFAULT_SPEC)
    wanted = ["VISp4", "VISl4"]
    program = compile_program(model, wanted)
    sizes = [model.ir.population(name) for name in wanted]
    assert program.features == sum(p.channels * p.height * p.width for p in sizes)
    computed = {item.population for item in time_schedule(model.ir, wanted, [0]).computations}
    assert "VISpor5" not in computed
    expected_taps = 0
    with torch.no_grad():
        for projection in model.ir.projections:
            if projection.target in computed:
                conv = model.conv(projection.name)
                expected_taps += int(((conv.effective_mask() != 0) & (conv.weight != 0)).sum())
    assert program.taps == expected_taps
    assert program.taps < compile_program(model).taps


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_training_mode_features_touch_only_the_ancestors_statistics(grad, monkeypatch):
    """Under the CPU training strategy (sparse, or merged without the kernel), BatchNorm
    statistics change as under plain: only those of the requested populations and their
    ancestors."""
    from mnc_backends.torch.fast.sparse_train import SparseTrainer

    shared, _ = model_pair(TINY_SPEC)
    fast, plain = copy.deepcopy(shared).train(), copy.deepcopy(shared).train()
    executor = SparseTrainer if native.available() else MergedExecutor
    calls = _spy(monkeypatch, executor, "populations")
    images = images_for(shared, 4, seed=3)
    with torch.set_grad_enabled(grad):
        got = fast.features(images, ["VISl4"])
        expected = plain.plain_features(images, ["VISl4"])
    assert len(calls) == 1
    _check_equal(got, expected)
    for key, norm in fast.norms.items():
        torch.testing.assert_close(norm.running_mean, plain.norms[key].running_mean,
                                   atol=1e-5, rtol=1e-4, msg=key)
    untouched = shared.norms["VISpor5"].running_mean
    assert torch.equal(fast.norms["VISpor5"].running_mean, untouched)
    if grad:
        got["VISl4"].sum().backward()
        assert fast.convs["LGNd__VISp4"].weight.grad is not None


@pytest.mark.slow
@needs_native
def test_default_spec_every_population_under_sparse():
    model, _ = model_pair(DEFAULT_SPEC)
    images = images_for(model, 2)
    names = _names(model)
    with torch.inference_mode():
        _check_equal(model.set_strategy("sparse").eval().features(images, names),
                     model.plain_features(images, names))
