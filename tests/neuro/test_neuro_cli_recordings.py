"""``mnc rsa`` / ``mnc physiology`` with ``--recordings FILE`` instead of ``--boc-cache DIR``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnc.cli.main import main
from mnc.neuro.sources.allen import load_natural_scenes
from mnc.neuro.sources.recording_files import save_recordings

pytestmark = pytest.mark.neuro
pytest.importorskip("rsatoolbox", reason="needs the neuro extra (rsatoolbox)")


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch, fake_loaded) -> None:
    monkeypatch.setattr("mnc.neuro.model_features.load_model",
                        lambda *args, **kwargs: fake_loaded)


def test_physiology_reads_a_recordings_file(boc_cache: Path, tmp_path: Path, fake_model,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    recordings = tmp_path / "visal.npz"
    save_recordings(load_natural_scenes(boc_cache, areas=["VISal"]), recordings)
    status = main(["physiology", "specs/mouse.yaml", "--weights", "untrained",
                   "--recordings", str(recordings), "-o", str(tmp_path / "out")])
    assert status == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "physiology.csv").stat().st_size > 0
    assert "VISal Rbp4 L5" in (tmp_path / "out" / "physiology_cells.csv").read_text()


def test_malformed_recordings_file_is_one_message(tmp_path: Path, fake_model,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((3, 2, 2)), responses=np.ones((3, 4)),
             area=np.array(["VISp"] * 4), layer=np.array(["4"] * 4))
    status = main(["rsa", "specs/mouse.yaml", "--weights", "untrained", "--recordings",
                   str(bad), "-o", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert status == 2
    assert f"{bad}: array 'responses': expected 3 dimension(s), got shape (3, 4)" in error
    assert "Traceback" not in error and not (tmp_path / "out" / "rsa.csv").exists()
    status = main(["rsa", "specs/mouse.yaml", "--weights", "untrained", "--recordings",
                   str(tmp_path / "absent.nc"), "-o", str(tmp_path / "out")])
    assert status == 2
    assert f"{tmp_path / 'absent.nc'}: file not found" in capsys.readouterr().err


def test_cache_only_options_are_refused_with_recordings(tmp_path: Path, fake_model,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    status = main(["rsa", "specs/mouse.yaml", "--weights", "untrained", "--recordings",
                   str(tmp_path / "r.npz"), "--download", "-o", str(tmp_path / "out")])
    assert status == 2
    assert "--download: only with --boc-cache" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["rsa", "specs/mouse.yaml", "--weights", "untrained", "--recordings", "r.npz",
              "--boc-cache", "boc", "-o", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
