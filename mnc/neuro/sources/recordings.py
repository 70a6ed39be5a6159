"""Recorded responses to images, in the one in-memory form every analysis reads.

Every source (an Allen Brain Observatory cache, an ``.npz`` or a NetCDF file, arrays built
in Python) becomes a :class:`NeuralData`:

==============  =========================  =========  ========================================
field           shape                      dtype      meaning
==============  =========================  =========  ========================================
``images``      (stimuli, height, width)   uint8/flt  grey levels 0-255 shown to the animal
``responses``   (stimuli, trials, cells)   float32    one number per presentation (e.g. mean
                                                      dF/F in a window); NaN-padded trials
``area``        (cells,)                   str        visual area, e.g. ``VISp``
``layer``       (cells,)                   str        cortical layer: ``2/3``, ``4``, ``5``...
``cre_line``    (cells,)                   str        Cre line, ``""`` where unknown
``cell_id``     (cells,)                   int64      cell identifier
``session``     (cells,)                   str        recording session of each cell
``depth_um``    (cells,)                   float64    imaging depth in um, NaN where unknown
``events``      (stimuli, trials, cells)   float32    optional: detected calcium-event
                                                      magnitude in the same window, >= 0, NaN
                                                      exactly where ``responses`` is NaN
==============  =========================  =========  ========================================

Trial padding: sessions repeat the stimuli different numbers of times. Cell ``c`` has
``trial_counts[c]`` valid trials; they come first and are finite for every stimulus, and the
trials after them are NaN for every stimulus. No other value may be NaN or infinite.

``events``: where the recordings hold detected events (the L0 events the Brain Observatory
distributes, or any event magnitudes a lab supplies), physiology statistics use them instead
of dF/F (``response_measure``), as de Vries et al. 2020 computed them.

``NeuralData.from_arrays`` fills optional fields and derives a missing layer from the Cre
line and depth (``mnc.neuro.layers``); ``NeuralData.from_sessions`` pads per-session blocks
together. The constructor checks everything and raises ``UserFileError`` naming the source,
the field and what was expected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnc.errors import UserFileError
from mnc.neuro.layers import layer_for_recording
from mnc.text import shown, unsafe_character

CELL_FIELDS: tuple[str, ...] = ("area", "layer", "cre_line", "cell_id", "session", "depth_um")
"""Per-cell fields of ``NeuralData``, in the order they are written to files."""


@dataclass(frozen=True)
class SessionRecording:
    """Responses of the cells of one session: every cell shares the session's metadata."""

    session: str
    area: str
    cre_line: str | None
    depth_um: float
    layer: str
    cell_ids: np.ndarray
    """(cells,) integer ids."""
    responses: np.ndarray
    """(stimuli, trials, cells) responses, all finite."""
    events: np.ndarray | None = None
    """(stimuli, trials, cells) event magnitudes in the same windows, or None."""


