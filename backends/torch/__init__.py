"""PyTorch backend of mnc: one masked convolution per projection, BatchNorm + ReLU per population.

    >>> import mnc
    >>> model = mnc.compile("specs/mouse.yaml", backend="torch")    # a MouseNet (nn.Module)
    >>> logits = model(images)                                      # (N, 3, 64, 64) -> (N, 1000)
    >>> acts = model.features(images, ["VISp5", "VISl2/3"])        # {name: (N, C, H, W)}

A recurrent spec (``dynamics``, delayed projections) runs unrolled in time: ``features`` then
gives ``(N, T, C, H, W)``, and a ``clip`` network takes ``(N, T, C, H, W)`` input.

Layout: ``masked_conv`` (one projection), ``population`` (one population's activity),
``plan`` (the execution plan's steps and keys), ``module`` (the network), ``fast`` (its
execution strategies), ``reference`` (plain reference semantics: oracle and benchmark
baseline), ``weights_io`` (the saved-file format), ``pretrained`` (Hugging Face folders),
``emit_python`` (standalone source), ``backend`` (the registry entry).
"""

from mnc_backends.torch.backend import TorchBackend
from mnc_backends.torch.masked_conv import LearnableMaskConv2d, MaskedConv2d
from mnc_backends.torch.module import MouseNet

__all__ = ["LearnableMaskConv2d", "MaskedConv2d", "MouseNet", "TorchBackend"]
