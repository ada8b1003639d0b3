"""The embedded SQLite journal, on real files in tmp_path."""

from __future__ import annotations

import gc
import re
import sqlite3
import threading
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from cdc.errors import Permanent, Transient
from cdc.journal import sqlite as journal_sqlite
from cdc.journal.sqlite import JournalReader, SqliteJournal, classify_sqlite_error
from cdc.types import ChangeEvent, JournalRecord, make_journal_record

ALL = re.compile(r".*")


def ev(topic: str, n: int, value: bytes | None = b"") -> ChangeEvent:
    return ChangeEvent(topic, b'{"id":%d}' % n, b'{"n":%d}' % n if value == b"" else value)


def read_all(
    reader: JournalReader, pattern: re.Pattern[str], after: int = 0, limit: int = 1000
) -> list[JournalRecord]:
    out: list[JournalRecord] = []
    while batch := reader.read(pattern, after, limit):
        out.extend(batch)
        after = batch[-1].seq
    return out


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    with SqliteJournal(tmp_path / "data" / "journal.db") as j:
        yield j


def test_empty_journal(journal: SqliteJournal) -> None:
    assert journal.end_seq() == 0
    assert journal.topics() == []
    assert journal.source_offset("pg") is None
    assert journal.path.exists()
    with journal.reader() as r:
        assert r.end_seq() == 0
        assert r.read(ALL, 0, 10) == []
    mode = sqlite3.connect(journal.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_round_trip_topic_filter_and_seq_order(journal: SqliteJournal) -> None:
    tx1 = [ev("erp.m3.customers", 1), ev("erp.m3.orders", 1), ev("erp.m3.customers", 2)]
    tx2 = [ev("erp.m3.order_lines", 1), ev("other.m3.customers", 9), ChangeEvent("erp.m3.orders", None, None)]
    assert journal.append("pg", [tx1[:2], tx1[2:]], {"lsn": 100}) == 3
    assert journal.append("pg", [tx2], {"lsn": 200}) == 6
    assert journal.end_seq() == 6
    assert journal.topics() == [
        "erp.m3.customers", "erp.m3.order_lines", "erp.m3.orders", "other.m3.customers"
    ]

    with journal.reader() as r:
        records = read_all(r, ALL, limit=2)
        assert [rec.seq for rec in records] == [1, 2, 3, 4, 5, 6]
        assert [(rec.topic, rec.key, rec.value) for rec in records] == [
            (e.topic, e.key, e.value) for e in tx1 + tx2
        ]
        # fullmatch, not search: "erp\.m3\.orders" must not match "erp.m3.order_lines"
        orders = r.read(re.compile(r"erp\.m3\.orders"), 0, 100)
        assert [(rec.seq, rec.key, rec.value) for rec in orders] == [
            (2, b'{"id":1}', b'{"n":1}'), (6, None, None)
        ]
        erp = r.read(re.compile(r"erp\..*"), 0, 100)
        assert [rec.seq for rec in erp] == [1, 2, 3, 4, 6]
        assert [rec.seq for rec in r.read(re.compile(r"erp\..*"), 2, 2)] == [3, 4]
        assert r.read(re.compile(r"nothing"), 0, 100) == []
        assert r.read(ALL, 6, 100) == []
        assert r.read(ALL, 0, 0) == []
        assert r.end_seq() == 6


def test_reader_sees_topics_created_after_it_opened(journal: SqliteJournal) -> None:
    journal.append("pg", [[ev("a.s.t1", 1)]], {"lsn": 1})
    pattern = re.compile(r"a\.s\.t2")
    with journal.reader() as r:
        assert r.read(pattern, 0, 10) == []  # polls at the end with a pattern matching nothing yet
        assert r.read(pattern, 0, 10) == []
        journal.append("pg", [[ev("a.s.t1", 2), ev("a.s.t2", 1)]], {"lsn": 2})
        assert [(x.seq, x.topic) for x in r.read(pattern, 0, 10)] == [(3, "a.s.t2")]
        # A rare pattern polled at the end still sees records appended after the previous poll.
        t1 = re.compile(r"a\.s\.t1")
        assert [x.seq for x in r.read(t1, 2, 10)] == []
        journal.append("pg", [[ev("a.s.t2", 2)] * 3, [ev("a.s.t1", 3)]], {"lsn": 3})
        assert [x.seq for x in r.read(t1, 2, 10)] == [7]
        assert [x.seq for x in r.read(ALL, 0, 100)] == list(range(1, 8))


def test_append_without_events_stores_offset_and_returns_end(journal: SqliteJournal) -> None:
    assert journal.append("pg", [], {"lsn": 5}) == 0
    journal.append("pg", [[ev("t", 1)], []], {"lsn": 6})
    assert journal.append("pg", [[]], {"lsn": 7, "txId": 3}) == 1
    assert journal.source_offset("pg") == {"lsn": 7, "txId": 3}


def test_source_offsets(journal: SqliteJournal) -> None:
    journal.set_source_offset("pg", {"lsn": 1, "ts_usec": 2})
    journal.set_source_offset("mysql", {"file": "binlog.000002", "pos": 4})
    assert journal.source_offset("pg") == {"lsn": 1, "ts_usec": 2}
    journal.append("pg", [[ev("t", 1)]], {"lsn": 10})
    assert journal.source_offset("pg") == {"lsn": 10}
    assert journal.source_offset("mysql") == {"file": "binlog.000002", "pos": 4}
    journal.delete_source_offset("pg")
    assert journal.source_offset("pg") is None
    assert journal.source_offset("mysql") is not None


class Boom(Exception):
    pass


def test_failure_inside_events_iterable_writes_nothing(journal: SqliteJournal) -> None:
    journal.append("pg", [[ev("a.s.old", 1)]], {"lsn": 1}, toast=[("a.s.old", b'{"id":1}', "doc", '"v1"')])

    def chunks() -> Iterator[Sequence[ChangeEvent]]:
        yield [ev("a.s.old", 2), ev("a.s.new", 1)]
        yield [ev("a.s.new", 2)] * 100
        raise Boom("spill file unreadable")

    with pytest.raises(Boom):
        journal.append("pg", chunks(), {"lsn": 2}, toast=[("a.s.old", b'{"id":1}', "doc", '"v2"')])
    assert journal.end_seq() == 1
    assert journal.source_offset("pg") == {"lsn": 1}
    assert journal.topics() == ["a.s.old"]
    assert journal.toast_value("a.s.old", b'{"id":1}', "doc") == '"v1"'
    with journal.reader() as r:
        assert [x.seq for x in r.read(ALL, 0, 1000)] == [1]

    # The rolled-back topic is created afresh by the next append (no stale cached id).
    assert journal.append("pg", [[ev("a.s.new", 3)]], {"lsn": 3}) == 2
    assert journal.topics() == ["a.s.new", "a.s.old"]
    with journal.reader() as r:
        assert [(x.seq, x.topic) for x in r.read(re.compile(r"a\.s\.new"), 0, 10)] == [(2, "a.s.new")]


def test_failure_in_toast_rows_rolls_back_events(journal: SqliteJournal) -> None:
    def toast() -> Iterator[tuple[str, bytes, str, str]]:
        yield ("t", b"k", "c", "1")
        raise Boom

    with pytest.raises(Boom):
        journal.append("pg", [[ev("t", 1)]], {"lsn": 1}, toast=toast())
    assert journal.end_seq() == 0
    assert journal.source_offset("pg") is None
    assert journal.toast_value("t", b"k", "c") is None


def test_toast_cache_upsert_and_lookup(journal: SqliteJournal) -> None:
    journal.append("pg", [[ev("erp.s.docs", 1)]], {"lsn": 1}, toast=[
        ("erp.s.docs", b'{"id":1}', "body", '"long text"'),
        ("erp.s.docs", b'{"id":1}', "attrs", '{"a":1}'),
        ("erp.s.docs", b'{"id":2}', "body", '"other"'),
    ])
    assert journal.toast_value("erp.s.docs", b'{"id":1}', "body") == '"long text"'
    assert journal.toast_value("erp.s.docs", b'{"id":1}', "attrs") == '{"a":1}'
    assert journal.toast_value("erp.s.docs", b'{"id":2}', "body") == '"other"'
    journal.append("pg", [], {"lsn": 2}, toast=[("erp.s.docs", b'{"id":1}', "body", '"updated"')])
    assert journal.toast_value("erp.s.docs", b'{"id":1}', "body") == '"updated"'
    assert journal.toast_value("erp.s.docs", b'{"id":3}', "body") is None
    assert journal.toast_value("erp.s.docs", b'{"id":1}', "nope") is None
    assert journal.toast_value("erp.s.unknown", b'{"id":1}', "body") is None
    # TOAST rows may name a topic that has no events yet.
    journal.append("pg", [], {"lsn": 3}, toast=[("erp.s.fresh", b"k", "c", "null")])
    assert journal.toast_value("erp.s.fresh", b"k", "c") == "null"


def test_cursors_durable_monotonic_and_forced(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with SqliteJournal(path) as j:
        j.append("pg", [[ev("t", n) for n in range(10)]], {"lsn": 1})
        assert j.cursor("file-sink") == 0
        with j.reader() as r:
            r.commit_cursor("file-sink", 4)
            assert r.cursor("file-sink") == 4
            r.commit_cursor("file-sink", 2)  # a late, lower commit never moves it back
            assert r.cursor("file-sink") == 4
            r.commit_cursor("file-sink", 7)
            with pytest.raises(ValueError):
                r.commit_cursor("file-sink", 11)  # past the end
            with pytest.raises(ValueError):
                r.commit_cursor("file-sink", -1)
        j.commit_cursor("http-sink", 10)
    with SqliteJournal(path) as j:
        assert j.cursor("file-sink") == 7
        assert j.cursor("http-sink") == 10
        assert j.end_seq() == 10
        assert j.source_offset("pg") == {"lsn": 1}
        j.commit_cursor("http-sink", 3, force=True)  # replay moves it back
        with j.reader() as r:
            assert r.cursor("http-sink") == 3
            r.commit_cursor("file-sink", 0, force=True)
            assert r.cursor("file-sink") == 0
        # seqs continue after reopening
        assert j.append("pg", [[ev("t", 99)]], {"lsn": 2}) == 11


def test_concurrent_reader_while_writer_appends(tmp_path: Path) -> None:
    tx_count, tx_size = 200, 37
    errors: list[BaseException] = []
    with SqliteJournal(tmp_path / "journal.db") as journal:
        reader = journal.reader()

        def write() -> None:
            try:
                for t in range(tx_count):
                    chunk = [ev(f"erp.s.t{(t + i) % 3}", t * tx_size + i) for i in range(tx_size)]
                    journal.append("pg", [chunk], {"lsn": t})
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        seen: list[JournalRecord] = []
        after = 0
        deadline = time.monotonic() + 60
        while len(seen) < tx_count * tx_size and time.monotonic() < deadline and not errors:
            batch = reader.read(ALL, after, 50)
            if batch:
                if len(batch) < 50:  # a short read ends at a transaction boundary: appends are atomic
                    assert batch[-1].seq % tx_size == 0
                seen.extend(batch)
                after = batch[-1].seq
        writer.join()
        reader.close()
        assert not errors
        assert [r.seq for r in seen] == list(range(1, tx_count * tx_size + 1))
        assert [r.key for r in seen] == [b'{"id":%d}' % n for n in range(tx_count * tx_size)]


def runs(path: Path) -> list[tuple[int, int, str, int]]:
    """The packed runs stored in the journal: (first_seq, last_seq, topic, count)."""
    conn = sqlite3.connect(path)
    try:
        return [
            (int(a), int(b), str(t), int(c))
            for a, b, t, c in conn.execute(
                "SELECT first_seq, last_seq, name, count FROM events JOIN topics ON topics.id = topic_id "
                "ORDER BY first_seq"
            )
        ]
    finally:
        conn.close()


def test_runs_are_split_at_topic_changes_and_sizes(journal: SqliteJournal) -> None:
    # One append: a, a | a, b, a (chunk boundaries do not end a run; topic changes do).
    journal.append("pg", [[ev("s.a", 1), ev("s.a", 2)], [ev("s.a", 3), ev("s.b", 1), ev("s.a", 4)]], {"lsn": 1})
    # The next append starts a new run even for the same topic.
    journal.append("pg", [[ev("s.a", 5)]], {"lsn": 2})
    assert runs(journal.path) == [(1, 3, "s.a", 3), (4, 4, "s.b", 1), (5, 5, "s.a", 1), (6, 6, "s.a", 1)]
    # A long run of one topic is cut every _RUN_EVENTS events.
    n = journal_sqlite._RUN_EVENTS
    assert journal.append("pg", [[ev("s.c", i) for i in range(2 * n + 7)]], {"lsn": 3}) == 6 + 2 * n + 7
    assert runs(journal.path)[4:] == [
        (7, 6 + n, "s.c", n), (7 + n, 6 + 2 * n, "s.c", n), (7 + 2 * n, 6 + 2 * n + 7, "s.c", 7)
    ]
    with journal.reader() as r:
        got = read_all(r, ALL, limit=97)
    assert [x.seq for x in got] == list(range(1, 6 + 2 * n + 8))
    assert [x.key for x in got[6:]] == [b'{"id":%d}' % i for i in range(2 * n + 7)]


def test_runs_are_split_by_bytes(journal: SqliteJournal) -> None:
    limit = journal_sqlite._RUN_BYTES
    big = [ChangeEvent("s.big", b"%d" % i, bytes([65 + i]) * (limit // 4 - 8)) for i in range(7)]
    huge = ChangeEvent("s.big", None, b"h" * (limit * 2))  # larger than a run: a run of its own
    tomb = ChangeEvent("s.big", b"t", None)
    assert journal.append("pg", [big, [huge, tomb, tomb]], {"lsn": 1}) == 10
    stored = runs(journal.path)
    assert [(a, b, c) for a, b, _, c in stored] == [(1, 4, 4), (5, 7, 3), (8, 8, 1), (9, 10, 2)]
    with journal.reader() as r:
        got = read_all(r, ALL, limit=4)
    assert [(x.seq, x.key, x.value) for x in got] == [
        (i + 1, e.key, e.value) for i, e in enumerate([*big, huge, tomb, tomb])
    ]


def stored(path: Path) -> list[bytes]:
    conn = sqlite3.connect(path)
    try:
        return [bytes(d) for (d,) in conn.execute("SELECT data FROM events ORDER BY first_seq")]
    finally:
        conn.close()


def test_long_runs_are_stored_compressed_short_ones_plain(journal: SqliteJournal) -> None:
    envelope = b'{"before":null,"after":{"id":%d,"note":"same words again"},"source":{"db":"erp"},"op":"c"}'
    big = [ChangeEvent("s.a", b'{"id":%d}' % i, envelope % i) for i in range(200)]
    journal.append("pg", [big], {"lsn": 1})
    journal.append("pg", [[ev("s.a", 7)], [ev("s.b", 8)]], {"lsn": 2})  # two runs of one short event
    data = stored(journal.path)
    assert len(data) == 3
    plain = sum(len(e.key or b"") + len(e.value or b"") for e in big)
    assert data[0][0] & journal_sqlite._COMPRESSED and len(data[0]) < plain / 4
    assert not data[1][0] & journal_sqlite._COMPRESSED and not data[2][0] & journal_sqlite._COMPRESSED
    with journal.reader() as r:
        got = read_all(r, ALL, limit=64)
        assert [(x.key, x.value) for x in got] == [(e.key, e.value) for e in [*big, ev("s.a", 7), ev("s.b", 8)]]
        assert [x.value for x in r.read(ALL, 150, 3)] == [envelope % i for i in (150, 151, 152)]


def test_runs_written_uncompressed_read_back(journal: SqliteJournal) -> None:
    # A journal written before compression existed holds long runs plain: stored as they are, read as
    # they are.
    events = [ev("s.a", i, b"x" * 3000) for i in range(3)]
    journal.append("pg", [events], {"lsn": 1})
    data = stored(journal.path)[0]
    plain = journal_sqlite._plain(data)
    assert plain != data
    conn = sqlite3.connect(journal.path)
    conn.execute("UPDATE events SET data = ?", (plain,))
    conn.commit()
    conn.close()
    with journal.reader() as r:
        assert [(x.key, x.value) for x in r.read(ALL, 0, 10)] == [(e.key, e.value) for e in events]


def test_a_corrupt_compressed_run_is_permanent(journal: SqliteJournal) -> None:
    journal.append("pg", [[ev("s.a", i, b"y" * 2000) for i in range(3)]], {"lsn": 1})
    conn = sqlite3.connect(journal.path)
    conn.execute("UPDATE events SET data = ?", (bytes([journal_sqlite._COMPRESSED]) + b"\xff" * 40,))
    conn.commit()
    conn.close()
    with journal.reader() as r, pytest.raises(Permanent, match="stored run is corrupt"):
        r.read(ALL, 0, 10)


def test_read_values_matches_read(journal: SqliteJournal) -> None:
    # Runs of one and of many events, compressed and plain, keys and values None, several topics.
    long = b'{"after":{"note":"%d words words words words words words words words words"}}'
    journal.append("pg", [[ev("s.a", i, long % i) for i in range(40)], [ev("s.b", 1)],
                          [ChangeEvent("s.a", b"k", None), ChangeEvent("s.a", None, b"v"), ev("s.a", 99, b"")]],
                   {"lsn": 1})
    journal.append("pg", [[ev("s.b", 2), ev("s.a", 100), ChangeEvent("s.a", b"t", None)]], {"lsn": 2})
    end = journal.end_seq()
    with journal.reader() as r, journal.reader() as rv:
        for pattern in (ALL, re.compile(r"s\.a"), re.compile(r"s\.b"), re.compile(r"none")):
            for after in range(end + 1):
                for limit in (1, 2, 7, 100):
                    records = r.read(pattern, after, limit)
                    last = records[-1].seq if records else after
                    expected = (last, len(records), [x.value for x in records if x.value is not None])
                    assert rv.read_values(pattern, after, limit) == expected, (pattern, after, limit)


def test_none_and_empty_keys_and_values_round_trip(journal: SqliteJournal) -> None:
    t = "s.t"
    events = [
        # all keys None (a table without a primary key), then mixed, then all values None
        [ChangeEvent(t, None, b'{"a":1}'), ChangeEvent(t, None, b""), ChangeEvent(t, None, None)],
        [ChangeEvent("s.u", b"", b""), ChangeEvent("s.u", b"k", None), ChangeEvent("s.u", None, b"v")],
        [ChangeEvent("s.v", b"k1", None), ChangeEvent("s.v", b"k2", None)],
        [ChangeEvent("s.w", b"", None), ChangeEvent("s.w", None, b""), ChangeEvent("s.w", b"\x00\xff", b"\x00")],
        # runs of one event (alternating topics)
        [ChangeEvent("s.x", None, b""), ChangeEvent("s.y", b"", None), ChangeEvent("s.x", None, None)],
        [ChangeEvent("s.y", b"k", b"v"), ChangeEvent("s.x", b"", b"")],
    ]
    assert journal.append("pg", events, {"lsn": 1}) == 16
    expected = [(e.topic, e.key, e.value) for chunk in events for e in chunk]
    with journal.reader() as r:
        got = r.read(ALL, 0, 100)
        assert [(x.topic, x.key, x.value) for x in got] == expected
        assert [x.seq for x in got] == list(range(1, 17))
        # b"" stays bytes, None stays None (not b"" nor the other way round)
        assert [type(x.key).__name__ for x in got[:6]] == ["NoneType"] * 3 + ["bytes", "bytes", "NoneType"]
        # every slice of every run, starting inside runs and stopping inside runs
        for after in range(17):
            for limit in (1, 2, 3, 5):
                part = r.read(ALL, after, limit)
                assert [(x.topic, x.key, x.value) for x in part] == expected[after: after + limit]
                assert [x.seq for x in part] == list(range(after + 1, min(after + limit, 16) + 1))
    assert [c for _, _, _, c in runs(journal.path)][-5:] == [1, 1, 1, 1, 1]


def test_cursor_inside_a_packed_run(journal: SqliteJournal) -> None:
    journal.append("pg", [[ev("s.a", i) for i in range(10)] + [ev("s.b", i) for i in range(10, 20)]], {"lsn": 1})
    assert [c for _, _, _, c in runs(journal.path)] == [10, 10]
    with journal.reader() as r:
        assert [x.seq for x in r.read(ALL, 4, 3)] == [5, 6, 7]
        assert [x.key for x in r.read(ALL, 4, 3)] == [b'{"id":4}', b'{"id":5}', b'{"id":6}']
        # a cursor on a run's last seq, on its first seq, at the end of the journal
        assert [x.seq for x in r.read(ALL, 10, 2)] == [11, 12]
        assert [x.seq for x in r.read(ALL, 11, 2)] == [12, 13]
        assert [x.seq for x in r.read(ALL, 19, 5)] == [20]
        assert r.read(ALL, 20, 5) == []
        # a topic filter with the cursor inside another topic's run, and inside its own
        b = re.compile(r"s\.b")
        assert [x.seq for x in r.read(b, 3, 2)] == [11, 12]
        assert [x.seq for x in r.read(b, 15, 100)] == [16, 17, 18, 19, 20]
        assert r.read(re.compile(r"s\.a"), 9, 100) == [JournalRecord(10, "s.a", b'{"id":9}', b'{"n":9}')]
        assert r.read(re.compile(r"s\.a"), 10, 100) == []


def test_a_limit_splits_a_run_across_reads(journal: SqliteJournal) -> None:
    journal.append("pg", [[ev("s.a", i) for i in range(10)]], {"lsn": 1})
    journal.append("pg", [[ev("s.a", i) for i in range(10, 13)]], {"lsn": 2})
    with journal.reader() as r:
        first = r.read(ALL, 0, 4)
        assert [x.seq for x in first] == [1, 2, 3, 4]
        second = r.read(ALL, first[-1].seq, 4)
        assert [x.seq for x in second] == [5, 6, 7, 8]
        third = r.read(ALL, second[-1].seq, 4)  # the rest of one run and the start of the next
        assert [x.seq for x in third] == [9, 10, 11, 12]
        assert [x.key for x in third] == [b'{"id":%d}' % i for i in (8, 9, 10, 11)]
        assert [x.seq for x in r.read(ALL, 12, 4)] == [13]
        # A short read remembers how far it looked, also when it stopped inside a run.
        assert r.read(re.compile("nothing"), 0, 10) == []
        journal.append("pg", [[ev("s.a", 13), ev("nothing", 0)]], {"lsn": 3})
        assert [(x.seq, x.topic) for x in r.read(re.compile("nothing"), 0, 10)] == [(15, "nothing")]


def test_records_are_genuine_journal_records(journal: SqliteJournal) -> None:
    journal.append("pg", [[ev("s.a", 1), ChangeEvent("s.a", None, None)]], {"lsn": 1})
    with journal.reader() as r:
        got = r.read(ALL, 0, 10)
    assert [type(x) for x in got] == [JournalRecord, JournalRecord]
    assert got == [JournalRecord(1, "s.a", b'{"id":1}', b'{"n":1}'), JournalRecord(2, "s.a", None, None)]
    assert hash(got[1]) == hash(JournalRecord(2, "s.a", None, None))
    assert repr(got[1]) == "JournalRecord(seq=2, topic='s.a', key=None, value=None)"
    with pytest.raises(AttributeError):
        got[0].seq = 5  # type: ignore[misc]
    made = make_journal_record(2, "s.a", None, None)
    assert type(made) is JournalRecord and made == got[1]


def test_locked_database_is_transient(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with SqliteJournal(path, busy_timeout=0.05) as journal:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        try:
            with pytest.raises(Transient) as info:
                journal.append("pg", [[ev("t", 1)]], {"lsn": 1})
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
            assert "locked" in str(info.value)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert journal.append("pg", [[ev("t", 1)]], {"lsn": 1}) == 1


def test_error_classification() -> None:
    for message in ("database is locked", "disk I/O error", "database or disk is full"):
        assert isinstance(classify_sqlite_error(sqlite3.OperationalError(message)), Transient)
    err = classify_sqlite_error(sqlite3.OperationalError("no such table: events"))
    assert isinstance(err, Permanent)
    assert isinstance(err.__cause__, sqlite3.OperationalError)
    assert isinstance(classify_sqlite_error(sqlite3.DatabaseError("file is not a database")), Permanent)


def test_newer_schema_version_is_permanent(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    SqliteJournal(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(Permanent, match="schema version 99"):
        SqliteJournal(path)


def test_older_schema_version_is_refused_with_advice(tmp_path: Path) -> None:
    # A journal of the first layout (one row per event): refused, not migrated.
    path = tmp_path / "journal.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO meta VALUES ('schema_version', '1'), ('end_seq', '1');"
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, key BLOB, value BLOB);"
            "INSERT INTO events VALUES (1, 1, x'6b', x'76');"
        )
    conn.close()
    with pytest.raises(Permanent, match="schema version 1") as info:
        SqliteJournal(path)
    assert str(path) in str(info.value)
    assert "move" in str(info.value)
    # Nothing was changed in the file.
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'topics'").fetchone() is None
    finally:
        conn.close()


def test_not_a_database_is_permanent(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(Permanent):
        SqliteJournal(path)


def _peak_rss_reset() -> int | None:
    """Reset the kernel's peak-RSS counter (VmHWM); return the current RSS in KiB, or None if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _proc_status("VmRSS")
    except OSError:
        return None


def _proc_status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


@pytest.mark.slow
def test_million_event_transaction_in_bounded_memory(journal: SqliteJournal) -> None:
    """A 1,000,000-event transaction streams through: peak memory stays far below the data's size.

    Measured as the growth of the process's peak RSS (which also sees SQLite's own allocations) where
    the kernel lets us reset the peak, else as tracemalloc's peak of Python allocations (slower).
    """
    total, chunk_size = 1_000_000, 2_000
    padding = b"x" * 80
    produced = 0

    def chunks() -> Iterator[list[ChangeEvent]]:  # like reading a spill file: one chunk at a time
        nonlocal produced
        for start in range(0, total, chunk_size):
            produced += chunk_size
            yield [
                ChangeEvent("erp.s.big", b'{"id":%d}' % n, b'{"id":%d,"p":"%s"}' % (n, padding))
                for n in range(start, start + chunk_size)
            ]

    gc.collect()
    rss_before = _peak_rss_reset()
    if rss_before is None:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        last = journal.append("pg", chunks(), {"lsn": 42})
        if rss_before is None:
            peak_kib = tracemalloc.get_traced_memory()[1] // 1024
            how = "Python allocations (tracemalloc)"
    finally:
        if rss_before is None:
            tracemalloc.stop()
    elapsed = time.perf_counter() - started
    if rss_before is not None:
        peak_kib = _proc_status("VmHWM") - rss_before
        how = "peak RSS growth"
    print(f"\n1M-event append: {elapsed:.2f}s, {how}: {peak_kib / 1024:.1f} MiB")
    assert produced == total
    assert last == total
    # The events alone are ~120 MB (~250 MB as Python objects); SQLite's page cache is capped at 16 MiB.
    assert peak_kib < 48 * 1024
    assert journal.source_offset("pg") == {"lsn": 42}
    with journal.reader() as r:
        tail = r.read(ALL, total - 2, 10)
        assert [(x.seq, x.key) for x in tail] == [(total - 1, b'{"id":999998}'), (total, b'{"id":999999}')]
