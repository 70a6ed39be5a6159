"""Compile a spec to a PyTorch module, look inside it, save it and load it back.

    python examples/compile_and_inspect.py [SPEC] [--out mousenet.pt]

Shows the logits and a few populations' activity for random images, how sparse each
projection's mask is, and that the saved file rebuilds the same network on its own.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import mnc
from mnc.backend import BackendOptions, get_backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", default="tiny",
                        help="shipped spec name or spec file (default: tiny)")
    parser.add_argument("--out", type=Path, default=None, help="where to save the model")
    args = parser.parse_args()

    backend = get_backend("torch")
    model = mnc.compile(args.spec, backend="torch").eval()  # a torch.nn.Module
    ir = model.ir
    print(backend.describe(model))

    images = torch.randn(4, ir.input.channels, ir.input.height, ir.input.width)
    with torch.no_grad():
        logits = model(images)
        acts = model.features(images, populations=["VISp5", "VISl2/3"])
    print(f"logits {tuple(logits.shape)}")
    for name, activity in acts.items():
        print(f"{name:8s} {tuple(activity.shape)}  mean activity {activity.mean():.3f}")

    print("\nsparsest projections (fraction of taps kept):")
    density = {q.name: float(model.conv(q.name).mask.mean()) for q in ir.projections}
    for name, kept in sorted(density.items(), key=lambda item: item[1])[:5]:
        print(f"  {name:18s} {kept:.4f}")
    print(f"overall {model.mask_density():.4f}")

    with tempfile.TemporaryDirectory() as folder:
        path = args.out or Path(folder) / f"model{backend.suffix}"
        backend.save(model, path, BackendOptions())
        again = mnc.load(path).eval()
        with torch.no_grad():
            same = torch.equal(again(images), logits)
        print(f"\nsaved to {path} ({path.stat().st_size / 1e6:.1f} MB); reloaded outputs "
              f"identical: {same}")


if __name__ == "__main__":
    main()
