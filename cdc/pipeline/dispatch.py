"""Delivery to a target API: journal cursor -> mapping -> key lanes -> batches -> sink, per-record outcomes.

Role
    `run_dispatch` runs one delivery sink connector (HTTP and vendor sinks; design §6). It reads the
    sink's topics after its cursor, maps each journal batch to business events (CloudEvents), spreads
    them over key lanes (`cdc.pipeline.lanes`: per-key order, parallel across keys, one batch in flight
    per lane) and hands each lane's batches to the sink under a concurrency cap, token-bucket rate
    limits (requests/s, records/s; aiolimiter) and a circuit breaker per route. Each record's outcome
    decides its fate: delivered; retried with exponential backoff and jitter that honours Retry-After,
    blocking only its lane; rejected -> the dead-letter store (``errors.tolerance=all``, the default
    for these sinks) or the sink stops (``none``).

Progress and crashes
    A committer task records, in one SQLite transaction, each lane's done seq, the cursor (their
    minimum: the low watermark of events delivered or dead-lettered), the new dead letters, and which
    pending dead letters a delivery superseded (`SqliteJournal`/`JournalReader.commit_delivery`). It
    commits 5 ms after the first change (a group commit of whatever finished meanwhile), or at once
    when a lane waits for the commit or the run is ending.
    A lane sends the next event of a key only after the key's previous one is in such a commit
    (`cdc.pipeline.lanes`), so after SIGKILL the only events sent again are those acknowledged since
    the last commit or in flight -- at most one per key, the same event again -- and a key's position at
    the target never goes backwards. Lane progress is only trusted for the same
    number of lanes (`delivery.lanes`); otherwise delivery resumes from the cursor.

Memory stays bounded: the reader stops reading while the lanes hold more than `_buffer_limit` events.

Failure story: a `Transient` error of the sink is retried forever, or until ``errors.retry.timeout``
ms, after which the records are dead-lettered ("gave up after N attempts") like rejections; a
`Permanent` one (bad credentials, an unknown object) stops the sink with its message, as does a
rejection under ``errors.tolerance=none`` (naming the event, its business key and the target's
answer). A row the mapping cannot evaluate is dead-lettered as the change event itself, with the
mapping's message (tolerance all), or stops the sink (none). Commits that fail transiently (a locked
or full disk) are retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiolimiter import AsyncLimiter

from cdc.errors import Permanent, Transient
from cdc.journal.deadletters import DeadLetter, now_ms
from cdc.journal.sqlite import JournalReader, SqliteJournal
from cdc.pipeline.breaker import CircuitBreaker, retry_delay
from cdc.pipeline.delivery import BATCH, RecordMapper, retrying
from cdc.pipeline.lanes import Lane, lane_of, take_batch
from cdc.types import JournalRecord, Outcome, OutcomeKind, Sink, SinkEvent

if TYPE_CHECKING:
    from cdc.admin.metrics import Metrics

__all__ = ["DeliverySettings", "DispatchStats", "run_dispatch"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_COMMIT_LINGER_S = 0.005


class DeliverySettings(Protocol):
    """The delivery properties of a sink connector (`cdc.config.httpsinks.DeliverySinkModel`)."""

    @property
    def name(self) -> str: ...
    @property
    def delivery_lanes(self) -> int: ...
    @property
    def batch_max_records(self) -> int: ...
    @property
    def batch_max_bytes(self) -> int: ...
    @property
    def batch_linger_ms(self) -> int: ...
    @property
    def max_in_flight_requests(self) -> int: ...
    @property
    def rate_limit_requests_per_second(self) -> float: ...
    @property
    def rate_limit_records_per_second(self) -> float: ...
    @property
    def circuit_breaker_failure_threshold(self) -> int: ...
    @property
    def circuit_breaker_open_ms(self) -> int: ...
    @property
    def errors_retry_timeout(self) -> int: ...
    @property
    def errors_retry_delay_max_ms(self) -> int: ...
    @property
    def errors_tolerance(self) -> str: ...
    def topic_pattern(self) -> re.Pattern[str]: ...


@dataclass
class DispatchStats:
    delivered: int = 0       # events the target acknowledged
    dead_lettered: int = 0   # events stored in the dead-letter store
    retried: int = 0         # event re-sends
    requests: int = 0        # calls to the sink
    read: int = 0            # journal records read
    cursor: int = 0


@functools.lru_cache(maxsize=1024)
def _epoch(text: str) -> float | None:
    """A commit time as seconds since the epoch (None: not a time), cached: one request per record
    parses the same transaction's time once per event otherwise."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _ages(events: Sequence[SinkEvent], now: float) -> list[tuple[float, int]]:
    """(seconds since the source commit, number of events) for each distinct commit time of `events`
    (events without a parsable time are left out): the events of one source transaction share it."""
    counts: dict[str, int] = {}
    for e in events:
        counts[e.time] = counts.get(e.time, 0) + 1
    return [(max(0.0, now - t), n) for text, n in counts.items() if (t := _epoch(text)) is not None]


