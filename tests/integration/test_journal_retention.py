"""Journal retention on real SQLite files: only records older than their source's retention (by time or by
size) AND delivered by every sink are removed; sinks that never ran or were left out pin the journal;
removal is batched and the freed space is reused. Time is a test clock given to the journal and `now_ms`
given to `prune`: nothing sleeps."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdc.config import FileStreamSinkConfig, PostgresSourceConfig, load_connectors
from cdc.errors import ConfigError
from cdc.journal.retention import (
    PruneResult,
    RetentionPolicy,
    age_upto,
    delivered_upto,
    owner,
    plan,
    policies_of,
    retention_loop,
    sink_topics,
    size_upto,
)
from cdc.journal.sqlite import JournalReader, SqliteJournal
from cdc.types import ChangeEvent

ALL = re.compile(".*", re.DOTALL)
HOUR = 3600 * 1000
DAY = 24 * HOUR
T0 = 1_700_000_000_000
ERP_A, ERP_B, SHOP = "erp.public.a", "erp.public.b", "shop.shop.items"


class Clock:
    """The journal's clock: epoch ms that a test moves forward."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def ev(topic: str, n: int, size: int = 40) -> ChangeEvent:
    return ChangeEvent(topic, b'{"id":%d}' % n, b'{"n":%d,"pad":"%s"}' % (n, b"x" * size))


def pragma(path: Path, name: str) -> Any:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def seqs(path: Path, topics: re.Pattern[str] = ALL) -> list[int]:
    with JournalReader(path) as r:
        return [rec.seq for rec in r.read(topics, 0, 100_000)]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path(tmp_path: Path, clock: Clock) -> Iterator[Path]:
    """seq 1-10: erp, topics a/b alternating (runs of one event), at T0; seq 11-15: shop, one run, at
    T0 + 1 h; seq 16-25: erp again at T0 + 2 h."""
    p = tmp_path / "journal.db"
    with SqliteJournal(p, clock=clock) as j:
        j.append("erp", [[ev(ERP_A if n % 2 else ERP_B, n) for n in range(1, 11)]], {"lsn": 10})
        clock.now = T0 + HOUR
        j.append("shop", [[ev(SHOP, n) for n in range(11, 16)]], {"file": "b.000001", "pos": 15})
        clock.now = T0 + 2 * HOUR
        j.append("erp", [[ev(ERP_A if n % 2 else ERP_B, n) for n in range(16, 26)]], {"lsn": 25})
    yield p


POLICIES = {"erp": RetentionPolicy("erp", DAY), "shop": RetentionPolicy("shop", DAY)}
SINKS = {"all": re.compile(".*"), "erp-only": re.compile(r"erp\..*"), "shop-only": re.compile(r"shop\..*")}
# One day after the last append, plus a second: every append's records are older than a day.
LATER = T0 + 2 * HOUR + DAY + 1000


def prune(path: Path, policies: dict[str, RetentionPolicy] = POLICIES,
          sinks: dict[str, re.Pattern[str]] = SINKS, now: int = LATER, batch_runs: int = 256) -> PruneResult:
    with SqliteJournal(path) as j:
        return j.prune(policies, sinks, now, batch_runs=batch_runs)


def commit(path: Path, **cursors: int) -> None:
    with JournalReader(path) as r:
        for name, seq in cursors.items():
            r.commit_cursor(name.replace("_", "-"), seq)


def test_only_records_older_and_delivered_by_every_sink_go(path: Path) -> None:
    commit(path, all=20, erp_only=5, shop_only=15)
    result = prune(path)
    # erp: old up to 15 (the last append's records are the newest time-index row's: never judged old
    # before a later append), but erp-only has done only 5. shop: old and delivered by all and shop-only.
    assert seqs(path) == list(range(6, 11)) + list(range(16, 26))
    assert (result.records, result.runs, result.oldest) == (10, 6, 6)
    assert result.pinned == {"erp-only": 5}
    with JournalReader(path) as r:
        assert (r.removed_upto(re.compile(r"erp\..*")), r.removed_upto(re.compile(r"shop\..*"))) == (5, 15)
        assert r.removed_upto() == 15

    commit(path, erp_only=25)
    assert prune(path).records == 5
    assert seqs(path) == list(range(16, 26))
    # The last append's records wait for a later append (its time-index row), however old they are: like
    # Kafka's active segment.
    assert prune(path, now=LATER + DAY).records == 0


