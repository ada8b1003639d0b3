"""Ad-hoc incremental snapshots (DBLog watermarks), the pure part: signals, the resumable context, the
chunk window and per-table progress.

Role: Debezium's incremental snapshot, driven by `execute-snapshot` / `stop-snapshot` rows in the
connector's signal table. The readers do the I/O: while the stream has no transaction open they write
a low watermark, read one chunk of a table in primary-key order, write a high watermark, and keep
streaming. PostgreSQL (`cdc.readers.postgres`) writes the watermarks as logical decoding messages
(`watermark` / `parse_watermark`); MySQL/MariaDB (`cdc.readers.mysqlsnapshot`), which has none, inserts
them as rows of the signal table, Debezium's ``insert_insert`` strategy (`window_signal` /
`parse_window_signal`). This module holds what they decide with:

- `parse_signal` / `select_tables`: a signal row checked and its `data-collections` (regexes, or plain
  names, on ``schema.table``) resolved against the captured tables;
- `ChunkWindow`: the chunk's rows by key, from its read until its high watermark arrives in the stream.
  A streamed transaction that changed one of those keys and committed after the low watermark -- or
  that the chunk's read snapshot did not see, wherever it falls -- removes the key: the stream carries
  a newer image, so the older read must not follow it. What remains at the high watermark is emitted
  as reads (`op: "r"`, `source.snapshot: "incremental"`). Memory is one chunk. A source that commits
  in log order (MySQL/MariaDB: a transaction is visible once every one before it in the binlog is)
  gives no read snapshot: every transaction before the low watermark counts as seen;
- `SnapshotContext`: what is left to read (tables, the last key emitted, the current table's maximum
  key when it began), stored with every source offset journaled while a snapshot runs, as Debezium
  keeps ``incremental_snapshot_*`` in its offsets;
- `Progress`: rows emitted per table against the planner's estimate, for metrics;
- `IncrementalState`: the three above as a reader keeps them, with the decisions on signals, tables and
  chunks (queue, stop, skip, begin, emit, resume) and their log lines; the reader only does the I/O.
  Both readers run on it.

Failure story: no I/O here. A malformed signal raises `InvalidSignal`: `send_signal` refuses it before
inserting, the reader logs it and ignores the row (a bad row in the signal table must never stop
capture). A crash loses only the open window: the stored context resumes from the last chunk that
reached the journal, so rows may be read twice, never skipped.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from cdc.errors import Permanent

log = logging.getLogger(__name__)

WATERMARK_PREFIX = "erp-cdc-watermark"   # prefix of the logical decoding messages that bound a chunk
EXECUTE = "execute-snapshot"
STOP = "stop-snapshot"
WINDOW_OPEN = "snapshot-window-open"     # signal-table rows that bound a chunk (Debezium's insert_insert)
WINDOW_CLOSE = "snapshot-window-close"
SIGNAL_TYPES = (EXECUTE, STOP)
SIGNAL_TABLE_DDL = ("CREATE TABLE {table} (id VARCHAR(42) PRIMARY KEY, type VARCHAR(32) NOT NULL, "
                    "data VARCHAR(2048) NULL)")

# Offset keys (Debezium names its incremental_snapshot_*; the values here are JSON, not Java-serialised).
_TABLES = "incremental_snapshot_collections"
_LAST_KEY = "incremental_snapshot_primary_key"
_MAX_KEY = "incremental_snapshot_maximum_key"
_ROWS = "incremental_snapshot_rows"
_CHUNKS = "incremental_snapshot_chunks"
OFFSET_KEYS = (_TABLES, _LAST_KEY, _MAX_KEY, _ROWS, _CHUNKS)

ALL_KEYS = b""               # a "changed key" that stands for every key: the table was truncated
Key = tuple[str, ...]       # a primary key as the text of its columns, in key order (query parameters)
_XID_MASK = 0xFFFFFFFF      # the stream's xids are 32-bit; pg_current_snapshot() gives 64-bit ones


class InvalidSignal(Permanent):
    """A signal whose type or data this bridge cannot act on; the message says what is wrong."""


# ------------------------------------------------------------------ signals


@dataclass(frozen=True, slots=True)
class Signal:
    """One checked signal: `execute-snapshot` or `stop-snapshot` of `collections` (regexes; for a stop,
    empty means every table)."""

    id: str
    type: str
    collections: tuple[str, ...]


def parse_signal(sig_id: str, sig_type: str, data: str | None) -> Signal:
    """Check a signal row (Debezium's shape: id, type, JSON data); raises InvalidSignal saying why."""
    what = f"signal '{sig_id}'" if sig_id else "signal"
    if sig_type not in SIGNAL_TYPES:
        raise InvalidSignal(f"{what}: type '{sig_type}' is not supported (only {', '.join(SIGNAL_TYPES)})")
    try:
        body = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError as e:
        raise InvalidSignal(f"{what}: data is not JSON ({e})") from None
    if not isinstance(body, dict):
        raise InvalidSignal(f"{what}: data must be a JSON object")
    kind = body.get("type", "incremental")
    if not isinstance(kind, str) or kind.lower() != "incremental":
        raise InvalidSignal(f"{what}: snapshot type {kind!r} is not supported (only \"incremental\")")
    for unsupported in ("additional-conditions", "additional-condition", "surrogate-key"):
        if body.get(unsupported):
            raise InvalidSignal(f"{what}: \"{unsupported}\" is not supported; snapshot whole tables")
    collections = body.get("data-collections", [])
    if not isinstance(collections, list) or not all(isinstance(c, str) and c.strip() for c in collections):
        raise InvalidSignal(f"{what}: \"data-collections\" must be a list of table names or regexes")
    if sig_type == EXECUTE and not collections:
        raise InvalidSignal(f"{what}: execute-snapshot needs \"data-collections\" (e.g. [\"public.customers\"])")
    for c in collections:
        try:
            re.compile(c)
        except re.error as e:
            raise InvalidSignal(f"{what}: data collection {c!r} is not a valid regular expression ({e})") from None
    return Signal(sig_id, sig_type, tuple(c.strip() for c in collections))


def select_tables(patterns: Sequence[str], tables: Sequence[str]) -> tuple[list[str], list[str]]:
    """The `tables` (``schema.table``) the patterns name, in pattern order, each once; and the patterns
    that name none. A pattern is a plain name or a regex, fully matched, case-insensitively (Debezium)."""
    chosen: list[str] = []
    unmatched: list[str] = []
    for p in patterns:
        rx = re.compile(p, re.IGNORECASE)
        hits = [t for t in tables if t == p or rx.fullmatch(t)]
        if not hits:
            unmatched.append(p)
        chosen.extend(t for t in hits if t not in chosen)
    return chosen, unmatched


# ------------------------------------------------------------------ watermarks


def watermark(kind: str, chunk_id: str) -> str:
    """The content of a low or high watermark message."""
    return f"{kind}:{chunk_id}"


def parse_watermark(content: bytes) -> tuple[str, str] | None:
    """(``low`` or ``high``, chunk id) of a watermark message's content; None for anything else."""
    kind, sep, chunk_id = content.decode(errors="replace").partition(":")
    return (kind, chunk_id) if sep and kind in ("low", "high") and chunk_id else None


def window_signal(kind: str, chunk_id: str) -> tuple[str, str]:
    """(id, type) of the signal-table row that is a ``low`` or ``high`` watermark (Debezium's shape:
    ``<chunk id>-open`` / ``snapshot-window-open``, ``<chunk id>-close`` / ``snapshot-window-close``)."""
    return (f"{chunk_id}-open", WINDOW_OPEN) if kind == "low" else (f"{chunk_id}-close", WINDOW_CLOSE)


def parse_window_signal(sig_id: str, sig_type: str) -> tuple[str, str] | None:
    """(``low`` or ``high``, chunk id) of a watermark row of the signal table; None for any other row."""
    kind, suffix = {WINDOW_OPEN: ("low", "-open"), WINDOW_CLOSE: ("high", "-close")}.get(sig_type, ("", ""))
    if not kind or not sig_id.endswith(suffix) or len(sig_id) == len(suffix):
        return None
    return kind, sig_id[:-len(suffix)]


def parse_snapshot(text: str) -> tuple[int, frozenset[int]]:
    """(xmax, in-progress xids) of a ``pg_current_snapshot()`` text (``xmin:xmax:xip,...``), as the
    stream's 32-bit xids."""
    try:
        _xmin, xmax, xip = text.split(":")
        return int(xmax) & _XID_MASK, frozenset(int(x) & _XID_MASK for x in xip.split(",") if x)
    except ValueError:
        raise ValueError(f"not a pg_snapshot: {text!r}") from None


# ------------------------------------------------------------------ the chunk window


@dataclass(slots=True)
class ChunkWindow:
    """One chunk between its read and its high watermark (see the module docstring).

    `rows` maps each key's JSON (the bytes the stream's encoder gives for keys) to what the reader will
    emit for it; `last_key` is where the next chunk starts: the last row read, even if the stream has
    removed it since. `xmax`/`in_progress` describe the read's snapshot (PostgreSQL); None for a source
    that commits in log order, where the read saw every transaction before the low watermark.
    `final` says that the table ends with this chunk.
    """

    id: str
    table: str
    rows: dict[bytes, Any]
    last_key: Key | None
    read: int
    final: bool
    xmax: int | None = None
    in_progress: frozenset[int] = frozenset()
    low_seen: bool = False

    def visible(self, xid: int) -> bool:
        """Whether the chunk's read saw the transaction `xid` (committed before its snapshot); without a
        read snapshot, every transaction before the low watermark (`on_commit` asks only for those)."""
        if self.xmax is None:
            return True
        return xid not in self.in_progress and ((xid - self.xmax) & _XID_MASK) >= 0x80000000

    def on_commit(self, xid: int, keys: Iterable[bytes]) -> int:
        """A streamed transaction committed having changed `keys` of the chunk's table: drop them from
        the chunk if the stream's image is newer than the read's. Returns how many were dropped.

        After the low watermark every change counts (DBLog). Before it (between the reader's pause and
        the low watermark) only a transaction the read did not see: that is one whose commit record
        came before the low watermark but which was still finishing (flushing its commit, waiting for
        a synchronous standby) when the read's snapshot was taken -- its change would otherwise be
        overtaken by the older read."""
        if not self.low_seen and self.visible(xid):
            return 0
        rows = self.rows
        before = len(rows)
        for k in keys:
            if k == ALL_KEYS:
                rows.clear()
                break
            rows.pop(k, None)
        return before - len(rows)


# ------------------------------------------------------------------ the resumable context


@dataclass(frozen=True, slots=True)
class SnapshotContext:
    """What an incremental snapshot still has to do; stored in the source offset.

    `tables` are ``schema.table`` names still to read, the first being read now; `last_key` is the key
    of the last row emitted from it (None: start at its beginning); `max_key` is its largest key when
    its snapshot began (None: not begun), rows inserted after that come from the stream. `rows` and
    `chunks` count what was emitted from the current table (for progress across restarts).
    """

    tables: tuple[str, ...]
    last_key: Key | None = None
    max_key: Key | None = None
    rows: int = 0
    chunks: int = 0

    @property
    def current(self) -> str:
        return self.tables[0]

    @property
    def started(self) -> bool:
        return self.max_key is not None

    def to_offset(self) -> dict[str, Any]:
        return {_TABLES: list(self.tables), _LAST_KEY: None if self.last_key is None else list(self.last_key),
                _MAX_KEY: None if self.max_key is None else list(self.max_key), _ROWS: self.rows,
                _CHUNKS: self.chunks}

    @staticmethod
    def from_offset(offset: Mapping[str, Any] | None) -> SnapshotContext | None:
        """The context a stored offset holds; None when no incremental snapshot was in progress.
        Raises ValueError for a malformed one (the offset was not written by this bridge)."""
        if not offset or not offset.get(_TABLES):
            return None
        tables, last, top = offset[_TABLES], offset.get(_LAST_KEY), offset.get(_MAX_KEY)
        if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
            raise ValueError(f"offset key {_TABLES} is not a list of table names")
        for name, k in ((_LAST_KEY, last), (_MAX_KEY, top)):
            if k is not None and (not isinstance(k, list) or not all(isinstance(x, str) for x in k)):
                raise ValueError(f"offset key {name} is not a list of key values")
        return SnapshotContext(tuple(tables), None if last is None else tuple(last),
                               None if top is None else tuple(top), int(offset.get(_ROWS, 0)),
                               int(offset.get(_CHUNKS, 0)))

    def add(self, tables: Iterable[str]) -> SnapshotContext:
        """Queue more tables (a table already queued stays where it is)."""
        return replace(self, tables=self.tables + tuple(t for t in dict.fromkeys(tables) if t not in self.tables))

    def remove(self, tables: Iterable[str]) -> SnapshotContext | None:
        """Drop tables (a stop signal); None when nothing is left. Dropping the current table drops its
        position too."""
        gone = set(tables)
        left = tuple(t for t in self.tables if t not in gone)
        if not left:
            return None
        if left[0] != self.tables[0]:
            return SnapshotContext(left)
        return replace(self, tables=left)

    def begin(self, max_key: Key) -> SnapshotContext:
        """The current table's snapshot begins, up to its largest key now."""
        return replace(self, last_key=None, max_key=max_key, rows=0, chunks=0)

    def advance(self, last_key: Key | None, rows: int) -> SnapshotContext:
        """One more chunk of the current table emitted (`rows` of it), read up to `last_key`."""
        return replace(self, last_key=last_key if last_key is not None else self.last_key,
                       rows=self.rows + rows, chunks=self.chunks + 1)

    def next_table(self) -> SnapshotContext | None:
        """The current table is done: on to the next one (None when it was the last)."""
        return SnapshotContext(self.tables[1:]) if len(self.tables) > 1 else None


# ------------------------------------------------------------------ progress


@dataclass(slots=True)
class Progress:
    """Rows emitted per table, with the planner's estimate (None when the table was never analysed)."""

    tables: dict[str, tuple[int, int | None]] = field(default_factory=dict)

    def begin(self, table: str, estimate: int | None, rows: int = 0) -> None:
        self.tables[table] = (rows, estimate if estimate and estimate > 0 else None)

    def add(self, table: str, rows: int) -> None:
        done, estimate = self.tables.get(table, (0, None))
        self.tables[table] = (done + rows, estimate)

    def snapshot(self) -> dict[str, tuple[int, int | None]]:
        return dict(self.tables)


# ------------------------------------------------------------------ the running snapshot


Signals = Sequence[tuple[str, str, str | None]]   # (id, type, data) rows a transaction inserted


class IncrementalState:
    """A reader's incremental snapshot: the context (None: none running), the open chunk window and
    per-table progress, and what happens to them on signals, chunk reads and the stream's watermarks.

    No I/O: the reader reads the tables and writes the watermarks, then reports here (`begin`, `empty`,
    `skip`, setting `window`, `on_watermark`, `emitted`); it asks which tables are captured only through the
    `captured` callable given to `on_signals`. Log lines name the connector and the table.
    """

    def __init__(self, connector: str, chunk_size: int) -> None:
        self.connector = connector
        self.chunk_size = chunk_size
        self.ctx: SnapshotContext | None = None
        self.window: ChunkWindow | None = None
        self.progress = Progress()
        self._last_log = 0.0

    @property
    def pending(self) -> tuple[str, ...]:
        """The tables still to read, the current one first."""
        return () if self.ctx is None else self.ctx.tables

    def offset(self) -> dict[str, Any]:
        """The context's offset keys (none when no snapshot runs), for every offset yielded meanwhile."""
        return {} if self.ctx is None else self.ctx.to_offset()

    def resume(self, offset: Mapping[str, Any] | None) -> None:
        """Take up the snapshot a stored offset was in the middle of (an unreadable one is abandoned)."""
        try:
            ctx = SnapshotContext.from_offset(offset)
        except ValueError as e:
            log.warning("connector %s: the stored offset's incremental snapshot context is unreadable (%s); that "
                        "snapshot is abandoned: send execute-snapshot again", self.connector, e)
            ctx = None
        self.ctx, self.window = ctx, None
        if ctx is not None:
            if ctx.started:
                self.progress.begin(ctx.current, None, ctx.rows)
            log.info("connector %s: resuming the incremental snapshot of %s (%d rows of %s emitted)", self.connector,
                     ", ".join(ctx.tables), ctx.rows, ctx.current)

    def abandon(self, reason: str) -> None:
        """Give the whole snapshot up (the reader cannot run it); a new execute-snapshot starts over."""
        if self.ctx is not None:
            log.warning("connector %s: incremental snapshot of %s abandoned: %s", self.connector,
                        ", ".join(self.ctx.tables), reason)
        self.ctx, self.window = None, None

    # -- signals

    def on_signals(self, signals: Signals, captured: Callable[[], Sequence[str]]) -> None:
        """Act on the signals a transaction committed, in order; an invalid one is logged and skipped.
        `captured` lists the tables the connector captures (``schema.table``), asked only when needed."""
        for sig_id, sig_type, data in signals:
            try:
                sig = parse_signal(sig_id, sig_type, data)
            except InvalidSignal as e:
                log.warning("connector %s: %s; ignored", self.connector, e)
                continue
            if sig.type == EXECUTE:
                self._queue(sig, captured())
            else:
                self._stop(sig)

    def _queue(self, sig: Signal, captured: Sequence[str]) -> None:
        tables, unmatched = select_tables(sig.collections, captured)
        for p in unmatched:
            log.warning("connector %s: signal %s: %r names no table this connector captures; skipped",
                        self.connector, sig.id, p)
        if not tables:
            return
        self.ctx = SnapshotContext(tuple(tables)) if self.ctx is None else self.ctx.add(tables)
        for table in tables:
            if table != self.ctx.current or not self.ctx.started:
                self.progress.begin(table, None)
        log.info("connector %s: signal %s: incremental snapshot of %s queued", self.connector, sig.id,
                 ", ".join(tables))

    def _stop(self, sig: Signal) -> None:
        ctx = self.ctx
        if ctx is None:
            log.info("connector %s: signal %s: no incremental snapshot is running; nothing to stop", self.connector,
                     sig.id)
            return
        tables = select_tables(sig.collections, ctx.tables)[0] if sig.collections else list(ctx.tables)
        if ctx.current in tables:
            self.window = None   # its high watermark is ignored
        self.ctx = ctx.remove(tables)
        log.info("connector %s: signal %s: incremental snapshot of %s stopped", self.connector, sig.id,
                 ", ".join(tables) or "nothing")

    # -- tables and chunks (the reader reports what it found)

    def skip(self, reason: str) -> None:
        """The current table cannot be read (`reason`, logged); on to the next one."""
        assert self.ctx is not None
        log.warning("connector %s: incremental snapshot of %s skipped: %s", self.connector, self.ctx.current, reason)
        self._next_table()

    def empty(self, estimate: int | None) -> None:
        """The current table has no row: it is done."""
        assert self.ctx is not None
        log.info("connector %s: incremental snapshot of %s: the table is empty", self.connector, self.ctx.current)
        self.progress.begin(self.ctx.current, estimate)
        self.end_table()

    def begin(self, max_key: Key, estimate: int | None) -> None:
        """The current table's snapshot begins, up to its largest key now."""
        assert self.ctx is not None
        self.ctx = ctx = self.ctx.begin(max_key)
        self.progress.begin(ctx.current, estimate)
        log.info("connector %s: incremental snapshot of %s started (about %d rows, chunks of %d)", self.connector,
                 ctx.current, estimate or 0, self.chunk_size)

    def on_watermark(self, kind: str, chunk_id: str) -> ChunkWindow | None:
        """A watermark in the stream: the low one starts the window's DBLog half; the high one closes the
        window and returns it (its rows are then emitted, and `emitted` called). Others are ignored: an
        earlier run's, or a stopped or abandoned chunk's."""
        w = self.window
        if w is None or chunk_id != w.id:
            return None
        if kind == "low":
            w.low_seen = True
            return None
        self.window = None
        return w

    def emitted(self, w: ChunkWindow, rows: int) -> None:
        """A closed window's `rows` reached the output: the context moves past the chunk."""
        assert self.ctx is not None
        self.ctx = self.ctx.advance(w.last_key, rows)
        self.progress.add(w.table, rows)
        now = time.monotonic()
        if w.final:
            self.end_table()
        elif now - self._last_log >= 10:
            self._last_log = now
            done, estimate = self.progress.tables.get(w.table, (0, None))
            log.info("connector %s: incremental snapshot of %s: %d rows (of about %s)", self.connector, w.table,
                     done, estimate if estimate is not None else "?")

    def end_table(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        log.info("connector %s: incremental snapshot of %s finished: %d rows in %d chunks", self.connector,
                 ctx.current, ctx.rows, ctx.chunks)
        self._next_table()

    def _next_table(self) -> None:
        assert self.ctx is not None
        self.ctx, self.window = self.ctx.next_table(), None
        if self.ctx is None:
            log.info("connector %s: incremental snapshot complete", self.connector)
