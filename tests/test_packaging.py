"""The package as users get it: every folder listed, a wheel that works outside the source
tree (specs, schemas and license inside), and an editable install that a folder named mnc in
the working directory does not hide."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())
DATA_PACKAGES = {"mnc.specs": "specs", "mnc.specs.variants": "specs/variants",
                 "mnc.schemas": "schemas"}


def test_every_package_folder_is_listed():
    listed = set(CONFIG["tool"]["setuptools"]["packages"])
    found = set()
    for top, name in (("mnc", "mnc"), ("backends", "mnc_backends")):
        for init in (ROOT / top).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *parts)))
    assert found == listed - set(DATA_PACKAGES)
    for package, folder in DATA_PACKAGES.items():
        assert package in listed
        patterns = CONFIG["tool"]["setuptools"]["package-data"][package]
        assert any(list((ROOT / folder).glob(pattern)) for pattern in patterns), package


def test_mnc_does_not_import_torch_or_onnx_at_module_level():
    for path in (ROOT / "mnc").rglob("*.py"):
        for line in path.read_text().splitlines():
            if line.startswith(("import torch", "from torch", "import onnx", "from onnx")):
                raise AssertionError(f"{path} imports a backend library at module level")


def test_ci_runs_the_readmes_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Two commands"):readme.index("## Installing")]
    first, second = (block.split("```", 1)[0].strip() for block in section.split("```bash")[1:])
    assert first == "pip install -e . && mnc compile mouse --backend torch"
    assert second.endswith("&& python -m pytest")
    assert second in (ROOT / ".ci" / "run").read_text().splitlines()


def test_a_clone_folder_named_mnc_does_not_hide_the_package(tmp_path):
    """Python started next to a folder named mnc (a clone, seen from the folder holding it)
    takes that folder for a namespace package unless the installed mnc is found first."""
    (tmp_path / "mnc").symlink_to(ROOT, target_is_directory=True)
    code = "import mnc, mnc_backends; print(mnc.__file__); print(mnc.compile.__name__)"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env=_without_pythonpath())
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[1] == "compile"


def _without_pythonpath() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def _source_copy(destination: Path) -> Path:
    """The files a fresh clone has (tracked and new, not ignored), or the tree without
    caches and build output where git cannot tell."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, timeout=60)
    if listed.returncode == 0 and listed.stdout:
        for name in listed.stdout.decode().split("\0"):
            source = ROOT / name
            if name and source.is_file():
                (destination / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination / name)
    else:
        shutil.copytree(ROOT, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".*", "build", "dist", "*.egg-info", "__pycache__", "*.so", "runs"))
    return destination


SDIST_MUST_HOLD = [
    "LICENSE", "README.md", "BENCHMARKS.md", "SECURITY.md", "CITATION.cff", "MANIFEST.in",
    "pyproject.toml", "setup.py", "specs/mouse.yaml", "specs/variants/tiny.yaml",
    "schemas/spec.schema.json", "tests/conftest.py", "tests/test_golden.py",
    "tests/data/mousenet-architecture.json", "examples/compile_and_inspect.py",
    "backends/torch/fast/_native/sparse_taps.c", "backends/torch/fast/_native/kernel_body.h",
    "backends/torch/fast/_native/train_body.h",
    "benchmarks/bench_compile.py", "mkdocs.yml", "docs/index.md", "docs/hooks/schemas.py",
]
WHEEL_MUST_HOLD = [
    "mnc/__init__.py", "mnc/specs/mouse.yaml", "mnc/specs/variants/no-vispor.yaml",
    "mnc/specs/variants/tiny.yaml", "mnc/specs/variants/visp-only.yaml",
    "mnc/schemas/spec.schema.json", "mnc/schemas/ir.schema.json",
    "mnc_backends/torch/fast/native.py", "mnc-0.1.0.dist-info/licenses/LICENSE",
    "mnc-0.1.0.dist-info/entry_points.txt", "mnc/data/imagenet_classes.txt",
    "mnc/neuro/sources/synthetic.py",
]

