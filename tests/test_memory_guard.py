"""The memory guard: what a build, run, training or export allocates is estimated from the IR
and refused above the limit before anything is allocated, for specs and for files.

Commands that must be refused run in a subprocess whose data memory is capped (6 GiB), so a
guard that does not fire fails the test instead of exhausting the machine; the refusal itself
must stay far below that (peak RSS under 1 GiB).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml

from mnc.analysis.limits import Limits
from mnc.analysis.memory import estimate_memory, network_sizes
from mnc.compiler import compile_ir
from mnc.errors import SizeLimitError
from mnc.io.torch_archive import torch_archive_problem
from tests.conftest import DEFAULT_SPEC, ROOT, TINY_SPEC, cap_memory

ADDRESS_SPACE_CAP = 6 * 2**30
PEAK_RSS_BOUND = 2**30
UNLIMITED = Limits(max_parameters=10**12, max_memory_mb=1e9)

# The child's own peak resident memory. Linux carries ru_maxrss over fork and exec, so it
# would report the test worker's peak; VmHWM belongs to the new process image alone.
PEAK_RSS = textwrap.dedent("""
    def peak_rss():
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
""")

CLI = PEAK_RSS + textwrap.dedent("""
    import sys
    from mnc.cli.main import main
    try:
        code = main(sys.argv[1:])
    finally:
        print("PEAK_RSS", peak_rss(), file=sys.stderr)
    sys.exit(code)
""")


def _cap_address_space() -> None:
    cap_memory(ADDRESS_SPACE_CAP)


def run_capped(*args: str, code: str = CLI) -> tuple[int, str, int]:
    """(exit status, stderr, peak RSS in bytes) of ``mnc ARGS`` (or ``code``) in a capped
    subprocess."""
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, preexec_fn=_cap_address_space)
    peaks = [line.split()[1] for line in result.stderr.splitlines()
             if line.startswith("PEAK_RSS ")]
    return result.returncode, result.stderr, int(peaks[-1]) if peaks else -1


def wide_variant(folder: Path, sigma_mm: float) -> Path:
    """The default spec with one interareal projection widened: its kernel, and the merged box
    of every projection leaving VISp2/3 with stride 2, grow with sigma_mm squared."""
    path = folder / f"wide-{sigma_mm:g}.yaml"
    path.write_text(yaml.safe_dump({"extends": str(DEFAULT_SPEC), "interareal": {"projections": {
        "VISp2/3->VISl4": {"strength": 0.429104, "sigma_mm": sigma_mm}}}}))
    return path


# --- the estimator --------------------------------------------------------------------------

def test_estimate_counts_merged_boxes_and_activations_per_image():
    ir = compile_ir(DEFAULT_SPEC)
    sizes = network_sizes(ir)
    assert sizes.box_taps > sizes.kernel_taps  # zero padding to a common box adds taps
    one = estimate_memory(ir, "run", batch=1).total_bytes
    many = estimate_memory(ir, "run", batch=101).total_bytes
    per_image = 4 * (sizes.activity_values + sizes.conv_output_values)
    assert many - one == 100 * per_image
    assert estimate_memory(ir, "train", 8).total_bytes > estimate_memory(ir, "run", 8).total_bytes


def test_default_spec_trains_at_the_default_batch_within_the_default_limit():
    ir = compile_ir(DEFAULT_SPEC)
    assert estimate_memory(ir, "train", batch=256).total_bytes < Limits().max_memory_bytes
    assert estimate_memory(ir, "export").total_bytes < 2**30


def test_widened_kernel_boxes_outgrow_their_parameters(tmp_path):
    ir = compile_ir(wide_variant(tmp_path, 7.0), limits=UNLIMITED)
    sizes = network_sizes(ir)
    assert sizes.kernel_taps < Limits().max_parameters
    assert sizes.box_taps > 3 * sizes.kernel_taps
    assert estimate_memory(ir, "export").total_bytes > Limits().max_memory_bytes


# --- specs ----------------------------------------------------------------------------------

def test_export_whose_merged_boxes_exceed_the_memory_limit_is_refused(tmp_path):
    spec = wide_variant(tmp_path, 7.0)  # 109 M parameters: under the parameter limit
    output = tmp_path / "wide.onnx"
    status, stderr, peak = run_capped("compile", str(spec), "--backend", "onnx",
                                      "-o", str(output))
    assert status == 2, stderr[-2000:]
    assert "exporting it to ONNX would allocate about" in stderr
    assert "merged kernel boxes" in stderr and "the limit is 8 GiB" in stderr
    assert "--max-memory-mb" in stderr and "Traceback" not in stderr
    assert peak < PEAK_RSS_BOUND and not output.exists()


def test_memory_flag_refuses_what_the_default_admits(tmp_path):
    status, stderr, _ = run_capped("compile", str(TINY_SPEC), "--backend", "onnx",
                                   "--max-memory-mb", "1", "-o", str(tmp_path / "t.onnx"))
    assert status == 2 and "the limit is 1 MiB" in stderr, stderr[-2000:]


# --- files ----------------------------------------------------------------------------------

def _model_file_of_huge_network(folder: Path) -> Path:
    """A small, well-formed saved model whose IR describes a 220 M parameter network that
    would take about 10 GiB to build (no tensors: the guard must fire before they matter)."""
    import torch

    from mnc.ir.serialize import ir_to_json

    ir = compile_ir(wide_variant(folder, 10.0), limits=UNLIMITED)
    path = folder / "huge.pt"
    torch.save({"format": "mnc.torch-model", "format_version": 1, "mnc_version": "0",
                "content_hash": ir.content_hash, "ir_json": ir_to_json(ir), "state_dict": {}},
               path)
    assert path.stat().st_size < 2**20
    return path


LOAD = PEAK_RSS + textwrap.dedent("""
    import sys
    import mnc
    from mnc.errors import MncError
    try:
        mnc.load(sys.argv[1])
        code = 0
    except MncError as error:
        print(error, file=sys.stderr)
        code = 2
    print("PEAK_RSS", peak_rss(), file=sys.stderr)
    sys.exit(code)
