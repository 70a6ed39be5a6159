"""The Allen structure tree, reduced to what voxel selection needs: acronyms and descendants.

Reads the structure graph as allensdk caches it (``structures.json``: a list of records with
``id``, ``acronym`` and either ``structure_id_path`` or ``parent_structure_id``), so the tree
works without allensdk installed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mnc.errors import UserFileError
from mnc.io.textfile import TextFileError, read_json_file

MAX_STRUCTURES_BYTES = 64 * 1024 * 1024
"""Allen's structures.json is about 1 MB; anything far larger is not one."""


class StructureTree:
    """Acronym -> id, and id -> every id below it (itself included)."""

    def __init__(self, records: Iterable[Mapping[str, Any]], origin: str = "<structures>"):
        self.origin = origin
        self.id_of: dict[str, int] = {}
        self.acronym_of: dict[int, str] = {}
        parents: dict[int, int | None] = {}
        for index, record in enumerate(records):
            try:
                structure_id = int(record["id"])
                acronym = str(record["acronym"])
            except (KeyError, TypeError, ValueError) as error:
                raise UserFileError(
                    f"{origin}: structure record {index} needs an integer 'id' and an "
                    f"'acronym' ({error!s})") from None
            self.id_of[acronym] = structure_id
            self.acronym_of[structure_id] = acronym
            parents[structure_id] = _parent_of(record, structure_id, origin, index)
        self._children: dict[int, list[int]] = {structure_id: [] for structure_id in parents}
        for structure_id, parent in parents.items():
            if parent is not None and parent in self._children:
                self._children[parent].append(structure_id)

    @classmethod
    def from_json(cls, path: str | Path) -> StructureTree:
        """Read ``structures.json`` (a list of records, or ``{"msg": [...]}`` as the API sends)."""
        path = Path(path)
        try:
            document = read_json_file(path, MAX_STRUCTURES_BYTES, "structure tree (JSON)")
        except TextFileError as error:
            raise UserFileError(f"{path}: cannot read the structure tree: {error.reason}"
                                ) from None
        if isinstance(document, dict) and isinstance(document.get("msg"), list):
            document = document["msg"]
        if not isinstance(document, list):
            raise UserFileError(f"{path}: expected a JSON list of structure records "
                                "(id, acronym, structure_id_path)")
        return cls(document, origin=str(path))

    def structure_id(self, acronym: str) -> int:
        """The id of an acronym; an unknown acronym is the user's mistake, with suggestions."""
        if acronym not in self.id_of:
            close = difflib.get_close_matches(acronym, list(self.id_of), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserFileError(f"{self.origin}: no structure with acronym {acronym!r}{hint}")
        return self.id_of[acronym]

    def has(self, acronym: str) -> bool:
        return acronym in self.id_of

    def descendant_ids(self, acronym: str) -> list[int]:
        """The structure and everything below it: voxels of a layer are annotated at its leaves."""
        return self.descendant_ids_of(self.structure_id(acronym))

    def descendant_ids_of(self, structure_id: int) -> list[int]:
        """Like ``descendant_ids``, by id (the voxel model's mask files list ids)."""
        found: list[int] = []
        stack = [structure_id]
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(self._children.get(current, ()))
        return found


def _parent_of(record: Mapping[str, Any], structure_id: int, origin: str,
               index: int) -> int | None:
    path = record.get("structure_id_path")
    if isinstance(path, str):
        path = [part for part in path.split("/") if part]
    if isinstance(path, list) and path:
        try:
            ids = [int(part) for part in path]
        except (TypeError, ValueError):
            raise UserFileError(f"{origin}: structure record {index} has a malformed "
                                f"structure_id_path {record.get('structure_id_path')!r}") from None
        if ids[-1] == structure_id:
            ids = ids[:-1]
        return ids[-1] if ids else None
    parent = record.get("parent_structure_id")
    return None if parent is None else int(parent)
