"""Merged convolutions: which projections merge, and that the box computes every member."""

from __future__ import annotations

import numpy as np
import pytest

import mnc
from mnc.ir.model import IR
from mnc.lowering.merged import (
    Member,
    MergedGroup,
    box_bias,
    box_weight,
    group_key,
    merged_groups,
    single_groups,
    subpixel_bias,
    subpixel_weight,
)
from tests.recurrent_irs import FEEDBACK, LATERAL, with_time


@pytest.fixture(scope="module")
def recurrent() -> IR:
    return with_time(mnc.compile_ir("tiny"), steps=3, feedback_delay=1, lateral_delay=2)


def correlate(image: np.ndarray, kernel: np.ndarray, stride: int,
              padding_lrtb: tuple[int, int, int, int]) -> np.ndarray:
    """Plain cross-correlation of one (C, H, W) image, as a convolution layer computes it."""
    left, right, top, bottom = padding_lrtb
    padded = np.pad(image, ((0, 0), (top, bottom), (left, right)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[2:], axis=(1, 2))
    return np.einsum("chwij,ocij->ohw", windows[:, ::stride, ::stride], kernel)


def test_only_projections_reading_a_source_alike_merge(recurrent):
    groups = merged_groups(recurrent)
    assert sorted(m.name for g in groups for m in g.members) == sorted(
        q.name for q in recurrent.projections)
    for group in groups:
        assert {group_key(recurrent.projection(m.name)) for m in group.members} == {group.key}
    by_member = {m.name: group for group in groups for m in group.members}
    # Same source and stride as undelayed projections, but another step or another grid
    assert by_member[LATERAL] is not by_member["VISp2/3->VISp5"]
    assert (by_member[LATERAL].delay, by_member[FEEDBACK].upsample) == (2, 2)
    assert by_member[FEEDBACK] is not by_member["VISl2/3->VISl5"]
    assert len(groups) == len({group_key(q) for q in recurrent.projections})


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "single"])
def test_box_kernel_computes_every_member_exactly(recurrent, merge):
    rng = np.random.default_rng(0)
    weights = {q.name: rng.standard_normal((q.out_channels, q.in_channels, q.kernel_size,
                                            q.kernel_size)) for q in recurrent.projections}
    biases = {q.name: rng.standard_normal(q.out_channels) for q in recurrent.projections}
    groups = merged_groups(recurrent) if merge else single_groups(recurrent)
    for group in groups:
        source = recurrent.population(group.source)
        image = rng.standard_normal((source.channels, source.height, source.width))
        image = image.repeat(group.upsample, 1).repeat(group.upsample, 2)
        assert image.shape[1:] == group.input_size(source.height, source.width)
        merged = correlate(image, box_weight(group, weights), group.stride, group.padding_lrtb)
        merged += box_bias(group, biases)[:, None, None]
        assert merged.shape[1:] == group.output_size(*image.shape[1:])
        for member in group.members:
            q = recurrent.projection(member.name)
            expected = correlate(image, weights[q.name], q.stride, q.padding_lrtb)
            expected += biases[q.name][:, None, None]
            assert expected.shape[1:] == (member.height, member.width) == member.output_size(
                *image.shape[1:], group.stride)
            part = merged[member.channel_start:member.channel_start + member.out_channels,
                          :member.height, :member.width]
            np.testing.assert_allclose(part, expected, rtol=0, atol=1e-10, err_msg=q.name)
        if not merge:
            assert merged.shape == expected.shape  # one projection: nothing to slice


def test_box_keeps_the_dtype_of_the_kernels():
    ir = mnc.compile_ir("tiny")
    group = next(group for group in merged_groups(ir) if len(group.members) > 1)
    weights = {m.name: np.ones((m.out_channels, group.in_channels, m.kernel_size,
                                m.kernel_size), np.float16) for m in group.members}
    box = box_weight(group, weights)
    assert box.dtype == np.float16
    assert box.sum() == sum(w.size for w in weights.values())  # every tap placed once


@pytest.mark.parametrize(("factor", "kernel", "padding_lrtb", "size"), [
    (2, 3, (1, 1, 1, 1), 16), (2, 13, (6, 6, 6, 6), 8), (2, 4, (1, 2, 2, 1), 5),
    (3, 5, (2, 2, 0, 4), 4), (2, 1, (0, 0, 0, 0), 3), (4, 9, (0, 8, 8, 0), 3),
    (2, 7, (5, 1, 1, 5), 6)])
def test_subpixel_split_equals_the_upsampled_convolution(factor, kernel, padding_lrtb, size):
    member = Member("a->b", "b", 0, 3, kernel, 0, 0, 0, 0, padding_lrtb)
    group = MergedGroup("a", 1, 2, kernel, kernel, padding_lrtb, (member,), upsample=factor)
    rng = np.random.default_rng(kernel)
    weight, bias = rng.standard_normal((3, 2, kernel, kernel)), rng.standard_normal(3)
    image = rng.standard_normal((2, size, size + 1))
    upsampled = image.repeat(factor, 1).repeat(factor, 2)
    expected = correlate(upsampled, weight, 1, padding_lrtb) + bias[:, None, None]
    split = group.subpixel(size, size + 1)
    assert split is not None and group.phase_split(size, size + 1) is None
    phases = correlate(image, subpixel_weight(weight, split), 1, split.padding_lrtb)
    phases += subpixel_bias(bias, split)[:, None, None]
    assert phases.shape[1:] == (split.rows.outputs, split.columns.outputs)
    rows, columns = phases.shape[1:]
    shuffled = phases.reshape(3, factor, factor, rows, columns).transpose(0, 3, 1, 4, 2)
    shuffled = shuffled.reshape(3, rows * factor, columns * factor)
    assert shuffled.shape[1] >= expected.shape[1] and shuffled.shape[2] >= expected.shape[2]
    np.testing.assert_allclose(shuffled[:, :expected.shape[1], :expected.shape[2]], expected,
                               rtol=0, atol=1e-10)
    assert subpixel_weight(weight, split).shape[2] <= kernel // factor + 2
