"""Fast execution of compiled MouseNets: the masks are known at compile time, so use them.

Every ``MouseNet`` runs the ``auto`` strategy unless told otherwise:

    >>> with torch.inference_mode():
    ...     logits = model.eval()(images)         # CPU float32: the sparse-tap kernel
    >>> model.train()(images)                     # CPU training: merged convolutions (autograd)
    >>> model.set_strategy("plain")               # force one: auto, plain, merged, sparse
    >>> model.invalidate()                        # after writing weights torch cannot see

Layout: ``strategies`` (the registry: each strategy as an object saying what it cannot run
and how it runs), ``dispatch`` (choosing one per call: ``MouseNet.set_strategy``), ``prepared``
(what the strategies derive from the weights, and when it is dropped), ``merged`` (the
portable torch strategy over ``mnc.lowering.merged``'s groups), ``sparse`` (lowering to the
native kernel's program) and ``native`` (loading the C library built from ``_native/``),
``shared`` (helpers of every strategy), ``bench`` (the measurements behind ``mnc bench``);
``accelerate`` holds the deprecated views of a model with a strategy of their own.
"""

from mnc_backends.torch.fast.accelerate import FastMouseNet, accelerate  # deprecated
from mnc_backends.torch.fast.dispatch import STRATEGIES

__all__ = ["STRATEGIES", "FastMouseNet", "accelerate"]
