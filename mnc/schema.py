"""JSON Schemas of the spec and the IR, generated from the pydantic models.

``python -m mnc.schema`` rewrites ``schemas/``; a test fails if the files are out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mnc.io.atomic import write_text_atomic
from mnc.ir.model import IR
from mnc.spec.models import Spec

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def spec_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "mnc-spec.schema.json"
    return schema


def ir_schema() -> dict[str, Any]:
    schema = IR.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "mnc-ir.schema.json"
    # The JSON written by `mnc compile --emit ir` also carries the content hash.
    schema["properties"]["content_hash"] = {
        "type": "string",
        "pattern": "^[0-9a-f]{64}$",
        "description": "SHA-256 content hash of the IR",
    }
    return schema


def rendered() -> dict[str, str]:
    return {
        "spec.schema.json": json.dumps(spec_schema(), indent=1, sort_keys=True) + "\n",
        "ir.schema.json": json.dumps(ir_schema(), indent=1, sort_keys=True) + "\n",
    }


def main(folder: Path = SCHEMA_DIR) -> int:
    for name, text in rendered().items():
        write_text_atomic(folder / name, text)
        print(f"wrote {folder / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR))
