"""The model card of a saved network folder (``save_pretrained``): a README.md that says what
the network is, where each of its numbers comes from, how images become its input, and how
well it did where that is known.

Hugging Face's model cards are Markdown with a YAML front matter block; this follows that
layout so a folder reads as one anywhere, and only says what the IR, the preprocessing and
the given metrics hold (nothing is filled in by hand).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from mnc.analysis.recurrence import describe_recurrence
from mnc.ir.model import IR


def model_card(
    ir: IR,
    preprocessing: Mapping[str, Any],
    parameters: int,
    metrics: Mapping[str, float] | None = None,
) -> str:
    """The README.md text of a saved folder for ``ir``."""
    front: dict[str, Any] = {
        "library_name": "mnc",
        "tags": ["mousenet", "visual-cortex", "neuroscience"],
        "mnc": {"architecture": ir.name, "content_hash": ir.content_hash},
    }
    if metrics:
        front["mnc"]["metrics"] = {name: float(value) for name, value in metrics.items()}
    inp = ir.input
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {ir.name}",
        "",
        f"A MouseNet compiled by mnc from anatomical measurements of mouse visual cortex: "
        f"{len(ir.populations)} populations, {len(ir.projections)} projections, "
        f"{parameters:,} parameters, input {inp.channels}x{inp.height}x{inp.width}, "
        f"{ir.readout.classes} classes; IR hash `{ir.content_hash}`.",
    ]
    if ir.is_recurrent:
        lines.append(f"Time: {describe_recurrence(ir)}.")
    lines += [
        "",
        'Load it with `mnc.load("model.safetensors")` or '
        "`MouseNet.from_pretrained(FOLDER)`; `config.json` is its IR.",
        "",
        "## Sources",
        "",
    ]
    sources = ir.provenance.sources
    lines += [f"- **{block}**: {citation}" for block, citation in sources.items()] or [
        "- none recorded in the spec"
    ]
    if ir.provenance.spec_files:
        lines += ["", f"Spec files: {', '.join(f'`{name}`' for name in ir.provenance.spec_files)}"]
    lines += ["", "## Preprocessing", ""]
    lines += [f"- {key}: {value}" for key, value in preprocessing.items()]
    lines += ["", "## Metrics", ""]
    lines += (
        [f"- {name}: {value:g}" for name, value in metrics.items()]
        if metrics
        else ["- none recorded (an untrained network, or none were given)"]
    )
    return "\n".join(lines) + "\n"
