"""Size guard: refuse a network too large to build, before anything is allocated.

The limits themselves and where they come from are ``mnc.limits`` (re-exported here); the
memory limit bounds the estimate of ``mnc.analysis.memory`` for the task at hand.
"""

from __future__ import annotations

from mnc.analysis.memory import TASK_WORDS, MemoryEstimate, Task, estimate_memory
from mnc.errors import SizeLimitError
from mnc.ir.model import IR
from mnc.limits import (  # noqa: F401 - the policy, importable from here as before
    DEFAULT_MAX_ACTIVATION_MB,
    DEFAULT_MAX_GMACS,
    DEFAULT_MAX_KERNEL_SIZE,
    DEFAULT_MAX_MEMORY_MB,
    DEFAULT_MAX_PARAMETERS,
    Limits,
    current_limits,
    install_limits,
    memory_problem,
    remedy,
)


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
