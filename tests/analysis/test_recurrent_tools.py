"""The tools on recurrent networks: costs per step and per image, memory and size guard through
time, the IR's views and its cost view, ``mnc summary``, ``mnc diff`` and ``mnc draw``."""

from __future__ import annotations

import json

import pytest

import mnc
from mnc.analysis.cost import network_cost
from mnc.analysis.display import cost_view
from mnc.analysis.limits import Limits, check_limits
from mnc.analysis.memory import estimate_memory
from mnc.analysis.recurrence import projection_kind, recurrent_counts
from mnc.cli.main import main
from mnc.diff import diff_ir, render_diff
from mnc.draw import architecture_figure, draw
from mnc.errors import SizeLimitError
from mnc.ir import IR, Dynamics
from tests.recurrent_irs import FEEDBACK, LATERAL, with_time


@pytest.fixture(scope="module")
def tiny() -> IR:
    return mnc.compile_ir("tiny")


@pytest.fixture(scope="module")
def recurrent(tiny: IR) -> IR:
    return with_time(tiny, steps=3, feedback_delay=1, lateral_delay=2)


def test_kinds_of_recurrent_projections(recurrent: IR) -> None:
    assert projection_kind(recurrent, recurrent.projection(FEEDBACK)) == "feedback"
    assert projection_kind(recurrent, recurrent.projection(LATERAL)) == "lateral"
    assert projection_kind(recurrent, recurrent.projection("VISp4->VISp2/3")) == "feedforward"
    assert recurrent_counts(recurrent) == {"feedback": 1, "lateral": 1, "delayed forward": 0}


def test_macs_per_step_and_per_image_leave_out_steps_before_the_delay(tiny: IR,
                                                                     recurrent: IR) -> None:
    cost = network_cost(recurrent)
    by_name = {item.name: item for item in cost.projections}
    feedback, lateral = by_name[FEEDBACK], by_name[LATERAL]
    # Per output pixel of the 32x32 target: upsampling the 16x16 source adds no MACs.
    assert feedback.dense_macs == 32 * 32 * 10 * 21 * 3 * 3
    assert (feedback.runs, lateral.runs) == (2, 1)
    forward = network_cost(tiny)
    assert cost.dense_macs == forward.dense_macs + feedback.dense_macs + lateral.dense_macs
    assert cost.dense_macs_total == (3 * forward.dense_macs + 2 * feedback.dense_macs
                                     + lateral.dense_macs)
    assert cost.masked_macs_total == pytest.approx(
        3 * forward.masked_macs + 2 * feedback.masked_macs + lateral.masked_macs)
    assert cost.activation_bytes_total == 3 * forward.activation_bytes
    data = cost.as_dict()
    assert data["steps"] == 3 and data["recurrent_projections"] == 2
    assert data["dense_macs_per_image"] == cost.dense_macs_total
    assert data["dense_macs_per_step"] == cost.dense_macs
    # The feed-forward network: per step is per image.
    assert forward.dense_macs_total == forward.dense_macs
    assert forward.as_dict()["dense_macs_per_image"] == forward.dense_macs


def test_training_memory_keeps_every_step(tiny: IR, recurrent: IR) -> None:
    one_step = recurrent.model_copy(update={"dynamics": Dynamics(steps=1)})
    part = "activations of 4 image(s)"
    train_one = estimate_memory(one_step, "train", 4).parts[part]
    train_three = estimate_memory(recurrent, "train", 4).parts[f"{part} x 3 steps"]
    assert train_three == 3 * train_one
    run_one = estimate_memory(one_step, "run", 4).parts[part]
    run_three = estimate_memory(recurrent, "run", 4).parts[f"{part} x 3 steps"]
    activity = 4 * 4 * sum(p.channels * p.height * p.width for p in tiny.populations)
    assert run_three == run_one + 2 * activity
    # The upsampled copy of the 10x16x16 source (10x32x32) counts with the conv outputs.
    plain = estimate_memory(tiny, "run", 1).parts["activations of 1 image(s)"]
    feedback_output = 21 * 32 * 32 * 4
    lateral_output = 21 * 32 * 32 * 4
    upsampled = 10 * 32 * 32 * 4
    assert run_one == 4 * (plain + feedback_output + lateral_output + upsampled)


def test_size_guard_counts_activations_of_every_step(tiny: IR) -> None:
    per_step_mb = sum(p.channels * p.height * p.width for p in tiny.populations) * 4 / 2**20
    limits = Limits(max_activation_mb=per_step_mb * 5)
    check_limits(with_time(tiny, steps=4), limits)
    with pytest.raises(SizeLimitError, match=r"MB per image \(6 steps\)"):
        check_limits(with_time(tiny, steps=6), limits)


