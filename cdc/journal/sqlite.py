"""The embedded journal: change events, source offsets, sink cursors and the TOAST cache in one SQLite file.

Role
    The journal decouples capture from delivery (design §2). A source reader appends each committed
    source transaction with `SqliteJournal.append` -- the events, the TOAST cache rows it learned and
    the connector's new source offset, all in ONE SQLite transaction -- and only then confirms its
    replication slot / records its binlog position. Sinks read with their own `JournalReader` (their own
    connection, so they never contend with the writer's Python-side lock) and move their cursor with
    `commit_cursor` only after the target acknowledged.

    Every event gets a global sequence number (`seq`): gap-free and increasing within and across
    appends, assigned by the writer inside its write transaction. Records of all topics share the one
    `seq` space, so a reader that matches several topics sees them in capture (commit) order.

Concurrency
    The API is synchronous; the pipeline calls it from worker threads (`asyncio.to_thread`).
    `SqliteJournal` owns one connection (`check_same_thread=False`) guarded by a lock, so one writer
    object may be used from any thread, one call at a time. Any number of `JournalReader` objects
    (`SqliteJournal.reader()`), each with its own connection, may read concurrently with the writer:
    in WAL mode readers see the last committed snapshot and never block, nor are blocked by, the writer.
    Only the journal's writer appends events; other connections (readers committing cursors, an
    operator's CLI setting an offset) may write small rows and wait for the write lock
    (`busy_timeout`), then fail with `Transient` if it is not released in time.

Durability (what survives SIGKILL or power loss)
    `journal_mode=WAL` with `synchronous=FULL` on every connection: a commit appends the transaction's
    pages and a commit frame to `journal.db-wal` and fsyncs it before `append`/`commit_cursor`/
    `set_source_offset` return. Hence:

    * anything whose call returned survives SIGKILL and power loss (assuming the disk honours fsync);
    * a transaction interrupted by SIGKILL or power loss leaves WAL frames without a valid commit frame,
      which SQLite ignores on the next open: the events, TOAST rows and offset of that source
      transaction are all absent together. The source offset therefore never runs ahead of the events
      (the reader resumes from the offset and the source re-sends the lost transaction), and events
      never exist without their offset having been stored with them;
    * a sink cursor is durable once `commit_cursor` returns; a crash between a sink's delivery and its
      cursor commit re-delivers those records after restart (at-least-once, design §2).

    Memory stays bounded however large a transaction is: events are streamed into one `executemany`
    from the caller's (possibly lazy) iterable, and the page cache is capped (`cache_size`), so dirty
    pages spill into the WAL file rather than into RAM. The WAL file grows to the size of the largest
    transaction; `journal_size_limit` truncates it again after a checkpoint.

Failures
    Every SQLite failure rolls back the whole transaction and is raised as a `cdc.errors` class with the
    original exception chained: `Transient` for "database is locked" / busy, disk I/O errors and a full
    disk (retry later: nothing was written), `Permanent` for anything else (a corrupt or foreign file,
    a newer schema version, a closed journal). An exception raised by the caller's own events iterable
    (say, reading a spill file) rolls the transaction back and propagates unchanged.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from cdc.errors import CdcError, Permanent, Transient
from cdc.types import ChangeEvent, JournalRecord, SourceOffset

__all__ = ["SCHEMA_VERSION", "JournalReader", "SqliteJournal", "classify_sqlite_error"]

SCHEMA_VERSION = 1

# Page cache per connection, in KiB (negative cache_size = KiB). Bounded so that a huge transaction
# spills dirty pages into the WAL instead of growing the process.
_CACHE_KIB = 16 * 1024
# Checkpoint the WAL into the database once it holds this many pages (SQLite's default is 1000).
_WAL_AUTOCHECKPOINT_PAGES = 1000
# After a checkpoint, truncate a WAL file that grew past this many bytes (one huge transaction).
_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
_PAGE_SIZE = 4096

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS topics (
    id   INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq      INTEGER PRIMARY KEY,
    topic_id INTEGER NOT NULL,
    key      BLOB,
    value    BLOB
);
CREATE TABLE IF NOT EXISTS source_offsets (
    connector  TEXT PRIMARY KEY,
    "offset"   TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sink_cursors (
    consumer   TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS toast (
    topic_id INTEGER NOT NULL,
    key      BLOB NOT NULL,
    "column" TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (topic_id, key, "column")
) WITHOUT ROWID;
"""

