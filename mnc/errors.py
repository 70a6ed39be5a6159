"""Errors that reach the user as one clear message.

The CLI catches ``MncError`` and prints ``str(error)``; anything else is a bug and keeps its
traceback. Spec errors carry every problem found in a file, each with its location.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnc.text import shown


class MncError(Exception):
    """Base of every error caused by user input (exit code 2 on the command line)."""

    exit_code = 2


@dataclass(frozen=True)
class Location:
    """Where in a user's file a value was written (1-based line and column)."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [shown(self.file)]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


@dataclass(frozen=True)
class SpecProblem:
    """One mistake in a spec: where, which field, and what was expected."""

    location: Location
    field_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location.file else ""
        field = f"{self.field_path}: " if self.field_path else ""
        return f"{where}{field}{self.message}"


class SpecError(MncError):
    """A spec file that cannot be read or does not describe a valid network (exit code 3 on
    the command line, apart from usage errors' 2)."""

    exit_code = 3

    def __init__(self, problems: list[SpecProblem]):
        self.problems = list(problems)
        count = len(self.problems)
        head = "1 problem" if count == 1 else f"{count} problems"
        lines = [f"invalid spec ({head}):"] + [f"  {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))

    @classmethod
    def single(
        cls,
        file: str | Path,
        message: str,
        field_path: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> SpecError:
        return cls([SpecProblem(Location(str(file), line, column), field_path, message)])


@dataclass(frozen=True)
class PassProblem:
    """A derived number that cannot be built, and the spec field it comes from."""

    field_path: tuple[str | int, ...]
    message: str


class PassError(MncError):
    """A derivation pass found numbers it cannot turn into a network.

    The compiler turns it into a SpecError that points at the spec fields involved.
    """

    exit_code = 3

    def __init__(self, problems: list[PassProblem]):
        self.problems = list(problems)
        super().__init__("; ".join(problem.message for problem in self.problems))


class BackendError(MncError):
    """A backend cannot build, save or load what it was asked to."""


class UserFileError(MncError):
    """A user-supplied file (weights, model, images, data) is missing or malformed."""


class SizeLimitError(MncError):
    """A network would exceed the configured size limits."""


class StoppedByRequest(MncError):
    """A run stopped cleanly because the user asked (Ctrl-C, SIGTERM); not a mistake.

    The CLI prints "stopped" instead of "error" and exits with 128 + the signal number.
    """

    exit_code = 130

    def __init__(self, message: str, signal_name: str | None = None) -> None:
        super().__init__(message)
        self.signal_name = signal_name
        if signal_name == "SIGTERM":
            self.exit_code = 143


class UsageError(MncError):
    """A command-line argument names something that does not exist (a population, say)."""
