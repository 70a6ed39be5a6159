"""Fresh weights: one definition from (IR, seed), reproducible, mask-aware."""

from __future__ import annotations

import numpy as np
import pytest

import mnc
from mnc.lowering.fresh_weights import fresh_weights
from mnc.lowering.weights_format import payload_schema
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def ir():
    return mnc.compile_ir(ROOT / "specs" / "variants" / "tiny.yaml")


def test_every_tensor_of_the_schema_with_its_shape_and_dtype(ir):
    weights = fresh_weights(ir)
    schema = payload_schema(ir)
    assert list(weights) == list(schema)
    for name, spec in schema.items():
        assert weights[name].shape == spec.shape and weights[name].dtype == spec.dtype, name


def test_same_seed_same_weights_other_seed_other_weights(ir):
    first, again, other = fresh_weights(ir), fresh_weights(ir), fresh_weights(ir, seed=7)
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not np.array_equal(first["classifier.weight"], other["classifier.weight"])


def test_masked_taps_start_at_zero_and_kept_taps_are_he_scaled(ir):
    weights = fresh_weights(ir)
    name = max((n for n in weights if n.endswith(".mask")), key=lambda n: weights[n].sum())
    key = name.removesuffix(".mask")
    mask, weight = weights[name], weights[f"{key}.weight"]
    assert np.all(weight[mask == 0] == 0) and np.all(weights[f"{key}.bias"] == 0)
    fan_in = (mask ** 2).sum() / mask.shape[0]
    assert weight[mask != 0].std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.25)


def test_batchnorm_starts_at_identity(ir):
    weights = fresh_weights(ir)
    norm = next(n.removesuffix(".running_var") for n in weights if n.endswith(".running_var"))
    assert np.all(weights[f"{norm}.weight"] == 1) and np.all(weights[f"{norm}.bias"] == 0)
    assert np.all(weights[f"{norm}.running_mean"] == 0)
    assert np.all(weights[f"{norm}.running_var"] == 1)
