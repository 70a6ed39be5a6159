"""IR <-> JSON. The JSON carries the content hash, checked on reading.

Reading is the way every IR from a file comes in (IR JSON, saved models, checkpoints), so it
also checks the field ranges (``mnc.ir.bounds``) and the invariants of a compiled IR
(``mnc.ir.invariants``) before anything is built from it: the hash only shows that the file
is consistent with itself, since anyone can recompute it. Whether the network it describes
fits the size limits is asked by the file readers above the IR
(``mnc.lowering.weights_format.ir_from_payload``), which know what the file is for.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from mnc.errors import UserFileError
from mnc.ir.invariants import check_ir
from mnc.ir.model import IR


def field_path(location: tuple[int | str, ...]) -> str:
    """pydantic's location as the IR's field path: ``projections[9].upsample``."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def ir_to_dict(ir: IR) -> dict[str, Any]:
    return {"content_hash": ir.content_hash, **ir.model_dump(mode="json")}


def ir_to_json(ir: IR) -> str:
    return json.dumps(ir_to_dict(ir), indent=1)


def ir_from_dict(data: dict[str, Any], origin: str = "IR") -> IR:
    data = dict(data)
    expected = data.pop("content_hash", None)
    try:
        ir = IR.model_validate(data)
    except ValidationError as error:
        problems = error.errors(include_url=False)
        first = problems[0]
        more = f"; {len(problems) - 1} more" if len(problems) > 1 else ""
        raise UserFileError(f"{origin}: not a valid mnc IR ({field_path(first['loc'])}: "
                            f"{first['msg']}{more})") from None
    if expected is not None and expected != ir.content_hash:
        raise UserFileError(
            f"{origin}: content hash {expected[:12]} does not match the IR it "
            f"holds ({ir.short_hash}); the file was edited or corrupted"
        )
    check_ir(ir, origin)
    return ir


def ir_from_json(text: str, origin: str = "IR") -> IR:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserFileError(f"{origin}: not JSON ({error.msg} at line {error.lineno})") from None
    except RecursionError:
        raise UserFileError(f"{origin}: JSON nested too deeply; expected an mnc IR") from None
    if not isinstance(data, dict):
        raise UserFileError(f"{origin}: expected a JSON object holding an mnc IR")
    return ir_from_dict(data, origin)
