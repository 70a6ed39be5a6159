"""Spec file -> resolved IR: load, lower, run the passes, resolve."""

from __future__ import annotations

import json
from pathlib import Path

from mnc.analysis.limits import Limits, check_limits
from mnc.errors import PassError, SpecError, SpecProblem, UserFileError
from mnc.frontend import lower_spec
from mnc.io.atomic import write_text_atomic
from mnc.ir.model import IR
from mnc.passes import PassManager, default_passes
from mnc.passes.base import Pass, PassResult
from mnc.spec.loader import LoadedSpec, load_spec
from mnc.spec.yaml_reader import format_field_path


def compile_loaded(
    loaded: LoadedSpec, dump_dir: str | Path | None = None, limits: Limits | None = None
) -> IR:
    """Run the derivation on a loaded spec. ``dump_dir`` receives the IR after every pass.

    The size guard runs before anything large is allocated (``limits`` default to the
    environment's, see ``mnc.analysis.limits``).
    """
    draft = lower_spec(loaded)
    observe = None
    if dump_dir is not None:
        folder = Path(dump_dir)
        if folder.exists() and not folder.is_dir():
            raise UserFileError(
                f"{folder}: --dump-ir needs a folder to write one IR file per pass into; "
                "this is a file"
            )
        counter = iter(range(1, 1000))

        def observe(each: Pass, result: PassResult) -> None:
            text = json.dumps(result.ir.model_dump(mode="json"), indent=1)
            write_text_atomic(folder / f"{next(counter):02d}-{each.name}.json", text)

        write_text_atomic(
            folder / "00-lowered.json", json.dumps(draft.model_dump(mode="json"), indent=1)
        )
    try:
        resolved = PassManager(default_passes()).run(draft, observe)
    except PassError as error:
        raise SpecError(
            [
                SpecProblem(
                    loaded.locate(problem.field_path),
                    format_field_path(problem.field_path),
                    problem.message,
                )
                for problem in error.problems
            ]
        ) from None
    ir = resolved.resolve()
    check_limits(ir, limits)
    return ir


def compile_ir(
    path: str | Path, dump_dir: str | Path | None = None, limits: Limits | None = None
) -> IR:
    """Compile a spec file to the resolved IR (raises SpecError on any problem)."""
    return compile_loaded(load_spec(path), dump_dir, limits)
