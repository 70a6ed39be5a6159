"""Read activations with forward hooks, as neural-benchmark wrappers do, and share the network
as a folder Hugging Face tools read.

Hooks registered on population modules by dotted name (``populations.VISp4``) only observe,
so the fast strategy still runs and fires them with the activity it computed. The network is
then written with ``save_pretrained`` (IR as config.json, weights as model.safetensors,
preprocessing, a model card) and read back with ``from_pretrained``: no pickle, no network.

    python examples/hooks_and_hub_folder.py --spec tiny --out shared-mousenet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import mnc
from mnc_backends.torch import MouseNet


def hooked_activations(
    model: torch.nn.Module, images: torch.Tensor, layers: list[str]
) -> dict[str, torch.Tensor]:
    """One forward hook per dotted layer name, one call, hooks removed."""
    recorded: dict[str, torch.Tensor] = {}
    handles = []
    for layer in layers:

        def hook(_module, _args, output, name=layer) -> None:  # noqa: ANN001
            recorded[name] = output.detach().clone()

        handles.append(model.get_submodule(layer).register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(images)
    finally:
        for handle in handles:
            handle.remove()
    return recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="tiny", help="shipped spec name or spec file")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("shared-mousenet"),
        help="folder to write with save_pretrained",
    )
    args = parser.parse_args()

    model = mnc.compile(args.spec, backend="torch").eval()
    cfg = model.pretrained_cfg
    print(f"preprocessing: input {cfg['input_size']}, mean {cfg['mean']}, std {cfg['std']}")
    images = torch.rand(4, *cfg["input_size"])
    layers = ["populations.VISp4", "populations.VISl2_3", "populations.VISpor5"]
    with torch.no_grad():
        print(f"a hook-free call runs {model.dispatcher().choose(images)!r}")
    recorded = hooked_activations(model, images, layers)
    with torch.inference_mode():
        expected = model.features(images, ["VISp4", "VISl2/3", "VISpor5"])
    for layer, name in zip(layers, expected, strict=True):
        difference = float((recorded[layer] - expected[name]).abs().max())
        print(
            f"{layer:<22} {tuple(recorded[layer].shape)}  differs from features() by "
            f"{difference:.1e}"
        )

    folder = model.save_pretrained(args.out)
    print(f"wrote {', '.join(sorted(path.name for path in folder.iterdir()))} to {folder}")
    again = MouseNet.from_pretrained(folder).eval()
    with torch.inference_mode():
        same = torch.equal(again(images), model(images))
    print(f"read back {again.ir.name!r} (IR {again.ir.short_hash}); same logits: {same}")


if __name__ == "__main__":
    main()
