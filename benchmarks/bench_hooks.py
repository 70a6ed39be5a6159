"""Forward hooks on population modules against the hook-free forward, in one run.

    python benchmarks/bench_hooks.py [--spec specs/mouse.yaml] [--batch 16] [--repeats 5]
                                     [--layers 4] [--threads N] [--json PATH]

What a hook-based activations extractor does (one forward hook per requested layer, found by
its dotted module name, storing ``output``; one inference call in eval mode under
``torch.no_grad``; hooks removed afterwards) is timed next to the same forward with no hook,
and next to the same hooks on the plain strategy (what every hook cost before the fast
strategies fired population hooks themselves). The three are timed alternately after one
warm-up, so load on a shared machine affects them alike; the medians and the ratios to the
hook-free forward are reported, with the largest difference between what the hooks recorded
and ``model.features`` (relative to each population's largest activity).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

import mnc
from mnc_backends.torch import MouseNet
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.bench import randomise_statistics
from mnc_backends.torch.names import population_key

ROOT = Path(__file__).resolve().parents[1]


def extract(
    model: torch.nn.Module, images: torch.Tensor, layers: list[str]
) -> dict[str, torch.Tensor]:
    """Register a forward hook per dotted layer name, run once, remove the hooks."""
    recorded: dict[str, torch.Tensor] = {}
    handles = []
    for layer in layers:
        module = model
        for part in layer.split("."):
            module = module._modules[part]

        def hook(_module, _args, output, name=layer) -> None:  # noqa: ANN001
            recorded[name] = output.detach().cpu()

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return recorded


def _time(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "mouse.yaml")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--layers", type=int, default=4, help="hook this many populations, spread over the network"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = MouseNet(mnc.compile_ir(args.spec))
    randomise_statistics(model, seed=3)
    model.eval()
    names = [name for name in model.ir.population_names() if name != "input"]
    step = max(1, len(names) // args.layers)
    chosen = names[::step][: args.layers]
    layers = [f"populations.{population_key(name)}" for name in chosen]
    shape = model.ir.input
    images = torch.randn(
        args.batch,
        shape.channels,
        shape.height,
        shape.width,
        generator=torch.Generator().manual_seed(0),
    )

    def hook_free() -> None:
        with torch.no_grad():
            model.set_strategy("auto")(images)

    def hooked() -> None:
        extract(model.set_strategy("auto"), images, layers)

    def hooked_plain() -> None:
        extract(model.set_strategy("plain"), images, layers)

    candidates = {
        "no hook (auto)": hook_free,
        "hooks (auto)": hooked,
        "hooks (plain)": hooked_plain,
    }
    for call in candidates.values():
        call()  # warm-up: prepared weights and programs
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.repeats):
        for name, call in candidates.items():
            times[name].append(_time(call))
    medians = {name: statistics.median(values) for name, values in times.items()}

    recorded = extract(model.set_strategy("auto"), images, layers)
    with torch.inference_mode():
        expected = model.features(images, chosen)
    relative = max(
        float((recorded[layer] - expected[name]).abs().max())
        / max(1.0, float(expected[name].abs().max()))
        for layer, name in zip(layers, chosen, strict=True)
    )

    base = medians["no hook (auto)"]
    print(
        f"{model.ir.name}: batch {args.batch}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, sparse kernel "
        f"{native.isa_name()}; hooks on {', '.join(chosen)}"
    )
    for name, value in medians.items():
        print(f"  {name:16s} {value:9.1f} ms   {value / base:6.2f}x the hook-free forward")
    print(f"  recorded vs model.features: largest relative difference {relative:.1e}")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "spec": str(args.spec),
                    "batch": args.batch,
                    "layers": chosen,
                    "median_ms": medians,
                    "largest_relative_difference": relative,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
