"""Delivery: read a sink's topics from the journal after its cursor, deliver, then move the cursor.

The cursor moves only after the sink returned, i.e. after the data is acknowledged (for the file sink:
written, flushed and fsynced). A crash between the two re-delivers the last batch: at-least-once.
Journal reads and sink writes run in worker threads so the capture side keeps its event loop.

With a mapping (``mapper.sql``), each batch is mapped first (`RecordMapper.map_batch`, synchronous,
in a worker thread): the sink receives the business events -- CloudEvents -- each carrying the
journal seq of the change it came from, and the cursor still moves to the batch's last record, also
past changes that mapped to nothing (rows outside the mapping's WHERE, other tables). A single-table
mapping is pure; a multi-table one re-reads the affected business objects from the source (one
read-only query per batch), which is why the whole batch is handed over at once.

Failure story: a row the mapping cannot evaluate raises `Permanent` (MappingRuntimeError) naming
the row: the loop ends and the run stops, as with errors.tolerance=none. A `Transient` error of the
sink (a full disk, a lock) or of a multi-table mapping's source query (the source restarting) is
retried with exponential backoff and jitter, forever, with a warning each time; the same batch is
mapped and delivered again (the file sink cuts a partial write back first). Anything else ends the
loop with the error, and the runner stops the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from cdc.errors import Transient
from cdc.journal.sqlite import SqliteJournal
from cdc.types import JournalRecord, SinkEvent

log = logging.getLogger(__name__)

BATCH = 5_000


class BatchSink(Protocol):
    def open(self) -> None: ...
    def deliver(self, records: list[JournalRecord]) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class ValueSink(BatchSink, Protocol):
    """A sink that writes event values only (the file sink): without a mapping it is handed the values
    the journal read, tombstones left out, with no record object built per event."""

    def deliver_values(self, values: list[bytes]) -> None: ...


class RecordMapper(Protocol):
    def map_batch(self, records: Sequence[JournalRecord]) -> list[JournalRecord]:
        """The business events of a batch of changes, in order, each with the seq of the change it came
        from; [] when nothing maps. Blocking (a multi-table mapping queries the source)."""
        ...

    def map_events(self, records: Sequence[JournalRecord]) -> list[SinkEvent]:
        """`map_batch`'s events as the delivery engine hands them to sinks (`cdc.types.parse_sink_event`
        of each value), built without parsing the CloudEvents back where the mapper can."""
        ...

    def close(self) -> None:
        """Release what the mapper holds (a source connection); idempotent."""
        ...


def _warn(name: str) -> Callable[[RetryCallState], None]:
    def warn(state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome is not None else None
        log.warning("sink %s: %s; retrying the batch (attempt %d)", name, err, state.attempt_number)
    return warn


def retrying(name: str) -> AsyncRetrying:
    return AsyncRetrying(retry=retry_if_exception_type(Transient), reraise=True,
                         wait=wait_exponential_jitter(multiplier=0.5, max=30), before_sleep=_warn(name))


@dataclass
class DeliveryStats:
    delivered: int = 0
    cursor: int = 0


async def run_delivery(name: str, journal: SqliteJournal, sink: BatchSink, topics: re.Pattern[str],
                       wake: asyncio.Event, finished: Callable[[], int | None],
                       stats: DeliveryStats | None = None, mapper: RecordMapper | None = None) -> None:
    """Deliver until `finished()` returns a journal seq that the cursor has passed (never, if None).

    With `mapper`, the sink receives each batch's mapped events instead of the change events."""
    stats = stats or DeliveryStats()
    reader = journal.reader()
    await asyncio.to_thread(sink.open)
    try:
        cursor = journal.cursor(name)
        stats.cursor = cursor
        value_sink = sink if mapper is None and isinstance(sink, ValueSink) else None
        while True:
            wake.clear()
            deliver: Callable[[], None]
            if value_sink is not None:
                last, count, values = await asyncio.to_thread(reader.read_values, topics, cursor, BATCH)
                deliver = functools.partial(value_sink.deliver_values, values)
            else:
                records = await asyncio.to_thread(reader.read, topics, cursor, BATCH)
                last, count = (records[-1].seq, len(records)) if records else (cursor, 0)
                batch = records
                if mapper is not None and records:
                    async for attempt in retrying(name):
                        with attempt:
                            batch = await asyncio.to_thread(mapper.map_batch, records)
                deliver = functools.partial(sink.deliver, batch)
            if count:
                async for attempt in retrying(name):
                    with attempt:
                        await asyncio.to_thread(deliver)
                cursor = last
                await asyncio.to_thread(journal.commit_cursor, name, cursor)
                stats.delivered += count
                stats.cursor = cursor
                continue
            # Nothing matching after the cursor up to the journal's end: caught up.
            end = finished()
            if end is not None and (cursor >= end or reader.end_seq() <= end):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), 1.0)
    finally:
        await asyncio.to_thread(sink.close)
        if mapper is not None:
            await asyncio.to_thread(mapper.close)
