"""Feedback's share of its targets' drive at initialisation is bounded by the spec."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import mnc  # noqa: E402
from mnc_backends.torch.drive import drive_variances  # noqa: E402
from tests.conftest import SPECS  # noqa: E402

TINY_FEEDBACK = SPECS / "variants" / "tiny-feedback.yaml"


def shares(spec) -> dict[str, float]:
    model = mnc.compile(spec, backend="torch").train()
    images = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return {
        drive.population: drive.feedback_share for drive in drive_variances(model, images, step=1)
    }


def test_feedback_adds_at_most_about_the_feedforward_variance():
    measured = shares(TINY_FEEDBACK)
    assert {"VISp2/3", "VISp5", "VISl2/3", "VISl5"} <= set(measured)
    # feedback_share 0.3: feedback / (feed-forward + feedback) about 0.3, never past one half
    for population, share in measured.items():
        assert 0.15 < share < 0.5, (population, share)
    assert sum(measured.values()) / len(measured) == pytest.approx(0.3, abs=0.08)


def test_without_a_feedback_share_feedback_swamps_visp(tmp_path):
    spec = tmp_path / "unbounded.yaml"
    spec.write_text(
        f"extends: {TINY_FEEDBACK}\n"
        "interareal: {feedback_share: null, feedback_share_source: null}\n"
    )
    measured = shares(spec)
    assert measured["VISp2/3"] > 0.75 and measured["VISp5"] > 0.75


def test_drive_variances_refuses_step_zero():
    model = mnc.compile(TINY_FEEDBACK, backend="torch")
    with pytest.raises(ValueError, match="outside 1..2"):
        drive_variances(model, torch.zeros(2, 3, 32, 32), step=0)
