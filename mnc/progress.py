"""Progress that reaches whoever is watching: a terminal, a Jupyter notebook or a log file.

``bar`` picks the kind:

- a terminal: a ``tqdm`` bar;
- a Jupyter kernel: ``tqdm.auto``'s widget, or plain text bars when ipywidgets is missing
  (``tqdm.auto`` would warn "IProgress not found" and print a line per update);
- anything else (a log file, a pipe, a batch job): one line every ``LOG_INTERVAL_S`` seconds
  with items done, rate and time left, so a long run is never silent.

A notebook's stderr is not a terminal, so deciding by ``isatty`` alone would hide every bar
there; ``interactive`` also recognises a Jupyter kernel.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from typing import Any

LOG_INTERVAL_S = 5.0
"""Seconds between two progress lines in a log (``MNC_PROGRESS_SECONDS`` overrides)."""


def interactive() -> bool:
    """True when stderr is a terminal or the code runs inside a Jupyter kernel."""
    stream = sys.stderr
    if stream is not None and stream.isatty():
        return True
    return in_notebook()


def in_notebook() -> bool:
    """True inside a Jupyter kernel."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def wanted(progress: bool | None) -> bool:
    """``progress`` as asked, or (``None``) whether someone is watching a live bar."""
    return interactive() if progress is None else bool(progress)


def bar(iterable: Any = None, *, show: bool | None = None, **options: Any) -> Any:
    """A progress bar with tqdm's options (``total``, ``desc``, ``unit``, ``initial``...).

    ``show``: ``False`` shows nothing, ``True`` a tqdm bar wherever stderr goes, ``None`` the
    kind that suits where stderr goes (see the module docstring). ``disable=True`` (tqdm's own
    option) also shows nothing.
    """
    options.setdefault("file", sys.stderr)
    if options.pop("disable", False) or show is False:
        from tqdm import tqdm

        return tqdm(iterable, disable=True, **options)
    if show is None and not interactive():
        return LogBar(iterable, **options)
    if in_notebook() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(iterable, **options)


def log_interval() -> float:
    try:
        value = float(os.environ.get("MNC_PROGRESS_SECONDS", LOG_INTERVAL_S))
    except ValueError:
        return LOG_INTERVAL_S
    return value if value >= 0 else LOG_INTERVAL_S


class LogBar:
    """tqdm's counting interface, printed as a plain line every few seconds.

    ``epoch 1/3: 1024/1437 img (71%), 212 img/s, 2 s left``. Nothing is printed for work that
    ends within the first interval; a closing line follows once any line was printed.
    """

    disable = False

    def __init__(
        self,
        iterable: Any = None,
        *,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        initial: float = 0,
        file: Any = None,
        **_ignored: Any,
    ) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self.file = file if file is not None else sys.stderr
        self.interval = log_interval()
        self._initial = initial
        self._start = time.monotonic()
        self._last = self._start
        self._printed = False
        self._closed = False
        self._postfix = ""

    def __iter__(self) -> Any:
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LogBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, count: float = 1) -> None:
        self.n += count
        if self.total and self.n >= self.total:
            return  # finished: ``close`` prints the closing line
        self.refresh(only_when_due=True)

    def set_postfix(self, **values: Any) -> None:
        self._postfix = ", ".join(f"{key} {value}" for key, value in values.items())

    def refresh(self, only_when_due: bool = False) -> None:
        now = time.monotonic()
        if only_when_due and now - self._last < self.interval:
            return
        if not only_when_due and not self._printed and now - self._start < self.interval:
            return
        self._last = now
        self._print(now)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        now = time.monotonic()
        if self._printed or now - self._start >= self.interval:
            self._print(now, final=True)

    def line(self, now: float, final: bool = False) -> str:
        elapsed = max(now - self._start, 1e-9)
        rate = (self.n - self._initial) / elapsed
        done = _count(self.n)
        if self.total:
            done += f"/{_count(self.total)} {self.unit} ({100 * self.n / self.total:.0f}%)"
        else:
            done += f" {self.unit}"
        parts = [done, f"{rate:.3g} {self.unit}/s"]
        if final:
            finished = not self.total or self.n >= self.total
            parts.append(f"{'done in' if finished else 'stopped after'} {duration(elapsed)}")
        elif self.total and rate > 0:
            parts.append(f"{duration(max(self.total - self.n, 0) / rate)} left")
        if self._postfix:
            parts.append(self._postfix)
        prefix = f"{self.desc}: " if self.desc else ""
        return prefix + ", ".join(parts)

    def _print(self, now: float, final: bool = False) -> None:
        self._printed = True
        try:
            print(self.line(now, final), file=self.file, flush=True)
        except (OSError, ValueError):  # a closed or broken log stream stops the lines only
            self.interval = float("inf")


def _count(value: float) -> str:
    return f"{int(value)}" if float(value).is_integer() else f"{value:.1f}"


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 10 min``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
