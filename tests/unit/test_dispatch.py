"""The delivery engine (cdc.pipeline.dispatch) on a real journal file, with a scripted in-process target.

The target here is a plain object implementing the `Sink` protocol: it keeps per-key state, checks that
no key is ever in flight twice and that a key's version never goes backwards, and answers each record
as its script says. HTTP sinks against the emulators are tested in tests/integration and tests/e2e.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from cdc.admin.metrics import Metrics
from cdc.errors import Permanent, Transient
from cdc.journal.deadletters import DeadLetterFilter
from cdc.journal.sqlite import SqliteJournal
from cdc.pipeline import dispatch
from cdc.pipeline.dispatch import DispatchStats, _ages, run_dispatch
from cdc.pipeline.lanes import Lane, lane_of, take_batch
from cdc.types import DELIVERED, ChangeEvent, JournalRecord, Outcome, OutcomeKind, SinkEvent, parse_sink_event

TOPIC = "erp.public.customer"


@dataclass
class Settings:
    name: str = "crm"
    delivery_lanes: int = 4
    batch_max_records: int = 10
    batch_max_bytes: int = 1 << 20
    batch_linger_ms: int = 0
    max_in_flight_requests: int = 4
    rate_limit_requests_per_second: float = 0
    rate_limit_records_per_second: float = 0
    circuit_breaker_failure_threshold: int = 3
    circuit_breaker_open_ms: int = 50
    errors_retry_timeout: int = -1
    errors_retry_delay_max_ms: int = 20
    errors_tolerance: str = "all"

    def topic_pattern(self) -> re.Pattern[str]:
        return re.compile(re.escape(TOPIC))


Script = Callable[[SinkEvent, int], Outcome]  # (event, how many times it was sent before) -> outcome


@dataclass
class Target:
    script: Script = lambda e, n: DELIVERED
    name: str = "target"
    max_batch_records: int = 10
    max_batch_bytes: int = 1 << 20
    state: dict[str, int] = field(default_factory=dict)        # subject -> applied version
    sent: list[list[str]] = field(default_factory=list)        # subjects per request
    seen: dict[str, list[int]] = field(default_factory=dict)   # subject -> versions applied, in order
    attempts: dict[str, int] = field(default_factory=dict)     # event id -> sends
    in_flight: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    raise_on: Callable[[int], BaseException | None] = lambda n: None
    hang_after: int | None = None  # from this request on, answers never come back (the process "dies")
    hanging: asyncio.Event | None = None

    def route(self, event: SinkEvent) -> str:
        return "delete" if event.deleted else "upsert"

    def batch_limit(self, route: str) -> int:
        return self.max_batch_records

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def deliver(self, batch: Sequence[SinkEvent]) -> Sequence[Outcome]:
        subjects = [e.subject for e in batch]
        if len(set(subjects)) != len(subjects) or self.in_flight & set(subjects):
            self.violations.append(f"key twice in flight: {subjects}")
        self.in_flight |= set(subjects)
        self.sent.append(subjects)
        try:
            await asyncio.sleep(0)
            exc = self.raise_on(len(self.sent))
            if exc is not None:
                raise exc
            out = []
            for e in batch:
                n = self.attempts.get(e.id, 0)
                self.attempts[e.id] = n + 1
                o = self.script(e, n)
                if o.kind is OutcomeKind.DELIVERED:
                    version = int((e.data or {}).get("version", 0))
                    if version < self.state.get(e.subject, 0):
                        self.violations.append(f"{e.subject}: version {version} after {self.state[e.subject]}")
                    self.state[e.subject] = version
                    self.seen.setdefault(e.subject, []).append(version)
                out.append(o)
            if self.hang_after is not None and len(self.sent) >= self.hang_after:
                assert self.hanging is not None
                self.hanging.set()
                await asyncio.Event().wait()  # applied at the target; the answer never comes back
            return out
        finally:
            self.in_flight -= set(subjects)


class Identity:
    """The journal already holds CloudEvents: mapping is the identity (a real mapping is tested elsewhere)."""

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.fail_on = fail_on or set()

    def map_batch(self, records: Sequence[JournalRecord]) -> list[JournalRecord]:
        for r in records:
            if r.seq in self.fail_on:
                raise Permanent(f"mapping m.sql: cannot evaluate journal seq {r.seq}")
        return list(records)

    def map_events(self, records: Sequence[JournalRecord]) -> list[SinkEvent]:
        return [parse_sink_event(r.seq, r.value) for r in self.map_batch(records) if r.value is not None]

    def close(self) -> None: ...


def cloudevent(subject: str, version: int, deleted: bool = False, email: str = "a@b") -> bytes:
    kind = "deleted" if deleted else "upserted"
    return orjson.dumps({"specversion": "1.0", "id": f"{subject}-{version}-{kind}", "source": "/erp/public/customer",
                         "type": f"customer.{kind}", "subject": subject, "time": "2026-01-01T00:00:00Z",
                         "data": {"id": subject, "version": version, "email": email}})


def fill(journal: SqliteJournal, keys: int, rounds: int) -> int:
    """`rounds` versions of each of `keys` customers, interleaved; returns the journal end."""
    version = 0
    for _ in range(rounds):
        batch = []
        for k in range(keys):
            version += 1
            batch.append(ChangeEvent(TOPIC, orjson.dumps(f"C{k}"), cloudevent(f"C{k}", version)))
        journal.append("src", [batch], {"lsn": version})
    return journal.end_seq()


def deliver(journal: SqliteJournal, target: Target, settings: Settings | None = None,
            mapper: Identity | None = None, stats: DispatchStats | None = None,
            metrics: Metrics | None = None) -> DispatchStats:
    stats = stats or DispatchStats()
    end = journal.end_seq()
    asyncio.run(run_dispatch(settings or Settings(), journal, target, mapper or Identity(), asyncio.Event(),
                             lambda: end, stats, metrics))
    return stats


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    with SqliteJournal(tmp_path / "journal.db") as j:
        yield j


def ev(seq: int, subject: str, deleted: bool = False) -> SinkEvent:
    return SinkEvent(seq, f"{subject}{seq}", "customer.deleted" if deleted else "customer.upserted", subject, b"{}",
                     b"x" * 10)


@pytest.mark.parametrize("data", [{"id": "C1", "data": {"x": 1}, "note": ',"data":'}, None, [1, 2], "text"])
def test_sink_events_parsed_from_cloudevents_keep_the_data_bytes(data: object) -> None:
    ce = {"specversion": "1.0", "id": "e1", "source": "/erp/public/customer", "type": "customer.upserted",
          "subject": 'C,"data":1', "time": "2026-01-01T00:00:00Z", "data": data}
    last = orjson.dumps(ce)
    middle = orjson.dumps({**{k: v for k, v in ce.items() if k != "data"}, "data": data, "extra": "x"})
    for raw in (last, middle):
        e = parse_sink_event(7, raw)
        assert (e.seq, e.id, e.type, e.subject, e.time, e.raw) == (7, "e1", "customer.upserted", 'C,"data":1',
                                                                    "2026-01-01T00:00:00Z", raw)
        assert orjson.loads(e.data_json) == data and (raw is middle or last.endswith(b',"data":' + e.data_json + b"}"))


def test_batches_are_prefixes_with_one_route_and_distinct_keys() -> None:
    from collections import deque

    q = deque([ev(1, "a"), ev(2, "b"), ev(3, "a"), ev(4, "c")])
    assert [e.seq for e in take_batch(q, lambda e: "r", 10, 1000)[1]] == [1, 2]
    assert [e.seq for e in take_batch(q, lambda e: "r", 10, 1000)[1]] == [3, 4]
    q = deque([ev(1, "a"), ev(2, "b", deleted=True), ev(3, "c")])
    route = lambda e: "delete" if e.deleted else "upsert"  # noqa: E731
    assert take_batch(q, route, 10, 1000) == ("upsert", [ev(1, "a")])
    assert take_batch(q, route, 10, 1000, lambda r: 1 if r == "delete" else 10)[1] == [ev(2, "b", True)]
    q = deque([ev(i, f"k{i}") for i in range(10)])
    assert len(take_batch(q, lambda e: "r", 3, 1000)[1]) == 3
    assert len(take_batch(q, lambda e: "r", 10, 25)[1]) == 2  # 10 bytes each: the third would exceed 25
    assert lane_of("C1", 16) == lane_of("C1", 16) and {lane_of(f"C{i}", 4) for i in range(50)} == {0, 1, 2, 3}


def test_lane_progress_is_its_first_unfinished_event() -> None:
    lane = Lane()
    assert lane.done(9) == 9
    lane.queue.extend([ev(5, "a"), ev(7, "b")])
    assert lane.done(9) == 4
    lane.flight = [lane.queue.popleft()]
    lane.finish(lane.flight)
    assert lane.done(9) == 6


def test_everything_is_delivered_in_key_order(journal: SqliteJournal) -> None:
    end = fill(journal, keys=30, rounds=20)
    target = Target()
    stats = deliver(journal, target)
    assert stats.delivered == 600 and stats.cursor == end == journal.cursor("crm")
    assert target.violations == []
    assert all(len(batch) <= 10 for batch in target.sent)
    assert all(versions == sorted(versions) and len(versions) == 20 for versions in target.seen.values())
    assert len(target.seen) == 30


def test_a_lane_waiting_for_a_commit_is_not_held_by_the_group_commit_linger(
        journal: SqliteJournal, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each key's next version waits for the commit of the previous one. With a linger of a minute and
    # nothing cutting it short, 3 keys x 5 versions would take minutes; the deadline catches that.
    monkeypatch.setattr(dispatch, "_COMMIT_LINGER_S", 60.0)
    end = fill(journal, keys=3, rounds=5)
    target, stats = Target(), DispatchStats()

    async def run() -> None:
        async with asyncio.timeout(30):
            await run_dispatch(Settings(), journal, target, Identity(), asyncio.Event(), lambda: end, stats)

    asyncio.run(run())
    assert stats.delivered == 15 and stats.cursor == end
    assert all(versions == sorted(versions) and len(versions) == 5 for versions in target.seen.values())


def test_metrics_count_requests_and_commit_to_ack_latency(journal: SqliteJournal) -> None:
    fill(journal, keys=5, rounds=2)
    metrics = Metrics()
    target = Target()
    deliver(journal, target, metrics=metrics)
    text = metrics.render().decode()
    # Every delivered event observed once, its source commit (2026-01-01) long before "now".
    assert 'cdc_sink_commit_to_ack_seconds_count{connector="crm"} 10.0' in text
    assert 'cdc_sink_commit_to_ack_seconds_bucket{connector="crm",le="3600.0"} 0.0' in text
    requests = [line for line in text.splitlines() if line.startswith("cdc_sink_request_seconds_count")]
    assert requests and sum(float(line.rsplit(" ", 1)[1]) for line in requests) == len(target.sent)


def test_retries_block_only_their_key_lane_and_honour_order(journal: SqliteJournal) -> None:
    fill(journal, keys=8, rounds=10)
    flaky = {"C3", "C5"}

    def script(e: SinkEvent, n: int) -> Outcome:
        if e.subject in flaky and n < 2:
            return Outcome(OutcomeKind.RETRY, 429, "slow down", retry_after=0.01)
        return DELIVERED

    target = Target(script)
    stats = deliver(journal, target)
    assert target.violations == []
    assert stats.delivered == 80 and stats.retried >= 2 * 2 * 10
    assert all(target.attempts[f"C3-{v}-upserted"] == 3 for v in target.seen["C3"])
    assert target.seen["C3"] == sorted(target.seen["C3"]) and len(target.seen["C3"]) == 10


def test_transient_batch_failure_and_breaker(journal: SqliteJournal) -> None:
    end = fill(journal, keys=5, rounds=4)
    target = Target(raise_on=lambda n: Transient("connection reset by peer") if n <= 6 else None)
    stats = deliver(journal, target, Settings(delivery_lanes=1))
    assert stats.delivered == 20 and journal.cursor("crm") == end
    assert stats.requests >= 7 and target.violations == []


def test_rejected_records_are_dead_lettered_and_the_rest_flows(journal: SqliteJournal) -> None:
    end = fill(journal, keys=6, rounds=3)
    bad = {"C2-3-upserted"}  # C2's first version

    def script(e: SinkEvent, n: int) -> Outcome:
        if e.id in bad:
            return Outcome(OutcomeKind.REJECTED, 422, '{"error": "validation_failed", "field": "email"}')
        return DELIVERED

    target = Target(script)
    stats = deliver(journal, target)
    assert stats.delivered == 17 and stats.dead_lettered == 1 and journal.cursor("crm") == end
    reader = journal.reader()
    [letter] = reader.dead_letters(DeadLetterFilter(state=None))
    assert (letter.subject, letter.status, letter.entity, letter.event_id) == ("C2", 422, "customer", "C2-3-upserted")
    assert "validation_failed" in letter.error and letter.attempts == 1
    # C2 got newer versions delivered afterwards: the old entry must not be re-sent over them.
    assert letter.state == "superseded"
    reader.close()


def test_rejection_stops_the_sink_with_tolerance_none(journal: SqliteJournal) -> None:
    fill(journal, keys=3, rounds=2)
    target = Target(lambda e, n: Outcome(OutcomeKind.REJECTED, 400, "INVALID_EMAIL_ADDRESS: bad")
                    if e.subject == "C1" else DELIVERED)
    with pytest.raises(Permanent, match=r"rejected event C1-2-upserted .*business key 'C1'.*errors.tolerance=all"):
        deliver(journal, target, Settings(errors_tolerance="none"))
    assert journal.cursor("crm") < journal.end_seq()


def test_retry_timeout_dead_letters(journal: SqliteJournal) -> None:
    fill(journal, keys=2, rounds=1)
    target = Target(lambda e, n: Outcome(OutcomeKind.RETRY, 503, "maintenance") if e.subject == "C0" else DELIVERED)
    stats = deliver(journal, target, Settings(errors_retry_timeout=30, circuit_breaker_failure_threshold=100))
    [letter] = journal.reader().dead_letters(DeadLetterFilter())
    assert letter.subject == "C0" and letter.status == 503 and letter.error.startswith("gave up after")
    assert stats.delivered == 1 and letter.attempts >= 2


def test_mapping_failures_are_dead_lettered_as_changes(journal: SqliteJournal) -> None:
    end = fill(journal, keys=4, rounds=1)
    stats = deliver(journal, Target(), mapper=Identity(fail_on={2}))
    [letter] = journal.reader().dead_letters(DeadLetterFilter())
    assert (letter.seq, letter.type, letter.subject) == (2, "mapping.failed", '"C1"')
    assert "cannot evaluate journal seq 2" in letter.error
    assert stats.delivered == 3 and journal.cursor("crm") == end


def test_a_crash_resends_only_unfinished_events_and_never_goes_backwards(journal: SqliteJournal) -> None:
    fill(journal, keys=12, rounds=15)
    target = Target(hang_after=25)

    async def crash() -> None:
        target.hanging = asyncio.Event()
        end = journal.end_seq()
        task = asyncio.create_task(run_dispatch(Settings(), journal, target, Identity(), asyncio.Event(),
                                                lambda: end, DispatchStats()))
        await target.hanging.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(crash())
    first = {s: list(v) for s, v in target.seen.items()}
    target.hang_after = None
    deliver(journal, target)
    assert target.violations == []
    resent = sum(len(target.seen[s]) - 15 for s in target.seen)
    assert 0 <= resent <= 12  # at most the one in-flight event per key
    assert all(target.seen[s][: len(first.get(s, []))] == first.get(s, []) for s in target.seen)
    assert all(sorted(set(v)) == list(range(v[0], v[0] + 12 * 15, 12)) for v in target.seen.values())
    assert journal.cursor("crm") == journal.end_seq()


def test_commit_to_ack_ages_count_the_events_of_each_commit_time() -> None:
    def at(time: str) -> SinkEvent:
        return SinkEvent(1, "id", "crm.upserted", "C1", b"{}", b"{}", time)

    now = 1706700001.0  # 2024-01-31T11:20:01Z
    events = [at("2024-01-31T11:20:00.000000Z"), at(""), at("2024-01-31T11:20:00.500000Z"), at("not a time"),
              at("2024-01-31T11:20:00.000000Z"), at("2024-01-31T11:20:02.000000Z")]
    for _ in range(2):  # the second time from the cache of parsed times
        assert _ages(events, now) == [(1.0, 2), (0.5, 1), (0.0, 1)]  # a clock behind the source: 0, not < 0
