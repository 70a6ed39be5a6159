"""The size guard refuses networks too large to build, before anything is allocated."""

from __future__ import annotations

import pytest

from mnc.analysis.limits import Limits, check_limits
from mnc.compiler import compile_ir
from mnc.errors import SizeLimitError
from tests.conftest import DEFAULT_SPEC, run_mnc


def test_default_spec_fits_default_limits():
    check_limits(compile_ir(DEFAULT_SPEC), Limits())


def test_parameter_limit_names_figures_and_remedy():
    with pytest.raises(SizeLimitError) as caught:
        compile_ir(DEFAULT_SPEC, limits=Limits(max_parameters=1_000_000))
    message = str(caught.value)
    assert "4,457,969 parameters" in message and "1,000,000" in message
    assert "--max-parameters" in message and "MNC_MAX_PARAMETERS" in message


def test_activation_limit():
    with pytest.raises(SizeLimitError, match=r"2\.8 MB per image; the limit is 1\.0 MB"):
        compile_ir(DEFAULT_SPEC, limits=Limits(max_activation_mb=1))


def test_cli_flag_and_environment(tmp_path):
    result = run_mnc("compile", str(DEFAULT_SPEC), "--emit", "ir", "-o", str(tmp_path / "x.json"),
                     "--max-parameters", "1000")
    assert result.returncode == 2 and "too large" in result.stderr
    assert not (tmp_path / "x.json").exists()
    result = run_mnc("summary", str(DEFAULT_SPEC), env={"MNC_MAX_PARAMETERS": "1000"})
    assert result.returncode == 2 and "MNC_MAX_PARAMETERS" in result.stderr
    result = run_mnc("summary", str(DEFAULT_SPEC), env={"MNC_MAX_PARAMETERS": "lots"})
    assert result.returncode == 2 and "expected a positive int" in result.stderr


def test_limits_are_a_model_whose_bad_values_name_the_field():
    from pydantic import ValidationError

    for value in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValidationError, match="max_activation_mb"):
            Limits(max_activation_mb=value)
    with pytest.raises(ValidationError, match="max_memory"):
        Limits(max_memory=1)  # a misspelt limit is refused, never ignored


def test_limit_flags_come_from_the_limits_model():
    import argparse

    from mnc.cli.options import add_limit_flags

    parser = argparse.ArgumentParser()
    add_limit_flags(parser, sizes=True)
    flags = [action.option_strings[0] for action in parser._actions[1:]]
    assert flags == ["--max-parameters", "--max-activation-mb", "--max-memory-mb"]
    assert parser.parse_args([]).max_memory_mb is None  # not given: the environment's
