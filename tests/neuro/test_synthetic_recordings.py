"""``mnc.neuro.synthetic_recordings`` and ``--recordings synthetic``: data to try the comparison
on from a wheel, whose cells depend on the images (a known answer)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mnc.neuro
from mnc.neuro.sources.recordings import NeuralData
from mnc.neuro.sources.synthetic import DEFAULT_SESSIONS
from tests.conftest import run_mnc

pytestmark = pytest.mark.neuro
pytest.importorskip("scipy", reason="synthetic images are smoothed with scipy (neuro extra)")


def test_synthetic_recordings_hold_reliable_cells_in_every_default_region():
    data = mnc.neuro.synthetic_recordings(trials=6)
    assert isinstance(data, NeuralData)
    assert data.n_cells == sum(session.cells for session in DEFAULT_SESSIONS)
    assert data.n_trials == 6 and data.n_stimuli == 118
    assert set(data.area) == {session.area for session in DEFAULT_SESSIONS}
    # odd and even trials agree: the responses follow the images, not the noise
    odd, even = data.responses[:, 0::2].mean(1), data.responses[:, 1::2].mean(1)
    agreement = [np.corrcoef(odd[:, cell], even[:, cell])[0, 1] for cell in range(data.n_cells)
                 if odd[:, cell].std() > 0]
    assert np.median(agreement) > 0.5
    noiseless = mnc.neuro.synthetic_recordings(trials=2, noise_sd=0.0)
    assert np.array_equal(noiseless.responses[:, 0], noiseless.responses[:, 1])
    assert mnc.neuro.synthetic_recordings(trials=2).fingerprint == \
        mnc.neuro.synthetic_recordings(trials=2).fingerprint  # same seed, same data


@pytest.mark.slow
def test_rsa_runs_on_the_synthetic_recordings_from_the_command_line(tmp_path):
    pytest.importorskip("rsatoolbox", reason="needs the neuro extra (rsatoolbox)")
    pytest.importorskip("torch")
    result = run_mnc("rsa", "tiny", "--weights", "untrained", "--recordings", "synthetic",
                     "-o", str(tmp_path / "out"), "--bootstrap", "2", "--regressions", "none",
                     "--splits", "2", "--max-units", "50", "--areas", "VISp", "--json",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "with synthetic recordings (seed 0)" in result.stderr
    report = json.loads(result.stdout)
    assert {row["region"] for row in report["best"]} == {"VISp Cux2 L2/3", "VISp Rorb L4"}
    assert (tmp_path / "out" / "summary.json").is_file()
    assert not (tmp_path / "synthetic").exists()
