"""Throughput of every execution strategy against the reference-semantics baseline.

All strategies of one comparison run side by side in the same process, interleaved round by
round (baseline, then each strategy, then again), and each is summarised by its median time,
so the ratios stay meaningful on a machine that other jobs share. Every strategy starts from
the same weights (BatchNorm statistics and biases made non-trivial, so folding is exercised)
and its output is compared with the baseline's (max abs difference).

Comparisons: inference at a large batch and at batch 1 (``torch.inference_mode``), one
training step at the large batch (forward, cross-entropy, backward, SGD), and onnxruntime (CPU)
on the ONNX backend's graph at the large batch, where that backend is installed: as exported
(one Conv per source and stride) and with one Conv per projection.

Load: every row records the machine's 1-minute load average when its comparison started, and
``max_load`` makes the run first wait (up to ``wait_s``) for a quiet machine. The physical
limit: the kept multiply-accumulates per image (the masks' nonzero taps times their output
pixels; three times that per training image: forward, input and weight gradients) against the
machine's float32 multiply-accumulate rate, measured with a large matrix product on the same
threads. ``gradients``: each float32 training strategy's gradients against plain float64.
"""

from __future__ import annotations

import functools
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mnc.errors import BackendError
from mnc.extras import missing_extra
from mnc.ir.model import IR
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.dispatch import check_strategy
from mnc_backends.torch.fast.strategies import REGISTRY
from mnc_backends.torch.module import MouseNet
from mnc_backends.torch.names import projection_key
from mnc_backends.torch.reference import ReferenceMouseNet

BASELINE = "reference"
CPU = torch.device("cpu")


@dataclass(frozen=True)
class BenchConfig:
    spec: Path
    large_batch: int = 64
    rounds: int = 3
    onnx: bool = True
    seed: int = 0
    device: str = "cpu"
    amp: bool | None = None
    """Also time plain and merged under bfloat16 autocast (rows ``<strategy>+amp``); None: on
    for CUDA only."""
    max_load: float | None = None
    """Before timing, wait until the 1-minute load average is at most this (None: start)."""
    wait_s: float = 600.0
    """Longest wait for ``max_load``; then the run starts anyway (the summary says so)."""
    gradients: bool = False
    """Also compare every float32 training strategy's gradients with plain float64's."""
    gradient_batch: int = 8


@dataclass
class Row:
    mode: str
    """eval, train or onnx."""
    strategy: str
    batch: int
    seconds: float
    """Median seconds per call."""
    images_per_s: float
    ratio: float
    """Throughput relative to the baseline of the same mode and batch."""
    max_abs_diff: float
    load: float | None = None
    """1-minute load average of the machine when this comparison started."""


@dataclass
class GradientRow:
    """One float32 training strategy's gradients against plain float64 (the truth)."""

    strategy: str
    worst: float
    """Largest relative error ||g - truth|| / ||truth|| over the parameters (conv biases left
    out: under training-mode BatchNorm their true gradient is zero)."""
    worst_parameter: str
    median: float
    ratio_to_plain: float


@dataclass
class BenchResult:
    spec: str
    rows: list[Row] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    gradients: list[GradientRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary, "spec": self.spec, "rows": [asdict(row) for row in self.rows],
                "gradients": [asdict(row) for row in self.gradients]}


