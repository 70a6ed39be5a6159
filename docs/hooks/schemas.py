"""MkDocs hook: renders the JSON Schemas in schemas/ as tables where a page asks for them
with ``<!-- schema: NAME.schema.json -->``, so the reference is built from the files the
models generate and cannot drift from them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
MARKER = re.compile(r"<!-- schema: ([\w.-]+) -->")


def _kind(node: dict[str, Any]) -> str:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in node:
        return " or ".join(_kind(option) for option in node["anyOf"])
    if "enum" in node:
        return " \\| ".join(f"`{value}`" for value in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    kind = node.get("type", "any")
    if kind == "array" and "items" in node:
        items = node["items"]
        if isinstance(items, list):
            return f"list of {', '.join(_kind(item) for item in items)}"
        return f"list of {_kind(items)}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"mapping to {_kind(node['additionalProperties'])}"
    bounds = [f"{word} {node[key]}" for key, word in (("minimum", ">="), ("exclusiveMinimum", ">"),
              ("maximum", "<="), ("exclusiveMaximum", "<")) if key in node]
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _table(title: str, node: dict[str, Any]) -> str:
    required = set(node.get("required", []))
    rows = ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for field, spec in node.get("properties", {}).items():
        text = " ".join(str(spec.get("description", "")).split())
        text = text.replace("|", "\\|").replace("[", "\\[")
        rows.append(f"| `{field}` | {_kind(spec)} | {'yes' if field in required else ''} | "
                    f"{text} |")
    return f"### {title}\n\n" + "\n".join(rows) + "\n"


def _render(name: str) -> str:
    schema = json.loads((SCHEMAS / name).read_text())
    parts = [_table(schema.get("title", name), schema)]
    for title, node in sorted(schema.get("$defs", {}).items()):
        if node.get("properties"):
            parts.append(_table(title, node))
    return "\n".join(parts)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda found: _render(found.group(1)), markdown)
