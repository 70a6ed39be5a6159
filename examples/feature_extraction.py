"""Extract per-population activations from a compiled MouseNet.

Compiles a spec with the torch backend (or loads a saved model / checkpoint), runs a batch of
images through it, and saves the activations of the requested populations, named as in the
IR, to an .npz file. Only the populations the request needs are computed.

    python examples/feature_extraction.py --spec mouse --populations VISp5,VISl2/3
    python examples/feature_extraction.py --weights runs/tiny/best.pt -o features.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

import mnc


def digit_images(count: int, height: int, width: int) -> torch.Tensor:
    """scikit-learn's 8x8 digits, upsampled to the model's input and repeated to 3 channels."""
    digits = load_digits().images[:count].astype(np.float32) / 16.0
    images = torch.from_numpy(digits)[:, None]
    images = torch.nn.functional.interpolate(images, size=(height, width), mode="bilinear",
                                             align_corners=False)
    return images.repeat(1, 3, 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="tiny", help="shipped spec name or spec file")
    parser.add_argument("--weights", type=Path, help="saved model or checkpoint instead of --spec")
    parser.add_argument("--populations", default="VISp5,VISl2/3,VISpor5")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("-o", "--output", type=Path, default=Path("features.npz"))
    args = parser.parse_args()

    model = mnc.load(args.weights) if args.weights else mnc.compile(args.spec, backend="torch")
    model.eval()
    ir = model.ir
    images = digit_images(args.images, ir.input.height, ir.input.width)
    populations = [name for name in args.populations.split(",") if name]
    with torch.no_grad():
        activations = model.features(images, populations=populations)
    for name, tensor in activations.items():
        print(f"{name:<10} {tuple(tensor.shape)}  mean {tensor.mean().item():.4f}")
    # npz keys cannot hold "/", so VISl2/3 is stored as VISl2_3; the IR hash pairs the file
    # with its network.
    arrays = {name.replace("/", "_"): tensor.numpy() for name, tensor in activations.items()}
    from mnc.io.atomic import atomic_path

    with atomic_path(args.output) as temporary, open(temporary, "wb") as stream:
        np.savez(stream, content_hash=np.array(ir.content_hash), **arrays)
    print(f"wrote {args.output} (IR {ir.short_hash})")


if __name__ == "__main__":
    main()