def load_average() -> float | None:
    """The 1-minute load average, or None where the system does not report one."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def wait_for_quiet(max_load: float, wait_s: float, poll_s: float = 5.0) -> float:
    """Wait until the 1-minute load average is at most ``max_load`` or ``wait_s`` has passed;
    the seconds waited."""
    start = time.monotonic()
    while True:
        load = load_average()
        waited = time.monotonic() - start
        if load is None or load <= max_load or waited >= wait_s:
            return round(waited, 1)
        time.sleep(min(poll_s, max(0.0, wait_s - waited)))


def multiply_accumulate_rate(size: int = 1024, repeats: int = 5) -> float:
    """The machine's float32 multiply-accumulates per second on torch's threads: the best of
    ``repeats`` products of two ``size`` x ``size`` matrices (the physical limit's yardstick)."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return size**3 / best


def kept_macs_per_image(model: MouseNet) -> int:
    """Multiply-accumulates per image over the masks' nonzero taps (every step of a
    recurrent network counted once)."""
    total = 0
    for projection in model.ir.projections:
        conv = model.convs[projection_key(projection.source, projection.target)]
        target = model.ir.population(projection.target)
        total += int(conv.mask.count_nonzero()) * target.height * target.width
    return total


def machine(device: torch.device = CPU) -> str:
    """CPU model, cores this process may use, the sparse kernel's instruction set, and the
    GPU when the benchmark runs on one."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"{model}, {cores} cores, {platform.system()} {platform.machine()}, "
            f"sparse kernel {native.isa_name()}, torch threads {torch.get_num_threads()}{gpu}")


def randomise_statistics(model: MouseNet, seed: int) -> None:
    """Non-trivial BN statistics and conv biases, so folding and biases are really tested."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for norm in model.norms.values():
            size = norm.running_mean.shape
            norm.running_mean.copy_(0.1 * torch.randn(size, generator=generator))
            norm.running_var.copy_(0.5 + torch.rand(size, generator=generator))
            channels = norm.weight.shape  # a recurrent network's statistics are per step
            norm.weight.copy_(0.5 + torch.rand(channels, generator=generator))
            norm.bias.copy_(0.1 * torch.randn(channels, generator=generator))
        for conv in model.convs.values():
            conv.bias.copy_(0.05 * torch.randn(conv.bias.shape, generator=generator))


SMALL_BATCH_REPEATS = 5
"""Back-to-back calls per timed sample at small batches: latency is measured in a steady
state, as a service answering one image after another sees it, not with the caches left cold
by the previous strategy."""


def _median_times(calls: dict[str, Callable[[], Any]], rounds: int, repeats: int = 1
                  ) -> dict[str, float]:
    """Median seconds per call, strategies interleaved round by round; one untimed warm-up
    call each, and each sample the mean of ``repeats`` consecutive calls."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(repeats):
                call()
            times[name].append((time.perf_counter() - start) / repeats)
    return {name: statistics.median(values) for name, values in times.items()}


def _rows(mode: str, batch: int, seconds: dict[str, float], diffs: dict[str, float],
          load: float | None = None) -> list[Row]:
    base = seconds[BASELINE]
    return [Row(mode, name, batch, value, batch / value, base / value, diffs.get(name, 0.0),
                load) for name, value in seconds.items()]


AMP_STRATEGIES = ("plain", "merged")
AMP_SUFFIX = "+amp"


class StrategyRun:
    """The one model called under one strategy: every row shares the model's weights, and
    each call sets the strategy it measures."""

    def __init__(self, model: MouseNet, strategy: str) -> None:
        self.model = model
        self.strategy = check_strategy(strategy, model.ir)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.model.strategy = self.strategy  # (checked once, above)
        return self.model(images)

    def parameters(self) -> Any:  # noqa: ANN401 - the model's parameter iterator
        return self.model.parameters()


def benched_strategies(ir: IR, device: torch.device) -> list[str]:
    """The registered strategies that run ``ir`` on ``device`` here (sparse: CPU only, with
    the native kernel, on the networks it runs)."""
    return [name for name, strategy in REGISTRY.items()
            if strategy.problem_for_device(ir, device) is None]


def _variants(model: MouseNet, device: torch.device, amp: bool, train: bool
              ) -> dict[str, tuple[StrategyRun, bool]]:
    """Strategy rows: name -> (call, under bfloat16 autocast)."""
    model.train(train)
    names = benched_strategies(model.ir, device)
    variants = {name: (StrategyRun(model, name), False) for name in names}
    if amp:
        variants.update({name + AMP_SUFFIX: (StrategyRun(model, name), True)
                         for name in AMP_STRATEGIES})
    return variants


def _autocast(device: torch.device, enabled: bool) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def _synchronised(device: torch.device, call: Callable[[], Any]) -> Callable[[], Any]:
    """A call that returns only once the device has finished its work (timing on CUDA)."""
    if device.type != "cuda":
        return call

    def synchronised() -> Any:
        result = call()
        torch.cuda.synchronize(device)
        return result

    return synchronised


def bench_eval(model: MouseNet, reference: ReferenceMouseNet, ir: IR, batch: int,
               rounds: int, seed: int, device: torch.device = CPU, amp: bool = False
               ) -> list[Row]:
    load = load_average()
    images = torch.randn(batch, ir.input.channels, ir.input.height, ir.input.width,
                         generator=torch.Generator().manual_seed(seed + batch)).to(device)
    variants = _variants(model, device, amp, train=False)

    def run(module: Callable[[torch.Tensor], torch.Tensor], low: bool) -> torch.Tensor:
        with _autocast(device, low):
            return module(images)

    with torch.inference_mode():
        expected = reference(images)
        diffs = {name: float((run(module, low).float() - expected).abs().max())
                 for name, (module, low) in variants.items()}
        runs = {name: _synchronised(device, functools.partial(run, module, low))
                for name, (module, low) in variants.items()}
        calls: dict[str, Callable[[], Any]] = {
            BASELINE: _synchronised(device, lambda: reference(images)), **runs}
        seconds = _median_times(calls, rounds, SMALL_BATCH_REPEATS if batch < 8 else 1)
    return _rows("eval", batch, seconds, diffs, load)


def _train_step(module: torch.nn.Module | StrategyRun, images: torch.Tensor, labels: torch.Tensor,
                low: bool = False) -> tuple[torch.Tensor, Callable[[], None]]:
    optimizer = torch.optim.SGD(module.parameters(), lr=0.0)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with _autocast(images.device, low):
            loss = F.cross_entropy(module(images), labels)
        loss.backward()
        optimizer.step()

    with _autocast(images.device, low):
        first = module(images).float()
    return first, _synchronised(images.device, step)


def masked_gradients_zero(model: MouseNet) -> bool:
    """After a backward pass, every masked tap of every binary mask has exactly zero gradient."""
    for conv in model.convs.values():
        if conv.weight.grad is None:
            return False
        if bool((conv.weight.grad[conv.mask == 0] != 0).any()):
            return False
    return True


def bench_train(model: MouseNet, reference: ReferenceMouseNet, ir: IR, batch: int,
                rounds: int, seed: int, device: torch.device = CPU, amp: bool = False
                ) -> tuple[list[Row], bool]:
    """One SGD step (lr 0, so every round sees the same weights) per call; train mode."""
    load = load_average()
    generator = torch.Generator().manual_seed(seed + 1000 + batch)
    images = torch.randn(batch, ir.input.channels, ir.input.height, ir.input.width,
                         generator=generator).to(device)
    labels = torch.randint(0, ir.readout.classes, (batch,), generator=generator).to(device)
    variants: dict[str, tuple[torch.nn.Module | StrategyRun, bool]] = {
        BASELINE: (reference.train(), False)}
    variants.update(_variants(model, device, amp, train=True))
    outputs, calls = {}, {}
    for name, (module, low) in variants.items():
        outputs[name], calls[name] = _train_step(module, images, labels, low)
    diffs = {name: float((out - outputs[BASELINE]).detach().abs().max())
             for name, out in outputs.items()}
    seconds = _median_times(calls, rounds)
    zero = masked_gradients_zero(model)
    model.eval()
    reference.eval()
    return _rows("train", batch, seconds, diffs, load), zero


def bench_onnx(model: MouseNet, reference: ReferenceMouseNet, ir: IR, batch: int,
               rounds: int, seed: int) -> list[Row]:
    """onnxruntime (CPU) on the ONNX backend's graph, against the baseline."""
    import onnxruntime as ort

    from mnc.api import compile as compile_spec

    load = load_average()
    state = {key: value.detach().cpu().numpy() for key, value in model.state_dict().items()}
    graphs = {"onnxruntime": compile_spec(ir, backend="onnx", state_dict=state),
              "onnxruntime-per-projection": compile_spec(ir, backend="onnx", state_dict=state,
                                                        merge_convolutions=False)}
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sessions = {name: ort.InferenceSession(graph.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
                for name, graph in graphs.items()}
    images = torch.randn(batch, ir.input.channels, ir.input.height, ir.input.width,
                         generator=torch.Generator().manual_seed(seed + 2000 + batch))
    feed = {sessions["onnxruntime"].get_inputs()[0].name: images.numpy()}
    with torch.inference_mode():
        expected = reference(images).numpy()
        diffs = {name: float(np.abs(session.run(None, feed)[0] - expected).max())
                 for name, session in sessions.items()}
        runs = {name: (lambda s=session: s.run(None, feed)) for name, session in sessions.items()}
        calls: dict[str, Callable[[], Any]] = {BASELINE: lambda: reference(images), **runs}
        seconds = _median_times(calls, rounds)
    return _rows("onnx", batch, seconds, diffs, load)


def _gradients(model: MouseNet, strategy: str, images: torch.Tensor, labels: torch.Tensor,
               dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Every parameter's gradient (float64) after one training-mode loss on a copy."""
    import copy

    trained = copy.deepcopy(model).to(dtype).train().set_strategy(strategy)
    F.cross_entropy(trained(images.to(dtype)), labels).backward()
    return {name: p.grad.double() for name, p in trained.named_parameters()
            if p.grad is not None}


def bench_gradients(model: MouseNet, ir: IR, batch: int, seed: int) -> list[GradientRow]:
    """Each float32 training strategy's gradients against plain float64's (the truth: the
    published code in float64 computes the same to about 1e-15)."""
    generator = torch.Generator().manual_seed(seed + 3000 + batch)
    images = torch.randn(batch, ir.input.channels, ir.input.height, ir.input.width,
                         generator=generator)
    labels = torch.randint(0, ir.readout.classes, (batch,), generator=generator)
    truth = _gradients(model, "plain", images, labels, torch.float64)
    names = benched_strategies(ir, CPU)
    rows = []
    for strategy in names:
        grads = _gradients(model, strategy, images, labels, torch.float32)
        errors = {name: float((grads[name] - want).norm() / want.norm())
                  for name, want in truth.items()
                  if not (name.startswith("convs.") and name.endswith(".bias"))}
        worst = max(errors, key=errors.__getitem__)
        rows.append(GradientRow(strategy, errors[worst], worst,
                                statistics.median(errors.values()), 0.0))
    plain = rows[0].worst
    for row in rows:
        row.ratio_to_plain = row.worst / plain if plain else float("inf")
    return rows


def _ratio(rows: list[Row], mode: str, batch: int, strategy: str) -> float | None:
    for row in rows:
        if row.mode == mode and row.batch == batch and row.strategy == strategy:
            return round(row.ratio, 3)
    return None


def run_benchmark(config: BenchConfig, progress: Callable[[str], None] = lambda _: None
                  ) -> BenchResult:
    """Measure every strategy; ``summary`` has the headline ratios of what ``auto`` picks."""
    from mnc.compiler import compile_ir

    ir = compile_ir(config.spec)
    if ir.mask.mode == "learnable":
        raise BackendError(f"{config.spec}: the benchmark baseline covers fixed masks only")
    device = _device(config.device)
    amp = device.type == "cuda" if config.amp is None else config.amp
    model, reference = _same_weights(ir, config.seed, device)
    result = BenchResult(str(config.spec))
    large = config.large_batch
    waited = None
    if config.max_load is not None:
        progress(f"waiting for a 1-minute load average of at most {config.max_load}")
        waited = wait_for_quiet(config.max_load, config.wait_s)
    load_start = load_average()
    for batch in (large, 1):
        progress(f"eval, batch {batch}")
        result.rows += bench_eval(model, reference, ir, batch, config.rounds, config.seed,
                                  device, amp)
    onnx_rows, onnx_note = _onnx_comparison(model, reference, ir, config, device, progress)
    result.rows += onnx_rows
    # Last: training updates the BatchNorm running statistics.
    progress(f"train, batch {large}")
    train_rows, zero = bench_train(model, reference, ir, large, config.rounds, config.seed,
                                   device, amp)
    result.rows += train_rows
    load_end = load_average()
    if config.gradients:
        progress(f"gradients against float64, batch {config.gradient_batch}")
        result.gradients = bench_gradients(model, ir, config.gradient_batch, config.seed)
    auto = _auto_choices(model, device)
    exact = [row for row in result.rows if not row.strategy.endswith(AMP_SUFFIX)]
    low = [row for row in result.rows if row.strategy.endswith(AMP_SUFFIX)]
    result.summary = {
        # keys name the batch they were measured at (b64 by default)
        f"eval_b{large}_speedup": _ratio(result.rows, "eval", large, auto["auto_eval_strategy"]),
        "eval_b1_speedup": _ratio(result.rows, "eval", 1, auto["auto_eval_strategy"]),
        f"train_b{large}_speedup": _ratio(result.rows, "train", large,
                                          auto["auto_train_strategy"]),
        f"onnx_b{large}_speedup": _ratio(result.rows, "onnx", large, "onnxruntime"),
        f"onnx_per_projection_b{large}_speedup": _ratio(result.rows, "onnx", large,
                                                        "onnxruntime-per-projection"),
        "max_abs_diff": max((row.max_abs_diff for row in exact), default=0.0),
        "amp_max_abs_diff": max((row.max_abs_diff for row in low), default=None),
        "masked_taps_zero_gradient": zero,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "waited_for_quiet_s": waited,
        **_physical_limit(model, result.rows, device, large),
        **auto,
        "large_batch": large,
        "rounds": config.rounds,
        "device": str(device),
        "onnx": onnx_note,
        "machine": machine(device),
        "torch_version": torch.__version__,
    }
    return result


def _same_weights(ir: IR, seed: int, device: torch.device
                  ) -> tuple[MouseNet, ReferenceMouseNet]:
    """The model (non-trivial statistics) and the baseline with its weights, in eval mode."""
    model = MouseNet(ir)
    randomise_statistics(model, seed)
    with torch.random.fork_rng(devices=[]):  # its default init draws; the caller's generator
        reference = ReferenceMouseNet(ir)      # stays as it was (the weights are copied next)
    reference.load_state_dict(model.state_dict())
    model.eval().to(device)
    reference.eval().to(device)
    return model, reference


def _onnx_comparison(model: MouseNet, reference: ReferenceMouseNet, ir: IR,
                     config: BenchConfig, device: torch.device,
                     progress: Callable[[str], None]) -> tuple[list[Row], str]:
    """The onnxruntime rows at the large batch, and what the summary says of them."""
    if not config.onnx:
        return [], "not measured"
    if device.type != "cpu":
        return [], "skipped: the comparison is onnxruntime's CPU provider (run with --device cpu)"
    progress(f"onnxruntime, batch {config.large_batch}")
    try:
        rows = bench_onnx(model, reference, ir, config.large_batch, config.rounds, config.seed)
    except (ImportError, BackendError) as error:
        needed = missing_extra(error) if isinstance(error, ModuleNotFoundError) else None
        return [], f"skipped: {needed or error}"
    return rows, "measured"


def _auto_choices(model: MouseNet, device: torch.device) -> dict[str, Any]:
    """What ``auto`` runs for inference and for training on one image, and why it passes
    over the strategies it prefers (the registry's lines, strategy -> why)."""
    ir = model.ir
    probe = torch.zeros(1, ir.input.channels, ir.input.height, ir.input.width, device=device)
    model.set_strategy("auto")
    with torch.inference_mode():
        auto_eval = model.eval().dispatcher().choose(probe)
        eval_passed = model.dispatcher().passed_over(probe)
    auto_train = model.train().dispatcher().choose(probe)
    train_passed = model.dispatcher().passed_over(probe)
    model.eval()
    return {"auto_eval_strategy": auto_eval, "auto_train_strategy": auto_train,
            "auto_eval_passed_over": dict(eval_passed),
            "auto_train_passed_over": dict(train_passed)}


def _physical_limit(model: MouseNet, rows: list[Row], device: torch.device, batch: int
                    ) -> dict[str, Any]:
    """Kept MACs per image, the machine's measured MAC rate, and the fraction of it the
    sparse rows reach (training: three passes of the kept MACs per image)."""
    if device.type != "cpu":
        return {}
    kept = kept_macs_per_image(model)
    rate = multiply_accumulate_rate()
    limit: dict[str, Any] = {"kept_macs_per_image": kept,
                             "machine_macs_per_s": round(rate),
                             "machine_macs_per_s_threads": torch.get_num_threads()}
    for row in rows:
        if row.strategy == "sparse" and row.batch == batch and row.mode in ("eval", "train"):
            passes = 3 if row.mode == "train" else 1
            limit[f"sparse_{row.mode}_fraction_of_machine"] = round(
                passes * kept * row.images_per_s / rate, 4)
    return limit


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as error:
        raise BackendError(f"--device {name!r} is not a device torch knows ({error})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"--device {name!r}: this torch build or machine has no CUDA device")
    if device.type not in ("cpu", "cuda"):
        raise BackendError(f"--device {name!r}: the benchmark runs on cpu or cuda")
    return device
