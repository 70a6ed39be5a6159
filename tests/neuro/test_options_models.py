"""The neural comparison's options models: a bad value names its field in Python and its flag
on the command line (one message, exit status 2)."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from mnc.neuro.options import AnalysisOptions, NeuralSelection, PhysiologyOptions, RSAOptions

pytestmark = pytest.mark.neuro


@pytest.mark.parametrize(("model", "field", "value"), [
    (RSAOptions, "bootstrap", -1), (RSAOptions, "folds", 1), (RSAOptions, "methods", ["x"]),
    (PhysiologyOptions, "splits", 0), (PhysiologyOptions, "window", 0),
    (AnalysisOptions, "n_boot", -1), (AnalysisOptions, "n_folds", 1),
    (AnalysisOptions, "methods", ("kendall",)), (AnalysisOptions, "regressions", ("lasso",)),
    (NeuralSelection, "max_per_group", 0)])
def test_a_value_out_of_range_names_its_field(model: type, field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        model(**{field: value})


def test_the_flag_models_give_what_the_analyses_take() -> None:
    options = RSAOptions(methods=("pearson", "pearson"), regressions=("none",), bootstrap=0,
                         folds=3, areas=("VISp",), depths=(175,), window=0.25, baseline=0.1)
    assert options.analysis() == AnalysisOptions(methods=("pearson",), regressions=(),
                                                 n_boot=0, n_folds=3)
    selection = options.selection()
    assert selection.areas == ("VISp",) and selection.depths_um == (175,)
    assert (selection.window.window_s, selection.window.baseline_s) == (0.25, 0.1)
    assert PhysiologyOptions().analysis() == AnalysisOptions()
    assert RSAOptions().analysis() == AnalysisOptions()


def test_the_python_api_accepts_lists_and_keeps_dataclass_helpers() -> None:
    options = AnalysisOptions(methods=["spearman"], regressions=[])
    assert options.methods == ("spearman",)
    assert dataclasses.asdict(options)["methods"] == ("spearman",)
    assert dataclasses.replace(options, n_boot=0).n_boot == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["--folds", "1"], "argument --folds: expected 2 or more, not '1'"),
    (["--bootstrap", "-1"], "argument --bootstrap: expected zero or more, not '-1'")])
def test_on_the_command_line_the_message_names_the_flag(
        argv: list[str], message: str, tmp_path, capsys) -> None:
    pytest.importorskip("pandas", reason="needs the neuro extra (pandas)")
    from mnc.cli.main import main

    try:
        status = main(["rsa", "tiny", "--weights", "untrained", "--recordings", "synthetic",
                       "-o", str(tmp_path / "out"), *argv])
    except SystemExit as exit:
        status = exit.code
    assert status == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_a_config_file_value_out_of_range_names_its_line(tmp_path, capsys) -> None:
    pytest.importorskip("pandas", reason="needs the neuro extra (pandas)")
    from mnc.cli.main import main

    config = tmp_path / "rsa.yaml"
    config.write_text("splits: 2\nfolds: 1\n")
    with pytest.raises(SystemExit) as exit:
        main(["rsa", "tiny", "--weights", "untrained", "--recordings", "synthetic", "-o",
              str(tmp_path / "out"), "--config", str(config)])
    assert exit.value.code == 2
    assert f"{config}:2:1: folds: expected 2 or more, not '1'" in capsys.readouterr().err
