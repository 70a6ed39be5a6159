"""The module of one population's activity, ``populations.<key>`` of a ``MouseNet``; the fast
strategies' hooks (``fast.hooks``) recognise it, so it sits below both."""

from __future__ import annotations

from torch import Tensor, nn


class Population(nn.Module):
    """A population's activity: the ReLU of its BatchNorm's output. Parameter-free.

    Forward hooks here see the activity. The ReLU is a child module so that ``torch.fx``
    graphs hold it as the node ``populations.<key>.relu``: torchvision's feature extractor
    drops a trailing ``_<digits>`` from node names, which would turn ``populations.VISp2_3``
    into ``populations.VISp2``.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.population = name
        self.relu = nn.ReLU()

    def forward(self, drive: Tensor) -> Tensor:
        return self.relu(drive)

    def extra_repr(self) -> str:
        return repr(self.population)