@dataclass(frozen=True)
class NeuralData:
    """Responses of recorded cells to a set of images (see the module docstring)."""

    images: np.ndarray
    """(stimuli, height, width) grey levels 0-255."""
    responses: np.ndarray
    """(stimuli, trials, cells) float32; missing trials NaN (see the module docstring)."""
    area: np.ndarray
    """(cells,) visual area of each cell."""
    layer: np.ndarray
    """(cells,) cortical layer of each cell."""
    cre_line: np.ndarray
    """(cells,) Cre line of each cell, empty string where unknown."""
    cell_id: np.ndarray
    """(cells,) int64 cell ids."""
    session: np.ndarray
    """(cells,) session each cell was recorded in."""
    depth_um: np.ndarray
    """(cells,) imaging depth in micrometres, NaN where unknown."""
    source: str = "<memory>"
    """Where the data came from (a file or folder); error messages start with it."""
    fingerprint: str = ""
    """Content hash keying result caches; computed from the arrays when left empty."""
    events: np.ndarray | None = None
    """(stimuli, trials, cells) float32 event magnitudes per presentation, or None."""

    def __repr__(self) -> str:
        """One line: the arrays' sizes, not their contents."""
        areas = ", ".join(sorted(set(self.area.tolist()))[:8])
        return (f"NeuralData({self.n_stimuli} stimuli x {self.n_trials} trials x "
                f"{self.n_cells} cells; areas {areas or 'none'}; "
                f"{len(self.sessions)} session(s); source {self.source!r})")

    def __post_init__(self) -> None:
        _check(self)
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", _content_hash(self))

    # ------------------------------------------------------------------------- shape

    @property
    def n_stimuli(self) -> int:
        return int(self.responses.shape[0])

    @property
    def n_trials(self) -> int:
        return int(self.responses.shape[1])

    @property
    def n_cells(self) -> int:
        return int(self.responses.shape[2])

    @property
    def trial_counts(self) -> np.ndarray:
        """(cells,) number of valid (leading, non-NaN) trials of each cell."""
        return np.isfinite(self.responses[0]).sum(axis=0)

    @property
    def sessions(self) -> tuple[str, ...]:
        """Distinct sessions in the order their first cell appears."""
        return tuple(dict.fromkeys(str(s) for s in self.session))

    @property
    def response_measure(self) -> str:
        """What the per-cell statistics are computed from: ``events`` or ``dff``."""
        return "dff" if self.events is None else "events"

    # --------------------------------------------------------------------- selection

    def select(self, areas: Sequence[str] | None = None, cre_lines: Sequence[str] | None = None,
               depths_um: Sequence[float] | None = None) -> NeuralData:
        """The cells matching every given filter (None: no filter on that field)."""
        keep = np.ones(self.n_cells, dtype=bool)
        if areas is not None:
            keep &= np.isin(self.area, list(areas))
        if cre_lines is not None:
            keep &= np.isin(self.cre_line, list(cre_lines))
        if depths_um is not None:
            keep &= np.isin(self.depth_um, np.asarray(list(depths_um), dtype=np.float64))
        if keep.all():
            return self
        if not keep.any():
            raise UserFileError(
                f"{self.source}: no recorded cell matches areas={list(areas or [])} "
                f"cre_lines={list(cre_lines or [])} depths={list(depths_um or [])}; the data "
                f"hold areas {sorted(set(self.area.tolist()))}")
        return self.take(np.flatnonzero(keep))

    def take(self, cells: np.ndarray) -> NeuralData:
        """A NeuralData with only the given cell indices (trailing all-NaN trials dropped)."""
        cells = np.asarray(cells, dtype=np.int64)
        responses = self.responses[:, :, cells]
        counts = np.isfinite(responses[0]).sum(axis=0) if cells.size else np.zeros(0, int)
        trials = max(int(counts.max()) if counts.size else 0, 1)
        digest = hashlib.sha256(self.fingerprint.encode() + cells.tobytes()).hexdigest()[:16]
        return NeuralData(
            images=self.images, responses=responses[:, :trials], area=self.area[cells],
            layer=self.layer[cells], cre_line=self.cre_line[cells],
            cell_id=self.cell_id[cells], session=self.session[cells],
            depth_um=self.depth_um[cells], source=self.source, fingerprint=digest,
            events=None if self.events is None else self.events[:, :trials, cells])

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_arrays(cls, images: Any, responses: Any, area: Any, layer: Any = None,
                    cre_line: Any = None, cell_id: Any = None, session: Any = None,
                    depth_um: Any = None, source: str = "<memory>",
                    fingerprint: str = "", events: Any = None) -> NeuralData:
        """Build from arrays; per-cell arguments take one value for all cells or one each.

        A missing ``layer`` comes from ``cre_line`` and ``depth_um``; defaults: no Cre line,
        ids 0..cells-1, one session ``"0"``, unknown depth, no events.
        """
        responses = _float_array(responses, "responses", source)
        events = None if events is None else _float_array(events, "events", source)
        if responses.ndim != 3:
            raise UserFileError(f"{source}: responses: expected (stimuli, trials, cells), got "
                                f"shape {responses.shape}")
        cells = responses.shape[2]
        area_values = _per_cell(area, cells, "area", source, str)
        cre_values = _per_cell("" if cre_line is None else cre_line, cells, "cre_line", source,
                               str)
        depth_values = _per_cell(np.nan if depth_um is None else depth_um, cells, "depth_um",
                                 source, float)
        if layer is None:
            layer_values = np.array([_derived_layer(cre, depth, index, source)
                                     for index, (cre, depth)
                                     in enumerate(zip(cre_values, depth_values, strict=True))],
                                    dtype=np.str_).reshape(cells)
        else:
            layer_values = _per_cell(layer, cells, "layer", source, str)
        ids = (np.arange(cells, dtype=np.int64) if cell_id is None
               else _per_cell(cell_id, cells, "cell_id", source, int))
        sessions = _per_cell("0" if session is None else session, cells, "session", source, str)
        return cls(images=np.asarray(images), responses=responses, area=area_values,
                   layer=layer_values, cre_line=cre_values, cell_id=ids, session=sessions,
                   depth_um=depth_values, source=source, fingerprint=fingerprint,
                   events=events)

    @classmethod
    def from_sessions(cls, images: np.ndarray, recordings: Sequence[SessionRecording],
                      source: str = "<memory>", fingerprint: str = "") -> NeuralData:
        """Concatenate sessions along cells, NaN-padding those with fewer trials.

        Events are kept only where every session has them: one region's statistics never mix
        events with dF/F.
        """
        if not recordings:
            raise UserFileError(f"{source}: no recording sessions")
        n_stimuli = images.shape[0]
        trials = max(r.responses.shape[1] for r in recordings)
        cells = sum(r.responses.shape[2] for r in recordings)
        responses = np.full((n_stimuli, trials, cells), np.nan, dtype=np.float32)
        with_events = all(r.events is not None for r in recordings)
        events = np.full_like(responses, np.nan) if with_events else None
        start = 0
        for recording in recordings:
            block = recording.responses
            if block.ndim != 3 or block.shape[0] != n_stimuli:
                raise UserFileError(f"{source}: session {recording.session}: responses have "
                                    f"shape {block.shape}, expected ({n_stimuli}, trials, cells)")
            responses[:, :block.shape[1], start:start + block.shape[2]] = block
            if events is not None:
                if recording.events is None or recording.events.shape != block.shape:
                    raise UserFileError(f"{source}: session {recording.session}: events have "
                                        f"shape {getattr(recording.events, 'shape', None)}, "
                                        f"expected {block.shape} like its responses")
                events[:, :block.shape[1], start:start + block.shape[2]] = recording.events
            start += block.shape[2]

        def repeat(value: Any) -> list[Any]:
            return [value(r) for r in recordings for _ in range(r.responses.shape[2])]

        return cls(images=images, responses=responses,
                   area=np.array(repeat(lambda r: r.area), dtype=np.str_),
                   layer=np.array(repeat(lambda r: r.layer), dtype=np.str_),
                   cre_line=np.array(repeat(lambda r: r.cre_line or ""), dtype=np.str_),
                   cell_id=np.concatenate([np.asarray(r.cell_ids, dtype=np.int64).reshape(-1)
                                           for r in recordings]),
                   session=np.array(repeat(lambda r: r.session), dtype=np.str_),
                   depth_um=np.array(repeat(lambda r: r.depth_um), dtype=np.float64),
                   source=source, fingerprint=fingerprint, events=events)


