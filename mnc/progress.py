"""Progress bars that show wherever a person is watching: a terminal or a Jupyter notebook.

A notebook's stderr is not a terminal, so deciding by ``isatty`` alone hides every bar there;
``interactive`` also recognises a Jupyter kernel, and ``bar`` returns ``tqdm.auto``'s bar, a
widget in a notebook (text if ipywidgets is missing) and text on a terminal.
"""

from __future__ import annotations

import sys
from typing import Any


def interactive() -> bool:
    """True when stderr is a terminal or the code runs inside a Jupyter kernel."""
    stream = sys.stderr
    if stream is not None and stream.isatty():
        return True
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def wanted(progress: bool | None) -> bool:
    """``progress`` as asked, or (``None``) whether someone is watching."""
    return interactive() if progress is None else bool(progress)


def bar(iterable: Any = None, **options: Any) -> Any:
    """A ``tqdm.auto`` bar with tqdm's own options (``total``, ``desc``, ``disable``...)."""
    from tqdm.auto import tqdm

    options.setdefault("file", sys.stderr)
    return tqdm(iterable, **options)
