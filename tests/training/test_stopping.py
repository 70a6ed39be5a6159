"""Stopping on request: signals set a flag, handlers come back, messages say how to resume."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

pytest.importorskip("torch")

from mnc_backends.torch.training.stopping import StopCheck, StopFlag  # noqa: E402
from tests.training import parts  # noqa: E402

pytestmark = pytest.mark.torch


def test_a_signal_sets_the_flag_and_the_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    flag = StopFlag()
    with flag.installed():
        signal.raise_signal(signal.SIGTERM)
        assert flag.signal_name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C stops at once
            signal.raise_signal(signal.SIGINT)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_a_world_of_one_checks_after_every_step(tmp_path: Path):
    check = StopCheck(StopFlag(), parts.CPU, tmp_path)
    assert not check.requested_after_step(1, epoch_ends=False)
    check.flag.signal_name = "SIGINT"
    assert check.requested_after_step(3, epoch_ends=False) and check.requested()


def test_the_messages_name_the_signal_the_place_and_the_resume_command(tmp_path: Path):
    check = StopCheck(StopFlag("SIGTERM"), parts.CPU, tmp_path / "run")
    inside = check.inside_epoch(epoch=1, step_in_epoch=2, steps=3)
    assert str(inside) == (f"stopped by SIGTERM at epoch 2 step 2/3; saved "
                           f"{tmp_path / 'run' / 'last.pt'}; continue with: mnc train "
                           f"--resume {tmp_path / 'run'}")
    assert inside.exit_code == 143
    after = check.after_epoch(4)
    assert "stopped by SIGTERM after epoch 4; saved" in str(after)
