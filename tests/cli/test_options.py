"""``mnc.cli.options``: one generator from a pydantic options model to argparse flags."""

from __future__ import annotations

import argparse
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from mnc.cli.options import add_model_flags, from_flags, given_values
from mnc.errors import UsageError


class Example(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    count: Annotated[int, Field(ge=1)] = 3
    """how many"""
    rate: Annotated[float, Field(gt=0, lt=1)] = 0.5
    kinds: tuple[Literal["a", "b"], ...] | None = Field(None, json_schema_extra={
        "metavar": "KIND,..."})
    mode: Literal["fast", "slow"] = "fast"
    loud: bool = Field(False, json_schema_extra={"flag_action": "store_true"})
    smooth: bool = True
    hidden: int = Field(0, json_schema_extra={"flag": None})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_model_flags(parser, Example)
    return parser


def test_each_field_becomes_its_flag_with_the_models_defaults() -> None:
    args = _parser().parse_args([])
    assert given_values(args, Example) == {"count": 3, "rate": 0.5, "kinds": None,
                                           "mode": "fast", "loud": False, "smooth": True}
    args = _parser().parse_args(["--count", "2", "--kinds", "a,b", "--kinds", "a", "--loud",
                                 "--no-smooth", "--mode", "slow"])
    options = from_flags(Example, given_values(args, Example))
    assert options == Example(count=2, kinds=("a", "b", "a"), loud=True, smooth=False,
                              mode="slow")


def test_help_and_metavar_come_from_the_field() -> None:
    text = _parser().format_help()
    assert " ".join(text.split()).count("--count COUNT how many") == 1
    assert "--kinds KIND,..." in text and "--hidden" not in text
    assert "--smooth, --no-smooth" in text and "--no-loud" not in text


@pytest.mark.parametrize("argv", [["--count", "0"], ["--kinds", "c"], ["--mode", "medium"]])
def test_a_lower_bound_or_choice_is_checked_while_parsing(argv: list[str]) -> None:
    with pytest.raises(argparse.ArgumentError):
        _parser().parse_args(argv)


def test_other_ranges_are_checked_by_the_model_naming_the_flag() -> None:
    args = _parser().parse_args(["--rate", "1.5"])
    with pytest.raises(UsageError, match=r"^--rate: Input should be less than 1$"):
        from_flags(Example, given_values(args, Example))
