"""Rules below the IR that every backend shares, written once over numpy arrays and shapes.

``weights_format``: the tensors a network's weights file holds, their names and shapes, and
the checks with their messages. ``fresh_weights``: the untrained weights of (IR, seed).
``batchnorm``: inference BatchNorm folded into the projections feeding each population.
``merged``: which projections run as one convolution, and the numpy filling of its kernel.
``schedule``: the time rule, which population computes at which step from which activities
(a feed-forward network is its one-step case). ``sparse_program``: a network lowered to the
native sparse tap kernel's program (op stream and weights, every step of the schedule), over
the arena ``sparse_layout`` lays out, with the op codes of ``sparse_ops``.
Nothing here imports torch or onnx; backends convert their tensors to and from numpy.
"""
