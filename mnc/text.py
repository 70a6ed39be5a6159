"""Rules for text shown to people, shared by every layer (spec, IR, backends, commands)."""

from __future__ import annotations

import difflib
import html
import os
import re
from collections.abc import Iterable, Sequence

# Free text is printed on terminals: no C0 or C1 control characters (escape sequences) but
# newlines, and no bidirectional marks or overrides, which reorder what a reader sees
# (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069).
UNSAFE_TEXT_CHARACTERS = (
    "\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
)
PRINTABLE_TEXT = f"^[^{UNSAFE_TEXT_CHARACTERS}]*$"
_UNSAFE_TEXT = re.compile(f"[{UNSAFE_TEXT_CHARACTERS}]")
_UNSAFE_OR_NEWLINE = re.compile(f"[\n{UNSAFE_TEXT_CHARACTERS}]")


def unsafe_character(text: str) -> str | None:
    """The first character of ``text`` that free text may not hold, or None."""
    found = _UNSAFE_TEXT.search(text)
    return found.group() if found else None


def shown(text: str | os.PathLike[str]) -> str:
    """``text`` (a path or name a user typed) safe to print: each character that free text may
    not hold, newline included, is written as its escape (``\\u202e``, ``\\x1b``), so a file
    name cannot reorder or recolour a message. Ordinary text is returned unchanged."""
    text = os.fspath(text)
    return _UNSAFE_OR_NEWLINE.sub(_escape, text)


def shown_message(text: str) -> str:
    """A whole message for the terminal: like ``shown`` but keeping its newlines."""
    return _UNSAFE_TEXT.sub(_escape, text)


def _escape(found: re.Match[str]) -> str:
    return found.group().encode("unicode_escape").decode("ascii")


def suggest(name: str, candidates: Iterable[str]) -> str:
    """' (did you mean X?)' for a misspelt name, or ''."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def human_count(value: float) -> str:
    """``36.6M``: a count with three significant digits and a k/M/G suffix."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"


def format_bytes(value: float) -> str:
    """``4.8 GiB``: a size in bytes with three significant digits and a binary unit."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f} B"


PROBABILITY_CAP = 1.0
"""A tap is kept with probability min(1, peak * exp(...)): a peak above 1 is capped there."""


def peak_probability_text(value: float) -> str:
    """A projection's peak probability as the mask uses it: ``0.42``, or ``4.36 (capped at 1)``
    when the value is above the cap (its central taps are always kept)."""
    shown_value = f"{value:.4g}"
    if value > PROBABILITY_CAP:
        return f"{shown_value} (capped at {PROBABILITY_CAP:g})"
    return shown_value


def html_view(lines: Iterable[str], header: Sequence[str], rows: Iterable[Sequence[object]],
              footer: str = "") -> str:
    """Lines over a table, for Jupyter's rich display (``_repr_html_``); every text escaped."""
    caption = "<br>".join(html.escape(line.strip()) for line in lines)
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row)
                   + "</tr>" for row in rows)
    end = f"<p>{html.escape(footer)}</p>" if footer else ""
    return (f"<div><p>{caption}</p><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{end}</div>")
