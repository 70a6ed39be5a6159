"""Test an alternative connectome: edit the measurements in a variant spec and compare.

A variant `extends` the default spec and changes only what the new data say: here a broader,
stronger VISp5 -> VISal4 projection, and no VISpor. The example writes the variant, compiles
both specs and prints what changed in the network.

    python examples/alternative_connectome.py [--output-dir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import mnc
from mnc.diff import diff_ir, render_diff

DEFAULT_SPEC = "mouse"  # the shipped default spec, by name: no file of this repository needed

VARIANT = """\
extends: {base}
name: MouseNet, broad VISp5->VISal4, no VISpor
interareal:
  source: >-
    Knox et al. 2019 as in mouse.yaml, except VISp5->VISal4 (hypothetical tracing data)
  projections:
    "VISp5->VISal4": {{strength: 0.6, sigma_mm: 0.40}}
areas:
  regions:
    VISpor: null
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, help="where to write the variant spec")
    args = parser.parse_args()
    folder = args.output_dir or Path(tempfile.mkdtemp(prefix="mnc-variant-"))
    folder.mkdir(parents=True, exist_ok=True)
    variant = folder / "my-connectome.yaml"
    variant.write_text(VARIANT.format(base=DEFAULT_SPEC))

    published, alternative = mnc.compile_ir(DEFAULT_SPEC), mnc.compile_ir(variant)
    print(render_diff(diff_ir(published, alternative)))
    changed = alternative.projection("VISp5->VISal4")
    print(f"\nVISp5->VISal4 now: kernel {changed.kernel_size}, sigma_px "
          f"{changed.sigma_px:.3f}, peak {changed.peak_probability:.4f}")
    print(f"variant spec written to {variant}")


if __name__ == "__main__":
    main()
