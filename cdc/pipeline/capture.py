"""Capture: move committed transactions from a reader into the journal, then confirm them.

The reader produces `CommittedTx` units; a bounded hand-off (counted in events held in memory, so a
burst of transactions cannot grow memory) feeds one writer task, which groups whatever is waiting into
one journal append (one fsync for many small transactions), runs it in a worker thread, and only after
it returned tells the reader the new durable LSN. That order is the whole correctness story: the slot
is never confirmed past what the journal holds, so a crash anywhere loses nothing.

Failure story: a journal error propagates out of `run_capture` (the runner restarts the connector from
the journal's offset); a reader error does the same after the writer finished what it had.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from cdc.journal.sqlite import SqliteJournal
from cdc.readers.base import ChangeReader, CommittedTx
from cdc.types import ChangeEvent

log = logging.getLogger(__name__)

CHUNK = 5_000            # events per executemany chunk
GROUP_EVENTS = 20_000    # events per journal commit, at most (a larger transaction is one commit)
MEMORY_EVENTS = 20_000   # events waiting in memory for the journal, at most


class EventBudget:
    """Backpressure in events: `take(n)` waits while the waiting events would pass the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = asyncio.Condition()

    async def take(self, n: int) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.used == 0 or self.used + n <= self.limit)
            self.used += n

    async def give(self, n: int) -> None:
        async with self._cond:
            self.used -= n
            self._cond.notify_all()


@dataclass
class CaptureStats:
    transactions: int = 0
    events: int = 0
    last_seq: int = 0
    last_commit_us: int = 0  # source commit time of the last journaled transaction (0: none yet)


def _chunks(txs: Sequence[CommittedTx], counts: Counter[tuple[str, str]] | None) -> Iterator[list[ChangeEvent]]:
    for tx in txs:
        it = tx.events()
        while chunk := list(itertools.islice(it, CHUNK)):
            if counts is not None and tx.counts is None:  # the reader does not count them itself
                _count(chunk, counts)
            yield chunk
        if counts is not None and tx.counts is not None:
            counts.update(tx.counts)


_OP = b'"op":"'


def _count(events: Sequence[ChangeEvent], counts: Counter[tuple[str, str]]) -> None:
    """Count events by (topic, op); a tombstone is not counted (its delete was)."""
    # The op sits near the envelope's end (after `source`): a reverse search finds it fast. One
    # comprehension and one Counter update: this runs for every event.
    found = Counter([(e.topic, v[at + 6:at + 7] if (at := v.rfind(_OP)) >= 0 else b"?")
                     for e in events if (v := e.value) is not None])
    for (topic, op), n in found.items():
        counts[topic, op.decode()] += n


async def run_capture(name: str, reader: ChangeReader, journal: SqliteJournal,
                      on_durable: Callable[[int], None], stats: CaptureStats | None = None,
                      memory_limit: int = MEMORY_EVENTS,
                      on_counts: Callable[[Mapping[tuple[str, str], int]], None] | None = None) -> None:
    """Drain `reader.changes()` into the journal until the reader ends (or this task is cancelled).

    `on_counts`, if given, gets each journal append's events counted by (topic, op), for metrics."""
    stats = stats or CaptureStats()
    queue: asyncio.Queue[CommittedTx | None] = asyncio.Queue()
    budget = EventBudget(memory_limit)

    async def produce() -> None:
        try:
            async for tx in reader.changes():
                await budget.take(min(tx.count, memory_limit))
                queue.put_nowait(tx)
        finally:
            queue.put_nowait(None)

    async def write() -> None:
        done = False
        while not done:
            first = await queue.get()
            if first is None:
                return
            txs = [first]
            n = first.count
            while n < GROUP_EVENTS and not queue.empty():
                nxt = queue.get_nowait()
                if nxt is None:
                    done = True
                    break
                txs.append(nxt)
                n += nxt.count
            toast = list(itertools.chain.from_iterable(t.toast for t in txs))
            schemas = list(itertools.chain.from_iterable(t.schemas for t in txs))
            counts: Counter[tuple[str, str]] | None = Counter() if on_counts is not None else None
            try:
                seq = await asyncio.to_thread(journal.append, name, _chunks(txs, counts), txs[-1].offset, toast,
                                              schemas)
            finally:
                for t in txs:
                    t.release()
            await budget.give(sum(min(t.count, memory_limit) for t in txs))
            lsns = [t.confirm_lsn for t in txs if t.confirm_lsn is not None]
            if lsns:
                reader.confirm(max(lsns))
            if on_counts is not None and counts:
                on_counts(counts)
            stats.transactions += len(txs)
            stats.events += n
            stats.last_seq = seq
            offset = txs[-1].offset
            stats.last_commit_us = int(offset.get("ts_usec") or offset.get("ts_sec", 0) * 1_000_000)
            on_durable(seq)

    producer = asyncio.create_task(produce(), name=f"{name}-reader")
    writer = asyncio.create_task(write(), name=f"{name}-journal")
    try:
        # Shielded: cancelling the capture (SIGTERM) must not cancel a journal append half-way.
        await asyncio.gather(producer, asyncio.shield(writer))
    except BaseException:
        producer.cancel()
        # The writer finishes what the reader handed over (the producer's end enqueues its stop
        # marker), so a clean stop leaves nothing received-but-unjournaled behind.
        await asyncio.gather(producer, return_exceptions=True)
        await asyncio.gather(writer, return_exceptions=True)
        raise
