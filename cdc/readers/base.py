"""What every source reader hands to the capture pipeline, whatever the database.

`CommittedTx` is one durable-ready unit: a committed transaction, a chunk of a snapshot, or a position
change with no events (a DDL statement, a snapshot's end). `ChangeReader` is the shape the pipeline
drives (design §9): `open` from the journal's stored offset, iterate `changes()`, `confirm` what the
journal made durable, `close`. Readers that record their position in the journal itself (the binlog)
make `confirm` a no-op; PostgreSQL uses it to advance the slot. `IncrementalProgress` is what a reader
running ad-hoc incremental snapshots also offers (both readers do): the admin sampler reads it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from cdc.types import ChangeEvent, SourceOffset

# (db or schema, table, schema JSON or None when the table was dropped, the DDL or reason)
SchemaChange = tuple[str, str, str | None, str]


@dataclass(slots=True)
class CommittedTx:
    """A durable-ready unit for the journal: a committed transaction, or a chunk of the snapshot.

    `toast` rows are PostgreSQL's remembered TOAST values; `schemas` are the binlog reader's schema
    history entries, stored in the same journal transaction as the events and the offset. `counts`, when
    the reader counts its events by (topic, op) itself while `events()` makes them, is that counter
    (complete once `events()` is exhausted); otherwise the capture counts them from the values.
    """

    offset: SourceOffset
    confirm_lsn: int | None           # what a PostgreSQL slot may be confirmed to once this is durable
    count: int
    _events: Callable[[], Iterator[ChangeEvent]]
    toast: list[tuple[str, bytes, str, str]] = field(default_factory=list)
    _release: Callable[[], None] | None = None
    schemas: list[SchemaChange] = field(default_factory=list)
    counts: Counter[tuple[str, str]] | None = None

    def events(self) -> Iterator[ChangeEvent]:
        return self._events()

    def release(self) -> None:
        if self._release is not None:
            self._release()


class ChangeReader(Protocol):
    stop_at_end: bool

    async def open(self, offset: SourceOffset | None) -> None: ...

    def changes(self) -> AsyncIterator[CommittedTx]: ...

    def confirm(self, lsn: int) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class IncrementalProgress(Protocol):
    """A reader that runs ad-hoc incremental snapshots (`cdc.readers.incremental`) tells how far they are:
    per table, rows emitted so far and the planner's estimate (None: unknown); the tables still to read."""

    def incremental_progress(self) -> dict[str, tuple[int, int | None]]: ...

    @property
    def incremental_pending(self) -> tuple[str, ...]: ...
