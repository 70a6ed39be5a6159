"""Every floating dtype under every strategy: float16, bfloat16, float32 and float64 models
give the float64 plain path's logits and activity within their precision (``merged`` folds its
weights in float64, numpy having no bfloat16); the sparse kernel computes in float32 only, so
``auto`` runs ``merged`` for the others and forcing ``sparse`` says which strategies run them.
"""

from __future__ import annotations

import copy

import pytest
import torch

from mnc.errors import BackendError
from mnc_backends.torch.fast import native
from tests.backends.torch.fast.helpers import images_for, model_pair
from tests.conftest import TINY_SPEC

pytestmark = pytest.mark.torch

DTYPES = {torch.float16: 1e-2, torch.bfloat16: 6e-2, torch.float32: 1e-5, torch.float64: 1e-12}
"""Largest difference from the float64 plain path, relative to the largest value."""
NAMES = ["VISp4", "VISpor5"]


@pytest.fixture(scope="module")
def reference() -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    model = copy.deepcopy(model_pair(TINY_SPEC)[0]).double()
    images = images_for(model, 2, seed=1)
    with torch.no_grad():
        return (
            images,
            model.plain_forward(images.double()),
            model.plain_features(images.double(), NAMES),
        )


def _close(got: torch.Tensor, expected: torch.Tensor, tolerance: float) -> None:
    relative = float((got.double() - expected).abs().max() / expected.abs().max())
    assert relative <= tolerance, relative


@pytest.mark.parametrize("dtype", list(DTYPES), ids=lambda dtype: str(dtype)[6:])
@pytest.mark.parametrize("strategy", ["auto", "plain", "merged", "sparse"])
def test_inference_in_every_dtype(reference, dtype, strategy):
    images, logits, features = reference
    model = copy.deepcopy(model_pair(TINY_SPEC)[0]).to(dtype).set_strategy(strategy)
    images = images.to(dtype)
    runs_sparse = dtype == torch.float32 and native.available()
    if strategy == "sparse" and not runs_sparse:
        with (
            torch.inference_mode(),
            pytest.raises(
                BackendError,
                match="'merged' and 'plain'" if native.available() else "native kernel",
            ),
        ):
            model(images)
        return
    with torch.inference_mode():
        chosen = model.dispatcher().choose(images, strategy)
        got, activity = model(images), model.features(images, NAMES)
    assert got.dtype == dtype and activity["VISp4"].dtype == dtype
    if strategy == "auto":
        assert chosen == ("sparse" if runs_sparse else "merged")
    _close(got, logits, DTYPES[dtype])
    for name in NAMES:
        _close(activity[name], features[name], DTYPES[dtype])


@pytest.mark.parametrize("dtype", list(DTYPES), ids=lambda dtype: str(dtype)[6:])
def test_training_step_in_every_dtype_merged_against_plain(reference, dtype):
    images = reference[0].to(dtype)
    results = []
    for strategy in ("plain", "merged"):
        model = copy.deepcopy(model_pair(TINY_SPEC)[0]).to(dtype).train()
        logits = model.set_strategy(strategy)(images)
        logits.float().square().mean().backward()
        weight = model.conv("VISp4->VISl4").weight
        results.append((logits.detach(), weight.grad))
    (plain, plain_grad), (merged, merged_grad) = results
    assert bool(torch.isfinite(merged_grad).all())
    _close(merged, plain.double(), DTYPES[dtype] * 10)  # batch statistics over 2 images
    _close(merged_grad, plain_grad.double(), DTYPES[dtype] * 5)  # summed over the batch
