"""``mnc measure`` on the command line (in process: same parser and error handling)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mnc.cli.main import main
from tests.measure.synthetic import Synthetic


def test_connectome_command_writes_fragment_and_reports(
        synthetic: Synthetic, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out" / "interareal.yaml"
    code = main(["measure", "connectome", "--voxel-model", str(synthetic.directory),
                 "--sources", "VISp", "--targets", "VISl4", "-o", str(output),
                 "--cache-dir", str(tmp_path / "cache"), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["projection"] for row in report["projections"]] == [
        "VISp4->VISl4", "VISp2/3->VISl4", "VISp5->VISl4"]
    assert report["projections"][0]["used"] == 30
    assert report["projections"][0]["rejected_multimodal"] == 3
    fragment = yaml.safe_load(output.read_text())
    assert fragment["interareal"]["projections"]["VISp4->VISl4"]["sigma_mm"] == \
        pytest.approx(0.22, rel=0.05)
    assert list((tmp_path / "cache").glob("*.npz"))
    assert not list(output.parent.glob(".*.part"))  # written atomically, nothing left over


def test_surface_command_table(synthetic: Synthetic, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "surfaces.yaml"
    code = main(["measure", "surface", "--voxel-model", str(synthetic.directory),
                 "--populations", "VISp4,VISl2/3", "-o", str(output)])
    assert code == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "VISp4" in out and "3.6100 mm2" in out and f"wrote {output}" in out
    assert captured.err.splitlines()[0] == (
        f"mnc measure surface: surface areas of VISp4,VISl2/3 from the flat map of "
        f"{synthetic.directory} (right hemisphere); writing {output}")
    assert yaml.safe_load(output.read_text())["surface_area_mm2"]["values"]["VISl"] == {
        "2/3": pytest.approx(0.25)}


def test_user_errors_exit_2_with_one_message(synthetic: Synthetic, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["measure", "surface", "--voxel-model", str(tmp_path / "missing"),
                 "--populations", "VISp4", "-o", str(tmp_path / "s.yaml")])
    assert code == 2
    assert "mnc measure: error:" in capsys.readouterr().err
    code = main(["measure", "connectome", "--voxel-model", str(synthetic.directory),
                 "--sources", "VISx", "--targets", "VISl4", "-o", str(tmp_path / "i.yaml"),
                 "--no-cache"])
    assert code == 2
    assert "no structure with acronym 'VISx'" in capsys.readouterr().err
    assert not (tmp_path / "i.yaml").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["measure", "connectome", "--voxel-model", "x", "--sources", "VISp",
              "--targets", "VISl4", "-o", "y", "--smoothing-mm", "-1"])
    assert exit_info.value.code == 2