def test_time_retention_counts_from_when_records_were_journaled(path: Path) -> None:
    commit(path, all=25, erp_only=25, shop_only=25)
    assert prune(path, now=T0 + DAY).records == 0  # nothing is a day old yet
    # A day and a second after the first append: records journaled before T0 + 1 h are at most a day old
    # at T0 + 1 h + 1 day -- only then does the first append become removable.
    assert prune(path, now=T0 + HOUR + DAY).records == 0
    assert prune(path, now=T0 + HOUR + DAY + 1).records == 10
    assert seqs(path) == list(range(11, 26))
    # Sources keep their own retention: shop for ever.
    assert prune(path, policies={"erp": POLICIES["erp"], "shop": RetentionPolicy("shop", -1)}).records == 0
    assert prune(path).records == 5
    assert seqs(path) == list(range(16, 26))


def test_a_sink_that_never_ran_pins_the_journal(path: Path) -> None:
    commit(path, all=25, erp_only=25, shop_only=25)
    result = prune(path, sinks={**SINKS, "new": re.compile(r"shop\..*")})
    assert result.pinned == {"new": 0}
    assert seqs(path) == list(range(11, 26))  # erp's go; shop's wait for `new`


def test_a_cursor_of_a_sink_not_configured_pins_every_topic_until_deleted(path: Path) -> None:
    commit(path, all=25, erp_only=25, shop_only=25, gone=3)
    result = prune(path)
    assert result.pinned == {"gone": 3}
    assert seqs(path) == list(range(4, 26))
    with SqliteJournal(path) as j:
        assert j.delete_cursor("gone") and not j.delete_cursor("gone")
    prune(path)
    assert seqs(path) == list(range(16, 26))


def test_records_no_sink_reads_go_by_retention_alone(path: Path) -> None:
    commit(path, erp_only=2)
    prune(path, sinks={"erp-only": SINKS["erp-only"]})
    assert seqs(path) == list(range(3, 11)) + list(range(16, 26))


def test_size_retention_keeps_the_newest_bytes_of_each_source(path: Path) -> None:
    commit(path, all=25, erp_only=25, shop_only=25)
    with sqlite3.connect(path) as conn:
        erp_runs = conn.execute("SELECT t.name, e.last_seq, length(e.data) FROM events e JOIN topics t ON "
                                "t.id = e.topic_id ORDER BY e.first_seq DESC").fetchall()
    conn.close()
    sizes = [(last, n) for name, last, n in erp_runs if name.startswith("erp.")]
    limit = sum(n for _, n in sizes[:7]) - 1  # the newest 7 runs hold the limit, the 8th is already beyond
    policies = {"erp": RetentionPolicy("erp", -1, limit), "shop": RetentionPolicy("shop", -1, -1)}
    result = prune(path, policies=policies, now=T0)  # time plays no part
    kept = seqs(path, re.compile(r"erp\..*"))
    assert kept == list(range(19, 26))
    assert result.records == 13
    assert seqs(path, re.compile(r"shop\..*")) == list(range(11, 16))
    assert prune(path, policies=policies, now=T0).records == 0  # steady: the newest `limit` bytes stay
    # Size or time, whichever lets more go -- and still only what every sink delivered.
    size_or_time = {"erp": RetentionPolicy("erp", DAY, 0)}
    assert prune(path, policies=size_or_time, sinks={**SINKS, "new": SINKS["erp-only"]}).records == 0
    assert prune(path, policies=size_or_time).records == 7
    assert seqs(path, re.compile(r"erp\..*")) == []


def test_policy_that_keeps_everything_and_topics_no_source_owns(path: Path) -> None:
    commit(path, all=25, erp_only=25, shop_only=25)
    assert prune(path, policies={"erp": RetentionPolicy("erp", -1, -1)}).records == 0
    assert prune(path, policies={}).records == 0
    assert seqs(path) == list(range(1, 26))


