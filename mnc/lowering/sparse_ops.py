"""The sparse tap kernel's op codes and how many int32 fields follow each, defined once.

The kernel (``mnc_backends/torch/fast/_native/sparse_taps.c``) declares the same values in
its ``enum``; a test reads that enum and compares. The lowering (``sparse_program``) writes
these ops and the program check (``mnc_backends.torch.fast.program_check``) walks them.

Fields, in order:

- ``PLACE``: channels, height, width, arena origin, channel stride, row pitch, and where in
  the image the frame starts (a clip's frame ``t`` is ``t * C * H * W`` floats in);
- ``CONV``: the ``CONV_FIELDS`` of the output (channels, height, width, origin, channel
  stride, row pitch, phase split factor, phase offset, phase channel stride, phase pitch,
  phase size, top, left, column step, ReLU flag), then each channel's tap lists;
- ``PHASE``: channels, rows, pitch, stride, source offset, source channel stride, source
  pitch, target offset, target channel stride, target pitch, phase size;
- ``POOL``: channels, height, width, pool size, source, channel stride, pitch, features
  offset, the number of steps averaged and whether to add to what is there (0: write);
- ``COPY``: channels, height, width, source, channel stride, pitch, output offset.
"""

from __future__ import annotations

OP_END, OP_PLACE, OP_CONV, OP_PHASE, OP_POOL, OP_COPY = 0, 1, 2, 3, 4, 5
OPCODES = {"OP_END": OP_END, "OP_PLACE": OP_PLACE, "OP_CONV": OP_CONV, "OP_PHASE": OP_PHASE,
           "OP_POOL": OP_POOL, "OP_COPY": OP_COPY}

PLACE_FIELDS = 7
CONV_FIELDS = 15
PHASE_FIELDS = 11
POOL_FIELDS = 10
COPY_FIELDS = 7
