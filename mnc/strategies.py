"""The torch backend's execution strategies by name: the one list that the backend options,
the training config, the command line and the torch registry
(``mnc_backends.torch.fast.strategies``) share. It imports no torch, so ``import mnc`` and
``mnc --help`` stay light; a test checks that the registry runs exactly these."""

from typing import Literal, get_args

StrategyName = Literal["auto", "plain", "merged", "sparse"]
STRATEGIES: tuple[str, ...] = get_args(StrategyName)
AUTO = "auto"

DESCRIPTIONS: dict[str, str] = {
    "auto": "on each call, the fastest strategy that applies (the default)",
    "plain": "one masked convolution per projection, as the IR describes the network",
    "merged": "one dense convolution per source and stride (any device and dtype, trains)",
    "sparse": "the native kernel over the kept taps only (CPU, float32)",
}
"""One line per strategy, in the order of ``STRATEGIES``."""
