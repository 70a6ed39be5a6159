"""Fast execution of compiled MouseNets: the masks are known at compile time, so use them.

Every ``MouseNet`` runs the ``auto`` strategy unless told otherwise:

    >>> with torch.inference_mode():
    ...     logits = model.eval()(images)         # CPU float32: the sparse-tap kernel
    >>> model.train()(images)                     # CPU training: merged convolutions (autograd)
    >>> model.set_strategy("plain")               # force one: auto, plain, merged, sparse
    >>> fast = accelerate(model, "merged")        # a view with its own strategy, same weights

Layout: ``merged`` (the portable torch strategy; which projections merge into one
convolution is decided by ``mnc.analysis.grouping``), ``sparse`` (lowering to the native
kernel's program) and ``native`` (loading the C library built from ``_native/``),
``accelerate`` (choosing a strategy per call), ``bench`` (the measurements behind
``mnc bench``).
"""

from mnc_backends.torch.fast.accelerate import STRATEGIES, FastMouseNet, accelerate

__all__ = ["STRATEGIES", "FastMouseNet", "accelerate"]
