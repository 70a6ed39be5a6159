"""Size guard: refuse a network too large to build, before anything is allocated.

Limits come from the caller, else the ones a command installed from its flags
(``install_limits``), else the environment (MNC_MAX_PARAMETERS, MNC_MAX_ACTIVATION_MB,
MNC_MAX_KERNEL_SIZE, MNC_MAX_MEMORY_MB, MNC_MAX_GMACS), else the defaults below, which admit
MouseNet at 224x224 input with room to spare. The memory limit bounds the estimate of
``mnc.analysis.memory`` for the task at hand, and the bytes a file unpacks to.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from mnc.analysis.memory import TASK_WORDS, MemoryEstimate, Task, estimate_memory, format_bytes
from mnc.errors import SizeLimitError
from mnc.ir.model import IR

DEFAULT_MAX_PARAMETERS = 500_000_000
DEFAULT_MAX_ACTIVATION_MB = 2048.0
DEFAULT_MAX_KERNEL_SIZE = 1025
DEFAULT_MAX_MEMORY_MB = 8192.0
DEFAULT_MAX_GMACS = 250.0
"""About 100 times the default network's 2.5 GMAC per image: a recurrent network of 100 steps,
minutes per image on a CPU."""


@dataclass(frozen=True)
class Limits:
    max_parameters: int = DEFAULT_MAX_PARAMETERS
    max_activation_mb: float = DEFAULT_MAX_ACTIVATION_MB
    """Activation memory of one image (float32), summed over populations and, for a recurrent
    network, over its steps (every step's activity is kept)."""
    max_kernel_size: int = DEFAULT_MAX_KERNEL_SIZE
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB
    """Bytes a build, run, training or export may allocate (``mnc.analysis.memory``)."""
    max_gmacs: float = DEFAULT_MAX_GMACS
    """Billions of multiply-accumulates one image may ask for, every step of a recurrent
    network counted (``mnc predict`` on an ONNX model, ``mnc bench``)."""

    @property
    def max_memory_bytes(self) -> int:
        return int(self.max_memory_mb * 2**20)

    @classmethod
    def from_environment(cls) -> Limits:
        def read(name: str, default: float, kind: type) -> float:
            text = os.environ.get(name)
            if text is None:
                return default
            try:
                value = kind(text)
            except ValueError:
                raise SizeLimitError(
                    f"environment variable {name}={text!r}: expected a positive {kind.__name__}"
                ) from None
            if not math.isfinite(value) or value <= 0:
                raise SizeLimitError(
                    f"environment variable {name}={text!r}: expected a positive number"
                )
            return value

        return cls(
            int(read("MNC_MAX_PARAMETERS", DEFAULT_MAX_PARAMETERS, int)),
            read("MNC_MAX_ACTIVATION_MB", DEFAULT_MAX_ACTIVATION_MB, float),
            int(read("MNC_MAX_KERNEL_SIZE", DEFAULT_MAX_KERNEL_SIZE, int)),
            read("MNC_MAX_MEMORY_MB", DEFAULT_MAX_MEMORY_MB, float),
            read("MNC_MAX_GMACS", DEFAULT_MAX_GMACS, float),
        )


_installed: Limits | None = None
_flags: frozenset[str] | None = None


def install_limits(limits: Limits | None, flags: frozenset[str] | None = None) -> None:
    """Make ``limits`` the default of every later check in this process (a command's flags);
    None goes back to the environment's. ``flags`` are the limit flags the running command
    offers, so that messages name only those; None (outside a command) names them all."""
    global _installed, _flags
    _installed = limits
    _flags = flags


def remedy(flag: str, variable: str) -> str:
    """``raise with FLAG or VARIABLE``, naming the flag only where the command has it."""
    if _flags is None or flag in _flags:
        return f"raise with {flag} or {variable}"
    return f"raise with {variable}"


def current_limits() -> Limits:
    """The limits a check without explicit ones applies."""
    return _installed or Limits.from_environment()


def memory_problem(what: str, needed_bytes: int, limits: Limits | None = None,
                   estimate: MemoryEstimate | None = None) -> str | None:
    """``what would allocate about N (parts); the limit is M (raise with ...)``, or None if it
    fits."""
    limits = limits or current_limits()
    if needed_bytes <= limits.max_memory_bytes:
        return None
    amount = estimate.describe() if estimate is not None else format_bytes(needed_bytes)
    return (f"{what} would allocate about {amount}; the limit is "
            f"{format_bytes(limits.max_memory_bytes)} "
            f"({remedy('--max-memory-mb', 'MNC_MAX_MEMORY_MB')})")


def work_problem(what: str, macs: float, limits: Limits | None = None) -> str | None:
    """``what asks for N GMAC per image; the limit is M (raise with MNC_MAX_GMACS)``, or None
    if it is within the limit."""
    limits = limits or current_limits()
    if macs <= limits.max_gmacs * 1e9:
        return None
    return (f"{what} asks for {macs / 1e9:,.1f} billion multiply-accumulates per image; the "
            f"limit is {limits.max_gmacs:g} (raise with MNC_MAX_GMACS)")


def check_memory(ir: IR, task: Task, batch: int = 1, limits: Limits | None = None,
                 origin: str | None = None) -> MemoryEstimate:
    """Raise SizeLimitError if ``task`` on ``ir`` with ``batch`` images would allocate more
    than the memory limit; else return the estimate."""
    estimate = estimate_memory(ir, task, batch)
    problem = memory_problem(TASK_WORDS[task], estimate.total_bytes, limits, estimate)
    if problem is not None:
        origin = origin or (ir.provenance.spec_files[-1] if ir.provenance.spec_files else None)
        where = f"{origin}: " if origin else ""
        raise SizeLimitError(f"{where}network {ir.name!r} is too large: {problem}")
    return estimate


def check_limits(ir: IR, limits: Limits | None = None) -> None:
    """Raise SizeLimitError naming the figures and how to raise the limit."""
    limits = limits or current_limits()
    problems = []
    for projection in ir.projections:
        if projection.kernel_size > limits.max_kernel_size:
            problems.append(
                f"projection {projection.name} has a {projection.kernel_size}x"
                f"{projection.kernel_size} kernel (sigma_px {projection.sigma_px:.4g}); the limit"
                f" is {limits.max_kernel_size} (raise with MNC_MAX_KERNEL_SIZE)"
            )
            break
    parameters = sum(
        q.in_channels * q.out_channels * q.kernel_size**2 + q.out_channels for q in ir.projections
    )
    parameters += sum(2 * p.channels for p in ir.populations if p.name != "input")
    parameters += ir.readout.features * ir.readout.classes + ir.readout.classes
    if parameters > limits.max_parameters:
        problems.append(
            f"the network would have {parameters:,} parameters; the limit is "
            f"{limits.max_parameters:,} ({remedy('--max-parameters', 'MNC_MAX_PARAMETERS')})"
        )
    steps = ir.dynamics.steps
    activation_mb = (steps * sum(p.channels * p.height * p.width for p in ir.populations)
                     * 4 / 2**20)
    if activation_mb > limits.max_activation_mb:
        over = f" ({steps} steps)" if steps > 1 else ""
        problems.append(
            f"activations would take {activation_mb:,.1f} MB per image{over}; the limit "
            f"is {limits.max_activation_mb:,.1f} MB "
            f"({remedy('--max-activation-mb', 'MNC_MAX_ACTIVATION_MB')})"
        )
    if not problems:  # the counts above bound the arrays the memory estimate sums
        estimate = estimate_memory(ir, "build")
        problem = memory_problem(TASK_WORDS["build"], estimate.total_bytes, limits, estimate)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise SizeLimitError(f"network {ir.name!r} is too large: " + "; ".join(problems))