# ---------------------------------------------------------------------------- checks

def _float_array(value: Any, name: str, source: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise UserFileError(f"{source}: {name}: expected numbers, got dtype {array.dtype}")
    return array.astype(np.float32, copy=False)


def _per_cell(value: Any, cells: int, name: str, source: str, kind: type) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim == 0:
        array = np.full(cells, array.item())
    if array.shape != (cells,):
        raise UserFileError(f"{source}: {name}: expected one value or {cells} values (one per "
                            f"cell), got shape {array.shape}")
    try:
        if kind is str:
            if array.dtype.kind not in "UO":
                raise ValueError("not text")
            text = np.array([str(v) for v in array], dtype=np.str_).reshape(cells)
            for index, item in enumerate(text):
                if unsafe_character(str(item)) is not None:
                    raise UserFileError(f"{source}: {name}[{index}]: {shown(str(item))[:80]!r} "
                                        "holds control or bidirectional characters; expected "
                                        "plain text")
            return text
        if kind is int:
            if array.dtype.kind not in "iu":
                raise ValueError("not integers")
            return array.astype(np.int64)
        if array.dtype.kind not in "iuf":
            raise ValueError("not numbers")
        return array.astype(np.float64)
    except ValueError:
        wanted = {str: "text", int: "integers", float: "numbers"}[kind]
        raise UserFileError(f"{source}: {name}: expected {wanted}, got dtype {array.dtype}") \
            from None


def _derived_layer(cre_line: str, depth_um: float, index: int, source: str) -> str:
    if not cre_line and not np.isfinite(depth_um):
        raise UserFileError(f"{source}: cell {index}: no layer, Cre line or depth; give "
                            "layer (or cre_line/depth_um) for every cell")
    layer = layer_for_recording(cre_line or None,
                                depth_um if np.isfinite(depth_um) else float("nan"))
    if not np.isfinite(depth_um) and layer_for_recording(cre_line or None, 0.0) != \
            layer_for_recording(cre_line or None, 1000.0):
        raise UserFileError(f"{source}: cell {index}: the layer of Cre line {str(cre_line)!r} "
                            "depends on depth; give layer or depth_um")
    return layer


def _check(data: NeuralData) -> None:
    """Every array of ``data`` shaped, typed and filled as NeuralData promises; the first
    problem found is one message naming the field."""
    where = data.source
    _check_images(data.images, where)
    valid = _check_responses(data.responses, data.images.shape[0], where)
    _check_cell_fields(data, data.responses.shape[2], where)
    if data.events is not None:
        _check_events(data.events, valid, where)


def _check_images(images: Any, where: str) -> None:
    if not isinstance(images, np.ndarray) or images.ndim != 3 or 0 in images.shape:
        raise UserFileError(f"{where}: images: expected a non-empty (stimuli, height, width) "
                            f"array, got shape {getattr(images, 'shape', None)}")
    if images.dtype.kind not in "uif":
        raise UserFileError(f"{where}: images: expected grey levels (numbers), got dtype "
                            f"{images.dtype}")
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        raise UserFileError(f"{where}: images: contains NaN or infinite values")


def _check_responses(responses: Any, stimuli: int, where: str) -> np.ndarray:
    """Responses: float (stimuli, trials, cells), missing trials NaN at the end; returns
    where they hold a trial."""
    if (not isinstance(responses, np.ndarray) or responses.ndim != 3
            or responses.dtype.kind != "f"):
        raise UserFileError(f"{where}: responses: expected a float (stimuli, trials, cells) "
                            f"array, got {getattr(responses, 'dtype', type(responses))} "
                            f"{getattr(responses, 'shape', '')}")
    if responses.shape[0] != stimuli:
        raise UserFileError(f"{where}: responses: {responses.shape[0]} stimuli but images holds "
                            f"{stimuli}")
    if responses.shape[1] == 0 or responses.shape[2] == 0:
        raise UserFileError(f"{where}: responses: expected at least one trial and one cell, got "
                            f"shape {responses.shape}")
    if np.isinf(responses).any():
        raise UserFileError(f"{where}: responses: contains infinite values")
    valid = np.isfinite(responses)
    counts = valid[0].sum(axis=0)
    expected = np.arange(responses.shape[1])[:, None] < counts[None, :]
    bad = ~(valid == expected[None]).all(axis=(0, 1))
    if bad.any() or (counts == 0).any():
        cell = int(np.flatnonzero(bad | (counts == 0))[0])
        raise UserFileError(
            f"{where}: responses: cell {cell}: missing trials must be NaN for every stimulus "
            "and come after the valid ones, and each cell needs one valid trial")
    return valid


_CELL_FIELD_KINDS = {"area": "U", "layer": "U", "cre_line": "U", "cell_id": "i", "session": "U",
                     "depth_um": "f"}


def _check_cell_fields(data: NeuralData, cells: int, where: str) -> None:
    """One value per cell in each per-cell field; every cell with an area and a layer."""
    for name, kind in _CELL_FIELD_KINDS.items():
        value = getattr(data, name)
        if not isinstance(value, np.ndarray) or value.shape != (cells,) or \
                value.dtype.kind != kind:
            wanted = {"U": "str", "i": "integer", "f": "float"}[kind]
            raise UserFileError(f"{where}: {name}: expected {cells} {wanted} values (one per "
                                f"cell), got {getattr(value, 'dtype', type(value))} "
                                f"{getattr(value, 'shape', '')}")
    for name in ("area", "layer"):
        empty = np.flatnonzero(np.char.str_len(getattr(data, name)) == 0)
        if empty.size:
            raise UserFileError(f"{where}: {name}: cell {int(empty[0])} has none; every cell "
                                f"needs its {name}")
    if np.isinf(data.depth_um).any():
        raise UserFileError(f"{where}: depth_um: contains infinite values")


def _check_events(events: Any, valid: np.ndarray, where: str) -> None:
    """Events: floats shaped like responses, finite and >= 0 where responses are valid and
    NaN where they are padding."""
    if not isinstance(events, np.ndarray) or events.dtype.kind != "f" or \
            events.shape != valid.shape:
        raise UserFileError(f"{where}: events: expected a float (stimuli, trials, cells) array "
                            f"of shape {valid.shape} like responses, got "
                            f"{getattr(events, 'dtype', type(events))} "
                            f"{getattr(events, 'shape', '')}")
    finite = np.isfinite(events)
    if not (finite == valid).all():
        stimulus, trial, cell = (int(i[0]) for i in np.nonzero(finite != valid))
        raise UserFileError(f"{where}: events: [{stimulus}, {trial}, {cell}] is "
                            f"{events[stimulus, trial, cell]}; expected a finite magnitude "
                            "wherever responses hold a trial and NaN where they are padding")
    negative = np.flatnonzero(events[valid] < 0)
    if negative.size:
        raise UserFileError(f"{where}: events: holds negative magnitudes (smallest "
                            f"{float(events[valid].min()):.6g}); expected event magnitudes >= 0")


def _content_hash(data: NeuralData) -> str:
    digest = hashlib.sha256()
    for array in (data.images, data.responses, data.cell_id, data.depth_um):
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    for name in ("area", "layer", "cre_line", "session"):
        digest.update("\x1f".join(getattr(data, name).tolist()).encode())
        digest.update(b"\x1e")
    if data.events is not None:  # absent events leave earlier fingerprints as they were
        digest.update(b"events")
        digest.update(np.ascontiguousarray(data.events).tobytes())
    return digest.hexdigest()[:16]
