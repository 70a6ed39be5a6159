"""NaN and infinity come out of every strategy exactly where they come out of the plain path.

A NaN pixel or a NaN BatchNorm statistic is a broken input, and hiding it (finite or all-zero
logits) would turn it into a silently wrong result. The plain path is the definition: each
strategy must give NaN, +inf and -inf on exactly the same logits, and the same finite values
elsewhere.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch

from mnc_backends.torch.fast import native
from mnc_backends.torch.module import MouseNet
from tests.backends.torch.fast.helpers import images_for, model_pair
from tests.conftest import TINY_SPEC

pytestmark = pytest.mark.torch

STRATEGIES = ["auto", "merged"] + (["sparse"] if native.available() else [])
TOLERANCE = 1e-4


def _set(tensor: torch.Tensor, index: tuple[int, ...], value: float) -> None:
    with torch.no_grad():
        tensor[index] = value


def _masked_tap(model: MouseNet, kept: bool) -> tuple[str, tuple[int, ...]]:
    """A conv key and the weight index of a tap its mask keeps (or drops)."""
    conv = model.convs["VISp4__VISp2_3"]
    index = tuple(int(i) for i in torch.nonzero(conv.mask != 0 if kept else conv.mask == 0)[0])
    return "VISp4__VISp2_3", index


def _pixel(value: float) -> Callable[[MouseNet, torch.Tensor], None]:
    def edit(model: MouseNet, images: torch.Tensor) -> None:
        images[0, 1, 5, 7] = value  # the second image stays clean

    return edit


def _statistic(field: str) -> Callable[[MouseNet, torch.Tensor], None]:
    def edit(model: MouseNet, images: torch.Tensor) -> None:
        _set(getattr(model.norms["VISl4"], field), (2,), float("nan"))

    return edit


def _weight(value: float, kept: bool) -> Callable[[MouseNet, torch.Tensor], None]:
    def edit(model: MouseNet, images: torch.Tensor) -> None:
        key, index = _masked_tap(model, kept)
        _set(model.convs[key].weight, index, value)

    return edit


CASES = {
    "nan-pixel": _pixel(float("nan")),
    "inf-pixel": _pixel(float("inf")),
    "minus-inf-pixel": _pixel(float("-inf")),
    "nan-running-mean": _statistic("running_mean"),
    "nan-running-var": _statistic("running_var"),
    "nan-bn-weight": _statistic("weight"),
    "nan-kept-weight": _weight(float("nan"), kept=True),
    "nan-masked-weight": _weight(float("nan"), kept=False),
    "inf-masked-weight": _weight(float("inf"), kept=False),
    "huge-pixel": _pixel(3e38),
}


def _pattern(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"nan": torch.isnan(logits), "+inf": torch.isposinf(logits),
            "-inf": torch.isneginf(logits)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_strategy_has_the_plain_paths_nan_and_inf(case):
    clean, _ = model_pair(TINY_SPEC)
    model = copy.deepcopy(clean).eval()
    images = images_for(model, 2, seed=5)
    CASES[case](model, images)
    with torch.inference_mode():
        expected = model.plain_forward(images)
        assert not torch.isfinite(expected).all(), "the case must break the plain path"
        for strategy in STRATEGIES:
            got = model.set_strategy(strategy).eval()(images)
            for kind, where in _pattern(expected).items():
                assert torch.equal(_pattern(got)[kind], where), (case, strategy, kind, got)
            finite = torch.isfinite(expected)
            assert torch.allclose(got[finite], expected[finite], atol=TOLERANCE), (case, strategy)


@pytest.mark.skipif(not native.available(), reason="sparse kernel not built")
def test_sparse_kernel_relu_keeps_nan():
    """The kernel itself propagates NaN (the strategies above could hide a kernel that does
    not by falling back to the plain path)."""
    from mnc_backends.torch.fast.sparse import SparseExecutor

    clean, _ = model_pair(TINY_SPEC)
    images = images_for(clean, 1, seed=5)
    images[0, 0, 10, 10] = float("nan")
    with torch.inference_mode():
        features = SparseExecutor(clean).pooled_features(images)
    assert torch.isnan(features).any()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_pixel_that_no_kept_tap_reads(value):
    """The plain path multiplies every pixel by the masked (zero) taps too, so a NaN or an
    infinity anywhere in the image reaches the logits (0 * inf = NaN); a kernel that skips
    masked taps never sees it. Here no kept tap reads the image's second channel."""
    clean, _ = model_pair(TINY_SPEC)
    model = copy.deepcopy(clean).eval()
    first = model.convs["input__LGNd"]
    with torch.no_grad():
        first.mask[:, 1] = 0
        first.weight[:, 1] = 0
    images = images_for(model, 2, seed=6)
    images[0, 1, 3, 3] = value
    with torch.inference_mode():
        expected = model.plain_forward(images)
        assert torch.isnan(expected[0]).all() and torch.isfinite(expected[1]).all()
        for strategy in STRATEGIES:
            got = model.set_strategy(strategy).eval()(images)
            assert torch.isnan(got[0]).all(), (strategy, got)
            assert torch.allclose(got[1], expected[1], atol=TOLERANCE), strategy


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_features_have_the_plain_paths_nan_and_inf(value):
    clean, _ = model_pair(TINY_SPEC)
    model = copy.deepcopy(clean).eval()
    first = model.convs["input__LGNd"]
    with torch.no_grad():
        first.mask[:, 1] = 0  # no kept tap reads the second channel
        first.weight[:, 1] = 0
    images = images_for(model, 2, seed=6)
    images[0, 1, 3, 3] = value
    names = ["LGNd", "VISp4", "VISl5"]
    with torch.inference_mode():
        expected = model.plain_features(images, names)
        for strategy in STRATEGIES:
            got = model.set_strategy(strategy).eval().features(images, names)
            for name in names:
                for test in (torch.isnan, torch.isposinf, torch.isneginf):
                    assert torch.equal(test(got[name]), test(expected[name])), (strategy, name)
                finite = torch.isfinite(expected[name])
                assert torch.allclose(got[name][finite], expected[name][finite],
                                      atol=TOLERANCE), (strategy, name)