class _Connection:
    """A journal connection used from one worker thread only: calls queue up in order, and closing runs
    after the calls still in flight (a cancelled await does not stop its thread)."""

    def __init__(self, reader: JournalReader) -> None:
        self.reader = reader
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="journal")

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def close(self) -> None:
        self._thread.submit(self.reader.close)
        self._thread.shutdown(wait=True)


def _entity(type_: str) -> str:
    return type_.split(".", 1)[0]


class _Dispatcher:
    def __init__(self, cfg: DeliverySettings, journal: SqliteJournal, sink: Sink, mapper: RecordMapper,
                 wake: asyncio.Event, finished: Callable[[], int | None], stats: DispatchStats,
                 metrics: Metrics | None = None) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.name = cfg.name
        self.journal = journal
        self.sink = sink
        self.mapper = mapper
        self.wake = wake
        self.finished = finished
        self.stats = stats
        self.lanes = [Lane() for _ in range(cfg.delivery_lanes)]
        self.lane_wakes = [asyncio.Event() for _ in self.lanes]
        self.skip: list[int] = []
        self.read_end = 0
        self.buffered = 0
        self.room = asyncio.Event()
        self._buffer_limit = max(2 * BATCH, 2 * cfg.delivery_lanes * cfg.batch_max_records)
        self.slots = asyncio.Semaphore(cfg.max_in_flight_requests)
        rps, recs = cfg.rate_limit_requests_per_second, cfg.rate_limit_records_per_second
        self.request_limit = AsyncLimiter(rps, 1.0) if rps > 0 else None
        self.record_limit = AsyncLimiter(recs, 1.0) if recs > 0 else None
        self.breakers: dict[str, CircuitBreaker] = {}
        # Waiting for the committer: what it has not yet taken, and how far it got.
        self.dead: list[DeadLetter] = []
        self.delivered: list[tuple[str, int]] = []
        self.dlq_subjects: set[str] = set()
        self.changes = 0
        self.committed_changes = 0
        self.dirty = asyncio.Event()
        self.hurry = asyncio.Event()   # a lane waits for the next commit: no linger
        self.draining = False          # the run is ending: commit as soon as anything changes
        self.committed = asyncio.Condition()
        self.idle = False  # the reader found nothing more to read (yet)

    # -- reading and mapping -------------------------------------------------------------------------

    async def read_loop(self, reader: _Connection) -> None:
        topics = self.cfg.topic_pattern()
        while True:
            self.wake.clear()
            while self.buffered >= self._buffer_limit:
                self.room.clear()
                await self.room.wait()
            records = await reader.call(reader.reader.read, topics, self.read_end, BATCH)
            if records:
                self.idle = False
                self.stats.read += len(records)
                events = await self.map(records)
                self.dispatch(events)
                self.read_end = records[-1].seq
                self.changed()
                continue
            self.idle = True
            end = self.finished()
            if end is not None and (self.read_end >= end or await reader.call(reader.reader.end_seq) <= end):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 1.0)

    async def map(self, records: list[JournalRecord]) -> list[SinkEvent]:
        mapped: list[SinkEvent] = []
        try:
            async for attempt in retrying(self.name):
                with attempt:
                    mapped = await asyncio.to_thread(self.mapper.map_events, records)
        except Permanent:
            if self.cfg.errors_tolerance != "all":
                raise
            mapped = await self.map_each(records)
        return mapped

    async def map_each(self, records: list[JournalRecord]) -> list[SinkEvent]:
        """Map one record at a time, dead-lettering the changes the mapping cannot evaluate."""
        mapped: list[SinkEvent] = []
        for r in records:
            try:
                mapped += await asyncio.to_thread(self.mapper.map_events, [r])
            except Permanent as e:
                t = now_ms()
                subject = (r.key or b"null").decode()
                log.error("sink %s: %s; the change goes to the dead-letter store", self.name, e)
                self.dead.append(DeadLetter(self.name, r.seq, f"change:{r.topic}:{r.seq}", r.topic, "mapping.failed",
                                            subject, r.value or b"null", None, str(e), 1, t, t))
                self.stats.dead_lettered += 1
        return mapped

    def dispatch(self, events: list[SinkEvent]) -> None:
        n = len(self.lanes)
        skip = self.skip
        for e in events:
            i = lane_of(e.subject, n)
            if e.seq <= skip[i]:
                continue  # finished before a restart (its lane's progress was stored)
            self.lanes[i].queue.append(e)
            self.buffered += 1
            self.lane_wakes[i].set()

    # -- lanes ---------------------------------------------------------------------------------------

    async def lane_loop(self, i: int) -> None:
        lane, wake = self.lanes[i], self.lane_wakes[i]
        cfg = self.cfg
        linger = cfg.batch_linger_ms / 1000
        while True:
            if not lane.queue:
                wake.clear()
                await wake.wait()
                continue
            if lane.unsynced and self.committed_changes >= lane.synced_at:
                lane.unsynced.clear()
            if lane.queue[0].subject in lane.unsynced:
                # The key's previous event is acknowledged but its progress not yet committed: sending the next
                # one now could, after a crash, be followed by a re-send of the previous one -- backwards.
                await self.durable()
                lane.unsynced.clear()
                continue
            if linger and not self.idle and self.sink.batch_limit(self.sink.route(lane.queue[0])) > 1 and \
                    len(lane.queue) < cfg.batch_max_records:
                await asyncio.sleep(linger)  # let the reader add to a small batch (not to a per-record route's)
            route, lane.flight = take_batch(lane.queue, self.sink.route, cfg.batch_max_records, cfg.batch_max_bytes,
                                            self.sink.batch_limit, lane.unsynced)
            subjects = [e.subject for e in lane.flight]
            await self.send(lane, route)
            lane.unsynced.update(subjects)
            lane.synced_at = self.changes

    async def send(self, lane: Lane, route: str) -> None:
        cfg = self.cfg
        breaker = self.breakers.get(route)
        if breaker is None:
            breaker = self.breakers[route] = CircuitBreaker(cfg.circuit_breaker_failure_threshold,
                                                            cfg.circuit_breaker_open_ms / 1000)
        attempt = 0
        first_failure = 0
        started = time.monotonic()
        while lane.flight:
            batch = lane.flight
            await breaker.acquire()
            if self.request_limit is not None:
                await self.request_limit.acquire()
            if self.record_limit is not None:
                await self.record_limit.acquire(min(len(batch), self.record_limit.max_rate))
            async with self.slots:
                sent = time.perf_counter()
                try:
                    outcomes: Sequence[Outcome] = await self.sink.deliver(batch)
                except Transient as e:
                    outcomes = [Outcome(OutcomeKind.RETRY, error=str(e))] * len(batch)
                except BaseException:
                    breaker.record(True)  # release a probe: the sink stops anyway
                    raise
            self.stats.requests += 1
            if self.metrics is not None:
                self.metrics.sink_request(self.name, route, time.perf_counter() - sent)
            if len(outcomes) != len(batch):
                raise Permanent(f"sink {self.name}: {len(outcomes)} outcomes for a batch of {len(batch)}")
            retry = [(e, o) for e, o in zip(batch, outcomes, strict=True) if o.kind is OutcomeKind.RETRY]
            was = breaker.state
            breaker.record(len(retry) < len(batch))
            if self.metrics is not None and breaker.state is not was:
                self.metrics.circuit_state(self.name, route, breaker.state.value)
            attempt += 1
            t = now_ms()
            if retry:
                first_failure = first_failure or t
                timeout = cfg.errors_retry_timeout
                if timeout >= 0 and (time.monotonic() - started) * 1000 >= timeout:
                    outcomes = [Outcome(OutcomeKind.REJECTED, o.status, f"gave up after {attempt} attempts in "
                                        f"{time.monotonic() - started:.1f} s (errors.retry.timeout={timeout}): "
                                        f"{o.error}") if o.kind is OutcomeKind.RETRY else o for o in outcomes]
                    retry = []
            self.settle(lane, batch, outcomes, attempt, first_failure or t, t)
            if retry:
                self.stats.retried += len(retry)
                wait = retry_delay(attempt, max((o.retry_after or 0.0) for _, o in retry),
                                   cfg.errors_retry_delay_max_ms / 1000)
                log.warning("sink %s: %d of %d records not delivered (%s); retrying in %.1f s (attempt %d)",
                            self.name, len(retry), len(batch), retry[0][1].error or retry[0][1].status, wait,
                            attempt)
                await asyncio.sleep(wait)

    def settle(self, lane: Lane, batch: list[SinkEvent], outcomes: Sequence[Outcome], attempt: int,
               first_failure: int, t: int) -> None:
        finished: list[SinkEvent] = []
        acked: list[SinkEvent] = []
        for e, o in zip(batch, outcomes, strict=True):
            if o.kind is OutcomeKind.DELIVERED:
                finished.append(e)
                acked.append(e)
                if e.subject in self.dlq_subjects:
                    self.delivered.append((e.subject, e.seq))
            elif o.kind is OutcomeKind.REJECTED:
                error = o.error or f"HTTP {o.status}"
                if self.cfg.errors_tolerance != "all":
                    raise Permanent(f"sink {self.name}: the target rejected event {e.id} ({e.type}, business key "
                                    f"{e.subject!r}, journal seq {e.seq}): {o.status} {error}; set "
                                    "errors.tolerance=all to dead-letter rejected records and go on")
                log.error("sink %s: rejected %s %r (event %s): %s %s; dead-lettered", self.name, e.type, e.subject,
                          e.id, o.status, error)
                finished.append(e)
                self.dead.append(DeadLetter(self.name, e.seq, e.id, _entity(e.type), e.type, e.subject, e.raw,
                                            o.status, error, attempt, first_failure, t))
                self.dlq_subjects.add(e.subject)
                self.stats.dead_lettered += 1
        self.stats.delivered += len(acked)
        if self.metrics is not None:
            self.metrics.commit_to_ack(self.name, _ages(acked, time.time()))
        if finished:
            lane.finish(finished)
            self.buffered -= len(finished)
            if self.buffered < self._buffer_limit // 2:
                self.room.set()
            self.changed()

    # -- committing ----------------------------------------------------------------------------------

    def changed(self) -> None:
        self.changes += 1
        self.dirty.set()

    async def durable(self) -> None:
        """Wait until everything changed so far is committed."""
        target = self.changes
        self.hurry.set()
        async with self.committed:
            await self.committed.wait_for(lambda: self.committed_changes >= target)

    async def commit_loop(self, writer: _Connection) -> None:
        while True:
            await self.dirty.wait()
            # Group commit: one transaction (and fsync) for whatever several requests finished meanwhile,
            # rather than one per request on per-record routes (a tenth of their CPU) -- unless a lane waits
            # for it (a key's next event), whose throughput the linger would cap.
            if not self.draining:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_COMMIT_LINGER_S):
                        await self.hurry.wait()
                self.hurry.clear()
            await self.commit(writer)

    async def commit(self, writer: _Connection) -> None:
        self.dirty.clear()
        changes = self.changes
        done = [lane.done(self.read_end) for lane in self.lanes]
        dead, self.dead = self.dead, []
        delivered, self.delivered = self.delivered, []
        async for attempt in retrying(self.name):
            with attempt:
                cursor = await writer.call(writer.reader.commit_delivery, self.name, done, dead, delivered)
        self.stats.cursor = cursor
        async with self.committed:
            self.committed_changes = changes
            self.committed.notify_all()

    # -- the whole run -------------------------------------------------------------------------------

    async def run(self) -> None:
        reader, writer = _Connection(self.journal.reader()), _Connection(self.journal.reader())
        try:
            self.read_end = cursor = await reader.call(reader.reader.cursor, self.name)
            stored = await reader.call(reader.reader.lane_progress, self.name, len(self.lanes))
            self.skip = stored if stored is not None else [cursor] * len(self.lanes)
            self.dlq_subjects = await reader.call(reader.reader.pending_dead_letter_subjects, self.name)
            self.stats.cursor = cursor
            await self.sink.open()
            try:
                async with asyncio.TaskGroup() as tg:
                    lanes = [tg.create_task(self.lane_loop(i), name=f"{self.name}-lane-{i}")
                             for i in range(len(self.lanes))]
                    committer = tg.create_task(self.commit_loop(writer), name=f"{self.name}-commit")
                    await self.read_loop(reader)
                    self.draining = True
                    self.hurry.set()
                    async with self.committed:  # every lane empty and its progress committed
                        await self.committed.wait_for(lambda: self.buffered == 0)
                    for t in (*lanes, committer):
                        t.cancel()
                await self.commit(writer)
            except BaseExceptionGroup as group:
                raise group.exceptions[0] from None
            finally:
                await self.sink.close()
        finally:
            await asyncio.to_thread(reader.close)
            await asyncio.to_thread(writer.close)


async def run_dispatch(cfg: DeliverySettings, journal: SqliteJournal, sink: Sink, mapper: RecordMapper,
                       wake: asyncio.Event, finished: Callable[[], int | None],
                       stats: DispatchStats | None = None, metrics: Metrics | None = None) -> None:
    """Deliver until `finished()` returns a journal seq that delivery has passed (never, if None)."""
    try:
        await _Dispatcher(cfg, journal, sink, mapper, wake, finished, stats or DispatchStats(), metrics).run()
    finally:
        await asyncio.to_thread(mapper.close)