def test_ir_views_give_steps_and_macs_per_step(recurrent: IR, tiny: IR) -> None:
    assert "time: 3 steps; 2 recurrent projections" in repr(recurrent)
    assert "time" not in repr(tiny)
    text = repr(cost_view(recurrent))
    assert len(text.splitlines()) <= 5
    assert "3 steps (still input, readout step 2); 2 recurrent projections (1 feedback, " \
           "1 lateral)" in text
    assert "MACs per step" in text and "per image" in text
    assert "per step" not in repr(cost_view(tiny))
    assert "dense MACs / step" in cost_view(recurrent)._repr_html_()


def test_summary_counts_recurrent_projections(capsys: pytest.CaptureFixture[str]) -> None:
    ir = mnc.compile_ir("tiny-feedback")
    assert main(["summary", "tiny-feedback"]) == 0
    out = capsys.readouterr().out
    cost = network_cost(ir)
    assert "3 steps (still input, readout steps 1-2); 71 recurrent projections (64 feedback, " \
           "1 lateral, 6 delayed forward)" in out
    assert f"dense MACs / step   {cost.dense_macs:,}" in out
    assert f"dense MACs / image  {cost.dense_macs_total:,}" in out
    # Every delayed projection has delay 1: it computes at 2 of the 3 steps.
    assert cost.dense_macs_total == 3 * cost.dense_macs - sum(
        item.dense_macs for item in cost.projections if item.delay)
    row = next(line for line in out.splitlines() if line.startswith("VISl5->VISp2/3 "))
    assert row.split()[1:5] == ["feedback", "1", "2", "2"]
    row = next(line for line in out.splitlines() if line.startswith("VISp2/3->VISp2/3 "))
    assert row.split()[1:5] == ["lateral", "1", "1", "2"]
    assert main(["summary", "tiny-feedback", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["masked_macs_per_image"] == round(cost.masked_macs_total)
    assert data["recurrent_projections"] == 71 and data["steps"] == 3


def test_diff_of_the_shipped_variants(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "tiny", "tiny-feedback", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["delays"]["added"]) == 71 and "VISpor5->VISp5" in data["delays"]["added"]
    assert data["dynamics"] == {"steps": [1, 3], "readout_steps": [[0, 0], [1, 2]]}
    assert main(["diff", "tiny", "tiny-feedback"]) == 0
    text = capsys.readouterr().out
    assert "delays: 71 added, 0 removed, 0 changed" in text
    assert "+ projection VISl5->VISp2/3" in text


def test_diff_counts_delays_and_dynamics(tiny: IR, recurrent: IR) -> None:
    longer = with_time(tiny, steps=5, feedback_delay=3, lateral_delay=2, readout_steps=(2, 4))
    without_lateral = longer.model_copy(update={
        "projections": [q for q in longer.projections if q.name != LATERAL]})
    difference = diff_ir(recurrent, without_lateral)
    assert difference["delays"] == {"added": [], "removed": [LATERAL], "changed": [FEEDBACK]}
    assert difference["dynamics"] == {"steps": [3, 5], "readout_steps": [[2, 2], [2, 4]]}
    assert difference["projections"]["changed"][FEEDBACK] == {"delay": [1, 3]}
    text = render_diff(difference)
    assert "delays: 0 added, 1 removed, 1 changed" in text
    assert "~ dynamics steps: 3 -> 5" in text and "dense_macs_per_step" in text
    gained = diff_ir(tiny, recurrent)
    assert gained["delays"]["added"] == [FEEDBACK, LATERAL]
    assert gained["totals"]["dense_macs_per_image"][1] == network_cost(recurrent).dense_macs_total
    assert diff_ir(tiny, tiny)["delays"] == {"added": [], "removed": [], "changed": []}
    assert "dense_macs_per_step" not in diff_ir(tiny, tiny)["totals"]


def test_draw_dashes_and_labels_recurrent_projections(recurrent: IR, tiny: IR,
                                                      tmp_path) -> None:
    import matplotlib.pyplot as plt

    figure = architecture_figure(recurrent)
    axes = figure.axes[0]
    labels = [text.get_text() for text in axes.texts]
    assert "d1 x2" in labels and "d2" in labels
    dashed = [text for text in axes.texts if text.arrow_patch is not None
              and text.arrow_patch.get_linestyle() == "--"]
    assert len(dashed) == 2
    assert "dashed: recurrent" in axes.get_title()
    plt.close(figure)
    for suffix in ("svg", "pdf", "png"):
        draw(recurrent, tmp_path / f"loop.{suffix}")
        assert (tmp_path / f"loop.{suffix}").stat().st_size > 1000
    draw(tiny, tmp_path / "plain.svg")
    assert "stroke-dasharray" in (tmp_path / "loop.svg").read_text()
    assert "stroke-dasharray" not in (tmp_path / "plain.svg").read_text()
