"""Fuzz cases for the sparse kernel, run by ``test_sparse_kernel_asan.py`` in a process that
loads an AddressSanitizer build of the kernel (``MNC_SPARSE_LIBRARY``).

Four families of seeded mutations, three of the tiny spec's network:

- ``file``: an edited IR (hash recomputed) in a model file with the original weights, read
  with ``mnc.load``: refused with an ``MncError``, or run and equal to the plain path;
- ``memory``: an edited IR, masks, weights or images in memory (no file check): refused
  before the kernel runs, or equal to the plain path (NaN and infinities included);
- ``program``: a compiled kernel program with a few values overwritten: refused by the
  program check, or run by the kernel (AddressSanitizer watches every access);

and ``recurrent``: the tiny network with a lateral loop, upsampled feedback one and two
steps late and a delayed forward projection, on clips (``tests/recurrent_irs``), its weights,
masks or frames edited in memory (equal to plain) or its program mutated (refused or run):
its sub-pixel phases, delayed slots and per-frame placement under the same watch.

Prints one JSON object: how many cases ended each way, and the mismatches. With ``--canary``
it runs an out-of-bounds program past the check instead, so the caller can see that the
instrumented build really is the one loaded.

Run: ``python -m tests.fuzz.sparse_fuzz_worker --cases 60``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

import mnc
from mnc.errors import MncError
from mnc.ir.model import IR
from mnc.ir.serialize import ir_to_json
from mnc.lowering import sparse_ops
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.bench import randomise_statistics
from mnc_backends.torch.fast.program_check import ProgramError, check_program
from mnc_backends.torch.fast.sparse import ALIGN, Program, SparseExecutor, compile_program
from mnc_backends.torch.module import MouseNet
from mnc_backends.torch.weights_io import model_payload
from tests.recurrent_irs import inputs_for, with_recurrence

TINY = Path(__file__).resolve().parents[2] / "specs" / "variants" / "tiny.yaml"
ISAS = ("generic", "avx2", "avx512")
TOLERANCE = 1e-4
Data = dict[str, Any]


def _choose_projection(data: Data, rng: random.Random) -> Data:
    return rng.choice(data["projections"])


def _padding(data: Data, rng: random.Random) -> None:
    projection = _choose_projection(data, rng)
    side = rng.randrange(4)
    padding = list(projection["padding_lrtb"])
    padding[side] = rng.choice([-1, 1, -(10**6), 10**6, -3000, 3000]) + padding[side]
    projection["padding_lrtb"] = padding


def _stride(data: Data, rng: random.Random) -> None:
    _choose_projection(data, rng)["stride"] = rng.choice([0, -1, 2, 3, 4, 64])


def _kernel(data: Data, rng: random.Random) -> None:
    _choose_projection(data, rng)["kernel_size"] = rng.choice([0, 2, 4, 9, 33, 101])


def _kernel_consistent(data: Data, rng: random.Random) -> None:
    """A wider kernel with the padding grown to match: still a valid IR (a new network)."""
    projection = _choose_projection(data, rng)
    grow = rng.choice([1, 2, 5])
    projection["kernel_size"] += 2 * grow
    projection["padding_lrtb"] = [pad + grow for pad in projection["padding_lrtb"]]


def _channels(data: Data, rng: random.Random) -> None:
    target = rng.choice(["population", "in", "out"])
    if target == "population":
        rng.choice(data["populations"][1:])["channels"] = rng.choice([0, 1, 7, 300])
    else:
        _choose_projection(data, rng)[f"{target}_channels"] = rng.choice([0, 1, 999])


def _channels_consistent(data: Data, rng: random.Random) -> None:
    """One population with another channel count, everything that depends on it updated."""
    population = rng.choice(data["populations"][1:])
    channels = rng.choice([1, 2, 5])
    population["channels"] = channels
    for projection in data["projections"]:
        if projection["source"] == population["name"]:
            projection["in_channels"] = channels
        if projection["target"] == population["name"]:
            projection["out_channels"] = channels
    sizes = {p["name"]: p["channels"] for p in data["populations"]}
    readout = data["readout"]
    readout["features"] = sum(sizes[name] for name in readout["populations"]) * \
        readout["pool_size"] ** 2


def _grid(data: Data, rng: random.Random) -> None:
    population = rng.choice(data["populations"])
    field = rng.choice(["height", "width"])
    population[field] = rng.choice([0, 1, population[field] + 1, population[field] * 2])


def _readout(data: Data, rng: random.Random) -> None:
    field, values = rng.choice([("pool_size", [0, 1, 33, 300]), ("features", [0, 1, 10**6]),
                                ("classes", [0, 2])])
    data["readout"][field] = rng.choice(values)


IR_EDITS: list[Callable[[Data, random.Random], None]] = [
    _padding, _stride, _kernel, _kernel_consistent, _channels, _channels_consistent, _grid,
    _readout]


VALID_EDITS = [_kernel_consistent, _channels_consistent]


def _edited_data(base: IR, rng: random.Random, edits: list | None = None) -> Data:  # noqa: ANN001
    data = base.model_dump(mode="json")
    for _ in range(rng.randint(1, 3)):
        rng.choice(edits or IR_EDITS)(data, rng)
    return data


def _edited_ir(base: IR, rng: random.Random, edits: list | None = None) -> IR:  # noqa: ANN001
    return IR.model_validate(_edited_data(base, rng, edits))


def _ir_file_text(data: Data) -> tuple[str, str]:
    """IR JSON and hash as a file would hold them: recomputed where the IR models accept the
    edit, the JSON as edited (and the old hash) where they refuse it."""
    try:
        ir = IR.model_validate(data)
    except ValidationError:
        return json.dumps(data), "0" * 64
    return ir_to_json(ir), ir.content_hash


def _same_as_plain(got: torch.Tensor, expected: torch.Tensor) -> bool:
    if got.shape != expected.shape:
        return False
    for test in (torch.isnan, torch.isposinf, torch.isneginf):
        if not torch.equal(test(got), test(expected)):
            return False
    finite = torch.isfinite(expected)
    return bool(torch.allclose(got[finite], expected[finite], atol=TOLERANCE, rtol=1e-4))


class Fuzzer:
    def __init__(self) -> None:
        self.base_ir = mnc.compile_ir(TINY)
        self.base = MouseNet(self.base_ir).eval()
        randomise_statistics(self.base, seed=3)
        self.images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        self.program = compile_program(self.base)
        self.recurrent = MouseNet(with_recurrence(self.base_ir, steps=3, clip=True)).eval()
        randomise_statistics(self.recurrent, seed=4)
        self.clips = inputs_for(self.recurrent.ir, batch=2, seed=2)
        self.recurrent_program = compile_program(self.recurrent)
        self.outcomes: Counter[str] = Counter()
        self.mismatches: list[str] = []
        self.folder = Path(tempfile.mkdtemp(prefix="mnc-fuzz-"))

    def compare(self, model: MouseNet, images: torch.Tensor, label: str, threads: int) -> None:
        """Run sparse and plain on the same network: refused or equal."""
        with torch.inference_mode():
            try:
                got = SparseExecutor(model, threads=threads).forward(images)
            except MncError:
                self.outcomes[f"{label}: refused before the kernel"] += 1
                return
            expected = model.plain_forward(images)
        if _same_as_plain(got, expected):
            self.outcomes[f"{label}: equal to plain"] += 1
        else:
            self.mismatches.append(f"{label}: sparse {got.tolist()} plain {expected.tolist()}")

    def file_case(self, rng: random.Random, threads: int) -> None:
        ir_json, content_hash = _ir_file_text(_edited_data(self.base_ir, rng))
        payload = {**model_payload(self.base), "ir_json": ir_json, "content_hash": content_hash}
        path = self.folder / "edited.pt"
        torch.save(payload, path)
        try:
            model = mnc.load(path).eval()
        except MncError:
            self.outcomes["file: refused on load"] += 1
            return
        self.compare(model, self.images, "file", threads)

    def memory_case(self, rng: random.Random, threads: int) -> None:
        kind = rng.choice(["ir", "mask", "weight", "image"])
        images = self.images.clone()
        if kind == "ir":
            try:
                edits = VALID_EDITS if rng.random() < 0.4 else IR_EDITS
                model = MouseNet(_edited_ir(self.base_ir, rng, edits)).eval()
            except (MncError, ValueError, RuntimeError, KeyError, ZeroDivisionError,
                    OverflowError, MemoryError):
                self.outcomes["memory: refused while building"] += 1
                return
        else:
            model = copy.deepcopy(self.base)
            conv = model.convs[rng.choice(list(model.convs))]
            value = rng.choice([float("nan"), float("inf"), -float("inf"), 0.0, 1.0, 3e38,
                                rng.uniform(-5, 5)])
            with torch.no_grad():
                if kind == "mask":
                    target = conv.mask
                    if rng.random() < 0.5:
                        target.copy_(torch.rand(target.shape, generator=torch.Generator()
                                                .manual_seed(rng.randrange(2**31))))
                elif kind == "weight":
                    target = conv.weight
                else:
                    target = images
                flat = target.view(-1)
                flat[rng.randrange(flat.numel())] = value
        self.compare(model, images, f"memory ({kind})", threads)

    def program_case(self, rng: random.Random, threads: int) -> None:
        self.mutated_program(self.program, self.base, self.images, "program", rng, threads)

    def recurrent_case(self, rng: random.Random, threads: int) -> None:
        if rng.random() < 0.5:
            self.mutated_program(self.recurrent_program, self.recurrent, self.clips,
                                 "recurrent program", rng, threads)
            return
        kind = rng.choice(["mask", "weight", "frame"])
        model = copy.deepcopy(self.recurrent)
        clips = self.clips.clone()
        value = rng.choice([float("nan"), float("inf"), 0.0, 1.0, 3e38, rng.uniform(-5, 5)])
        with torch.no_grad():
            conv = model.convs[rng.choice(list(model.convs))]
            target = {"mask": conv.mask, "weight": conv.weight, "frame": clips}[kind]
            flat = target.view(-1)
            flat[rng.randrange(flat.numel())] = value
        self.compare(model, clips, f"recurrent ({kind})", threads)

    def mutated_program(self, program: Program, model: MouseNet, images: torch.Tensor,
                        label: str, rng: random.Random, threads: int) -> None:
        ops = program.ops.copy()
        for _ in range(rng.choice([1, 1, 2])):
            index = rng.randrange(len(ops))
            current = int(ops[index])
            ops[index] = rng.choice([-1, 0, 1, current + 1, current - 1, current + 64,
                                     current + 4096, current * 2, program.arena_size,
                                     program.arena_size - 1, program.features, 2**31 - 1,
                                     -(2**31)])
        try:
            check_program(ops, len(program.weights), program.arena_size, program.features,
                          images[0].numel())
        except ProgramError:
            self.outcomes[f"{label}: refused by the check"] += 1
            return
        executor = SparseExecutor(model, threads=threads)
        with torch.inference_mode():
            try:
                executor._execute(type(program)(ops, program.weights, program.arena_size,
                                                program.features, program.taps), images)
            except MncError:  # the kernel's own status for an unknown op
                self.outcomes[f"{label}: refused by the kernel"] += 1
                return
        self.outcomes[f"{label}: accepted and run"] += 1

    def canary(self) -> None:
        ops = self.program.ops.copy()
        # the op code and fields of the image's placement and of the first op's header, then
        # the first channel's segment count, row pitch and tap count
        first_tap = 2 + sparse_ops.PLACE_FIELDS + sparse_ops.CONV_FIELDS + 3
        # just past the arena's allocation (ALIGN spare floats follow the arena), where
        # AddressSanitizer keeps a poisoned zone
        ops[first_tap] = self.program.arena_size + ALIGN
        bad = type(self.program)(ops, self.program.weights, self.program.arena_size,
                                 self.program.features, self.program.taps)
        with torch.inference_mode():
            SparseExecutor(self.base, threads=1)._execute(bad, self.images)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--canary", action="store_true")
    args = parser.parse_args(argv)
    library = os.environ.get("MNC_SPARSE_LIBRARY", "")
    loaded = native.library()._name  # noqa: SLF001 - the path ctypes loaded
    if not library or loaded != library:
        print(f"expected the kernel from MNC_SPARSE_LIBRARY={library!r}, loaded {loaded!r}",
              file=sys.stderr)
        return 3
    torch.set_num_threads(2)
    fuzzer = Fuzzer()
    if args.canary:
        shutil.rmtree(fuzzer.folder)  # the canary ends the process; it writes no file
        fuzzer.canary()
        return 0
    families = [fuzzer.file_case, fuzzer.memory_case, fuzzer.program_case,
                fuzzer.recurrent_case]
    best = native.library().mnc_sparse_best_isa()
    try:
        for case in range(args.cases):
            rng = random.Random(args.seed * 100_003 + case)
            os.environ["MNC_SPARSE_ISA"] = ISAS[case % (best + 1)]
            family = rng.choices(families, weights=[1, 2, 2, 2])[0]
            family(rng, threads=1 + case % 2)
    finally:
        shutil.rmtree(fuzzer.folder, ignore_errors=True)
    np.set_printoptions(threshold=20)
    print(json.dumps({"outcomes": dict(fuzzer.outcomes), "mismatches": fuzzer.mismatches[:5],
                      "mismatch_count": len(fuzzer.mismatches)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
