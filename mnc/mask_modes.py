"""Mask modes: a vocabulary shared by the spec layer (what a user writes) and the IR (what
backends read), kept apart from both so neither depends on the other."""

from typing import Literal

MaskMode = Literal["gaussian", "none", "expected", "learnable"]
