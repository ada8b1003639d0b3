"""The MySQL/MariaDB snapshots: the initial one (every included table's rows at one binlog position, in
chunks) and ad-hoc incremental ones while streaming (`BinlogIncremental`). Both read a table through
`TableRead`, so a row read by either is encoded exactly as the binlog decoder encodes it.

How it is consistent: one connection starts `START TRANSACTION WITH CONSISTENT SNAPSHOT` (REPEATABLE
READ) and reads the binlog position that matches it; every table is then read inside that transaction,
and streaming starts exactly at that position (no gap, no overlap).

Which lock, and for how long (`snapshot.locking.mode`):
- `minimal` (default, as Debezium): `FLUSH TABLES WITH READ LOCK` is held only while the transaction
  starts, the binlog position is read and the table definitions are read (`SHOW CREATE TABLE`), so
  that no DDL can slip between the definitions and the position: typically milliseconds, writers wait
  that long. It is released before any row is read. Needs the RELOAD privilege.
- `none`: no lock at all. On MariaDB the position still matches the data exactly (the server reports
  `binlog_snapshot_file/position` for the consistent snapshot); on MySQL it is read right after the
  transaction starts, so changes committed in between may be captured twice (never lost). A DDL
  statement running during the snapshot's start can make a definition disagree with the position.

Bounded memory: rows come through an unbuffered (server-side streaming) cursor, `snapshot.fetch.size`
rows at a time, each chunk handed to the journal as its own unit (offset marked
`snapshot_completed: false`, so a crash redoes the snapshot). The last unit stores the schema history
and the completed offset. Runs in the reader's worker thread (blocking driver calls).

Incremental snapshots (Debezium's, with its default ``insert_insert`` watermarks; the decisions live in
`cdc.readers.incremental`): the stream thread calls `BinlogIncremental` with the signal table's inserts
and the changed keys of the table being read, and between transactions. There, on its own autocommit
connection, it INSERTs a ``snapshot-window-open`` row into the signal table, reads the next chunk
(``WHERE key > last [AND key <= max key] ORDER BY key LIMIT incremental.snapshot.chunk.size``) and
INSERTs a ``snapshot-window-close`` row. The rows come back through the binlog: every transaction
between them that changed a key of the chunk drops it, and at the close row the rest is emitted as
reads (``source.snapshot: "incremental"``) in a unit of its own. The watermark rows are left in the
table, as Debezium leaves them (two small rows per chunk; delete them whenever you like).
Why a read never overtakes a newer change: MySQL (binlog_order_commits=ON, its default; the reader
warns otherwise) and MariaDB commit transactions in their binlog order, so once the open row's
INSERT returned, every transaction before it in the binlog is visible to the read that follows, and
every one the read saw is before the close row. So only the transactions between the two rows can be
newer than the read, and those drop their keys (`ChunkWindow` without a read snapshot). A DDL statement
while a chunk is open abandons the chunk; it is read again after it, with the new definition.

Failure story: driver errors propagate to the reader, which classifies them (connection loss is
`Transient`: the runner restarts and the snapshot is taken again; an incremental snapshot resumes from
the context in the last journaled offset); a value that cannot be converted raises ValueError naming
db.table.column. A table an incremental snapshot cannot read (gone, no primary key, its definition
changed under the read) is skipped with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
import pymysql
import pymysql.converters
import pymysql.cursors

from cdc.config import BinlogSourceConfig
from cdc.errors import SourceError
from cdc.readers import incremental as inc
from cdc.readers import mysqlddl
from cdc.readers.base import CommittedTx, SchemaChange
from cdc.readers.binlogrows import MyEncodingModes
from cdc.readers.mysqlevents import EnvelopeMaker, Origin, Row
from cdc.readers.mysqlschema import ColumnDef, TableSchema
from cdc.readers.mysqlvalues import _BINARY_TYPES, _DECIMAL_TYPES, _INT_TYPES, SnapshotRowCodec, select_expression
from cdc.readers.pgevents import KeyFn, key_function
from cdc.readers.progress import SnapshotProgress
from cdc.types import ChangeEvent, SourceOffset

if TYPE_CHECKING:
    from cdc.readers.mysql import BinlogReader, StreamState, _Handoff

log = logging.getLogger(__name__)

SYSTEM_DATABASES = ("mysql", "information_schema", "performance_schema", "sys")
# The driver's parameter encoders without its result decoders: values arrive as the server prints them.
TEXT_ONLY: dict[int | type[Any], Callable[[Any], str] | Callable[[str], Any]] = {
    k: v for k, v in pymysql.converters.conversions.items() if not isinstance(k, int)}


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def signal_insert_sql(db: str, table: str) -> str:
    """The INSERT of one signal row (id, type, data) into the signal table `db`.`table`."""
    return f"INSERT INTO {_quote(db)}.{_quote(table)} (id, type, data) VALUES (%s, %s, %s)"


def _base_tables(cur: Any) -> list[tuple[str, str, int]]:
    """(database, table, estimated rows) of every base table outside the system databases."""
    cur.execute("SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES "
                "WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (%s, %s, %s, %s) "
                "ORDER BY TABLE_SCHEMA, TABLE_NAME", SYSTEM_DATABASES)
    return [(str(d), str(t), int(n)) for d, t, n in cur.fetchall()]


@dataclass(frozen=True, slots=True)
class TableRead:
    """How both snapshots read one table: the SELECT (text protocol, `TEXT_ONLY`), and the codec and key
    function that turn its rows into the values and key the binlog decoder gives for the same row."""

    schema: TableSchema
    topic: str
    select: str                  # SELECT <every column> FROM `db`.`table`
    codec: SnapshotRowCodec
    key: KeyFn | None            # over the captured primary-key columns (None without a primary key)

    @classmethod
    def of(cls, cfg: BinlogSourceConfig, modes: MyEncodingModes, schema: TableSchema) -> TableRead:
        db, table = schema.db, schema.table
        included = [cfg.column_included(db, table, c.name) for c in schema.columns]
        cols = ", ".join(select_expression(c) for c in schema.columns)
        return cls(schema, f"{cfg.topic_prefix}.{db}.{table}", f"SELECT {cols} FROM {_quote(db)}.{_quote(table)}",
                   SnapshotRowCodec(schema, modes, included),
                   key_function([c for c in schema.primary_key if cfg.column_included(db, table, c)]))


def _read_position(reader: BinlogReader, cur: Any) -> None:
    """Fix the reader's start position (and GTID state) to what the open transaction sees."""
    from cdc.readers.mysql import BinlogPosition, binlog_status

    st = reader._state
    assert st is not None
    if reader._flavor == "mariadb":
        cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
        status = {str(k).lower(): str(v) for k, v in cur.fetchall()}
        st.position = BinlogPosition(status["binlog_snapshot_file"], int(status["binlog_snapshot_position"]))
        cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (st.position.file, st.position.pos))
        row = cur.fetchone()
        gtids = str(row[0]) if row and row[0] else ""
        st.gtids = {g.split("-", 1)[0]: g for g in gtids.split(",") if g}
    else:   # under the global read lock (minimal), or right after the transaction started (none)
        current = binlog_status(cur)
        if current is None:
            raise SourceError(f"connector '{reader.cfg.name}': the server reports no binlog position")
        st.position, st.mysql_gtids = current