def test_deletes_in_batches_and_reuses_the_space(tmp_path: Path, clock: Clock) -> None:
    p = tmp_path / "journal.db"
    with SqliteJournal(p, clock=clock) as j:
        for n in range(40):  # 40 appends of 4 runs of ~30 KiB (overflow pages), a second apart
            j.append("erp", [[ev(f"erp.s.t{k}", n * 4 + k, 30_000) for k in range(4)]], {"lsn": n})
            clock.now += 1000
        pages = pragma(p, "page_count")
        j.commit_cursor("sink", j.end_seq())
        result = j.prune({"erp": RetentionPolicy("erp", 0)}, {"sink": ALL}, clock.now, batch_runs=3)
        # Everything but the last append's records (the newest time-index row's: not judged old yet).
        assert (result.runs, result.oldest) == (156, 157)
        assert result.free_bytes > 156 * 30_000
        for n in range(40, 79):  # as much again: it fits in the freed pages
            j.append("erp", [[ev(f"erp.s.t{k}", n * 4 + k, 30_000) for k in range(4)]], {"lsn": n})
            clock.now += 1000
        assert pragma(p, "page_count") <= pages + 2
    assert pragma(p, "integrity_check") == "ok"
    assert seqs(p) == list(range(157, 317))
    with sqlite3.connect(p) as conn:  # the time index keeps only rows that describe records left
        marks = conn.execute("SELECT first_seq FROM journaled_at ORDER BY first_seq").fetchall()
    conn.close()
    assert marks[0] == (157,) and len(marks) == 40


def test_time_index_has_a_row_a_second_at_most(tmp_path: Path, clock: Clock) -> None:
    p = tmp_path / "journal.db"
    with SqliteJournal(p, clock=clock) as j:
        for n in range(1, 6):
            j.append("erp", [[ev(ERP_A, n)]], {"lsn": n})
            clock.now += 400
        j.append("erp", [], {"lsn": 6})  # no events: no row
        clock.now -= 10_000  # the clock went back: a row at once, so no record looks older than it is
        j.append("erp", [[ev(ERP_A, 6)]], {"lsn": 7})
    with sqlite3.connect(p) as conn:
        rows = conn.execute("SELECT first_seq, at_ms FROM journaled_at ORDER BY first_seq").fetchall()
    conn.close()
    assert rows == [(1, T0), (4, T0 + 1200), (6, T0 + 2000 - 10_000)]
    with JournalReader(p) as r:
        assert [r.journaled_at(s) for s in (1, 3, 4, 5, 6)] == [T0, T0, T0 + 1200, T0 + 1200, T0 - 8000]


def test_journal_from_before_retention_gets_its_records_stamped_when_opened(tmp_path: Path, clock: Clock) -> None:
    p = tmp_path / "journal.db"
    with SqliteJournal(p, clock=clock) as j:
        j.append("erp", [[ev(ERP_A, 1), ev(ERP_B, 2)]], {"lsn": 2})
    with sqlite3.connect(p) as conn:  # what a bridge without retention left behind
        conn.execute("DROP TABLE journaled_at")
        conn.execute("DROP TABLE pruned")
    conn.close()
    with JournalReader(p) as r:
        assert (r.journaled_at(1), r.removed_upto()) == (None, 0)
    clock.now = T0 + DAY
    SqliteJournal(p, clock=clock).close()
    with JournalReader(p) as r:
        assert r.journaled_at(2) == T0 + DAY


