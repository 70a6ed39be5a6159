"""Every script under examples/ runs to completion (with small settings)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY_SPEC

EXAMPLES = ROOT / "examples"

CASES = {
    "compile_and_inspect.py": [str(TINY_SPEC)],
    "alternative_connectome.py": ["--output-dir", "{tmp}"],
    "feature_extraction.py": ["--spec", str(TINY_SPEC), "-o", "{tmp}/features.npz"],
    "onnx_deployment.py": ["--spec", str(TINY_SPEC)],
    "training_smoke_run.py": ["{tmp}/run"],
    "neural_comparison.py": ["--spec", str(TINY_SPEC), "--out", "{tmp}/neuro"],
    "training_trajectory.py": ["--out", "{tmp}/trajectory", "--epochs", "3", "--steps", "2",
                               "--images", "24"],
    "feedback_network.py": ["--spec", "tiny-feedback", "--against", str(TINY_SPEC)],
    "hooks_and_hub_folder.py": ["--spec", str(TINY_SPEC), "--out", "{tmp}/hub"],
}
NEEDS = {"neural_comparison.py": ["rsatoolbox"], "training_trajectory.py": ["rsatoolbox"]}


def test_every_example_is_exercised():
    assert sorted(CASES) == sorted(path.name for path in EXAMPLES.glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs(script, tmp_path):
    for module in NEEDS.get(script, []):
        pytest.importorskip(module)
    args = [argument.format(tmp=tmp_path) for argument in CASES[script]]
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.strip()
