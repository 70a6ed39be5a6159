"""Names of layers in the state dict, shared by the module, the reference and emitted source.

Module keys cannot contain "." and read badly with "/", so ``VISp2/3`` becomes ``VISp2_3``
and the projection ``VISp2/3->VISl4`` becomes ``VISp2_3__VISl4`` (the weights contract).
The rule lives in ``mnc.ir.keys``, where the spec and IR checkers also use it.
"""

from __future__ import annotations

from mnc.ir.keys import population_key, projection_key

__all__ = ["population_key", "projection_key"]
