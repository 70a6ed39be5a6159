"""A peak probability above 1 is shown with its cap wherever it is printed: the mask keeps a
tap with probability min(1, peak * exp(...)), so "4.36" alone would read as a probability."""

from __future__ import annotations

import json

from mnc.analysis.display import ir_text
from mnc.cli.main import main
from mnc.compiler import compile_ir
from mnc.explain import explain, render_explanation
from mnc.text import peak_probability_text
from tests.conftest import DEFAULT_SPEC

CAPPED = "VISal2/3->VISpor4"  # peak 4.36 in the default spec: its 1x1 mask is all ones


def test_the_text_says_capped_only_above_the_cap():
    assert peak_probability_text(4.3617) == "4.362 (capped at 1)"
    assert peak_probability_text(1.0) == "1"
    assert peak_probability_text(0.25) == "0.25"


def test_summary_explain_and_the_ir_view_show_value_and_cap(capsys):
    ir = compile_ir(DEFAULT_SPEC)
    assert ir.projection(CAPPED).peak_probability > 1
    assert main(["summary", str(DEFAULT_SPEC)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith(CAPPED + " "))
    assert "4.362 (capped at 1)" in row
    explanation = explain(ir, CAPPED)
    assert explanation["fields"]["peak_probability_capped_at"] == 1.0
    assert "(capped at 1: taps whose probability reaches 1 are always kept)" in \
        render_explanation(explanation)
    assert main(["explain", str(DEFAULT_SPEC), CAPPED, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fields"]["peak_probability_capped_at"] == 1.0
    assert f"e.g. {CAPPED} 4.362 (capped at 1)" in ir_text(ir)
    assert f"e.g. {CAPPED} 4.362 (capped at 1)" in repr(ir)
    uncapped = next(q.name for q in ir.projections if q.peak_probability < 1)
    assert "capped" not in render_explanation(explain(ir, uncapped))
