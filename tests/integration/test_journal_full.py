"""A full disk under the journal, for real: SQLite's `max_page_count` makes an append fail with SQLITE_FULL
("database or disk is full"), the same code path as a disk with no space left. The append is refused
whole with a `Transient` that says what to do, nothing after the last durable transaction is stored
(events, offset, topics), and appending resumes once there is room -- a larger limit (space freed) or
retention removing delivered records -- with an intact file and every record exactly once."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from cdc.errors import Transient
from cdc.journal.retention import RetentionPolicy
from cdc.journal.sqlite import JournalReader, SqliteJournal
from cdc.types import ChangeEvent
from tests.integration.test_journal_retention import pragma

ALL = re.compile(".*", re.DOTALL)
TX_EVENTS = 20


def tx(n: int, topic: str = "erp.public.orders") -> list[ChangeEvent]:
    """Source transaction n: 20 events of ~2 KB (about three pages of 16 KiB)."""
    return [ChangeEvent(topic, b'{"id":%d}' % (n * TX_EVENTS + i), b'{"tx":%d,"i":%d,"pad":"%s"}' % (n, i, b"x" * 2000))
            for i in range(TX_EVENTS)]


def values(path: Path) -> list[bytes | None]:
    with JournalReader(path) as r:
        records = r.read(ALL, 0, 1_000_000)
    # Seqs are gap-free from the oldest record on: nothing lost in the middle, nothing twice.
    assert [rec.seq for rec in records] == list(range(records[0].seq, records[0].seq + len(records)))
    return [rec.value for rec in records]


def fill(journal: SqliteJournal) -> tuple[int, Transient]:
    """Append transactions until the journal is full; the number appended and the error."""
    for n in range(10_000):
        try:
            journal.append("erp", [tx(n)], {"lsn": n})
        except Transient as e:
            return n, e
    raise AssertionError("the journal never filled up")


def test_full_disk_refuses_the_append_whole_and_resumes_when_space_is_freed(tmp_path: Path) -> None:
    path = tmp_path / "data" / "journal.db"
    SqliteJournal(path).close()
    limit = pragma(path, "page_count") + 40
    with SqliteJournal(path, max_page_count=limit) as journal:
        done, error = fill(journal)
        assert done > 3
        message = str(error)
        assert f"the disk holding {path} is full" in message and "database or disk is full" in message
        assert "journal.retention.ms / journal.retention.bytes" in message and "resumes by itself" in message
        assert isinstance(error.__cause__, sqlite3.OperationalError)
        # Nothing of the refused transaction: not its events, not its offset, not the topic it created.
        assert journal.end_seq() == done * TX_EVENTS
        assert journal.source_offset("erp") == {"lsn": done - 1}
        with pytest.raises(Transient, match="is full"):
            journal.append("erp", [tx(done, "erp.public.new_table")], {"lsn": done})
        assert "erp.public.new_table" not in journal.topics()
        assert journal.end_seq() == done * TX_EVENTS
    assert pragma(path, "integrity_check") == "ok"

    # Space freed (here: a larger limit): the source re-sends the transaction from its offset.
    with SqliteJournal(path) as journal:
        assert journal.append("erp", [tx(done, "erp.public.new_table")], {"lsn": done}) == (done + 1) * TX_EVENTS
        assert journal.source_offset("erp") == {"lsn": done}
    assert pragma(path, "integrity_check") == "ok"
    expected = [e.value for n in range(done) for e in tx(n)] + [e.value for e in tx(done)]
    assert values(path) == expected


def test_retention_makes_room_on_a_full_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    SqliteJournal(path).close()
    limit = pragma(path, "page_count") + 40
    with SqliteJournal(path, max_page_count=limit) as journal:
        done, _ = fill(journal)
        # The sink delivered up to the last transaction; retention by size (the newest 0 bytes) lets
        # everything it delivered go.
        delivered = (done - 1) * TX_EVENTS
        journal.commit_cursor("file-sink", delivered)
        result = journal.prune({"erp": RetentionPolicy("erp", -1, 0)}, {"file-sink": ALL}, 0)
        assert result.records == delivered and result.free_bytes > 0
        # At the same page limit, the refused transaction now fits, and more after it.
        for n in range(done, done + 3):
            journal.append("erp", [tx(n)], {"lsn": n})
        assert pragma(path, "page_count") <= limit
    assert pragma(path, "integrity_check") == "ok"
    assert values(path) == [e.value for n in range(done - 1, done + 3) for e in tx(n)]
    with JournalReader(path) as r:
        assert r.removed_upto() == delivered