""")


@pytest.mark.torch
def test_loading_a_small_file_describing_a_huge_network_is_refused_fast(tmp_path):
    path = _model_file_of_huge_network(tmp_path)
    status, stderr, peak = run_capped(str(path), code=LOAD)
    assert status == 2, stderr[-2000:]
    assert str(path) in stderr and "building it would allocate about" in stderr
    assert "MNC_MAX_MEMORY_MB" in stderr and peak < PEAK_RSS_BOUND


@pytest.mark.torch
def test_evaluating_a_small_file_describing_a_huge_network_is_refused_fast(tmp_path):
    path = _model_file_of_huge_network(tmp_path)
    status, stderr, peak = run_capped("evaluate", str(path), "--data", "digits")
    assert status == 2, stderr[-2000:]
    assert str(path) in stderr and "would allocate about" in stderr
    assert "--max-memory-mb" in stderr and "Traceback" not in stderr and peak < PEAK_RSS_BOUND


def _zip_bomb(folder: Path) -> Path:
    """A real torch archive (torch.load reads it) whose one tensor, 256 MiB of zeros, is
    deflated to a few hundred kilobytes."""
    import torch

    plain, bomb = folder / "plain.pt", folder / "bomb.pt"
    torch.save({"format": "mnc.torch-model", "state_dict": {"x": torch.zeros(2**26)}}, plain)
    with zipfile.ZipFile(plain) as source, \
            zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            target.writestr(entry.filename, source.read(entry.filename))
    plain.unlink()
    assert bomb.stat().st_size < 2**20
    return bomb


@pytest.mark.torch
def test_compressed_archive_is_refused_before_torch_reads_it(tmp_path):
    from mnc_backends.onnx.parameters import read_weights_file as read_onnx_weights
    from mnc_backends.torch.training.checkpoint import load_checkpoint
    from mnc_backends.torch.weights_io import read_weights_file

    bomb = _zip_bomb(tmp_path)
    for reader in (read_weights_file, load_checkpoint, read_onnx_weights):
        with pytest.raises(SizeLimitError, match=r"bomb\.pt: entry .* would expand from"):
            reader(bomb)


def test_archive_unpacking_beyond_the_memory_limit_is_refused(tmp_path):
    path = tmp_path / "stored.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data/0", bytes(3 * 2**20))
    assert torch_archive_problem(path, Limits(max_memory_mb=8)) is None
    with pytest.raises(SizeLimitError, match=r"stored\.pt: unpacking its 1 entries would "
                                             r"allocate about 3 MiB; the limit is 1 MiB"):
        torch_archive_problem(path, Limits(max_memory_mb=1))
    (tmp_path / "text.pt").write_text("not a zip")
    assert torch_archive_problem(tmp_path / "text.pt") == "not a zip archive as torch.save writes"


@pytest.mark.onnx
def test_predict_refuses_a_model_declaring_a_huge_input(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper
    from PIL import Image

    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["logits"])], "huge-input",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 100000, 100000])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])])
    model = tmp_path / "huge-input.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                 ir_version=8), model)
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(image)
    status, stderr, peak = run_capped("predict", str(model), str(image))
    assert status == 2, stderr[-2000:]
    assert str(model) in stderr and "100000x100000" in stderr and "Traceback" not in stderr
    assert peak < PEAK_RSS_BOUND



@pytest.mark.torch
def test_training_whose_batch_exceeds_the_memory_limit_is_refused_before_building(
        tmp_path, capsys):
    from mnc.analysis.limits import current_limits
    from mnc.cli.main import main

    run = tmp_path / "run"
    status = main(["train", str(TINY_SPEC), "--data", "digits", "--batch-size", "256",
                   "--device", "cpu", "--workers", "0", "--max-memory-mb", "100",
                   "-o", str(run)])
    error = capsys.readouterr().err
    assert status == 2 and "training it would allocate about" in error
    assert "activations of 256 image(s)" in error and "tiny.yaml" in error
    assert current_limits().max_memory_mb != 100  # the flag ends with the command
    assert not (run / "last.pt").exists()