# The end of the journal (highest seq ever assigned) lives in meta, so that it survives a future
# retention that deletes every event: a seq is never reused.
_END_KEY = "end_seq"
_SELECT_END = "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'end_seq'"
_UPDATE_END = "UPDATE meta SET value = ? WHERE key = 'end_seq'"
_INSERT_EVENT = "INSERT INTO events (seq, topic_id, key, value) VALUES (?, ?, ?, ?)"
_UPSERT_TOAST = (
    'INSERT INTO toast (topic_id, key, "column", value) VALUES (?, ?, ?, ?) '
    "ON CONFLICT (topic_id, key, \"column\") DO UPDATE SET value = excluded.value"
)
_UPSERT_OFFSET = (
    'INSERT INTO source_offsets (connector, "offset", updated_at) VALUES (?, ?, ?) '
    'ON CONFLICT (connector) DO UPDATE SET "offset" = excluded."offset", updated_at = excluded.updated_at'
)
_UPSERT_CURSOR = (
    "INSERT INTO sink_cursors (consumer, seq, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at"
)
_ADVANCE_CURSOR = _UPSERT_CURSOR + " WHERE excluded.seq > sink_cursors.seq"

# Primary result codes (the low byte of an extended code) that mean "try again later".
_TRANSIENT_CODES = frozenset({
    5,   # SQLITE_BUSY: "database is locked"
    6,   # SQLITE_LOCKED: "database table is locked"
    10,  # SQLITE_IOERR: "disk I/O error"
    13,  # SQLITE_FULL: "database or disk is full"
})
_TRANSIENT_MESSAGES = ("database is locked", "disk i/o error", "database or disk is full")


def classify_sqlite_error(exc: sqlite3.Error) -> CdcError:
    """`Transient` for a locked/busy database, an I/O error or a full disk; `Permanent` otherwise.

    The original exception is chained as `__cause__`.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    message = str(exc)
    transient = isinstance(exc, sqlite3.OperationalError) and (
        (code is not None and code & 0xFF in _TRANSIENT_CODES)
        or any(m in message.lower() for m in _TRANSIENT_MESSAGES)
    )
    err: CdcError = (Transient if transient else Permanent)(f"journal: {type(exc).__name__}: {message}")
    err.__cause__ = exc
    return err


@contextmanager
def _classified() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise classify_sqlite_error(exc) from exc


def _record_factory() -> Callable[[int, str, bytes | None, bytes | None], JournalRecord]:
    """A constructor for JournalRecord about twice as fast as its frozen-dataclass `__init__`.

    Reading builds one record per event, and a frozen dataclass's `__init__` goes through
    `object.__setattr__` four times; setting the slots through their descriptors is equivalent as
    long as JournalRecord stays a plain slotted dataclass without `__post_init__` -- checked here,
    falling back to the ordinary constructor otherwise.
    """
    fields = ("seq", "topic", "key", "value")
    slots = getattr(JournalRecord, "__slots__", ())
    descriptors = [JournalRecord.__dict__.get(name) for name in fields]
    if (
        tuple(slots) != fields
        or hasattr(JournalRecord, "__post_init__")
        or not all(type(d).__name__ == "member_descriptor" for d in descriptors)
    ):
        return JournalRecord
    new = object.__new__
    set_seq, set_topic, set_key, set_value = (d.__set__ for d in descriptors)  # type: ignore[union-attr]

    def make(seq: int, topic: str, key: bytes | None, value: bytes | None) -> JournalRecord:
        record: JournalRecord = new(JournalRecord)
        set_seq(record, seq)
        set_topic(record, topic)
        set_key(record, key)
        set_value(record, value)
        return record

    return make


_make_record = _record_factory()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, synchronous=FULL."""
    conn = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False, cached_statements=64
    )
    try:
        conn.execute(f"PRAGMA page_size={_PAGE_SIZE}")  # effective only when creating the file
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise Permanent(f"journal: {path} cannot use WAL mode (journal_mode is {mode!r})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        conn.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit={_JOURNAL_SIZE_LIMIT}")
    except BaseException:
        conn.close()
        raise
    return conn