def _read_schemas(reader: BinlogReader, cur: Any) -> list[tuple[TableSchema, int]]:
    """The included tables' definitions (and estimated row counts), recorded in the reader's state."""
    cfg, st = reader.cfg, reader._state
    assert st is not None
    tables = [(d, t, n) for d, t, n in _base_tables(cur) if cfg.table_included(d, t)]
    out: list[tuple[TableSchema, int]] = []
    for db, table, rows in tables:
        cur.execute(f"SHOW CREATE TABLE {_quote(db)}.{_quote(table)}")
        ddl = str(cur.fetchone()[1])
        schema = mysqlddl.parse_create_table(ddl, db, st.db_charsets.get(db))
        st.schemas[(db, table)] = schema
        st.stopped.pop((db, table), None)
        out.append((schema, rows))
    return out


def _history(reader: BinlogReader) -> list[SchemaChange]:
    from cdc.readers.mysql import history_entry

    st = reader._state
    assert st is not None
    return [history_entry(s, "snapshot") for s in st.schemas.values()]


def _begin(reader: BinlogReader, conn: pymysql.Connection[Any]) -> list[tuple[TableSchema, int]]:
    """Start the consistent-snapshot transaction; read position and definitions under the lock mode."""
    lock = reader.cfg.snapshot_locking_mode == "minimal"
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute("SET SESSION time_zone = '+00:00'")
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        started = time.monotonic()
        if lock:
            # snapshot.lock.timeout.ms bounds the wait for the lock (whole seconds, at least one)
            cur.execute("SET SESSION lock_wait_timeout = %s",
                        (max(1, -(-reader.cfg.snapshot_lock_timeout_ms // 1000)),))
            cur.execute("FLUSH TABLES WITH READ LOCK")
        try:
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            _read_position(reader, cur)
            tables = _read_schemas(reader, cur)
        finally:
            if lock:
                cur.execute("UNLOCK TABLES")
                log.info("connector %s: global read lock held %.3f s", reader.cfg.name, time.monotonic() - started)
    return tables


def schema_only(reader: BinlogReader, out: _Handoff) -> None:
    """`snapshot.mode=no_data`: record definitions and the position, read no rows (worker thread)."""
    try:
        with reader._connect() as conn:
            _begin(reader, conn)
            conn.commit()
        st = reader._state
        assert st is not None
        out.put([CommittedTx(st.offset(int(time.time())), None, 0, lambda: iter(()), schemas=_history(reader))])
    except BaseException as e:
        out.put(e)
        return
    out.put(None)


def snapshot(reader: BinlogReader, out: _Handoff) -> None:
    """Read every included table inside one consistent snapshot, chunk by chunk (worker thread)."""
    try:
        for unit in _snapshot_units(reader):
            if not out.put([unit]):
                unit.release()
                return
    except BaseException as e:
        out.put(e)
        return
    out.put(None)


def _snapshot_units(reader: BinlogReader) -> Iterator[CommittedTx]:
    from cdc.readers.mysql import encoding_modes

    cfg, st = reader.cfg, reader._state
    assert st is not None
    modes = encoding_modes(cfg)
    envelopes = EnvelopeMaker(reader._flavor, cfg.topic_prefix, cfg.tombstones_on_delete)
    conn = pymysql.connect(**cfg.connect_kwargs(), autocommit=False, conv=TEXT_ONLY,
                           cursorclass=pymysql.cursors.SSCursor)
    started = int(time.time())
    with conn:
        tables = _begin(reader, conn)
        offset = st.offset(started, snapshot_completed=False)
        progress = SnapshotProgress(cfg.name, [(f"{s.db}.{s.table}", n) for s, n in tables])
        for schema, _n in tables:
            db, table = schema.db, schema.table
            t = TableRead.of(cfg, modes, schema)
            origin = Origin(db, table, t.topic, started, 0, None, st.position.file, st.position.pos, None,
                            snapshot="true")
            with conn.cursor() as cur:
                cur.execute(t.select)
                while rows := cur.fetchmany(cfg.snapshot_fetch_size):
                    decoded = [(None, t.codec.decode(r)) for r in rows]
                    now_ms = time.time_ns() // 1_000_000
                    events: list[ChangeEvent] = list(envelopes.events(origin, t.key, "r", decoded, now_ms))
                    yield CommittedTx(offset, None, len(events), lambda ev=events: iter(ev))  # type: ignore[misc]
                    progress.advance(f"{db}.{table}", len(rows))
        conn.commit()
        progress.close()
    yield CommittedTx(st.offset(started), None, 0, lambda: iter(()), schemas=_history(reader))


# ------------------------------------------------------------------ incremental snapshots

_BYTES_KEY_TYPES = _BINARY_TYPES | {"bit"}   # key columns the text protocol returns as bytes
_UNREADABLE = (1054, 1146)   # unknown column, no such table: the definition changed under the read


def key_text(value: Any) -> str:
    """A key column's value as the context stores it (JSON text): bytes as hex, the rest as printed."""
    return value.hex() if isinstance(value, bytes) else str(value)


def key_parameter(c: ColumnDef, text: str) -> Any:
    """A stored key value as a query parameter of the column's own type, so that the server compares
    it as the column (an integer compared with a string would be compared as a double)."""
    if c.type in _INT_TYPES:
        return int(text)
    if c.type in _DECIMAL_TYPES:
        return Decimal(text)
    if c.type in _BYTES_KEY_TYPES:
        return bytes.fromhex(text)
    return text


def key_condition(cols: Sequence[str], op: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """``key > values`` or ``key <= values`` (`op`) for a key of `cols` (quoted), in key order, as ORs of
    equalities and one comparison: a form every MySQL and MariaDB range optimiser turns into a key range
    (a row constructor is not range-scanned by all of them)."""
    last = len(cols) - 1
    terms: list[str] = []
    params: list[Any] = []
    for i, c in enumerate(cols):
        cmp = op if i == last else op[0]   # before the last column, <= is <
        terms.append(" AND ".join([*(f"{p} = %s" for p in cols[:i]), f"{c} {cmp} %s"]))
        params += [*values[:i], values[i]]
    return "(" + " OR ".join(f"({t})" for t in terms) + ")", params


@dataclass(frozen=True, slots=True)
class _ChunkTable:
    """The table an incremental snapshot reads now."""

    name: str                    # db.table, as the context names it
    read: TableRead
    key_index: tuple[int, ...]   # the primary key's columns, as positions in the table (and the SELECT)
    estimate: int | None

    @property
    def ident(self) -> tuple[str, str]:
        return self.read.schema.db, self.read.schema.table

    def key_of(self, row: Sequence[Any]) -> inc.Key:
        return tuple(key_text(row[i]) for i in self.key_index)

    def key_sql(self) -> tuple[list[str], list[ColumnDef]]:
        cols = [self.read.schema.columns[i] for i in self.key_index]
        return [_quote(c.name) for c in cols], cols


class BinlogIncremental:
    """The binlog stream's incremental snapshots (see the module docstring); lives in the stream thread.

    The streamer reports each transaction's signal-table inserts (`on_signal_rows`), the keys it changed
    in the chunk's table (`touched`, while `chunk_table` names it), DDL statements (`on_ddl`), then its
    commit (`commit`); `between` does the I/O between transactions: it emits a closed chunk and opens
    the next one. Every unit's offset carries the context (`offset`).
    """

    def __init__(self, cfg: BinlogSourceConfig, flavor: str, state: inc.IncrementalState, stream: StreamState,
                 fetch_schema: Callable[[str, str], TableSchema | None]) -> None:
        from cdc.readers.mysql import encoding_modes

        assert cfg.signal_table is not None
        self.cfg, self.state, self.stream, self.fetch_schema = cfg, state, stream, fetch_schema
        self.modes = encoding_modes(cfg)
        self.envelopes = EnvelopeMaker(flavor, cfg.topic_prefix, cfg.tombstones_on_delete)
        self._insert = signal_insert_sql(*cfg.signal_table)
        self._conn: pymysql.Connection[Any] | None = None
        self._table: _ChunkTable | None = None
        # What the open transaction did, consumed at its commit.
        self.touched: list[bytes] = []
        self.signals: list[tuple[str, str, str | None]] = []
        self.marks: list[tuple[str, str]] = []
        self.chunk_table: tuple[str, str] | None = None   # (db, table) while a chunk is open: the hot path's test

    @property
    def active(self) -> bool:
        return self.state.ctx is not None

    def offset(self, base: SourceOffset) -> SourceOffset:
        return {**base, **self.state.offset()}

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(pymysql.Error, OSError):
                self._conn.close()
            self._conn = None

    # -- what the stream reports

    def on_signal_rows(self, rows: Sequence[Row]) -> None:
        """Rows inserted into the signal table: our watermarks, or signals (acted on at commit)."""
        for row in rows:
            values = list(row.values())
            sig_id, sig_type, data = ((row.get("id"), row.get("type"), row.get("data"))
                                      if {"id", "type", "data"} <= row.keys() else (values + [None] * 3)[:3])
            sid = sig_id if isinstance(sig_id, str) else ""
            typ = sig_type if isinstance(sig_type, str) else ""
            mark = inc.parse_window_signal(sid, typ)
            if mark is not None:
                self.marks.append(mark)
            else:
                self.signals.append((sid, typ, data if isinstance(data, str) else None))

    def on_ddl(self) -> None:
        """A DDL statement: an open chunk is abandoned (read again after it, with the new definition)."""
        if self.state.window is not None:
            log.info("connector %s: incremental snapshot of %s: a DDL statement arrived while a chunk was open; "
                     "the chunk is read again", self.cfg.name, self.state.window.table)
            self.state.window = None
        self._table = None
        self.chunk_table = None

    def commit(self) -> inc.ChunkWindow | None:
        """The open transaction committed: its changes drop keys of the chunk, its signals are acted on,
        its watermarks move the window. Returns the window its close row closed (to `between`)."""
        st = self.state
        closed: inc.ChunkWindow | None = None
        try:
            if st.window is not None and self.touched:
                st.window.on_commit(0, self.touched)   # commit order: no xid to compare (see ChunkWindow)
            if self.signals:
                st.on_signals(self.signals, self._captured)
            for kind, chunk_id in self.marks:
                closed = st.on_watermark(kind, chunk_id) or closed
        finally:
            self.touched.clear()
            self.signals.clear()
            self.marks.clear()
        self._track()
        return closed

    def between(self, base: SourceOffset, closed: inc.ChunkWindow | None) -> list[CommittedTx]:
        """Between transactions: the chunk `closed` as read events, then the next chunk opened (units that
        record a table skipped, empty or ended, too). `base` is the stream's offset here."""
        out = [] if closed is None else [self._emit(closed, base)]
        st = self.state
        while st.ctx is not None and st.window is None:
            ctx = st.ctx
            t = self._table
            if t is None or t.name != ctx.current or not ctx.started:
                found = self._load(ctx.current)
                if isinstance(found, str):
                    st.skip(found)
                    out.append(self._context_unit(base))
                    continue
                t = self._table = found
                if ctx.started:   # resumed from a stored offset, or after a DDL statement
                    st.progress.begin(ctx.current, t.estimate, ctx.rows)
            if not ctx.started:
                top = self._max_key(t)
                if top is None:
                    st.empty(t.estimate)
                    out.append(self._context_unit(base))
                    continue
                st.begin(top, t.estimate)
            if not self._read_chunk(t):
                if st.ctx is not None and st.window is None and self._table is t:
                    st.end_table()
                out.append(self._context_unit(base))
        self._track()
        return out

    # -- I/O

    def _connection(self) -> pymysql.Connection[Any]:
        if self._conn is None:
            self._conn = pymysql.connect(**self.cfg.connect_kwargs(), autocommit=True, conv=TEXT_ONLY)
            with self._conn.cursor() as cur:
                cur.execute("SET SESSION time_zone = '+00:00'")   # TIMESTAMP text as the initial snapshot reads it
        return self._conn

    def _captured(self) -> list[str]:
        with self._connection().cursor() as cur:
            return [f"{d}.{t}" for d, t, _ in _base_tables(cur) if self.cfg.table_included(d, t)]

    def _load(self, name: str) -> _ChunkTable | str:
        """The table `name` with what its chunks need, or why it cannot be read."""
        cfg, stream = self.cfg, self.stream
        db, _, table = name.partition(".")
        if not cfg.table_included(db, table):
            return "the table is no longer captured"
        if (db, table) in stream.stopped:
            return f"its capture is stopped ({stream.stopped[(db, table)]})"
        schema = stream.schemas.get((db, table)) or self.fetch_schema(db, table)
        if schema is None:
            return "the table is gone"
        pk = schema.primary_key
        if not pk:
            return ("the table has no primary key, which chunks are read by (Debezium's message.key.columns is "
                    "not supported)")
        if not all(cfg.column_included(db, table, c) for c in pk):
            return "a column of its primary key is excluded (column.exclude.list)"
        with self._connection().cursor() as cur:
            cur.execute("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND "
                        "TABLE_NAME = %s", (db, table))
            row = cur.fetchone()
        estimate = int(row[0]) if row and row[0] is not None else None
        return _ChunkTable(name, TableRead.of(cfg, self.modes, schema), tuple(schema.names.index(c) for c in pk),
                           estimate)

    def _max_key(self, t: _ChunkTable) -> inc.Key | None:
        """The table's largest primary key now (rows inserted later come from the stream)."""
        names, _ = t.key_sql()
        with self._connection().cursor() as cur:
            cur.execute(f"SELECT {', '.join(names)} FROM {_quote(t.ident[0])}.{_quote(t.ident[1])} "
                        f"ORDER BY {' DESC, '.join(names)} DESC LIMIT 1")
            row = cur.fetchone()
        return None if row is None else tuple(key_text(v) for v in row)

    def _watermark(self, cur: Any, kind: str, chunk_id: str) -> None:
        """INSERT (and, autocommit, commit) a watermark row: when this returns, every transaction before
        it in the binlog is visible (commit order, see the module docstring)."""
        sig_id, sig_type = inc.window_signal(kind, chunk_id)
        cur.execute(self._insert, (sig_id, sig_type, None))

    def _read_chunk(self, t: _ChunkTable) -> bool:
        """Open row, the next chunk of `t` after the context's last key (up to its maximum key), close row;
        opens the window and returns True, or False when no row is left (or the table cannot be read)."""
        st, size = self.state, self.cfg.incremental_snapshot_chunk_size
        ctx = st.ctx
        assert ctx is not None and ctx.max_key is not None
        names, cols = t.key_sql()
        where, params = key_condition(names, "<=", [key_parameter(c, v) for c, v in zip(cols, ctx.max_key,
                                                                                         strict=True)])
        if ctx.last_key is not None:
            after, first = key_condition(names, ">", [key_parameter(c, v) for c, v in zip(cols, ctx.last_key,
                                                                                           strict=True)])
            where, params = f"{after} AND {where}", first + params
        chunk_id = uuid.uuid4().hex
        with self._connection().cursor() as cur:
            self._watermark(cur, "low", chunk_id)
            try:
                cur.execute(f"{t.read.select} WHERE {where} ORDER BY {', '.join(names)} LIMIT {size}", params)
                rows = cur.fetchall()
                parts = {} if not rows else {orjson.dumps(_key(t, r)): r for r in map(t.read.codec.decode, rows)}
            except (pymysql.MySQLError, ValueError) as e:
                if isinstance(e, pymysql.MySQLError) and (not e.args or e.args[0] not in _UNREADABLE):
                    raise
                st.skip(f"it cannot be read with its known definition ({e}); send execute-snapshot again after "
                        "the schema change")
                self._table = None
                return False
            if not rows:
                return False
            self._watermark(cur, "high", chunk_id)
        st.window = inc.ChunkWindow(chunk_id, ctx.current, parts, t.key_of(rows[-1]), len(rows), len(rows) < size)
        return True

    # -- units

    def _emit(self, w: inc.ChunkWindow, base: SourceOffset) -> CommittedTx:
        """The closed window's remaining rows as read events, in a unit whose offset records the chunk as
        done (at the stream's position: nothing past it is claimed)."""
        t = self._table
        assert t is not None and t.name == w.table
        rows: list[Row] = [] if self.cfg.skipped("r") else list(w.rows.values())
        self.state.emitted(w, len(rows))
        now_ms = time.time_ns() // 1_000_000
        db, table = t.ident
        origin = Origin(db, table, t.read.topic, now_ms // 1000, 0, None, str(base["file"]), int(base["pos"]), None,
                        snapshot="incremental")
        events = list(self.envelopes.events(origin, t.read.key, "r", [(None, r) for r in rows], now_ms))
        return CommittedTx(self.offset(base), None, len(events), lambda: iter(events))

    def _context_unit(self, base: SourceOffset) -> CommittedTx:
        """An empty unit that stores the context as it now is (a table skipped, empty or ended)."""
        return CommittedTx(self.offset(base), None, 0, lambda: iter(()))

    def _track(self) -> None:
        t = self._table
        self.chunk_table = t.ident if self.state.window is not None and t is not None else None


def _key(t: _ChunkTable, row: Row) -> Mapping[str, Any]:
    key = t.read.key
    assert key is not None   # a chunked table has a primary key
    return key(row)
