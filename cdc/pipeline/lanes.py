"""Key lanes and batches: how a delivery sink keeps per-key order while sending in parallel. Pure.

A business key (the event's subject) always hashes to the same lane (CRC-32, stable across processes
and restarts, unlike Python's salted `hash`). A lane sends one batch at a time, taking events from the
head of its queue in journal order, so two events of one key are never in flight together and are
acknowledged in order; different lanes run in parallel.

A lane does not wait for its progress to be committed before its next batch -- unless that batch would
start with a key whose previous event is acknowledged but not yet recorded: after a crash that event
would be sent again, after the newer one. So a batch also ends before such a key (`exclude`), and the lane
waits for the commit when its queue starts with one.

A batch is the longest prefix of the lane's queue that shares one route (the sink's endpoint, e.g.
``upsert Account``), holds no business key twice (vendors refuse a batch naming one record twice, and
order inside a request is not guaranteed by every API), and fits the record and byte limits.

Progress: `Lane.done(read_end)` is the highest seq such that every event of the lane with a seq up to
it is finished (delivered or dead-lettered): the lane's first unfinished event's seq - 1, or the end of
what was read when the lane is idle. The sink's cursor is the minimum over lanes; each lane's value is
stored with it, so after a crash an event is re-sent only if its own lane had not finished it.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Collection, Sequence

from cdc.types import SinkEvent

__all__ = ["Lane", "lane_of", "take_batch"]


def lane_of(subject: str, lanes: int) -> int:
    return zlib.crc32(subject.encode()) % lanes


def take_batch(queue: deque[SinkEvent], route: Callable[[SinkEvent], str], max_records: int, max_bytes: int,
               limit_of: Callable[[str], int] | None = None,
               exclude: Collection[str] = ()) -> tuple[str, list[SinkEvent]]:
    """Pop the next batch off the head of `queue` (which must not be empty): its route and events. The
    batch ends before an event whose subject is in `exclude` (the head itself is always taken)."""
    first = queue[0]
    name = route(first)
    limit = min(max_records, limit_of(name)) if limit_of is not None else max_records
    batch = [queue.popleft()]
    size = len(first.raw)
    subjects = {first.subject}
    while queue and len(batch) < limit:
        event = queue[0]
        size += len(event.raw)
        if size > max_bytes or event.subject in subjects or event.subject in exclude or route(event) != name:
            break
        subjects.add(event.subject)
        batch.append(queue.popleft())
    return name, batch


class Lane:
    """One key lane's queue and in-flight batch."""

    __slots__ = ("flight", "queue", "synced_at", "unsynced")

    def __init__(self) -> None:
        self.queue: deque[SinkEvent] = deque()
        self.flight: list[SinkEvent] = []  # the batch being sent; shrinks as its events finish
        # Subjects sent since the lane's progress was last committed, and the change count that commit needs.
        self.unsynced: set[str] = set()
        self.synced_at = 0

    def __len__(self) -> int:
        return len(self.queue) + len(self.flight)

    def done(self, read_end: int) -> int:
        """Every event of this lane with seq <= the result is finished."""
        if self.flight:
            return min(e.seq for e in self.flight) - 1
        if self.queue:
            return self.queue[0].seq - 1
        return read_end

    def finish(self, events: Sequence[SinkEvent]) -> None:
        """Drop finished events from the in-flight batch (the rest stays in flight, to be retried)."""
        if len(events) == len(self.flight):  # the usual case: the whole batch (events come from it)
            self.flight = []
            return
        gone = {id(e) for e in events}
        self.flight = [e for e in self.flight if id(e) not in gone]
