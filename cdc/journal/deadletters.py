"""The dead-letter store: business events a target refused, kept in the journal's SQLite file.

Role
    A sink that meets a record its target rejects for good (a validation error, a 4xx other than
    408/425/429), or one its mapping cannot evaluate, stores it here with the target's status and error
    text, the business key, the entity, the attempts and the first and last failure -- in the same
    SQLite transaction that moves the sink's cursor past it (`JournalReader.commit_delivery`), so a
    record is either still ahead of the cursor or durably dead-lettered, never lost in between.

    Entries are ``pending`` until an operator acts (`cdc dlq retry` re-sends them in key order:
    ``delivered``; `cdc dlq drop` deletes them) or until a later event of the same business key is
    delivered by the sink (``superseded``: the target now holds newer data for that key, so re-sending
    the old event would move it backwards). The same event dead-lettered again (after a crash replay,
    or a failed retry) updates its row: attempts are added, the last failure and error replaced.

Failure story: every call runs in one transaction on the caller's connection; SQLite errors are
classified by the journal (`classify_sqlite_error`: locked/full disk are Transient).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["DEAD_LETTER_SCHEMA", "STATES", "DeadLetter", "DeadLetterFilter", "record", "supersede"]

DEAD_LETTER_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id               INTEGER PRIMARY KEY,
    connector        TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    event_id         TEXT NOT NULL,
    entity           TEXT NOT NULL,
    type             TEXT NOT NULL,
    subject          TEXT NOT NULL,
    event            BLOB NOT NULL,
    status           INTEGER,
    error            TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    first_failure_ms INTEGER NOT NULL,
    last_failure_ms  INTEGER NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending',
    UNIQUE (connector, event_id)
);
CREATE INDEX IF NOT EXISTS dead_letters_key ON dead_letters (connector, subject, seq)
"""

STATES = ("pending", "delivered", "superseded")

_COLUMNS = ("id, connector, seq, event_id, entity, type, subject, event, status, error, attempts, "
            "first_failure_ms, last_failure_ms, state")

_UPSERT = (
    "INSERT INTO dead_letters (connector, seq, event_id, entity, type, subject, event, status, error, attempts, "
    "first_failure_ms, last_failure_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (connector, event_id) DO UPDATE SET status = excluded.status, error = excluded.error, "
    "attempts = dead_letters.attempts + excluded.attempts, last_failure_ms = excluded.last_failure_ms, "
    "state = 'pending'"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One refused business event. `id` and `state` are the store's (0 and 'pending' before storing)."""

    connector: str
    seq: int
    event_id: str
    entity: str
    type: str
    subject: str
    event: bytes
    status: int | None
    error: str
    attempts: int
    first_failure_ms: int
    last_failure_ms: int
    id: int = 0
    state: str = "pending"

    @classmethod
    def from_row(cls, row: Sequence[object]) -> DeadLetter:
        (id_, connector, seq, event_id, entity, type_, subject, event, status, error, attempts, first, last,
         state) = row
        return cls(str(connector), int(str(seq)), str(event_id), str(entity), str(type_), str(subject),
                   bytes(event) if isinstance(event, bytes | bytearray | memoryview) else str(event).encode(),
                   None if status is None else int(str(status)), str(error), int(str(attempts)),
                   int(str(first)), int(str(last)), int(str(id_)), str(state))


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which entries a `cdc dlq` command acts on; every given criterion must hold."""

    connector: str | None = None
    entity: str | None = None
    key: str | None = None
    error: str | None = None  # a substring of the error text, case-insensitive
    state: str | None = "pending"  # None: any state
    ids: tuple[int, ...] = ()

    def where(self) -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (("connector", self.connector), ("lower(entity)", self.entity and self.entity.lower()),
                              ("subject", self.key), ("state", self.state)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.error:
            clauses.append("instr(lower(error), ?) > 0")
            params.append(self.error.lower())
        if self.ids:
            clauses.append(f"id IN ({','.join('?' * len(self.ids))})")
            params.extend(self.ids)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def record(conn: sqlite3.Connection, letters: Iterable[DeadLetter]) -> None:
    """Store (or update) dead letters; the caller's transaction makes them durable with the cursor."""
    conn.executemany(_UPSERT, [(d.connector, d.seq, d.event_id, d.entity, d.type, d.subject, d.event, d.status,
                                d.error, d.attempts, d.first_failure_ms, d.last_failure_ms) for d in letters])


def supersede(conn: sqlite3.Connection, connector: str, delivered: Iterable[tuple[str, int]]) -> None:
    """Mark pending entries older than a delivered event of the same key as superseded."""
    conn.executemany(
        "UPDATE dead_letters SET state = 'superseded' WHERE connector = ? AND subject = ? AND seq < ? "
        "AND state = 'pending'", [(connector, subject, seq) for subject, seq in delivered])


def select(conn: sqlite3.Connection, flt: DeadLetterFilter, limit: int | None = None) -> list[DeadLetter]:
    """Matching entries in key order: by connector, business key, then journal seq."""
    where, params = flt.where()
    sql = f"SELECT {_COLUMNS} FROM dead_letters{where} ORDER BY connector, subject, seq, id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [DeadLetter.from_row(r) for r in conn.execute(sql, params)]


def count(conn: sqlite3.Connection, flt: DeadLetterFilter) -> int:
    where, params = flt.where()
    row = conn.execute(f"SELECT count(*) FROM dead_letters{where}", params).fetchone()
    return int(row[0]) if row else 0


def pending_subjects(conn: sqlite3.Connection, connector: str) -> set[str]:
    return {str(r[0]) for r in conn.execute(
        "SELECT DISTINCT subject FROM dead_letters WHERE connector = ? AND state = 'pending'", (connector,))}


def resolve(conn: sqlite3.Connection, ids: Iterable[int], state: str) -> None:
    conn.executemany("UPDATE dead_letters SET state = ? WHERE id = ?", [(state, i) for i in ids])


def delete(conn: sqlite3.Connection, flt: DeadLetterFilter) -> int:
    where, params = flt.where()
    return conn.execute(f"DELETE FROM dead_letters{where}", params).rowcount
