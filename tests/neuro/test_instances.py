"""Trajectories of any module over seeds, instances of model A vs model B, Cre line classes,
checkpoint CSVs and strict JSON."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pandas", reason="needs the neuro extra (pandas)")

from mnc.cli.main import main
from mnc.errors import UserFileError
from mnc.io.strict_json import dumps
from mnc.neuro.api import AnalysisOptions
from mnc.neuro.layers import cell_class
from mnc.neuro.regions import group_regions
from mnc.neuro.sources.recording_files import save_recordings
from mnc.neuro.sources.recordings import NeuralData
from tests.neuro.small_models import build, small_recordings

torch = pytest.importorskip("torch")
pytest.importorskip("rsatoolbox", reason="needs the neuro extra (rsatoolbox)")

from mnc.neuro.model_features import Preprocess  # noqa: E402

pytestmark = pytest.mark.neuro
FAST = AnalysisOptions(methods=("spearman",), n_splits=2, regressions=())


def _module(seed: int, scale: float = 1.0) -> Any:
    torch.manual_seed(seed)
    module = build()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.mul_(scale)
    return module


def _strict(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_compare_trajectory_over_seeds_gives_one_verdict_row_per_region_and_kind(
    tmp_path: Path,
) -> None:
    from mnc.neuro import compare_trajectory

    seeds = {
        f"seed{s}": [(f"step{k}", 0.1 + 0.2 * k, _module(10 * s + k)) for k in range(4)]
        for s in range(2)
    }
    report = compare_trajectory(
        seeds,
        ["1", "4"],
        small_recordings(),
        options=FAST,
        preprocess=Preprocess(16, 16),
        output_dir=tmp_path / "out",
    )
    tests = report.tests
    assert len(tests) == 3  # 3 regions x kind "best" (a module without an IR maps nothing)
    assert set(tests["kind"]) == {"best"}
    assert set(tests["verdict"]) <= {"keeps rising", "levels off", "falls", "cannot tell"}
    assert (tests["n_seeds"] == 2).all() and (tests["n_checkpoints"] == 4).all()
    assert np.allclose(tests["late_span"], 0.2) and np.allclose(tests["early_span"], 0.2)
    assert (tests["late_slope_low"] < tests["late_slope_high"]).all()
    assert len(report.trajectory) == 2 * 4 * 3
    assert set(report.trajectory["instance"]) == {"seed0", "seed1"}
    summary = _strict((tmp_path / "out" / "summary.json").read_text())
    assert summary["conclusion"]["best"].startswith("best population: similarity ")
    with pytest.raises(UserFileError, match="different numbers of checkpoints"):
        compare_trajectory(
            {"a": seeds["seed0"], "b": seeds["seed1"][:3]},
            ["1"],
            small_recordings(),
            options=FAST,
            preprocess=Preprocess(16, 16),
        )


def test_instances_of_two_models_are_compared_across_instances(tmp_path: Path) -> None:
    from mnc.neuro import compare_model
    from mnc.neuro.instances import compare_models, instance_table, write_outputs

    recordings = small_recordings()

    def scored(label: str, scale: float) -> list[Any]:
        return [
            compare_model(
                _module(seed, scale),
                ["1", "4"],
                recordings,
                label=label,
                preprocess=Preprocess(16, 16),
                options=FAST,
            )
            for seed in range(3)
        ]

    first, second = scored("a", 1.0), scored("b", 0.5)
    table = instance_table({"a": first}, "spearman")
    assert len(table) == 3 and (table["n_instances"] == 3).all()
    assert (table["ssm_low"] < table["ssm_mean"]).all()
    assert (table["ssm_mean"] < table["ssm_high"]).all()
    comparison = compare_models(("a", first), ("b", second))
    assert len(comparison) == 3
    assert np.allclose(comparison["difference"], comparison["ssm_a"] - comparison["ssm_b"])
    assert ((comparison["p_value"] > 0) & (comparison["p_value"] <= 1)).all()
    assert np.isfinite(comparison["cohens_d"]).all()
    assert set(comparison["basis"]) == {"instances and images"}
    # the same instances on both sides: no difference, p = 1
    same = compare_models(("a", first), ("a again", first))
    assert np.allclose(same["difference"], 0.0) and np.allclose(same["p_value"], 1.0)
    tables = write_outputs({"a": first, "b": second}, tmp_path / "cmp")
    assert set(tables) == {"instances", "comparison"}
    assert (tmp_path / "cmp" / "instances.png").stat().st_size > 0


def test_inhibitory_lines_are_not_mapped_unless_asked() -> None:
    assert cell_class("Sst-IRES-Cre") == "inhibitory"
    assert cell_class("Vip-IRES-Cre") == cell_class("Pvalb-IRES-Cre") == "inhibitory"
    assert cell_class("Cux2-CreERT2") == "excitatory" and cell_class(None) == "unknown"
    images = np.zeros((4, 8, 8), dtype=np.uint8)
    data = NeuralData.from_arrays(
        images,
        np.ones((4, 2, 2), dtype=np.float32),
        ["VISp", "VISp"],
        cre_line=["Sst-IRES-Cre", "Rorb-IRES2-Cre"],
        depth_um=[275, 275],
    )
    populations = [SimpleNamespace(name="VISp4", area="VISp", layer="4")]
    by_line = {r.cre_line: r for r in group_regions(data)}
    assert by_line["Sst-IRES-Cre"].layer == "4"
    assert by_line["Sst-IRES-Cre"].model_population(populations) is None
    assert by_line["Sst-IRES-Cre"].model_population(populations, map_inhibitory=True) == "VISp4"
    assert by_line["Rorb-IRES2-Cre"].model_population(populations) == "VISp4"


def test_strict_json_writes_null_for_missing_values() -> None:
    text = dumps({"a": float("nan"), "b": [np.float32(1.5), np.inf], "c": np.int64(3)})
    assert _strict(text) == {"a": None, "b": [1.5, None], "c": 3}


def test_cli_checkpoint_csv_and_several_weights(tmp_path: Path, capsys: Any) -> None:
    recordings = tmp_path / "rec.npz"
    save_recordings(small_recordings(), recordings)
    lines = ["label,accuracy,weights"]
    for step in range(4):
        torch.save(_module(step).state_dict(), tmp_path / f"w{step}.pt")
        lines.append(f"step{step},{0.1 + 0.2 * step},w{step}.pt")
    (tmp_path / "run.csv").write_text("\n".join(lines) + "\n")
    common = [
        "--model",
        "module:tests.neuro.small_models:build",
        "--layers",
        "1,4",
        "--input-size",
        "16,16",
        "--recordings",
        str(recordings),
        "--splits",
        "2",
        "--regressions",
        "none",
        "--methods",
        "spearman",
    ]
    status = main(
        [
            "rsa",
            *common,
            "--weights",
            str(tmp_path / "run.csv"),
            "--json",
            "-o",
            str(tmp_path / "traj"),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    printed = _strict(out[out.index("{") :])
    assert len(printed["tests"]) == 3 and all("verdict" in t for t in printed["tests"])

    weights = ",".join(str(tmp_path / f"w{step}.pt") for step in range(3))
    status = main(["rsa", *common, "--weights", weights, "-o", str(tmp_path / "inst")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "mean best SSM" in out and (tmp_path / "inst" / "instances.csv").is_file()
    assert (tmp_path / "inst" / "w0.pt" / "rsa_best.csv").is_file()

    status = main(["rsa", *common, "--weights", weights, "--compare-model",
                   "module:tests.neuro.small_models:build", "--compare-layers", "4",
                   "--compare-seeds", "2", "--json", "-o", str(tmp_path / "ab")])
    out = capsys.readouterr().out
    assert status == 0, out
    printed = _strict(out[out.index("{"):])
    assert len(printed["comparison"]) == 3
    assert {row["n_a"] for row in printed["comparison"]} == {3}
    assert {row["n_b"] for row in printed["comparison"]} == {2}
    assert (tmp_path / "ab" / "comparison.csv").is_file()

    (tmp_path / "bad.csv").write_text("label,accuracy,weights\nstep0,62,w0.pt\n")
    status = main(
        ["rsa", *common, "--weights", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "bad")]
    )
    error = capsys.readouterr().err
    assert status == 2 and "bad.csv: line 2: accuracy 62.0 is outside 0 to 1" in error
