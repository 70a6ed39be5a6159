"""The schedule of checkpoints kept along training (``--keep-checkpoints``): epochs and
``every:N`` terms, separated by commas (``0,1,5``, ``0,every:2``)."""

from __future__ import annotations

from dataclasses import dataclass

EVERY = "every:"


@dataclass(frozen=True)
class KeepSchedule:
    """Which finished-epoch counts get a kept checkpoint."""

    epochs: frozenset[int] = frozenset()
    every: int | None = None

    def keeps(self, epoch: int) -> bool:
        return epoch in self.epochs or (self.every is not None and epoch % self.every == 0)

    def __bool__(self) -> bool:
        return bool(self.epochs) or self.every is not None


def parse_schedule(text: str | None) -> KeepSchedule:
    """``"0,every:2"`` -> KeepSchedule; raises ValueError saying what was expected."""
    if text is None or not text.strip():
        return KeepSchedule()
    epochs: set[int] = set()
    every: int | None = None
    for term in (part.strip() for part in text.split(",")):
        expected = (f"expected epochs and every:N terms separated by commas (e.g. "
                    f"'0,1,5' or '0,every:2'), got {term!r} in {text!r}")
        if term.startswith(EVERY):
            count = term[len(EVERY):]
            if not count.isdigit() or int(count) < 1:
                raise ValueError(expected + "; N must be a positive integer")
            if every is not None and every != int(count):
                raise ValueError(f"give at most one every:N term, got {text!r}")
            every = int(count)
        elif term.isdigit():
            epochs.add(int(term))
        else:
            raise ValueError(expected)
    return KeepSchedule(frozenset(epochs), every)
