"""Positions for `cdc replay` / `cdc offsets`: parsing, and finding them in a real SQLite journal filled with
Debezium-shaped envelopes (PostgreSQL and MySQL/MariaDB `source` blocks, tombstones, interleaved topics)."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest

from cdc.journal.positions import (
    GtidSet,
    Position,
    PositionNotFound,
    describe,
    find_start,
    parse_position,
    record_source,
)
from cdc.journal.sqlite import JournalReader, SqliteJournal
from cdc.types import ChangeEvent

UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"


def pg_event(topic: str, tx: int, prev: int | None, lsn: int, ts_ms: int, row: int, op: str = "c",
             name: str = "erp") -> ChangeEvent:
    """A PostgreSQL change event as the reader writes it (Debezium envelope, schemas disabled)."""
    sequence = f'[{"null" if prev is None else f"{chr(34)}{prev}{chr(34)}"},"{lsn}"]'
    source = {"version": "0.1", "connector": "postgresql", "name": name, "ts_ms": ts_ms, "snapshot": "false",
              "db": "erp", "sequence": sequence, "ts_us": ts_ms * 1000, "schema": "public",
              "table": topic.rsplit(".", 1)[-1], "txId": tx, "lsn": lsn, "xmin": None}
    after = None if op == "d" else {"id": row, "source": "not the envelope's", "lsn": 1}
    before = {"id": row} if op == "d" else None
    value = {"before": before, "after": after, "source": source, "transaction": None, "op": op,
             "ts_ms": 1_900_000_000_000}
    return ChangeEvent(topic, orjson.dumps({"id": row}), orjson.dumps(value))


def my_event(topic: str, file: str, pos: int, row: int, gtid: str | None, ts_ms: int,
             connector: str = "mysql") -> ChangeEvent:
    source = {"version": "0.1", "connector": connector, "name": "shop", "ts_ms": ts_ms, "snapshot": "false",
              "db": "shop", "table": topic.rsplit(".", 1)[-1], "server_id": 1, "gtid": gtid, "file": file,
              "pos": pos, "row": row, "thread": None}
    value = {"before": None, "after": {"id": pos * 10 + row}, "source": source, "transaction": None, "op": "c",
             "ts_ms": 1_900_000_000_000}
    return ChangeEvent(topic, orjson.dumps({"id": pos * 10 + row}), orjson.dumps(value))


def pg_journal(path: Path) -> None:
    """Three PostgreSQL transactions in commit order, the last one started first (its first change has
    a lower LSN than the middle one's), a delete with its tombstone, and a MySQL source's transaction."""
    with SqliteJournal(path) as j:
        # seq 1, 2: tx 700, LSNs 100, 110, committed at 120 (t = 1000)
        j.append("erp", [[pg_event("erp.public.customer", 700, None, 100, 1000, 1),
                          pg_event("erp.public.orders", 700, None, 110, 1000, 2)]], {"lsn": 120})
        # seq 3, 4, 5: tx 702, LSNs 150 and a delete at 160 + its tombstone, committed at 170 (t = 2000)
        delete = pg_event("erp.public.customer", 702, 120, 160, 2000, 1, op="d")
        j.append("erp", [[pg_event("erp.public.customer", 702, 120, 150, 2000, 3), delete,
                          ChangeEvent(delete.topic, delete.key, None)]], {"lsn": 170})
        # seq 6: another source's transaction between them
        j.append("shop", [[my_event("shop.shop.items", "mysql-bin.000003", 400, 0, f"{UUID}:9", 2500)]],
                 {"file": "mysql-bin.000003", "pos": 500})
        # seq 7, 8: tx 701 started before 702 (change at LSN 105) but committed last, at 190 (t = 3000)
        j.append("erp", [[pg_event("erp.public.orders", 701, 170, 105, 3000, 4),
                          pg_event("erp.public.orders", 701, 170, 180, 3000, 5)]], {"lsn": 190})


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[JournalReader]:
    path = tmp_path / "journal.db"
    pg_journal(path)
    with JournalReader(path) as r:
        yield r


def start(reader: JournalReader, text: str, topics: str | None = None) -> int:
    return find_start(reader, parse_position(text), re.compile(topics) if topics else None)


# -- parsing ----------------------------------------------------------------------------------------

def test_parse_each_kind() -> None:
    assert parse_position("earliest") == Position("earliest", "earliest")
    assert parse_position(" LATEST ").kind == "latest"
    assert parse_position("journal:42").seq == 42
    assert parse_position("lsn:0/16B3748").lsn == 0x16B3748
    assert parse_position("lsn:1/0").lsn == 1 << 32
    assert parse_position("lsn:23853896").lsn == 23853896  # as Debezium prints source.lsn
    b = parse_position("binlog:mysql-bin.000003:154")
    assert (b.kind, b.file, b.pos) == ("binlog", "mysql-bin.000003", 154)
    assert parse_position("time:2024-05-01T12:00:00Z").ts_ms == 1714564800000
    assert parse_position("time:2024-05-01T12:00:00").ts_ms == 1714564800000  # no offset: UTC
    assert parse_position("time:2024-05-01T14:00:00+02:00").ts_ms == 1714564800000
    assert parse_position("time:2024-05-01").ts_ms == 1714521600000
    assert parse_position("time:1714564800123").ts_ms == 1714564800123
    g = parse_position(f"gtid:{UUID}:1-5:7")
    assert g.gtids is not None and not g.gtids.mariadb and g.source_kind
    assert not parse_position("journal:1").source_kind


@pytest.mark.parametrize(("text", "message"), [
    ("", "is not a position"),
    ("yesterday", "is not a position"),
    ("earliest:3", "is not a position"),
    ("journal:", "is not a position"),
    ("journal:0", "a whole number >= 1"),
    ("journal:-1", "a whole number >= 1"),
    ("lsn:16B3748", "not an LSN"),
    ("lsn:0/XYZ", "not an LSN"),
    ("binlog:mysql-bin.000003", "expected binlog:FILE:POS"),
    ("binlog:mysql-bin:4", "not a binlog file name"),
    ("binlog:mysql-bin.000003:x", "expected binlog:FILE:POS"),
    ("gtid:nonsense", "neither a MySQL GTID set entry"),
    (f"gtid:{UUID}:5-3", "not an interval"),
    ("gtid:0-1-5,0-2-9", "names domain 0 twice"),
    ("time:last tuesday", "not an ISO-8601 time"),
])
def test_parse_errors_say_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_position(text)


def test_gtid_sets() -> None:
    mysql = GtidSet.parse(f"{UUID}:1-5:7,\naaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee:2")  # as SHOW MASTER STATUS wraps it
    assert mysql.contains(f"{UUID}:3") and mysql.contains(f"{UUID.upper()}:7")
    assert not mysql.contains(f"{UUID}:6") and not mysql.contains(f"{UUID}:8")
    assert mysql.contains("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee:2")
    assert not mysql.contains("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee:1")
    assert mysql.contains("0-1-5") is None  # another flavor's GTID: cannot tell
    tagged = GtidSet.parse(f"{UUID}:1-3:nightly:1-2")
    assert tagged.contains(f"{UUID}:nightly:2") and not tagged.contains(f"{UUID}:nightly:3")
    assert tagged.contains(f"{UUID}:3")
    maria = GtidSet.parse("0-1-100,1-2-7")
    assert maria.mariadb and maria.contains("0-1-100") and maria.contains("0-3-50") and maria.contains("1-2-7")
    assert not maria.contains("0-1-101") and not maria.contains("1-2-8") and not maria.contains("2-1-1")
    assert maria.contains(f"{UUID}:1") is None


# -- searching ------------------------------------------------------------------------------------

def test_journal_positions(reader: JournalReader) -> None:
    assert start(reader, "earliest") == 1
    assert start(reader, "earliest", r"shop\..*") == 6
    assert start(reader, "latest") == 9
    assert start(reader, "journal:4") == 4
    assert start(reader, "journal:9") == 9  # just past the end: nothing to re-deliver
    with pytest.raises(PositionNotFound, match="past the journal's end"):
        start(reader, "journal:10")


def test_lsn_finds_the_transaction_of_the_first_change_at_or_after_it(reader: JournalReader) -> None:
    assert start(reader, "lsn:100") == 1
    assert start(reader, "lsn:0/64") == 1  # 0x64 = 100
    assert start(reader, "lsn:101") == 1   # LSN 110 is tx 700's second change: the whole tx again
    assert start(reader, "lsn:150") == 3
    assert start(reader, "lsn:161") == 7   # 180 in tx 701, whose first change (105) is re-delivered too
    assert start(reader, "lsn:180") == 7
    with pytest.raises(PositionNotFound, match=r"lsn:181: no record at or after it in the journal \(it ends at seq 8"):
        start(reader, "lsn:181")


def test_lsn_guarantees_every_change_at_or_after_it(reader: JournalReader) -> None:
    """Whatever the LSN, every journal record whose source.lsn >= it is at or after the start."""
    lsns = {r.seq: (record_source(r) or {}).get("lsn") for r in reader.read(re.compile(".*"), 0, 100)}
    for target in range(95, 181):
        first = start(reader, f"lsn:{target}")
        assert all(seq >= first for seq, lsn in lsns.items() if isinstance(lsn, int) and lsn >= target
                   and seq != 6), target


def test_time_and_topics(reader: JournalReader) -> None:
    assert start(reader, "time:0") == 1
    assert start(reader, "time:1000") == 1
    assert start(reader, "time:1001") == 3
    assert start(reader, "time:2001") == 6   # the MySQL transaction at t = 2500
    assert start(reader, "time:2001", r"erp\..*") == 7
    assert start(reader, "time:1001", r"erp\.public\.orders") == 7  # tx 702 touched only customer
    with pytest.raises(PositionNotFound, match="no record at or after it"):
        start(reader, "time:3001")


def test_a_position_of_another_kind_is_not_found(reader: JournalReader) -> None:
    with pytest.raises(PositionNotFound, match="holds no PostgreSQL change events of these topics"):
        start(reader, "lsn:1", r"shop\..*")
    with pytest.raises(PositionNotFound, match="holds no MySQL/MariaDB change events of these topics"):
        start(reader, "binlog:mysql-bin.000001:4", r"erp\..*")


def test_binlog_and_gtid_positions(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with SqliteJournal(path) as j:
        # seq 1-3: uuid:1 (rows events at 100 and 150; two rows in the second); seq 4: uuid:2 at 300;
        # seq 5-6: uuid:3 in the next file; seq 7: a snapshot-less record without a GTID
        j.append("shop", [[my_event("shop.shop.a", "mysql-bin.000003", 100, 0, f"{UUID}:1", 1_000),
                           my_event("shop.shop.a", "mysql-bin.000003", 150, 0, f"{UUID}:1", 2_000),
                           my_event("shop.shop.a", "mysql-bin.000003", 150, 1, f"{UUID}:1", 2_000)]], {})
        j.append("shop", [[my_event("shop.shop.b", "mysql-bin.000003", 300, 0, f"{UUID}:2", 3_000)]], {})
        j.append("shop", [[my_event("shop.shop.a", "mysql-bin.000004", 4, 0, f"{UUID}:3", 4_000),
                           my_event("shop.shop.b", "mysql-bin.000004", 90, 0, f"{UUID}:3", 4_000)]], {})
        j.append("shop", [[my_event("shop.shop.b", "mysql-bin.000004", 200, 0, None, 5_000)]], {})
    with JournalReader(path) as r:
        assert start(r, "binlog:mysql-bin.000003:4") == 1
        assert start(r, "binlog:mysql-bin.000003:120") == 1   # inside uuid:1: the whole transaction
        assert start(r, "binlog:mysql-bin.000003:200") == 4
        assert start(r, "binlog:mysql-bin.000004:4") == 5
        assert start(r, "binlog:mysql-bin.000004:50") == 5
        assert start(r, "binlog:mysql-bin.000004:100") == 7   # no GTID: the record itself
        assert start(r, "binlog:mysql-bin.000002:999999") == 1  # files compare by number, then offset
        assert start(r, f"gtid:{UUID}:1") == 4
        assert start(r, f"gtid:{UUID}:1-2") == 5
        assert start(r, f"gtid:{UUID}:2") == 1   # uuid:1 is not in the set
        with pytest.raises(PositionNotFound):
            start(r, f"gtid:{UUID}:1-3")        # the last record has no GTID to judge
        assert start(r, "time:1970-01-01T00:00:03Z") == 4
        with pytest.raises(PositionNotFound, match="no record at or after it"):
            start(r, "binlog:mysql-bin.000005:4")


def test_mariadb_gtid_state(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with SqliteJournal(path) as j:
        for n in range(1, 6):
            j.append("maria", [[my_event("m.d.t", "mariadb-bin.000001", 100 * n, 0, f"0-1-{n}", n * 1000,
                                         connector="mariadb")] * 2], {})
    with JournalReader(path) as r:
        assert start(r, "gtid:0-1-3") == 7
        assert start(r, "gtid:0-1-0") == 1
        assert start(r, "gtid:1-1-9") == 1  # domain 0 not in the state: nothing of it applied
        with pytest.raises(PositionNotFound, match="no record in the journal"):  # a MySQL set: no verdict
            start(r, f"gtid:{UUID}:1-100")


def test_retention_refuses_positions_older_than_the_oldest_record(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    pg_journal(path)
    with sqlite3.connect(path) as conn:  # what retention does: drop the oldest runs
        conn.execute("DELETE FROM events WHERE first_seq < 3")
    with JournalReader(path) as r:
        assert start(r, "earliest") == 3
        with pytest.raises(PositionNotFound, match=r"journal:2 is older than the journal retains: its oldest record "
                                                   r"is seq 3; use --from earliest \(or journal:3\)"):
            start(r, "journal:2")
        assert start(r, "journal:3") == 3
        with pytest.raises(PositionNotFound, match=r"lsn:100 is older than the journal retains: its oldest record "
                                                   r"of that kind is seq 3 \(lsn 0/96, txId 702"):
            start(r, "lsn:100")
        assert start(r, "lsn:150") == 3   # exactly the oldest record: nothing before it can be missing
        assert start(r, "lsn:151") == 3
        with pytest.raises(PositionNotFound, match="older than the journal retains"):
            start(r, "time:1999")
        assert start(r, "time:2000") == 3


def test_describe(reader: JournalReader) -> None:
    records = reader.read(re.compile(".*"), 0, 10)
    assert describe(record_source(records[0])) == {"lsn": "0/64", "txId": "700", "time": "1970-01-01T00:00:01.000Z"}
    assert describe(record_source(records[4])) == {}  # the tombstone
    assert describe(record_source(records[5])) == {"binlog": "mysql-bin.000003:400", "row": "0",
                                                   "gtid": f"{UUID}:9", "time": "1970-01-01T00:00:02.500Z"}


def test_reader_lists_offsets_and_cursors(reader: JournalReader) -> None:
    offsets = reader.source_offsets()
    assert {k: v[0] for k, v in offsets.items()} == {"erp": {"lsn": 190},
                                                     "shop": {"file": "mysql-bin.000003", "pos": 500}}
    assert abs(offsets["erp"][1] / 1000 - dt.datetime.now(dt.UTC).timestamp()) < 600
    reader.commit_cursor("file", 4)
    reader.commit_delivery("crm", [3, 5])
    cursors = reader.sink_cursors()
    assert {k: (v[0], v[2]) for k, v in cursors.items()} == {"file": (4, False), "crm": (3, True)}


def test_scan_reads_in_batches(tmp_path: Path) -> None:
    """A search across more records than one read batch, with runs of many events each."""
    path = tmp_path / "journal.db"
    with SqliteJournal(path) as j:
        for t in range(20):
            events: Sequence[ChangeEvent] = [pg_event("erp.public.t", 1000 + t, None, t * 1000 + i, t, i)
                                             for i in range(600)]
            j.append("erp", [events], {"lsn": t * 1000 + 999})
    with JournalReader(path) as r:
        assert start(r, "lsn:15500") == 15 * 600 + 1  # inside the 16th transaction: its first record
        assert start(r, "time:19") == 19 * 600 + 1
