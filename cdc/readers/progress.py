"""Snapshot progress for operators: a rich progress bar on a terminal, a log line per table otherwise."""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


class SnapshotProgress:
    """Per-table progress of one connector's snapshot (`tables`: name and estimated rows)."""

    def __init__(self, name: str, tables: list[tuple[str, int]]) -> None:
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._name = name
        if sys.stderr.isatty() and tables:
            from rich.progress import Progress

            self._bar = Progress(transient=False)
            self._bar.start()
            for t, n in tables:
                self._tasks[t] = self._bar.add_task(f"snapshot {t}", total=max(n, 1))

    def advance(self, table: str, n: int) -> None:
        if self._bar is not None:
            self._bar.update(self._tasks[table], advance=n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        log.info("connector %s: snapshot complete", self._name)
