"""A process forked while the sparse kernel is busy in another thread can still run the model.

The child inherits the executor's lock in whatever state the parent's threads left it; a lock
held by a thread that does not exist in the child would block the child's first call for ever.
mnc resets its own state in the child (``os.register_at_fork``); torch's OpenMP pool is not
fork-safe, so the child runs with ``torch.set_num_threads(1)`` as README and SECURITY.md advise.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from mnc_backends.torch.fast import native
from tests.conftest import ROOT, TINY_SPEC

pytestmark = [pytest.mark.torch,
              pytest.mark.skipif(not native.available(),
                                 reason=f"sparse kernel not built: {native.unavailable_reason()}")]

SCRIPT = textwrap.dedent("""
    import multiprocessing
    import sys
    import threading

    import torch

    from mnc.compiler import compile_ir
    from mnc_backends.torch.module import MouseNet

    model = MouseNet(compile_ir(sys.argv[1])).eval().set_strategy("sparse")
    shape = model.ir.input
    images = torch.randn(8, shape.channels, shape.height, shape.width,
                         generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = model(images)

    busy = threading.Event()
    stop = threading.Event()

    def serve():  # another thread keeps the kernel busy, as in a server
        while not stop.is_set():
            with torch.inference_mode():
                model(images)
            busy.set()

    def child(queue):
        torch.set_num_threads(1)
        with torch.inference_mode():
            queue.put(model(images).numpy())

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    busy.wait(30)
    context = multiprocessing.get_context("fork")
    for attempt in range(4):
        queue = context.Queue()
        process = context.Process(target=child, args=(queue,), daemon=True)
        process.start()
        try:
            got = queue.get(timeout=20)
        except Exception:
            process.kill()
            print(f"HUNG at fork {attempt}", flush=True)
            sys.exit(3)
        process.join(10)
        difference = float((torch.from_numpy(got) - expected).abs().max())
        if difference != 0.0:
            print(f"DIFFERENT by {difference}", flush=True)
            sys.exit(4)
    stop.set()
    server.join(30)
    print("OK", flush=True)
""")


def test_forked_child_runs_the_sparse_kernel_while_the_parent_is_busy():
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(TINY_SPEC)], cwd=ROOT,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0 and "OK" in result.stdout, result.stdout + result.stderr
