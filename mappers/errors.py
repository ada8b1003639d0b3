"""Mapping errors: every problem of a mapping file, each with its file, line and column.

`MappingError` is a `cdc.errors.ConfigError` (a mapping is configuration: nothing runs until it is
right), carrying every problem found at once as `Problem`s; `str(problem)` is the one-line form
``customer.sql:3:12: unknown column 'okcunx' in m3.ocusma (did you mean 'okcunm'?)`` that the config
loader, `cdc run`, `cdc mapper test` and the golden files show. `MappingRuntimeError` is the
`Permanent` error of a row the mapping cannot evaluate (the source database would refuse it too, e.g.
an invalid date in a legacy YYYYMMDD column): it names the mapping position, the record and its key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cdc.errors import ConfigError, Permanent


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class MappingError(ConfigError):
    """One or more problems in a mapping file, all listed at once (`details` keeps them structured)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.details = list(problems)
        super().__init__([str(p) for p in self.details])


class MappingRuntimeError(Permanent):
    """A change row the mapping cannot evaluate; the sink stops on it (errors.tolerance=none)."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or ''."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset in `text`."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start + 1