def _read_end(conn: sqlite3.Connection) -> int:
    row = conn.execute(_SELECT_END).fetchone()
    return int(row[0]) if row is not None else 0


def _read_cursor(conn: sqlite3.Connection, consumer: str) -> int:
    row = conn.execute("SELECT seq FROM sink_cursors WHERE consumer = ?", (consumer,)).fetchone()
    return int(row[0]) if row is not None else 0


def _write_cursor(conn: sqlite3.Connection, consumer: str, seq: int, force: bool) -> None:
    if seq < 0:
        raise ValueError(f"cursor seq must be >= 0, got {seq}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        end = _read_end(conn)
        if seq > end:
            raise ValueError(f"cursor {consumer!r}: seq {seq} is past the journal's end ({end})")
        conn.execute(_UPSERT_CURSOR if force else _ADVANCE_CURSOR, (consumer, seq, _now_ms()))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class _TopicIds(dict[str, int]):
    """The writer's topic name -> id cache; a miss looks the topic up, creating it if need be.

    Topics created inside a transaction are remembered in `created` so that a rollback can forget them.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn.execute("SELECT name, id FROM topics").fetchall())
        self._conn = conn
        self.created: list[str] = []

    def __missing__(self, name: str) -> int:
        row = self._conn.execute("SELECT id FROM topics WHERE name = ?", (name,)).fetchone()
        if row is None:
            cur = self._conn.execute("INSERT INTO topics (name) VALUES (?)", (name,))
            assert cur.lastrowid is not None
            topic_id = int(cur.lastrowid)
            self.created.append(name)
        else:
            topic_id = int(row[0])
        self[name] = topic_id
        return topic_id

    def forget_created(self) -> None:
        for name in self.created:
            self.pop(name, None)
        self.created.clear()


class SqliteJournal:
    """The journal's writer: one SQLite file (usually `<data-dir>/journal.db`), WAL mode.

    Safe to use from any thread, one call at a time (calls are serialised by a lock). Open one
    `SqliteJournal` per file per process for appending; sinks read through `reader()`.
    """

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        with _classified():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = _connect(self.path, busy_timeout)
            try:
                self._init_schema()
                self._ids = _TopicIds(self._conn)
            except BaseException:
                self._conn.close()
                raise
        self._closed = False

    def _init_schema(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(row[0]) != SCHEMA_VERSION:
                raise Permanent(
                    f"journal: {self.path} has schema version {row[0]}, this version of the bridge "
                    f"understands {SCHEMA_VERSION}"
                )
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) "
                "VALUES (?, (SELECT CAST(coalesce(max(seq), 0) AS TEXT) FROM events))",
                (_END_KEY,),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent). Readers made by `reader()` stay open and usable."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> SqliteJournal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE write transaction under the lock: commit on success, roll back on any error."""
        with self._lock, _classified():
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                self._ids.forget_created()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._ids.created.clear()

    # -- appending ---------------------------------------------------------------------------------

    def append(
        self,
        connector: str,
        events: Iterable[Sequence[ChangeEvent]],
        offset: SourceOffset,
        toast: Iterable[tuple[str, bytes, str, str]] = (),
    ) -> int:
        """Append one source transaction durably; return the last seq written (the end if no events).

        `events` is consumed lazily, chunk by chunk, and never materialised, so a transaction of any
        size is written in bounded memory. `toast` rows (topic, key JSON, column, value as JSON text)
        are upserted into the TOAST cache, and `offset` becomes `connector`'s source offset -- all in
        the same SQLite transaction, fsynced before returning. On any failure nothing is written.
        """
        offset_json = json.dumps(offset, separators=(",", ":"), sort_keys=True)
        with self._write() as conn:
            end = _read_end(conn)
            seqs = itertools.count(end + 1)
            ids = self._ids
            conn.executemany(
                _INSERT_EVENT,
                ((next(seqs), ids[e.topic], e.key, e.value) for chunk in events for e in chunk),
            )
            last = next(seqs) - 1
            if last != end:
                conn.execute(_UPDATE_END, (str(last),))
            conn.executemany(_UPSERT_TOAST, ((ids[t], k, c, v) for t, k, c, v in toast))
            conn.execute(_UPSERT_OFFSET, (connector, offset_json, _now_ms()))
        return last

    # -- source offsets ----------------------------------------------------------------------------

    def source_offset(self, connector: str) -> SourceOffset | None:
        """The connector's last stored source offset, or None if it has none."""
        with self._lock, _classified():
            row = self._conn.execute(
                'SELECT "offset" FROM source_offsets WHERE connector = ?', (connector,)
            ).fetchone()
        if row is None:
            return None
        value = json.loads(row[0])
        if not isinstance(value, dict):
            raise Permanent(f"journal: source offset of {connector!r} is not a JSON object: {row[0]!r}")
        return value

    def set_source_offset(self, connector: str, offset: SourceOffset) -> None:
        """Store a source offset without events (operators, tests); durable on return."""
        offset_json = json.dumps(offset, separators=(",", ":"), sort_keys=True)
        with self._write() as conn:
            conn.execute(_UPSERT_OFFSET, (connector, offset_json, _now_ms()))

    def delete_source_offset(self, connector: str) -> None:
        """Forget the connector's source offset (it will start as configured); durable on return."""
        with self._write() as conn:
            conn.execute("DELETE FROM source_offsets WHERE connector = ?", (connector,))

    # -- TOAST cache -------------------------------------------------------------------------------

    def toast_value(self, topic: str, key: bytes, column: str) -> str | None:
        """The cached JSON text of an unchanged-TOAST column of row `key` in `topic`, or None."""
        with self._lock, _classified():
            topic_id = self._ids.get(topic)
            if topic_id is None:
                row = self._conn.execute("SELECT id FROM topics WHERE name = ?", (topic,)).fetchone()
                if row is None:
                    return None
                topic_id = self._ids[topic] = int(row[0])
            row = self._conn.execute(
                'SELECT value FROM toast WHERE topic_id = ? AND key = ? AND "column" = ?',
                (topic_id, key, column),
            ).fetchone()
        return None if row is None else str(row[0])

    # -- introspection -----------------------------------------------------------------------------

    def end_seq(self) -> int:
        """The highest seq ever assigned (0 for an empty journal)."""
        with self._lock, _classified():
            return _read_end(self._conn)

    def topics(self) -> list[str]:
        """Every topic the journal has seen, sorted by name."""
        with self._lock, _classified():
            return [str(r[0]) for r in self._conn.execute("SELECT name FROM topics ORDER BY name")]

    # -- sinks -------------------------------------------------------------------------------------

    def reader(self) -> JournalReader:
        """A new reader with its own connection, for one sink (use it from one thread at a time)."""
        return JournalReader(self.path, busy_timeout=self._busy_timeout)

    def cursor(self, consumer: str) -> int:
        """The consumer's committed cursor: the seq of the last record it has done with (0 if none)."""
        with self._lock, _classified():
            return _read_cursor(self._conn, consumer)

    def commit_cursor(self, consumer: str, seq: int, *, force: bool = False) -> None:
        """Durably move the consumer's cursor to `seq` (see `JournalReader.commit_cursor`)."""
        with self._lock, _classified():
            _write_cursor(self._conn, consumer, seq, force)


class JournalReader:
    """One sink's view of the journal, on its own SQLite connection.

    Not thread-safe: use each reader from one thread at a time (any thread). Each `read` runs in one
    read transaction, so it sees a consistent committed snapshot and never blocks the writer.
    """

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise Permanent(f"journal: {self.path} does not exist")
        with _classified():
            self._conn = _connect(self.path, busy_timeout)
        self._names: dict[int, str] = {}
        self._max_topic_id = 0
        # pattern key -> (SQL topic condition from `_filter`, max topic id it was computed for)
        self._matches: dict[tuple[str, int], tuple[str | None, int]] = {}
        # (pattern key, after) -> highest seq known to hold no further match after `after`
        self._scanned: tuple[tuple[str, int], int, int] | None = None

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._conn.close()

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _refresh_topics(self) -> None:
        """Learn topics created since the last call (must run inside the read transaction)."""
        row = self._conn.execute("SELECT max(id) FROM topics").fetchone()
        top = int(row[0]) if row is not None and row[0] is not None else 0
        if top > self._max_topic_id:
            for topic_id, name in self._conn.execute(
                "SELECT id, name FROM topics WHERE id > ?", (self._max_topic_id,)
            ):
                self._names[int(topic_id)] = str(name)
            self._max_topic_id = top

    def _filter(self, topics: re.Pattern[str], key: tuple[str, int]) -> str | None:
        """The SQL condition selecting the matching topics: '' for all, None for none."""
        cached = self._matches.get(key)
        if cached is not None and cached[1] == self._max_topic_id:
            return cached[0]
        ids = sorted(i for i, name in self._names.items() if topics.fullmatch(name))
        condition: str | None
        if not ids:
            condition = None
        elif len(ids) == len(self._names):
            condition = ""
        else:
            condition = f" AND topic_id IN ({','.join(map(str, ids))})"
        self._matches[key] = (condition, self._max_topic_id)
        return condition

    def read(self, topics: re.Pattern[str], after: int, limit: int) -> list[JournalRecord]:
        """Up to `limit` records with seq > `after` whose topic fullmatches `topics`, in seq order.

        Walks the events table by seq from `after` (an index range scan, never the whole table) and
        remembers how far a short read looked, so that polling a rarely-matching pattern at the end of
        the journal only examines records appended since the previous poll.
        """
        if limit <= 0:
            return []
        key = (topics.pattern, int(topics.flags))
        start = after
        if self._scanned is not None and self._scanned[0] == key and self._scanned[1] == after:
            start = max(after, self._scanned[2])
        conn = self._conn
        with _classified():
            conn.execute("BEGIN")
            try:
                self._refresh_topics()
                condition = self._filter(topics, key)
                if condition is None:
                    rows: list[tuple[int, int, bytes | None, bytes | None]] = []
                else:
                    rows = conn.execute(
                        f"SELECT seq, topic_id, key, value FROM events WHERE seq > ?{condition} "
                        "ORDER BY seq LIMIT ?",
                        (start, limit),
                    ).fetchall()
                end = _read_end(conn) if len(rows) < limit else 0
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        names = self._names
        make = _make_record
        records = [make(seq, names[topic_id], k, v) for seq, topic_id, k, v in rows]
        if len(rows) < limit:
            # Everything up to `end` was examined: nothing else matches after the last record returned.
            self._scanned = (key, records[-1].seq if records else after, end)
        return records

    def end_seq(self) -> int:
        """The highest seq committed to the journal (0 for an empty journal)."""
        with _classified():
            return _read_end(self._conn)

    def cursor(self, consumer: str) -> int:
        """The consumer's committed cursor: the seq of the last record it has done with (0 if none)."""
        with _classified():
            return _read_cursor(self._conn, consumer)

    def commit_cursor(self, consumer: str, seq: int, *, force: bool = False) -> None:
        """Durably move the consumer's cursor to `seq`.

        A cursor never moves backwards here: committing a seq lower than the stored one keeps the
        stored one (a late acknowledgement is harmless), unless `force=True` (replay). A seq past the
        journal's end raises ValueError. Waits for the write lock up to `busy_timeout`, then raises
        `Transient`.
        """
        with _classified():
            _write_cursor(self._conn, consumer, seq, force)
