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

    Memory stays bounded however large a transaction is: events are streamed, one packed run at a time,
    into one `executemany` from the caller's (possibly lazy) iterable, and the page cache is capped
    (`cache_size`), so dirty pages spill into the WAL file rather than into RAM. The WAL file grows to
    the size of the largest transaction; `journal_size_limit` truncates it again after a checkpoint.

Schema history
    Binlog sources store each captured table's definition (`schema_history`): the schemas read at
    snapshot time and every change a DDL statement in the binlog made, each with the offset it leads
    up to, written in the same transaction as that offset. Resuming reads the latest entry per table.

Storage (schema version 2)
    Events are stored packed, not one row each: a row of `events` holds a *run* -- up to `_RUN_EVENTS`
    consecutive events (about `_RUN_BYTES` of keys and values at most) of the same topic from one
    append -- as `(first_seq, last_seq, topic_id, count, data)`. A run ends where the topic changes, so
    runs of different topics interleave in seq order and runs never overlap. `data` is

        flags: u8 | key lengths: count x i32 | value lengths: count x i32 | keys... | values...

    (little-endian; a length of -1 stands for None, which takes no bytes, so b"" and None differ;
    `flags` says whether some/all keys/values are None). A run of 1 KiB or more is stored compressed:
    one byte with the `_COMPRESSED` flag, then the whole of the above as an LZ4 block (runs of one table
    shrink about tenfold, and so do the WAL, checkpoint and read traffic; `journal.retention.bytes` counts
    the stored bytes, as Kafka's `retention.bytes` counts compressed batches). Runs written before
    compression existed read as they are. Writing costs one struct call, one join and one compression per
    run; reading one decompression and one struct call per run, one slice per key and value and one
    record per event (see `cdc.types.fast_constructor`), or one slice per value for a sink that writes
    values only (`read_values`). Where topics alternate event by event, runs hold one event and cost
    about what one row per event did. A reader finds the run holding `after + 1` through the `first_seq`
    primary key, drops the events at or before `after` (a cursor may sit inside a run) and may stop
    inside a run at its limit.

    A file of another schema version is refused with `Permanent` (there is no migration). Two tables
    were added to version 2 without changing it, created empty when a writer opens an older file:
    ``journaled_at`` (a sparse index of when records were journaled, one row a second at most, written by
    `append`; records of an older file count as journaled when it was first opened so) and ``pruned``
    (per topic, the highest seq retention removed). A bridge without them ignores both.

Retention
    `SqliteJournal.prune` removes a topic's oldest runs once its source's `journal.retention.ms` /
    `journal.retention.bytes` let them go and every sink is past them (the rules, and the task that calls
    it, are in `cdc.journal.retention`), in short write transactions. Seqs are never reused (the end
    lives in meta), readers find runs by primary key whatever was removed before them, and the freed
    pages stay in the file for the next appends: a journal whose retention keeps pace stops growing. The
    file is not shrunk while running (that would rewrite the newest pages); `VACUUM` it offline for that.

Failures
    Every SQLite failure rolls back the whole transaction and is raised as a `cdc.errors` class with the
    original exception chained: `Transient` for "database is locked" / busy, disk I/O errors and a full
    disk (retry later: nothing was written), `Permanent` for anything else (a corrupt or foreign file,
    a newer schema version, a closed journal). An exception raised by the caller's own events iterable
    (say, reading a spill file) rolls the transaction back and propagates unchanged.

    A full disk (SQLITE_FULL) in `append` rolls back the source transaction whole -- its events, offset
    and TOAST rows -- so the reader is not confirmed past it; the `Transient` says which disk is full and
    what to do (free space, or lower retention), and the runner reconnects the source with backoff until
    an append fits again. Tests hit the same code path with `max_page_count`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import struct
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from itertools import accumulate, chain, groupby, islice, repeat
from operator import attrgetter
from pathlib import Path
from types import TracebackType

from cdc.errors import CdcError, Permanent, Transient
from cdc.journal import deadletters
from cdc.journal import retention as _retention
from cdc.journal.compression import lz4_compress, lz4_decompress
from cdc.journal.deadletters import DEAD_LETTER_SCHEMA, DeadLetter, DeadLetterFilter
from cdc.journal.retention import PruneResult, RetentionPolicy
from cdc.types import ChangeEvent, JournalRecord, SourceOffset, make_journal_record

__all__ = ["SCHEMA_VERSION", "JournalReader", "SqliteJournal", "classify_sqlite_error"]

SCHEMA_VERSION = 2

# A packed run holds at most this many events, and stops growing past ~this many bytes of keys and values
# (a single larger event is a run of its own).
_RUN_EVENTS = 512
_RUN_BYTES = 256 * 1024

# Page cache per connection, in KiB (negative cache_size = KiB). Bounded so that a huge transaction
# spills dirty pages into the WAL instead of growing the process.
_CACHE_KIB = 8 * 1024
# Pages of 16 KiB: events are stored as packed runs of up to ~256 KiB, whose overflow pages SQLite writes
# to the WAL, reads back and writes to the database with one or two system calls each; 16 KiB pages take
# a quarter of the calls 4 KiB pages do (a clear gain in CPU time per event), while a small commit (a
# sink cursor, one tiny source transaction) still writes only a few pages. Only effective when the file
# is created.
_PAGE_SIZE = 16 * 1024
# Checkpoint the WAL into the database once it holds this many bytes of pages.
_WAL_AUTOCHECKPOINT_BYTES = 16 * 1024 * 1024
# After a checkpoint, truncate a WAL file that grew past this many bytes (one huge transaction).
_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024

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
    first_seq INTEGER PRIMARY KEY,
    last_seq  INTEGER NOT NULL,
    topic_id  INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    data      BLOB NOT NULL
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
CREATE TABLE IF NOT EXISTS sink_lanes (
    consumer   TEXT PRIMARY KEY,
    done       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS toast (
    topic_id INTEGER NOT NULL,
    key      BLOB NOT NULL,
    "column" TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (topic_id, key, "column")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schema_history (
    id        INTEGER PRIMARY KEY,
    connector TEXT NOT NULL,
    db        TEXT NOT NULL,
    "table"   TEXT NOT NULL,
    schema    TEXT,
    ddl       TEXT NOT NULL,
    "offset"  TEXT NOT NULL,
    added_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS schema_history_connector ON schema_history (connector, id);
CREATE TABLE IF NOT EXISTS journaled_at (
    first_seq INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pruned (
    topic_id INTEGER PRIMARY KEY,
    upto     INTEGER NOT NULL
);
""" + ";" + DEAD_LETTER_SCHEMA

# The end of the journal (highest seq ever assigned) lives in meta, so that it survives a future
# retention that deletes every event: a seq is never reused.
_END_KEY = "end_seq"
_SELECT_END = "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'end_seq'"
_UPDATE_END = "UPDATE meta SET value = ? WHERE key = 'end_seq'"
_INSERT_RUN = "INSERT INTO events (first_seq, last_seq, topic_id, count, data) VALUES (?, ?, ?, ?, ?)"
# The runs holding seqs after ?1, in seq order: from the run that starts at or before ?1 + 1 (a primary
# key lookup; runs never overlap) onwards. The topic condition is appended; `data` is the last column,
# so SQLite reads a run's overflow pages only for the rows that pass it.
_SELECT_RUNS = (
    "SELECT first_seq, topic_id, count, data FROM events WHERE first_seq >= coalesce("
    "(SELECT first_seq FROM events WHERE first_seq <= ?1 + 1 ORDER BY first_seq DESC LIMIT 1), 0) "
    "AND last_seq > ?1"
)
_UPSERT_TOAST = (
    'INSERT INTO toast (topic_id, key, "column", value) VALUES (?, ?, ?, ?) '
    "ON CONFLICT (topic_id, key, \"column\") DO UPDATE SET value = excluded.value"
)
_UPSERT_OFFSET = (
    'INSERT INTO source_offsets (connector, "offset", updated_at) VALUES (?, ?, ?) '
    'ON CONFLICT (connector) DO UPDATE SET "offset" = excluded."offset", updated_at = excluded.updated_at'
)
_INSERT_SCHEMA = (
    'INSERT INTO schema_history (connector, db, "table", schema, ddl, "offset", added_at) '
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_CURSOR = (
    "INSERT INTO sink_cursors (consumer, seq, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at"
)
_ADVANCE_CURSOR = _UPSERT_CURSOR + " WHERE excluded.seq > sink_cursors.seq"
_INSERT_MARK = "INSERT OR REPLACE INTO journaled_at (first_seq, at_ms) VALUES (?, ?)"
# A journal last written by a bridge without the time index: its records count as journaled now.
_MARK_UNINDEXED = (
    "INSERT INTO journaled_at (first_seq, at_ms) SELECT min(first_seq), ? FROM events "
    "HAVING min(first_seq) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM journaled_at)"
)
_UPSERT_PRUNED = (
    "INSERT INTO pruned (topic_id, upto) VALUES (?, ?) "
    "ON CONFLICT (topic_id) DO UPDATE SET upto = max(upto, excluded.upto)"
)
# Time-index rows older than the one that covers the oldest record left describe nothing any more.
_DELETE_OLD_MARKS = (
    "DELETE FROM journaled_at WHERE first_seq < (SELECT max(first_seq) FROM journaled_at WHERE first_seq <= "
    "(SELECT coalesce(min(first_seq), ?) FROM events))"
)
_SQLITE_FULL = 13

# Primary result codes (the low byte of an extended code) that mean "try again later".
_TRANSIENT_CODES = frozenset({
    5,   # SQLITE_BUSY: "database is locked"
    6,   # SQLITE_LOCKED: "database table is locked"
    10,  # SQLITE_IOERR: "disk I/O error"
    _SQLITE_FULL,  # "database or disk is full"
})
_FULL_MESSAGE = "database or disk is full"
_TRANSIENT_MESSAGES = ("database is locked", "disk i/o error", _FULL_MESSAGE)


def classify_sqlite_error(exc: sqlite3.Error, path: Path | None = None) -> CdcError:
    """`Transient` for a locked/busy database, an I/O error or a full disk; `Permanent` otherwise.

    A full disk (SQLITE_FULL, also what a `max_page_count` limit raises) gets a message of its own that
    says what to do; `path` names the journal file in it. The original exception is chained as `__cause__`.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    message = str(exc)
    operational = isinstance(exc, sqlite3.OperationalError)
    transient = operational and (
        (code is not None and code & 0xFF in _TRANSIENT_CODES)
        or any(m in message.lower() for m in _TRANSIENT_MESSAGES)
    )
    if operational and ((code is not None and code & 0xFF == _SQLITE_FULL) or _FULL_MESSAGE in message.lower()):
        where = f"the disk holding {path}" if path is not None else "the disk holding the journal (the data dir)"
        text = (f"journal: {where} is full (SQLite: {message}): the transaction was rolled back and nothing after "
                "the last durable one is confirmed to the source; free space on that disk, or lower "
                "journal.retention.ms / journal.retention.bytes so that retention removes records every sink "
                "has delivered; capture resumes by itself once there is room")
    else:
        text = f"journal: {type(exc).__name__}: {message}"
    err: CdcError = (Transient if transient else Permanent)(text)
    err.__cause__ = exc
    return err


@contextmanager
def _classified(path: Path | None = None) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise classify_sqlite_error(exc, path) from exc


# -- packed runs ------------------------------------------------------------------------------------

# flags byte of a run's data
_SOME_KEYS_NONE, _ALL_KEYS_NONE, _SOME_VALUES_NONE, _ALL_VALUES_NONE, _COMPRESSED = 1, 2, 4, 8, 16
_NONE_LEN = -1
_COMPRESSED_MARK = bytes([_COMPRESSED])
# Runs at least this long are stored LZ4-compressed (when that makes them smaller).
_COMPRESS_MIN = 1024


def _compressed(data: bytes) -> bytes:
    """A run's stored form: `data` itself, or the compressed marker followed by `data` as an LZ4 block.

    Change events of one table repeat most of their bytes (field names, the `source` block), so a run
    shrinks about tenfold: a tenth of the pages to write to the WAL, checkpoint and read back, for a
    compression (1.6 GB/s here) far cheaper than that I/O, which runs without the GIL."""
    if len(data) < _COMPRESS_MIN:
        return data
    packed = lz4_compress(data)
    return _COMPRESSED_MARK + packed if len(packed) + 1 < len(data) else data


def _plain(data: bytes) -> bytes:
    """The run `_compressed` stored, as `_pack` made it."""
    return lz4_decompress(memoryview(data)[1:]) if data[0] & _COMPRESSED else data

_headers: dict[int, struct.Struct] = {}


def _header(count: int) -> struct.Struct:
    """The struct of a run's header: flags, `count` key lengths, `count` value lengths."""
    header = _headers.get(count)
    if header is None:
        header = _headers[count] = struct.Struct(f"<B{2 * count}i")
    return header


def _lengths(fields: list[bytes | None]) -> tuple[list[int], bool]:
    """The lengths of `fields` (-1 for None) and whether some field is None."""
    try:
        return list(map(len, fields)), False  # type: ignore[arg-type]
    except TypeError:
        return [_NONE_LEN if f is None else len(f) for f in fields], True


def _pack(keys: list[bytes | None], values: list[bytes | None],
          key_lens: list[int], value_lens: list[int], maybe_none: bool) -> bytes:
    """One run's `data` (see the module docstring)."""
    flags = 0
    parts: list[bytes] = [b""]
    for fields, lens, some, every in (
        (keys, key_lens, _SOME_KEYS_NONE, _ALL_KEYS_NONE),
        (values, value_lens, _SOME_VALUES_NONE, _ALL_VALUES_NONE),
    ):
        if maybe_none and min(lens) < 0:
            flags |= some | (every if max(lens) < 0 else 0)
            parts += [f for f in fields if f is not None]
        else:
            parts += fields  # type: ignore[arg-type]
    parts[0] = _header(len(keys)).pack(flags, *key_lens, *value_lens)
    return _compressed(b"".join(parts))


_get_topic = attrgetter("topic")
_get_key = attrgetter("key")
_get_value = attrgetter("value")


def _pack_runs(events: list[ChangeEvent]) -> Iterator[tuple[int, bytes]]:
    """(count, data) of the runs holding `events` (one topic, at most `_RUN_EVENTS`), split by size."""
    keys: list[bytes | None] = list(map(_get_key, events))
    values: list[bytes | None] = list(map(_get_value, events))
    key_lens, key_none = _lengths(keys)
    value_lens, value_none = _lengths(values)
    maybe_none = key_none or value_none
    count = len(events)
    if count == 1 or sum(key_lens) + sum(value_lens) <= _RUN_BYTES:
        yield count, _pack(keys, values, key_lens, value_lens, maybe_none)
        return
    sizes = list(map(int.__add__, key_lens, value_lens))
    if maybe_none:
        sizes = [n + (k < 0) + (v < 0) for n, k, v in zip(sizes, key_lens, value_lens, strict=True)]
    ends = list(accumulate(sizes))
    start = base = 0
    while start < count:
        # the events start..end-1 hold at most _RUN_BYTES (at least one event, however large)
        end = max(bisect_right(ends, base + _RUN_BYTES, start), start + 1)
        yield end - start, _pack(keys[start:end], values[start:end],
                                 key_lens[start:end], value_lens[start:end], maybe_none)
        base = ends[end - 1]
        start = end


def _unpack_fields(
    data: bytes, lens: Sequence[int], pos: int, lo: int, hi: int, flags: int, some: int, every: int
) -> tuple[list[bytes | None], int]:
    """Fields lo..hi-1 of the region at `pos` whose field lengths are `lens`; and where the region ends."""
    # (A comprehension of data[a:b] beats map(data.__getitem__, map(slice, ...)): creating slice
    # objects by calling the type is slow.)
    if not flags & some:
        offsets = list(accumulate(lens, initial=pos))
        starts, ends = offsets[lo:hi], offsets[lo + 1: hi + 1]
        return [data[a:b] for a, b in zip(starts, ends, strict=True)], offsets[-1]
    if flags & every:
        return [None] * (hi - lo), pos
    offsets = list(accumulate([n if n > 0 else 0 for n in lens], initial=pos))
    starts, ends = offsets[lo:hi], offsets[lo + 1: hi + 1]
    return [None if n < 0 else data[a:b] for a, b, n in zip(starts, ends, lens[lo:hi], strict=True)], offsets[-1]


def _unpack(data: bytes, count: int, lo: int, hi: int) -> tuple[list[bytes | None], list[bytes | None]]:
    """Keys and values of events lo..hi-1 of a run of `count` events."""
    data = _plain(data)
    header = _header(count)
    lens = header.unpack_from(data)
    flags = lens[0]
    keys, pos = _unpack_fields(
        data, lens[1: count + 1], header.size, lo, hi, flags, _SOME_KEYS_NONE, _ALL_KEYS_NONE
    )
    values, _ = _unpack_fields(data, lens[count + 1:], pos, lo, hi, flags, _SOME_VALUES_NONE, _ALL_VALUES_NONE)
    return keys, values


def _unpack_values(data: bytes, count: int, lo: int, hi: int) -> list[bytes | None]:
    """Values of events lo..hi-1 of a run of `count` events (the keys are skipped, not sliced)."""
    data = _plain(data)
    header = _header(count)
    lens = header.unpack_from(data)
    flags = lens[0]
    key_lens = lens[1: count + 1]
    pos = header.size + (sum(n for n in key_lens if n > 0) if flags & _SOME_KEYS_NONE else sum(key_lens))
    return _unpack_fields(data, lens[count + 1:], pos, lo, hi, flags, _SOME_VALUES_NONE, _ALL_VALUES_NONE)[0]


_ONE = _header(1)


def _pack_one(key: bytes | None, value: bytes | None) -> bytes:
    """`_pack` of a run of one event (the usual run where topics alternate), without the lists."""
    flags = 0
    if key is None:
        flags, key_len, key = _SOME_KEYS_NONE | _ALL_KEYS_NONE, _NONE_LEN, b""
    else:
        key_len = len(key)
    if value is None:
        flags, value_len, value = flags | _SOME_VALUES_NONE | _ALL_VALUES_NONE, _NONE_LEN, b""
    else:
        value_len = len(value)
    return b"".join((_ONE.pack(flags, key_len, value_len), key, value))


def _unpack_one(data: bytes) -> tuple[bytes | None, bytes | None]:
    """`_unpack` of a run of one event."""
    data = _plain(data)
    _, key_len, value_len = _ONE.unpack_from(data)
    pos = _ONE.size
    if key_len < 0:
        key = None
    else:
        key = data[pos: pos + key_len]
        pos += key_len
    return key, (None if value_len < 0 else data[pos: pos + value_len])


@contextmanager
def _snapshot(conn: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[sqlite3.Connection]:
    """One transaction: commit on success, roll back on any error. Plain BEGIN reads one consistent
    committed snapshot that never blocks the writer (WAL)."""
    conn.execute(begin)
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def _immediate(conn: sqlite3.Connection, path: Path | None = None) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE write transaction: commit on success, roll back on any error; errors classified."""
    with _classified(path), _snapshot(conn, "BEGIN IMMEDIATE"):
        yield conn


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
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        conn.execute(f"PRAGMA wal_autocheckpoint={max(1, _WAL_AUTOCHECKPOINT_BYTES // page_size)}")
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


def _read_cursors(conn: sqlite3.Connection) -> dict[str, int]:
    return {str(c): int(s) for c, s in conn.execute("SELECT consumer, seq FROM sink_cursors")}


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

    `max_page_count` caps the file at that many pages (SQLite's `max_page_count`, per connection): an
    append past it fails exactly as on a full disk (SQLITE_FULL), which is how tests exercise that.
    `clock` (epoch ms) stamps the journaled-time index and stored offsets; tests pass their own.
    """

    def __init__(self, path: Path, *, busy_timeout: float = 30.0, max_page_count: int | None = None,
                 clock: Callable[[], int] | None = None) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._clock = clock or _now_ms
        with _classified(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = _connect(self.path, busy_timeout)
            try:
                if max_page_count is not None:
                    self._conn.execute(f"PRAGMA max_page_count={int(max_page_count)}")
                self._init_schema()
                self._ids = _TopicIds(self._conn)
                row = self._conn.execute("SELECT at_ms FROM journaled_at ORDER BY first_seq DESC LIMIT 1").fetchone()
                # When the time index last got a row (see cdc.journal.retention): appends add one a second.
                self._marked = int(row[0]) if row is not None else None
            except BaseException:
                self._conn.close()
                raise
        self._closed = False

    def _init_schema(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Check the version before creating anything: an older file's tables have other columns.
            has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
            row = None
            if has_meta is not None:
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None:
                self._check_version(str(row[0]))
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if row is None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) "
                "VALUES (?, (SELECT CAST(coalesce(max(last_seq), 0) AS TEXT) FROM events))",
                (_END_KEY,),
            )
            conn.execute(_MARK_UNINDEXED, (self._clock(),))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _check_version(self, stored: str) -> None:
        try:
            version = int(stored)
        except ValueError:
            version = None
        if version == SCHEMA_VERSION:
            return
        if version is not None and version < SCHEMA_VERSION:
            raise Permanent(
                f"journal: {self.path} has schema version {version}, an older journal layout that this "
                f"version of the bridge (schema version {SCHEMA_VERSION}) cannot read and does not migrate; "
                f"stop the bridge and move {self.path} (with its -wal and -shm files) away: a new, empty "
                "journal is created in its place, and connectors start again as configured (no stored "
                "source offsets or sink cursors)"
            )
        raise Permanent(
            f"journal: {self.path} has schema version {stored}, this version of the bridge "
            f"understands {SCHEMA_VERSION} (was the file written by a newer bridge?)"
        )

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
        with self._lock:
            try:
                with _immediate(self._conn, self.path) as conn:
                    yield conn
            except BaseException:
                self._ids.forget_created()
                raise
            self._ids.created.clear()

    # -- appending ---------------------------------------------------------------------------------

    def append(
        self,
        connector: str,
        events: Iterable[Sequence[ChangeEvent]],
        offset: SourceOffset,
        toast: Iterable[tuple[str, bytes, str, str]] = (),
        schemas: Iterable[tuple[str, str, str | None, str]] = (),
    ) -> int:
        """Append one source transaction durably; return the last seq written (the end if no events).

        `events` is consumed lazily, chunk by chunk, and never materialised, so a transaction of any
        size is written in bounded memory. `toast` rows (topic, key JSON, column, value as JSON text)
        are upserted into the TOAST cache, `schemas` entries (db, table, schema JSON or None when dropped,
        DDL) are added to the connector's schema history at `offset`, and `offset` becomes `connector`'s
        source offset -- all in the same SQLite transaction, fsynced before returning. On any failure
        nothing is written.
        """
        offset_json = json.dumps(offset, separators=(",", ":"), sort_keys=True)
        mark: int | None = None
        with self._write() as conn:
            end = last = _read_end(conn)
            ids = self._ids
            now = self._clock()

            def runs() -> Iterator[tuple[int, int, int, int, bytes]]:
                nonlocal last
                for topic, group in groupby(chain.from_iterable(events), _get_topic):
                    topic_id = ids[topic]
                    while run := list(islice(group, _RUN_EVENTS)):
                        if len(run) == 1:  # usual where topics alternate: no lists
                            last += 1
                            event = run[0]
                            yield last, last, topic_id, 1, _pack_one(event.key, event.value)
                        else:
                            for count, data in _pack_runs(run):
                                yield last + 1, last + count, topic_id, count, data
                                last += count
                        if len(run) < _RUN_EVENTS:
                            break

            conn.executemany(_INSERT_RUN, runs())
            if last != end:
                conn.execute(_UPDATE_END, (str(last),))
                # The time index for retention: a row a second at most (a clock that went back gets one
                # at once, so no record is ever stamped later than it was journaled).
                if self._marked is None or not 0 <= now - self._marked < _retention.MARK_MS:
                    conn.execute(_INSERT_MARK, (end + 1, now))
                    mark = now
            conn.executemany(_UPSERT_TOAST, ((ids[t], k, c, v) for t, k, c, v in toast))
            conn.executemany(_INSERT_SCHEMA, ((connector, db, table, schema, ddl, offset_json, now)
                                              for db, table, schema, ddl in schemas))
            conn.execute(_UPSERT_OFFSET, (connector, offset_json, now))
        if mark is not None:  # only once committed: a rolled-back row must not suppress the next one
            self._marked = mark
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
            conn.execute(_UPSERT_OFFSET, (connector, offset_json, self._clock()))

    def delete_source_offset(self, connector: str) -> None:
        """Forget the connector's source offset (it will start as configured); durable on return."""
        with self._write() as conn:
            conn.execute("DELETE FROM source_offsets WHERE connector = ?", (connector,))

    # -- schema history (binlog sources) -----------------------------------------------------------

    def schema_history(self, connector: str) -> dict[tuple[str, str], str]:
        """The connector's latest schema JSON per (db, table), dropped tables left out.

        Entries are only ever written with the offset they lead up to, so the latest entries are the
        schemas as of the stored offset: what a reader resuming from it needs."""
        with self._lock, _classified():
            rows = self._conn.execute(
                'SELECT db, "table", schema FROM schema_history WHERE connector = ? ORDER BY id', (connector,)
            ).fetchall()
        latest: dict[tuple[str, str], str] = {}
        for db, table, schema in rows:
            if schema is None:
                latest.pop((db, table), None)
            else:
                latest[(db, table)] = schema
        return latest

    def delete_schema_history(self, connector: str) -> None:
        """Forget the connector's schema history (a new snapshot records it again); durable on return."""
        with self._write() as conn:
            conn.execute("DELETE FROM schema_history WHERE connector = ?", (connector,))

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
        with self._lock, _classified(self.path):
            _write_cursor(self._conn, consumer, seq, force)

    def delete_cursor(self, consumer: str) -> bool:
        """Forget a consumer's cursor and per-lane progress (a removed sink: it no longer pins the journal
        against retention); its dead letters stay. Returns whether it had a cursor."""
        with self._write() as conn:
            conn.execute("DELETE FROM sink_lanes WHERE consumer = ?", (consumer,))
            return conn.execute("DELETE FROM sink_cursors WHERE consumer = ?", (consumer,)).rowcount > 0

    # -- retention (decisions in cdc.journal.retention) ----------------------------------------------

    def prune(self, policies: Mapping[str, RetentionPolicy], sinks: Mapping[str, re.Pattern[str]], now_ms: int,
              *, batch_runs: int = _retention.PRUNE_BATCH_RUNS) -> PruneResult:
        """Remove what retention lets go and every sink is past (`cdc.journal.retention`); durable on return.

        `policies`: source name -> its retention; `sinks`: every configured sink -> its topic pattern;
        `now_ms`: the time retention.ms counts back from. Deletes in write transactions of at most
        `batch_runs` runs, each re-reading the cursors, so a writer waits at most one batch. Freed pages
        stay in the file and are reused by the next appends (the file is not shrunk while running).
        """
        with self._lock, _classified(self.path), _snapshot(self._conn) as conn:
            cuts, pinned, removed = self._survey(conn, policies, sinks, now_ms)
        runs, records, size = self._remove(cuts, removed, sinks, batch_runs) if cuts else (0, 0, 0)
        if runs:
            with self._write() as conn:
                conn.execute(_DELETE_OLD_MARKS, (_read_end(conn) + 1,))
        with self._lock, _classified(self.path):
            row = self._conn.execute("SELECT min(first_seq) FROM events").fetchone()
            oldest = int(row[0]) if row is not None and row[0] is not None else None
            free = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0]) * int(
                self._conn.execute("PRAGMA page_size").fetchone()[0])
        return PruneResult(runs, records, size, pinned, free, oldest)

    @staticmethod
    def _survey(conn: sqlite3.Connection, policies: Mapping[str, RetentionPolicy],
                sinks: Mapping[str, re.Pattern[str]], now_ms: int,
                ) -> tuple[list[_retention.TopicCut], dict[str, int], dict[int, int]]:
        """What to remove (`retention.plan`), who pinned what, and what was removed before."""
        topics = {int(i): str(n) for i, n in conn.execute("SELECT id, name FROM topics")}
        owners = {i: _retention.owner(n, policies) or "" for i, n in topics.items()}
        # Both scans stop early: at the old end of the time index, and after the newest `bytes` of runs.
        age: dict[str, int] = {}
        for name, policy in policies.items():
            if policy.ms >= 0:
                with closing(conn.execute("SELECT first_seq, at_ms FROM journaled_at ORDER BY first_seq")) as c:
                    age[name] = _retention.age_upto(c, now_ms - policy.ms)
        limits = {name: p.bytes for name, p in policies.items() if p.bytes >= 0}
        size: dict[str, int] = {}
        if limits:
            with closing(conn.execute("SELECT last_seq, topic_id, length(data) FROM events "
                                      "ORDER BY first_seq DESC")) as c:
                size = _retention.size_upto(((last, owners[t], n) for last, t, n in c), limits)
        removed = {int(t): int(u) for t, u in conn.execute("SELECT topic_id, upto FROM pruned")}
        cuts, pinned = _retention.plan(topics, policies, age, size, _read_cursors(conn), sinks, removed)
        return cuts, pinned, removed

    def _remove(self, cuts: Sequence[_retention.TopicCut], removed: Mapping[int, int],
                sinks: Mapping[str, re.Pattern[str]], batch_runs: int) -> tuple[int, int, int]:
        """Delete the runs `cuts` name, oldest first, `batch_runs` per transaction: (runs, records, bytes)."""
        bound = {c.topic_id: c.upto for c in cuts}
        names = {c.topic_id: c.topic for c in cuts}
        # Each topic's runs up to removed[topic] are gone already: the scan starts after the least of them.
        start = min(removed.get(c.topic_id, 0) for c in cuts) + 1
        stop = max(bound.values())
        runs = records = size = 0
        while start <= stop:
            with self._lock, _classified(self.path):
                if self._closed:  # the retention task was cancelled and closed its journal
                    break
                rows = self._conn.execute(
                    "SELECT first_seq, last_seq, topic_id, count, length(data) FROM events "
                    "WHERE first_seq BETWEEN ? AND ? ORDER BY first_seq LIMIT ?",
                    (start, stop, batch_runs * 8)).fetchall()
            if not rows:
                break
            start = int(rows[-1][0]) + 1
            victims = [r for r in rows if r[1] <= bound.get(r[2], 0)]
            for at in range(0, len(victims), batch_runs):
                with self._write() as conn:
                    # The cursors again, inside the deleting transaction: a cursor moved back since the
                    # survey (a replay) lowers a bound, and is obeyed.
                    cursors = _read_cursors(conn)
                    fresh = dict(bound)
                    for t in fresh:
                        low = _retention.delivered_upto(names[t], cursors, sinks)[0]
                        if low is not None and low < fresh[t]:
                            fresh[t] = low
                    gone = [r for r in victims[at: at + batch_runs] if r[1] <= fresh[r[2]]]
                    conn.executemany("DELETE FROM events WHERE first_seq = ?", ((r[0],) for r in gone))
                    upto: dict[int, int] = {}
                    for r in gone:
                        upto[r[2]] = max(upto.get(r[2], 0), r[1])
                    conn.executemany(_UPSERT_PRUNED, upto.items())
                runs += len(gone)
                records += sum(r[3] for r in gone)
                size += sum(r[4] for r in gone)
        return runs, records, size


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
        # (pattern key, after, highest seq known to hold no further match after `after`)
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

        Walks the packed runs by seq from the one holding `after + 1` (a primary-key range scan, never
        the whole table), unpacking only the matching topics' runs and only the events it returns, and
        remembers how far a short read looked, so that polling a rarely-matching pattern at the end of
        the journal only examines runs appended since the previous poll.
        """
        records: list[JournalRecord] = []
        make = make_journal_record
        for first, topic, count, data, lo, hi in self._runs(topics, after, limit):
            if count == 1:
                records.append(make(first, topic, *_unpack_one(data)))
            else:
                keys, values = _unpack(data, count, lo, hi)
                records += map(make, range(first + lo, first + hi), repeat(topic), keys, values)
        return records

    def read_values(self, topics: re.Pattern[str], after: int, limit: int) -> tuple[int, int, list[bytes]]:
        """`read` for a sink that writes values only: (the last seq read, or `after` if none; how many
        records were read; their values in seq order, tombstones left out) -- no record objects, no keys."""
        last, n = after, 0
        values: list[bytes] = []
        for first, _topic, count, data, lo, hi in self._runs(topics, after, limit):
            got = [_unpack_one(data)[1]] if count == 1 else _unpack_values(data, count, lo, hi)
            values += [v for v in got if v is not None]
            last, n = first + hi - 1, n + hi - lo
        return last, n, values

    def _runs(self, topics: re.Pattern[str], after: int, limit: int) -> Iterator[tuple[int, str, int, bytes, int, int]]:
        """The runs holding the next `limit` matching records after `after`, in one read transaction:
        (first seq, topic, count, data, lo, hi), the run's records lo..hi-1 being the ones to return."""
        if limit <= 0:
            return
        key = (topics.pattern, int(topics.flags))
        start = after
        if self._scanned is not None and self._scanned[0] == key and self._scanned[1] == after:
            start = max(after, self._scanned[2])
        conn = self._conn
        last, want = after, limit
        with _classified():
            conn.execute("BEGIN")
            try:
                self._refresh_topics()
                condition = self._filter(topics, key)
                if condition is not None:
                    names = self._names
                    cur = conn.execute(f"{_SELECT_RUNS}{condition} ORDER BY first_seq", (start,))
                    try:
                        for first, topic_id, count, data in cur:
                            lo = start - first + 1 if first <= start else 0
                            hi = min(count, lo + want)
                            yield first, names[topic_id], count, data, lo, hi
                            last = first + hi - 1
                            want -= hi - lo
                            if not want:
                                break
                    finally:
                        cur.close()
                end = _read_end(conn) if want else 0
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        if want:
            # Everything up to `end` was examined: nothing else matches after the last record returned.
            self._scanned = (key, last, end)

    def end_seq(self) -> int:
        """The highest seq committed to the journal (0 for an empty journal)."""
        with _classified():
            return _read_end(self._conn)

    # -- retention: what was removed, and when records were journaled -------------------------------

    def _has_table(self, name: str) -> bool:
        # A journal last opened by a bridge without retention lacks its tables (they are created, empty,
        # by the next writer): then nothing was removed and no time is known.
        row = self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        return row is not None

    def removed_upto(self, topics: re.Pattern[str] | None = None) -> int:
        """The highest seq retention removed of the topics `topics` fullmatches (all if None); 0 if none.

        Every record of those topics up to it is gone and every later one is still there, for each topic
        on its own. Seqs below the journal's oldest record count as removed too (however they went)."""
        with _classified(), _snapshot(self._conn) as conn:
            row = conn.execute("SELECT min(first_seq) FROM events").fetchone()
            upto = int(row[0]) - 1 if row is not None and row[0] is not None else _read_end(conn)
            if self._has_table("pruned"):
                for name, seq in conn.execute("SELECT t.name, p.upto FROM pruned p JOIN topics t ON t.id = p.topic_id"):
                    if topics is None or topics.fullmatch(str(name)):
                        upto = max(upto, int(seq))
        return upto

    def journaled_at(self, seq: int) -> int | None:
        """When the record `seq` was journaled, epoch ms (to the second, at or before the commit; see
        `cdc.journal.retention`), or None when the journal does not know."""
        with _classified():
            if not self._has_table("journaled_at"):
                return None
            row = self._conn.execute("SELECT at_ms FROM journaled_at WHERE first_seq <= ? "
                                     "ORDER BY first_seq DESC LIMIT 1", (seq,)).fetchone()
        return int(row[0]) if row is not None else None

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
        with _classified(self.path):
            _write_cursor(self._conn, consumer, seq, force)

    # -- delivery sinks: per-lane progress and the dead-letter store (cdc.journal.deadletters) ----------

    def lane_progress(self, consumer: str, lanes: int) -> list[int] | None:
        """Each key lane's done seq stored by `commit_delivery`, or None (none stored, or for another
        number of lanes: the lanes' keys differ, so only the cursor can be trusted)."""
        with _classified():
            row = self._conn.execute("SELECT done FROM sink_lanes WHERE consumer = ?", (consumer,)).fetchone()
        if row is None:
            return None
        done = [int(x) for x in str(row[0]).split(",") if x]
        return done if len(done) == lanes else None

    def commit_delivery(self, consumer: str, done: Sequence[int], dead: Sequence[DeadLetter] = (),
                        delivered: Sequence[tuple[str, int]] = ()) -> int:
        """Durably record a delivery sink's progress in one transaction and return its new cursor.

        `done[i]`: every event of key lane i with seq <= it is delivered or dead-lettered; the cursor
        becomes min(done) (never moving backwards). `dead` are stored in the dead-letter store;
        `delivered` (subject, seq) pairs supersede older pending dead letters of their key.
        """
        cursor = min(done)
        with _immediate(self._conn, self.path) as conn:
            end = _read_end(conn)
            if cursor > end:
                raise ValueError(f"cursor {consumer!r}: seq {cursor} is past the journal's end ({end})")
            conn.execute(_ADVANCE_CURSOR, (consumer, cursor, _now_ms()))
            conn.execute("INSERT INTO sink_lanes (consumer, done) VALUES (?, ?) ON CONFLICT (consumer) "
                         "DO UPDATE SET done = excluded.done", (consumer, ",".join(map(str, done))))
            if dead:
                deadletters.record(conn, dead)
            if delivered:
                deadletters.supersede(conn, consumer, delivered)
        return cursor

    def move_cursor(self, consumer: str, seq: int) -> None:
        """Put a sink's cursor at `seq`, back or forward (replay, `cdc offsets set`, the admin API), forgetting
        its per-lane progress so that the cursor alone says where delivery resumes. Lanes go first: an
        interruption in between leaves the old cursor, which never skips a record."""
        with _immediate(self._conn, self.path) as conn:
            conn.execute("DELETE FROM sink_lanes WHERE consumer = ?", (consumer,))
        self.commit_cursor(consumer, seq, force=True)

    def dead_letters(self, flt: DeadLetterFilter, limit: int | None = None) -> list[DeadLetter]:
        """Dead letters matching `flt`, in key order (connector, business key, seq)."""
        with _classified():
            return deadletters.select(self._conn, flt, limit)

    def count_dead_letters(self, flt: DeadLetterFilter) -> int:
        with _classified():
            return deadletters.count(self._conn, flt)

    def pending_dead_letter_subjects(self, connector: str) -> set[str]:
        with _classified():
            return deadletters.pending_subjects(self._conn, connector)

    def update_dead_letters(self, failed: Sequence[DeadLetter] = (), resolved: Sequence[int] = (),
                            state: str = "delivered") -> None:
        """After a retry: `failed` entries get their attempts/last failure updated, `resolved` ids `state`."""
        with _immediate(self._conn, self.path) as conn:
            deadletters.record(conn, failed)
            deadletters.resolve(conn, resolved, state)

    def drop_dead_letters(self, flt: DeadLetterFilter) -> int:
        """Delete matching entries; returns how many."""
        with _immediate(self._conn, self.path) as conn:
            return deadletters.delete(conn, flt)

    # -- operators: `cdc offsets`, `cdc replay` (cdc.journal.positions) ----------------------------------

    def source_offsets(self) -> dict[str, tuple[SourceOffset, int]]:
        """Every stored source offset: connector -> (offset, when it was stored, epoch ms)."""
        with _classified():
            rows = self._conn.execute('SELECT connector, "offset", updated_at FROM source_offsets').fetchall()
        out: dict[str, tuple[SourceOffset, int]] = {}
        for connector, text, updated in rows:
            value = json.loads(text)
            out[str(connector)] = (value if isinstance(value, dict) else {"offset": value}, int(updated))
        return out

    def sink_cursors(self) -> dict[str, tuple[int, int, bool]]:
        """Every sink cursor: consumer -> (seq, when it was committed in epoch ms, whether per-lane
        progress is stored: a delivery sink's)."""
        with _classified():
            rows = self._conn.execute(
                "SELECT c.consumer, c.seq, c.updated_at, l.consumer IS NOT NULL FROM sink_cursors c "
                "LEFT JOIN sink_lanes l ON l.consumer = c.consumer").fetchall()
        return {str(c): (int(s), int(u), bool(lanes)) for c, s, u, lanes in rows}
