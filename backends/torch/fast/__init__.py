"""Fast execution of compiled MouseNets: the masks are known at compile time, so use them.

    >>> from mnc_backends.torch.fast import accelerate
    >>> fast = accelerate(model)                  # model: a MouseNet; shares its parameters
    >>> with torch.inference_mode():
    ...     logits = fast.eval()(images)          # CPU float32: the sparse-tap kernel
    >>> fast.train()(images)                      # training: merged convolutions (autograd)
    >>> fast.set_strategy("merged")               # force one: auto, plain, merged, sparse

Layout: ``grouping`` (which projections merge into one convolution: geometry only),
``merged`` (the portable torch strategy), ``sparse`` (lowering to the native kernel's program)
and ``native`` (loading the C library built from ``_native/``), ``accelerate`` (choosing a
strategy per call), ``bench`` (the measurements behind ``mnc bench``).
"""

from mnc_backends.torch.fast.accelerate import STRATEGIES, FastMouseNet, accelerate

__all__ = ["STRATEGIES", "FastMouseNet", "accelerate"]