def test_pure_decisions() -> None:
    policies = {"erp": RetentionPolicy("erp", 1), "erp-x": RetentionPolicy("erp.x", 1)}
    assert [owner(t, policies) for t in ("erp.a.b", "erp.x.c", "erp", "erpx.a.b")] == ["erp", "erp-x", "erp", None]
    # A time index whose clock went back is not trusted past that point.
    assert age_upto([(1, 100), (5, 150), (9, 200), (12, 50)], 190) == 4
    assert age_upto([(1, 100)], 100) == 0
    assert size_upto([(9, "a", 10), (8, "b", 10), (7, "a", 10), (5, "a", 10)], {"a": 15, "b": 0}) == {"a": 5, "b": 8}
    assert size_upto([(9, "a", 10)], {"a": 100}) == {"a": 0}
    sinks = {"s1": re.compile("erp.*"), "s2": re.compile("shop.*")}
    assert delivered_upto("erp.a.b", {"s1": 7, "s2": 1}, sinks) == (7, "s1")
    assert delivered_upto("erp.a.b", {"s2": 1}, sinks) == (0, "s1")
    assert delivered_upto("erp.a.b", {"s1": 7, "old": 3}, sinks) == (3, "old")
    assert delivered_upto("other", {}, sinks) == (None, None)
    cuts, pinned = plan({1: "erp.a.b", 2: "erp.x.c", 3: "nobody"}, policies, {"erp": 10, "erp-x": 10}, {"erp": 12},
                        {"s1": 8}, {"s1": re.compile("erp.*")}, {2: 10})
    assert [(c.topic, c.upto) for c in cuts] == [("erp.a.b", 8)]
    assert pinned == {"s1": 8}


def test_retention_loop_prunes_at_once_then_every_interval(path: Path) -> None:
    commit(path, all=25, erp_only=25, shop_only=25)
    results: list[PruneResult] = []

    async def main() -> None:
        done = asyncio.Event()

        def seen(result: PruneResult) -> None:
            results.append(result)
            done.set()

        # Retention of 0 ms against the real clock: everything but the last append's records is old.
        policies = {"erp": RetentionPolicy("erp", 0), "shop": RetentionPolicy("shop", 0)}
        task = asyncio.create_task(retention_loop(path, lambda: (policies, SINKS), 3600, seen))
        await done.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert [r.records for r in results] == [15]
    assert seqs(path) == list(range(16, 26))
    # A round in which every source keeps everything removes nothing.
    commit(path, all=5, erp_only=5, shop_only=5)

    async def keep_all() -> None:
        rounds = 0

        def connectors() -> tuple[dict[str, RetentionPolicy], dict[str, re.Pattern[str]]]:
            nonlocal rounds
            rounds += 1
            if rounds == 2:
                task.cancel()
            return {"erp": RetentionPolicy("erp", -1, -1)}, SINKS

        task = asyncio.create_task(retention_loop(path, connectors, 0, results.append))
        with pytest.raises(asyncio.CancelledError):
            await task

    before = seqs(path)
    asyncio.run(keep_all())
    assert seqs(path) == before and len(results) == 1


def test_retention_properties_on_source_connectors(tmp_path: Path) -> None:
    base = {"connector.class": "PostgresConnector", "database.hostname": "db", "database.user": "u",
            "database.dbname": "erp", "topic.prefix": "erp"}
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"name": "erp", "config": base}))
    [cfg] = load_connectors([good])
    assert isinstance(cfg, PostgresSourceConfig)
    assert (cfg.journal_retention_ms, cfg.journal_retention_bytes) == (604_800_000, -1)
    sink = {"name": "f", "config": {"connector.class": "FileStreamSink", "file": str(tmp_path / "o"), "topics": "x"}}
    good.write_text(json.dumps([{"name": "erp", "config": {**base, "journal.retention.ms": "-1",
                                                           "journal.retention.bytes": 1 << 30}}, sink]))
    source, file_sink = load_connectors([good])
    assert isinstance(source, PostgresSourceConfig) and isinstance(file_sink, FileStreamSinkConfig)
    assert policies_of([source]) == {"erp": RetentionPolicy("erp", -1, 1 << 30)}
    assert sink_topics([file_sink]) == {"f": file_sink.topic_pattern()}
    bad.write_text(json.dumps({"name": "erp", "config": {**base, "journal.retention.ms": "-2",
                                                         "journal.retention.bytes": "lots"}}))
    with pytest.raises(ConfigError) as info:
        load_connectors([bad])
    text = str(info.value)
    assert "'journal.retention.ms'" in text and "at least -1" in text
    assert "'journal.retention.bytes'" in text and "not an integer" in text
