"""Each pass on a hand-built IR: the numbers it should derive, and no change when re-run."""

from __future__ import annotations

import math

import pytest

from mnc.errors import PassError
from mnc.ir.model import DraftIR, InterarealProfile, ProjectionDraft
from mnc.passes import (
    CountChannels,
    MatchGrids,
    PassManager,
    ScaleWidths,
    SetPeakProbabilities,
    SizeGrids,
    SizeKernels,
    SizeReadout,
    default_passes,
)
from mnc.passes.base import PassResult, PipelineError
from mnc.passes.set_peak_probabilities import gaussian_kernel_sum
from tests.passes.hand_built import draft, population, run_until


def test_size_grids_scales_input_by_resolution_ratio():
    result = SizeGrids().run(draft())
    sizes = {p.name: (p.height, p.width) for p in result.ir.populations}
    assert sizes == {"input": (8, 8), "A4": (8, 8), "A2/3": (8, 8), "B4": (4, 4)}
    assert result.changed
    assert result.ir.population("B4").derivations["height_width"].value == [4, 4]
    assert SizeGrids().run(result.ir).changed is False


def test_size_grids_rejects_fractional_grid():
    odd = draft(
        populations=[
            population("input", "input", None, None, channels=1),
            population("C4", "C", "4", 100, pixels_per_degree=0.3),
        ]
    )
    with pytest.raises(PassError, match="C4.*not a whole number"):
        SizeGrids().run(odd)


def test_count_channels_floors_neurons_over_grid():
    ir = CountChannels().run(SizeGrids().run(draft()).ir).ir
    channels = {p.name: p.channels for p in ir.populations}
    assert channels == {"input": 1, "A4": 3, "A2/3": 2, "B4": 7}


def test_count_channels_names_population_with_zero_channels():
    starved = draft(
        populations=[
            population("input", "input", None, None, channels=1),
            population("Z4", "Z", "4", 63),
        ]
    )
    with pytest.raises(PassError) as caught:
        CountChannels().run(SizeGrids().run(starved).ir)
    assert "Z4" in str(caught.value) and "63" in str(caught.value) and "64" in str(caught.value)
    assert caught.value.problems[0].field_path == ("neurons", "counts", "Z", "4")


def test_match_grids_sets_stride_and_channels():
    ir = run_until(["size-grids", "count-channels", "match-grids"])
    strides = {q.name: (q.stride, q.in_channels, q.out_channels) for q in ir.projections}
    assert strides == {"input->A4": (1, 1, 3), "A4->A2/3": (1, 3, 2), "A2/3->B4": (2, 2, 7)}


def _with_feedback(ir: DraftIR, source: str = "B4", target: str = "A4") -> DraftIR:
    """``ir`` plus a delayed interareal projection from the coarse B4 onto the fine A4."""
    feedback = ProjectionDraft(
        source=source, target=target, delay=1,
        profile=InterarealProfile(strength=1, strength_total=1, sigma_mm=0.5, in_degree=50))
    return ir.model_copy(update={"projections": [*ir.projections, feedback]})


def test_match_grids_upsamples_onto_a_finer_grid():
    ir = MatchGrids().run(_with_feedback(run_until(["size-grids", "count-channels"]))).ir
    feedback = ir.projection("B4->A4")
    assert (feedback.upsample, feedback.stride) == (2, 1)
    assert feedback.derivations["upsample"].value == 2
    assert all(q.upsample == 1 for q in ir.projections if q.name != "B4->A4")


def test_match_grids_refuses_a_ratio_that_is_not_whole():
    ir = run_until(["size-grids", "count-channels"])
    odd = [p.model_copy(update={"height": 3, "width": 3}) if p.name == "B4" else p
           for p in ir.populations]
    with pytest.raises(PassError, match="not a whole multiple of source grid 3x3") as caught:
        MatchGrids().run(_with_feedback(ir.model_copy(update={"populations": odd})))
    assert caught.value.problems[0].field_path == ("areas", "regions", "B", "pixels_per_degree")


def test_feedback_is_sized_on_the_target_grid():
    ir = _with_feedback(run_until(["size-grids", "count-channels"]))
    for each in default_passes()[2:5]:  # match-grids, scale-widths, size-kernels
        ir = each.run(ir).ir
    feedback = ir.projection("B4->A4")
    b4 = ir.population("B4")
    source_sigma = 0.5 * 1000 * math.sqrt(112 / 7) / (math.sqrt(1.0) * 1000)  # 2 px
    assert feedback.sigma_px == pytest.approx(2 * source_sigma)  # in upsampled pixels
    kernel = 2 * math.floor(2 * source_sigma) + 1
    assert feedback.kernel_size == kernel
    left, right, top, bottom = feedback.padding_lrtb
    assert b4.height * 2 + top + bottom - kernel + 1 == ir.population("A4").height
    assert left + right == kernel - 1


