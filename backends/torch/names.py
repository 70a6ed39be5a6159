"""Names of layers in the state dict, shared by the module, the reference and emitted source.

Module keys cannot contain "." and read badly with "/", so ``VISp2/3`` becomes ``VISp2_3``
and the projection ``VISp2/3->VISl4`` becomes ``VISp2_3__VISl4`` (the weights contract).
"""

from __future__ import annotations


def population_key(name: str) -> str:
    """``VISp2/3`` -> ``VISp2_3``."""
    return name.replace("/", "_")


def projection_key(source: str, target: str) -> str:
    """``("VISp2/3", "VISl4")`` -> ``VISp2_3__VISl4``."""
    return f"{population_key(source)}__{population_key(target)}"