# The README's Python API from an empty folder: a user's own TensorDataset trained for one step.
WHEEL_PYTHON_API = """
import torch, mnc
ir = mnc.compile("tiny", backend="ir")
shape = (ir.input.channels, ir.input.height, ir.input.width)
data = torch.utils.data.TensorDataset(torch.randint(0, 256, (16, *shape), dtype=torch.uint8),
                                      torch.randint(0, ir.readout.classes, (16,)))
model = mnc.train("tiny", data, epochs=1, batch_size=8, max_steps_per_epoch=1, device="cpu")
print(mnc.evaluate(model, data)["images"], mnc.save(model, "mine.pt"),
      type(mnc.load("mine.pt")).__name__)
"""


@pytest.mark.slow
def test_the_wheel_works_outside_the_source_tree(tmp_path):
    """sdist -> wheel (as `python -m build` makes them), installed into a bare folder and run
    from an empty one: shipped specs by name, `mnc specs`, `mnc bench`, and the examples."""
    source = _source_copy(tmp_path / "source")
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                            str(dist), str(source)], capture_output=True, text=True,
                           timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (sdist,) = dist.glob("mnc-*.tar.gz")
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert set(SDIST_MUST_HOLD) <= in_sdist, sorted(set(SDIST_MUST_HOLD) - in_sdist)
    (wheel,) = dist.glob("mnc-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    assert set(WHEEL_MUST_HOLD) <= in_wheel, sorted(set(WHEEL_MUST_HOLD) - in_wheel)
    assert not [name for name in in_wheel if name.startswith(("tests/", "specs/", "backends/"))]

    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps",
                                "--no-index", "--no-compile", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-3000:]
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**_without_pythonpath(), "PYTHONPATH": str(target)}

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, *args], cwd=empty, env=env,
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
        return result

    # `mnc bench` finds its default spec in the wheel; batch 1 keeps the smoke run short. It
    # is the slowest step, so it runs while the others do.
    bench = subprocess.Popen([sys.executable, "-m", "mnc", "bench", "--quick", "--batch", "1",
                              "--no-onnx"], cwd=empty, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        where = run("-c", "import mnc, mnc_backends; print(mnc.__file__); "
                          "print(mnc_backends.__file__)").stdout.split()
        assert all(Path(path).is_relative_to(target) for path in where), where
        compiled = run("-m", "mnc", "compile", "mouse", "--backend", "torch", "-o", "mouse.pt")
        assert (empty / "mouse.pt").is_file(), compiled.stdout
        specs = json.loads(run("-m", "mnc", "specs", "--json").stdout)
        assert [entry["name"] for entry in specs] == ["mouse", "feedback", "no-vispor", "tiny",
                                                      "tiny-feedback", "visp-only"]
        assert all(Path(entry["path"]).is_relative_to(target / "mnc" / "specs") for entry in specs)
        # The console script, and `extends: mouse` from a file far from any checkout.
        (empty / "mine.yaml").write_text("extends: mouse\nname: mine\n")
        validated = subprocess.run([str(target / "bin" / "mnc"), "validate", "mine.yaml"],
                                   cwd=empty, env=env, capture_output=True, text=True, timeout=120)
        assert validated.returncode == 0, validated.stderr
        assert specs[0]["content_hash"][:12] in validated.stdout
        for script, args in [("alternative_connectome.py", ["--output-dir", str(empty)]),
                             ("compile_and_inspect.py", [])]:
            assert run(str(ROOT / "examples" / script), *args).stdout.strip()
        assert run("-c", WHEEL_PYTHON_API).stdout.split() == ["16", "mine.pt", "MouseNet"]
        if importlib.util.find_spec("rsatoolbox") is not None:  # the neuro extra
            rsa = run("-m", "mnc", "rsa", "tiny", "--weights", "untrained", "--recordings",
                      "synthetic", "-o", "rsa", "--bootstrap", "2", "--regressions", "none",
                      "--splits", "2", "--max-units", "50", "--areas", "VISp")
            assert "VISp Cux2 L2/3" in rsa.stdout and (empty / "rsa" / "summary.json").is_file()
        output, errors = bench.communicate(timeout=600)
    finally:
        if bench.poll() is None:  # a step above failed: stop the benchmark too
            bench.kill()
            bench.communicate()
    assert bench.returncode == 0, errors[-3000:]
    assert output.startswith(str(target / "mnc" / "specs" / "variants" / "tiny.yaml")), output
    assert "auto picks 'sparse' for inference" in output  # the wheel's C kernel runs