def test_scale_widths_for_each_kind_of_projection():
    ir = ScaleWidths().run(run_until(["size-grids", "count-channels", "match-grids"])).ir
    a4_pixels_per_um = math.sqrt(192 / 3) / (math.sqrt(0.25) * 1000)
    a23_pixels_per_um = math.sqrt(133 / 2) / (math.sqrt(0.25) * 1000)
    assert ir.projection("input->A4").sigma_px == 1.5
    assert ir.projection("A4->A2/3").sigma_px == pytest.approx(220 / 180 * 114 * a4_pixels_per_um)
    assert ir.projection("A2/3->B4").sigma_px == pytest.approx(0.2 * 1000 * a23_pixels_per_um)


def test_size_kernels_and_asymmetric_padding():
    ir = run_until(["size-grids", "count-channels", "match-grids", "scale-widths", "size-kernels"])
    stride_two = ir.projection("A2/3->B4")
    expected_kernel = 2 * math.floor(stride_two.sigma_px) + 1
    assert stride_two.kernel_size == expected_kernel
    total = expected_kernel - 2
    assert stride_two.padding_lrtb == (
        total // 2,
        total - total // 2,
        total // 2,
        total - total // 2,
    )
    assert ir.projection("input->A4").kernel_size == 3
    assert ir.projection("input->A4").padding_lrtb == (1, 1, 1, 1)


def test_size_kernels_refuses_absurd_widths():
    ir = run_until(["size-grids", "count-channels", "match-grids", "scale-widths"])
    wide = ir.model_copy(
        update={"projections": [ir.projections[0].model_copy(update={"sigma_px": 1e9})]}
    )
    with pytest.raises(PassError, match="wider than"):
        SizeKernels().run(wide)


def test_set_peak_probabilities_for_each_kind():
    ir = (
        SetPeakProbabilities()
        .run(
            run_until(
                ["size-grids", "count-channels", "match-grids", "scale-widths", "size-kernels"]
            )
        )
        .ir
    )
    assert ir.projection("input->A4").peak_probability == 1.0
    width = 220 / 180 * 114
    assert ir.projection("A4->A2/3").peak_probability == pytest.approx(
        0.14 / math.exp(-(75**2) / (2 * width**2))
    )
    interareal = ir.projection("A2/3->B4")
    grid_sum = gaussian_kernel_sum(interareal.kernel_size, interareal.sigma_px)
    assert interareal.peak_probability == pytest.approx(1000 * 0.5 / 2.0 / (2 * grid_sum))


def test_gaussian_kernel_sum_matches_direct_double_sum():
    kernel, sigma = 7, 2.3
    direct = sum(
        math.exp(-(x * x + y * y) / (2 * sigma * sigma)) for x in range(-3, 4) for y in range(-3, 4)
    )
    assert gaussian_kernel_sum(kernel, sigma) == pytest.approx(direct)


def test_size_readout_counts_pooled_features():
    ir = SizeReadout().run(run_until(["size-grids", "count-channels"])).ir
    assert ir.readout.features == 7 * 2 * 2


def test_passes_do_not_mutate_their_input():
    before = draft()
    snapshot = before.model_dump()
    for each in default_passes():
        after = each.run(before).ir
        assert before.model_dump() == snapshot
        before, snapshot = after, after.model_dump()


def test_pass_manager_checks_order_when_built():
    with pytest.raises(PipelineError, match="size-kernels.*requires"):
        PassManager([SizeKernels(), SizeGrids()])
    resolved = PassManager(default_passes()).run(draft()).resolve()
    assert resolved.readout.features == 28


class _ForgetsTheLastGrid(SizeGrids):
    """A broken pass: declares it sizes every grid but leaves the last population unsized."""

    name = "forgets-the-last-grid"

    def run(self, ir: DraftIR) -> PassResult:
        result = super().run(ir)
        *sized, last = result.ir.populations
        unsized = last.model_copy(update={"height": None, "width": None})
        return PassResult(result.ir.model_copy(update={"populations": [*sized, unsized]}), True)


def test_pass_manager_checks_each_pass_provides_what_it_declares():
    with pytest.raises(PassError, match="'forgets-the-last-grid'.*'population.height'.*'B4'"):
        PassManager([_ForgetsTheLastGrid(), CountChannels()]).run(draft())
