"""MySQL/MariaDB source: consistent snapshot, then the row binlog, as whole committed transactions.

Lifecycle: `open()` connects, checks the binlog settings it cannot work without, loads the schema
history from the journal and decides where to start (`snapshot.mode` against the stored offset and the
binlog files the server still has: `initial`/`initial_only` without a completed snapshot, `when_needed`
also when the stored position is gone, `always` every start; `no_data` records only the schemas).
`changes()` yields `CommittedTx` units in commit order: the snapshot's chunks (see `mysqlsnapshot`),
then every transaction of the binlog from the snapshot's position or the stored offset.

Streaming: `mysql-replication`'s BinLogStreamReader speaks the protocol in a worker thread (it blocks),
with server heartbeats every second so the thread notices a stop even when the server is idle. The
thread assembles transactions (MariaDB's GTID event or a `BEGIN` query opens one, `XID` or a `COMMIT`
query closes it; a DDL statement is its own unit), decodes row images with our own `binlogrows`
decoder (the library only frames the events), serialises envelopes, holds a large transaction in a
SpillBuffer (memory-bounded, spilled to disk) and hands finished units over a bounded queue to the
event loop. The binlog holds only committed transactions, so nothing is ever delivered that rolled
back.

Positions: a unit's offset is the binlog file and the position after its last event, with the GTID
state reached there (MariaDB `domain-server-seq` list, or MySQL's executed GTID set); the journal
stores it with the unit's events, so a crash anywhere resumes at a transaction boundary (duplicates
possible, gaps never). Resuming uses file/position while the server still has that file, else the
GTID state (MariaDB `@slave_connect_state`, MySQL auto-position); `FLUSH BINARY LOGS` and server
restarts are rotations the stream follows.

Schemas: every table's definition comes from the versioned schema history (snapshot `SHOW CREATE
TABLE`, then each DDL statement of the binlog through `mysqlddl`), stored in the journal with the
offset it leads to, so rows are always read with the definition they were written under. A DDL
statement that cannot be parsed stops capture of the tables it touches (reported, and kept in the
history so it survives restarts); other tables go on.

Incremental snapshots (with `signal.data.collection`; see `mysqlsnapshot.BinlogIncremental` and
`cdc.readers.incremental`): the stream thread decodes the signal table's rows whether or not it is
captured (journaling them only if it is), acts on signals at their transaction's XID, and between
transactions reads chunks bounded by watermark rows it inserts into the signal table itself. The
snapshot's context rides in the offset of every unit yielded meanwhile, so `open` resumes it after a
crash, and `--stop-at-end` waits for it to finish.

Failure story: connection loss and server restarts raise `Transient` (the runner reconnects from the
journal's offset); a server without ROW binlogs, a purged start position without `when_needed`, a
missing signal table, and a row that cannot be decoded raise `SourceError`/`Permanent` naming the
table, column and position; a malformed signal is logged and skipped.
Passwords never reach a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import orjson
import pymysql

from cdc.config import BinlogSourceConfig
from cdc.errors import SourceError, Transient, classify
from cdc.readers import incremental as inc
from cdc.readers.base import CommittedTx, SchemaChange
from cdc.readers.binlogrows import (
    BinlogColumn,
    JsonPair,
    JsonRow,
    MyEncodingModes,
    RowDecoder,
    binlog_columns,
    event_span,
)
from cdc.readers.mysqlevents import EnvelopeMaker, Origin
from cdc.readers.mysqlschema import TableSchema
from cdc.readers.spill import SpillBuffer
from cdc.types import ChangeEvent, SourceOffset, make_change_event

if TYPE_CHECKING:   # mysqlsnapshot loads the DDL parser: imported when first needed
    from cdc.readers.mysqlsnapshot import BinlogIncremental

log = logging.getLogger(__name__)

_ROWS_EVENTS = {"WriteRowsEvent": "c", "UpdateRowsEvent": "u", "DeleteRowsEvent": "d"}
HEARTBEAT_S = 1.0          # server heartbeat period: how soon the stream thread notices a stop
BATCH_EVENTS = 5_000       # events the stream thread groups into one hand-off, at most
QUEUE_BATCHES = 4          # hand-offs waiting for the event loop, at most (bounded memory)
SPILL_EVENTS = 10_000      # events of one transaction held in memory before spilling to disk


def encoding_modes(cfg: BinlogSourceConfig) -> MyEncodingModes:
    return MyEncodingModes(decimal=cfg.decimal_handling_mode, time_precision=cfg.time_precision_mode,
                           binary=cfg.binary_handling_mode, bigint_unsigned=cfg.bigint_unsigned_handling_mode)


@dataclass(frozen=True, slots=True, order=True)
class BinlogPosition:
    """A binlog coordinate, ordered as the server orders them (file sequence number, then offset)."""

    file: str
    pos: int

    def key(self) -> tuple[int, int]:
        return int(self.file.rsplit(".", 1)[-1]), self.pos


def binlog_status(cur: Any) -> tuple[BinlogPosition, str | None] | None:
    """The server's current binlog position and executed GTID set (MySQL; None on MariaDB), or None
    without a binary log. MySQL 8.4 renamed SHOW MASTER STATUS to SHOW BINARY LOG STATUS."""
    try:
        cur.execute("SHOW MASTER STATUS")
    except pymysql.err.ProgrammingError:
        cur.execute("SHOW BINARY LOG STATUS")
    row = cur.fetchone()
    if row is None:
        return None
    return BinlogPosition(str(row[0]), int(row[1])), (str(row[4]) if len(row) > 4 and row[4] else None)


def position_reached(current: BinlogPosition, end: BinlogPosition) -> bool:
    return current.key() >= end.key()


@dataclass(slots=True)
class _TableReader:
    """What the stream needs to turn one table map's rows into events (rebuilt on each table map)."""

    schema: TableSchema
    topic: str
    decoder: RowDecoder
    captured: bool = True    # False: the signal table, read for its signals only
    signal: bool = False     # the signal table (signal.data.collection)


@dataclass(slots=True)
class StreamState:
    """The stream thread's position and schema knowledge, handed back when it ends."""

    position: BinlogPosition
    gtids: dict[str, str] = field(default_factory=dict)   # MariaDB domain -> domain-server-seq
    mysql_gtids: str | None = None                        # MySQL executed GTID set
    schemas: dict[tuple[str, str], TableSchema] = field(default_factory=dict)
    stopped: dict[tuple[str, str], str] = field(default_factory=dict)
    db_charsets: dict[str, str] = field(default_factory=dict)

    def gtid_text(self) -> str | None:
        if self.gtids:
            return ",".join(self.gtids[d] for d in sorted(self.gtids, key=int))
        return self.mysql_gtids

    def offset(self, ts_sec: int, snapshot_completed: bool = True) -> SourceOffset:
        out: SourceOffset = {"file": self.position.file, "pos": self.position.pos, "ts_sec": ts_sec}
        gtid = self.gtid_text()
        if gtid:
            out["gtids"] = gtid
        if not snapshot_completed:
            out["snapshot_completed"] = False
        return out


def history_entry(schema: TableSchema, ddl: str) -> SchemaChange:
    return (schema.db, schema.table, orjson.dumps(schema.to_json()).decode(), ddl)


def stopped_entry(db: str, table: str, reason: str) -> SchemaChange:
    return (db, table, orjson.dumps({"stopped": reason}).decode(), reason)


def load_history(entries: dict[tuple[str, str], str]) -> tuple[dict[tuple[str, str], TableSchema],
                                                              dict[tuple[str, str], str]]:
    """The journal's latest schema entries -> (schemas, stopped tables with their reason)."""
    schemas: dict[tuple[str, str], TableSchema] = {}
    stopped: dict[tuple[str, str], str] = {}
    for k, text in entries.items():
        d = orjson.loads(text)
        if "stopped" in d:
            stopped[k] = str(d["stopped"])
        else:
            schemas[k] = TableSchema.from_json(d)
    return schemas, stopped


class _Handoff:
    """A bounded queue from the stream thread to the event loop; `stop` makes both ends give up."""

    def __init__(self) -> None:
        self.q: queue.Queue[list[CommittedTx] | BaseException | None] = queue.Queue(QUEUE_BATCHES)
        self.stop = threading.Event()

    def put(self, item: list[CommittedTx] | BaseException | None) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _get(self) -> list[CommittedTx] | BaseException | None:
        # Polls so that a getter whose awaiting task was cancelled ends once `stop` is set, instead
        # of blocking the executor (and the process's exit) forever.
        while True:
            try:
                return self.q.get(timeout=0.2)
            except queue.Empty:
                if self.stop.is_set():
                    return None

    async def get(self) -> list[CommittedTx] | BaseException | None:
        return await asyncio.get_running_loop().run_in_executor(None, self._get)


class BinlogStreamer:
    """The stream thread's work: binlog events in, committed units out (runs in a worker thread)."""

    def __init__(self, cfg: BinlogSourceConfig, state: StreamState, server_id: int,
                 spill_dir: Any, end: BinlogPosition | None, flavor: str,
                 fetch_schema: Callable[[str, str], TableSchema | None],
                 incremental: BinlogIncremental | None = None) -> None:
        self.cfg = cfg
        self.state = state
        self.server_id = server_id
        self.spill_dir = spill_dir
        self.end = end
        self.flavor = flavor
        self.fetch_schema = fetch_schema
        self.modes = encoding_modes(cfg)
        self.envelopes = EnvelopeMaker(flavor, cfg.topic_prefix, cfg.tombstones_on_delete)
        self._tables: dict[int, _TableReader | None] = {}
        self._warned: set[tuple[str, str]] = set()
        self._out: _Handoff | None = None
        self.incremental = incremental

    def _stream(self, resume_gtid: bool) -> Any:
        from pymysqlreplication import BinLogStreamReader
        from pymysqlreplication.event import (
            GtidEvent,
            HeartbeatLogEvent,
            MariadbGtidEvent,
            QueryEvent,
            RotateEvent,
            XidEvent,
        )
        from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

        st = self.state
        kw: dict[str, Any] = {}
        if resume_gtid:
            kw["auto_position"] = st.gtid_text()
            kw["is_mariadb"] = self.flavor == "mariadb"
        else:
            kw["log_file"] = st.position.file
            kw["log_pos"] = st.position.pos
        return BinLogStreamReader(
            connection_settings=self.cfg.connect_kwargs(), server_id=self.server_id, resume_stream=True,
            blocking=True, slave_heartbeat=HEARTBEAT_S, enable_logging=False, use_column_name_cache=True,
            only_events=[QueryEvent, XidEvent, RotateEvent, GtidEvent, MariadbGtidEvent, HeartbeatLogEvent,
                         WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent], **kw)

    def run(self, out: _Handoff, resume_gtid: bool) -> None:
        """Stream until `out.stop`, the end position (stop-at-end) or an error (handed over)."""
        self._out = out
        try:
            stream = self._stream(resume_gtid)
            try:
                self._loop(stream, out)
            finally:
                stream.close()
                if self.incremental is not None:
                    self.incremental.close()
        except BaseException as e:
            out.put(e)
            return
        out.put(None)

    def _loop(self, stream: Any, out: _Handoff) -> None:
        st = self.state
        cfg = self.cfg
        batch: list[CommittedTx] = []
        batch_events = 0
        tx: SpillBuffer | None = None
        tx_gtid: str | None = None
        tx_schemas: list[SchemaChange] = []
        thread: int | None = None
        ts_sec = 0
        now_ms = time.time_ns() // 1_000_000
        # gtid.source.filter.dml.events: changes of transactions from unwanted GTID sources are skipped
        filter_dml = cfg.gtid_source_filter_dml_events and bool(
            cfg.gtid_source_includes or cfg.gtid_source_excludes)
        skip_dml = False
        incr = self.incremental

        def flush() -> bool:
            nonlocal batch, batch_events
            if batch and not out.put(batch):
                return False
            batch, batch_events = [], 0
            return True

        def finish(buf: SpillBuffer | None) -> bool:
            """End the open unit (a transaction, or a DDL statement); False: stop streaming."""
            nonlocal batch_events
            self._end_tx(stream, tx_gtid)
            count = 0 if buf is None else buf.count
            closed = incr.commit() if incr is not None else None   # its signals count in its own offset
            batch.append(_unit(self._offset(ts_sec), buf, count, list(tx_schemas)))
            batch_events += count
            tx_schemas.clear()
            between(closed)
            return self._after_commit(stream, batch_events, flush)

        def between(closed: inc.ChunkWindow | None) -> None:
            """No transaction open: an incremental snapshot may emit a chunk and open the next one."""
            nonlocal batch_events
            if incr is not None and (closed is not None or incr.active):
                units = incr.between(st.offset(ts_sec), closed)
                batch.extend(units)
                batch_events += sum(u.count for u in units)

        for ev in stream:
            if out.stop.is_set():
                return
            name = type(ev).__name__
            if name in _ROWS_EVENTS:
                if tx is None:
                    tx = SpillBuffer(self.spill_dir, SPILL_EVENTS)
                ts_sec = ev.timestamp
                if not skip_dml:
                    self._rows(ev, _ROWS_EVENTS[name], tx, tx_gtid, thread, now_ms)
            elif name == "XidEvent":
                ts_sec = ev.timestamp
                buf, tx = tx, None
                if not finish(buf):
                    return
            elif name == "MariadbGtidEvent":
                now_ms = time.time_ns() // 1_000_000
                tx_gtid, ts_sec = ev.gtid, ev.timestamp
                skip_dml = filter_dml and not self.wanted_gtid(ev.gtid)
                if not ev.flags & 1:     # FL_STANDALONE unset: a transaction follows (BEGIN implied)
                    tx, thread = SpillBuffer(self.spill_dir, SPILL_EVENTS), None
            elif name == "GtidEvent":
                tx_gtid = ev.gtid
                skip_dml = filter_dml and not self.wanted_gtid(ev.gtid)
            elif name == "QueryEvent":
                ts_sec = ev.timestamp
                q = ev.query
                if q == "BEGIN":
                    now_ms = time.time_ns() // 1_000_000
                    tx = tx or SpillBuffer(self.spill_dir, SPILL_EVENTS)
                    thread = ev.slave_proxy_id
                    continue
                if q != "COMMIT":    # COMMIT ends a non-transactional engine's group
                    db = ev.schema.decode() if isinstance(ev.schema, bytes) else str(ev.schema or "")
                    tx_schemas.extend(self._ddl(q, db))
                    if incr is not None:
                        incr.on_ddl()
                    if tx is not None:
                        continue
                # a COMMIT, or a DDL statement outside a transaction: a unit of its own
                buf, tx = tx, None
                if not finish(buf):
                    return
            elif name == "RotateEvent":
                if tx is not None and ev.timestamp == 0:
                    # The library reconnected by itself in the middle of a transaction; its table
                    # maps may be gone. Start again from the last stored position instead.
                    raise Transient("binlog stream reconnected inside a transaction; resuming from the "
                                    "last stored position")
                st.position = BinlogPosition(ev.next_binlog, ev.position)
                self._tables.clear()
            elif name == "HeartbeatLogEvent":
                if tx is None:
                    between(None)
                at_end = self._at_end(stream)
                if tx is None and (batch or at_end) and (not flush() or at_end):
                    return
        flush()

    def _offset(self, ts_sec: int) -> SourceOffset:
        """The stream's offset here, with a running incremental snapshot's context."""
        offset = self.state.offset(ts_sec)
        return offset if self.incremental is None else self.incremental.offset(offset)

    def _rows(self, ev: Any, op: str, tx: SpillBuffer, gtid: str | None, thread: int | None, now_ms: int) -> None:
        """Decode one rows event into the open transaction's buffer (the hot path: row images and keys
        straight to JSON in C, envelopes around them, plain records; no dict or ChangeEvent per row).
        The signal table's inserts and the keys changed in an incremental snapshot's open chunk go to
        `self.incremental` (keys even of skipped operations: the chunk must not overtake them)."""
        incr = self.incremental
        skipped = self.cfg.skipped(op)
        if skipped and incr is None:
            return
        reader = self._table_reader(ev)
        if reader is None:
            return
        data, start, end = event_span(ev)
        schema = reader.schema
        if reader.signal and op == "c" and incr is not None:
            incr.on_signal_rows(reader.decoder.write_rows(data, start, end, ev.columns_present_bitmap))
        chunk = incr is not None and incr.chunk_table is not None and incr.chunk_table == (schema.db, schema.table)
        if not reader.captured or (skipped and not chunk):
            return
        pos = ev.packet.log_pos - ev.packet.event_size
        origin = Origin(schema.db, schema.table, reader.topic, ev.timestamp, ev.packet.server_id, gtid,
                        self.state.position.file, pos, thread)
        dec = reader.decoder
        try:
            if op == "c":
                rows: list[JsonRow] | list[JsonPair] = dec.write_rows_json(data, start, end, ev.columns_present_bitmap)
            elif op == "u":
                rows = dec.update_rows_json(data, start, end, ev.columns_present_bitmap, ev.columns_present_bitmap2)
            else:
                rows = dec.delete_rows_json(data, start, end, ev.columns_present_bitmap)
        except ValueError as e:
            raise SourceError(f"connector '{self.cfg.name}': cannot decode a row of {schema.db}.{schema.table} "
                              f"at {self.state.position.file}:{pos}: {e}") from e
        if chunk:
            assert incr is not None
            touched = incr.touched
            if op == "u":
                for _, _, old, new in cast("list[JsonPair]", rows):
                    touched.extend(k for k in (old, new) if k is not None)
            else:
                touched.extend(k for _, k in cast("list[JsonRow]", rows) if k is not None)
            if skipped:
                return
        append = tx.append
        for topic, key, value in self.envelopes.events_json(origin, op, rows, now_ms):
            append((0, topic, key, value))

    def _at_end(self, stream: Any) -> bool:
        if self.end is None or (self.incremental is not None and self.incremental.active):
            return False   # --stop-at-end lets a running incremental snapshot finish
        pos = BinlogPosition(stream.log_file, stream.log_pos)
        return position_reached(pos, self.end)

    def _after_commit(self, stream: Any, batch_events: int, flush: Callable[[], bool]) -> bool:
        """Hand the batch over when it is large, the loop is idle, or the end is reached; False = stop."""
        at_end = self._at_end(stream)
        if (batch_events >= BATCH_EVENTS or at_end or self._idle()) and not flush():
            return False
        return not at_end

    def _idle(self) -> bool:
        # The event loop waits for work: hand over now rather than batch for throughput.
        return self._out is None or self._out.q.empty()

    def _end_tx(self, stream: Any, gtid: str | None) -> None:
        st = self.state
        st.position = BinlogPosition(stream.log_file, stream.log_pos)
        if gtid is None:
            return
        if not self.wanted_gtid(gtid):
            return
        if self.flavor == "mariadb":
            st.gtids[gtid.split("-", 1)[0]] = gtid
        else:
            from pymysqlreplication.gtid import Gtid, GtidSet

            s = GtidSet(st.mysql_gtids or "")
            s += Gtid(gtid)
            st.mysql_gtids = str(s)

    def wanted_gtid(self, gtid: str) -> bool:
        """Whether a transaction's GTID comes from a source gtid.source.includes/excludes admit
        (MariaDB: its domain-server pair; MySQL: its server UUID)."""
        source = gtid.rsplit("-", 1)[0] if self.flavor == "mariadb" else gtid.split(":", 1)[0]
        return self.cfg.gtid_source_wanted(source)

    def _ddl(self, sql: str, db: str) -> list[SchemaChange]:
        st = self.state
        from cdc.readers import mysqlddl  # sqlglot's tokenizer: loaded with the first DDL statement

        result = mysqlddl.apply_ddl(sql, db or None, st.schemas, st.db_charsets)
        changes: list[SchemaChange] = []
        for (d, t), schema in result.changed.items():
            st.schemas[(d, t)] = schema
            st.stopped.pop((d, t), None)
            if self.cfg.table_included(d, t):
                changes.append(history_entry(schema, sql))
        for d, t in result.dropped:
            st.schemas.pop((d, t), None)
            st.stopped.pop((d, t), None)
            changes.append((d, t, None, sql))
        st.db_charsets.update(result.db_charsets)
        for d, t, message in result.failed:
            if not self.cfg.table_included(d, t):
                continue
            st.stopped[(d, t)] = message
            st.schemas.pop((d, t), None)
            log.error("connector %s: capture of %s.%s stops: %s", self.cfg.name, d, t, message)
            changes.append(stopped_entry(d, t, message))
        if changes or result.dropped:
            self._tables.clear()
        return changes

    def _table_reader(self, ev: Any) -> _TableReader | None:
        tid = ev.table_id
        if tid in self._tables:
            return self._tables[tid]
        tm = ev.table_map.get(tid)
        reader: _TableReader | None = None
        if tm is not None:
            cols = binlog_columns(tm.columns)
            if not getattr(tm, "column_name_flag", False):
                # No row metadata: the library filled names from today's catalog, not the binlog's.
                cols = tuple(dataclasses.replace(c, name=None) for c in cols)
            reader = self._build_reader(tm.schema, tm.table, cols)
        self._tables[tid] = reader
        return reader

    def _build_reader(self, db: str, table: str, columns: tuple[BinlogColumn, ...]) -> _TableReader | None:
        cfg = self.cfg
        key = (db, table)
        captured = cfg.table_included(db, table)
        signal = self.incremental is not None and key == cfg.signal_table
        if not captured and not signal:
            return None
        st = self.state
        if captured and key in st.stopped:
            if key not in self._warned:
                self._warned.add(key)
                log.error("connector %s: skipping changes of %s.%s: %s", cfg.name, db, table, st.stopped[key])
            return None
        schema = st.schemas.get(key)
        if schema is None:
            # A table the history does not know (created before the history began, outside the
            # include list at the time): read its definition now and say so.
            schema = self.fetch_schema(db, table)
            if schema is None:
                raise SourceError(f"connector '{cfg.name}': no definition known for {db}.{table} and the "
                                  "table no longer exists; take a new snapshot (snapshot.mode=always)")
            if captured:   # an uncaptured signal table is never in the history
                log.warning("connector %s: %s.%s was not in the schema history; using its current definition",
                            cfg.name, db, table)
            st.schemas[key] = schema
        included = [not captured or cfg.column_included(db, table, c.name) for c in schema.columns]
        pk = [c for c in schema.primary_key if not captured or cfg.column_included(db, table, c)]
        try:
            decoder = RowDecoder(schema, columns, self.modes, included, key=pk)
        except ValueError as e:
            raise SourceError(f"connector '{cfg.name}': {e}") from e
        return _TableReader(schema, f"{cfg.topic_prefix}.{db}.{table}", decoder, captured, signal)


def _unit(offset: SourceOffset, buf: SpillBuffer | None, count: int, schemas: list[SchemaChange]) -> CommittedTx:
    if buf is None or count == 0:
        if buf is not None:
            buf.close()
        return CommittedTx(offset, None, 0, lambda: iter(()), schemas=schemas)

    def events() -> Iterator[ChangeEvent]:
        for _, topic, key, value in buf:
            yield make_change_event(topic, key, value)
    return CommittedTx(offset, None, count, events, _release=buf.close, schemas=schemas)


class BinlogReader:
    """A MySqlConnector / MariaDbConnector source (see the module docstring)."""

    def __init__(self, cfg: BinlogSourceConfig, spill_dir: Any,
                 history: Callable[[], dict[tuple[str, str], str]]) -> None:
        self.cfg = cfg
        self.spill_dir = spill_dir
        self._history = history
        self.stop_at_end = False
        self.end: BinlogPosition | None = None
        self._offset: SourceOffset | None = None
        self._state: StreamState | None = None
        self._do_snapshot = False
        self._schema_only = False
        self._stream_after = True
        self._resume_gtid = False
        self._flavor = "mysql"
        self._handoff: _Handoff | None = None
        self._thread: threading.Thread | None = None
        self._incr = inc.IncrementalState(cfg.name, cfg.incremental_snapshot_chunk_size)

    # ------------------------------------------------------------------ incremental snapshots

    def incremental_progress(self) -> dict[str, tuple[int, int | None]]:
        """Per table of the incremental snapshots this reader ran or runs: (rows emitted so far, the
        server's estimate of its rows or None when unknown), as PostgresReader reports them."""
        return self._incr.progress.snapshot()

    @property
    def incremental_pending(self) -> tuple[str, ...]:
        """The tables the running incremental snapshot still has to read, the current one first."""
        return self._incr.pending

    def _check_signal_table(self, cur: Any) -> None:
        """With signal.data.collection set, the signal table must exist (signals and watermarks are its
        rows). MySQL must commit in binlog order for the chunks' reads to be ordered (see mysqlsnapshot)."""
        cfg, sig = self.cfg, self.cfg.signal_table
        if sig is None:
            if self._incr.ctx is not None:
                self._incr.abandon("signal.data.collection is no longer set")
            return
        cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", sig)
        row = cur.fetchone()
        if not row or not row[0]:
            name = cfg.signal_data_collection
            raise SourceError(f"connector '{cfg.name}': the signal table {name} (signal.data.collection) does not "
                              f"exist; create it: {inc.SIGNAL_TABLE_DDL.format(table=name)}")
        if self._flavor == "mysql":
            cur.execute("SELECT @@GLOBAL.binlog_order_commits")
            order = cur.fetchone()
            if order is not None and str(order[0]) in ("0", "OFF"):
                log.warning("connector %s: binlog_order_commits is OFF: an incremental snapshot chunk may then "
                            "miss a change committed just before it and emit an older row; set it ON", cfg.name)

    # ------------------------------------------------------------------ opening

    def _connect(self) -> pymysql.Connection[Any]:
        return pymysql.connect(**self.cfg.connect_kwargs(), autocommit=True)

    async def open(self, offset: SourceOffset | None) -> None:
        try:
            await asyncio.to_thread(self._open, offset)
        except pymysql.Error as e:
            raise classify(e) from e

    def _open(self, offset: SourceOffset | None) -> None:
        cfg = self.cfg
        self._offset = offset
        self._incr.resume(offset)
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT @@version, @@log_bin, @@binlog_format, @@binlog_row_image")
            row = cur.fetchone()
            assert row is not None
            version, log_bin, fmt, image = row
            self._flavor = "mariadb" if "mariadb" in str(version).lower() else "mysql"
            if str(log_bin) not in ("1", "ON"):
                raise SourceError(f"connector '{cfg.name}': the server's binary log is off; start it with "
                                  "log_bin (and binlog_format=ROW, binlog_row_image=FULL)")
            if str(fmt).upper() != "ROW":
                raise SourceError(f"connector '{cfg.name}': binlog_format is {fmt}; row changes need "
                                  "binlog_format=ROW (SET GLOBAL binlog_format=ROW, and in the server config)")
            if str(image).upper() != "FULL":
                raise SourceError(f"connector '{cfg.name}': binlog_row_image is {image}; whole row images need "
                                  "binlog_row_image=FULL")
            cur.execute("SHOW BINARY LOGS")
            files = [str(r[0]) for r in cur.fetchall()]
            status = binlog_status(cur)
            if status is None:
                raise SourceError(f"connector '{cfg.name}': the server reports no binlog position; is the "
                                  "binary log enabled?")
            current, _ = status
            self.end = current
            cur.execute("SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA")
            charsets = {str(d): str(c) for d, c in cur.fetchall()}
            self._check_signal_table(cur)

            schemas, stopped = load_history(self._history())
            mode = cfg.snapshot_mode
            done = bool(offset and offset.get("snapshot_completed", True))
            have_pos = bool(offset and "file" in offset and offset.get("snapshot_completed", True))
            file_kept = bool(have_pos and offset and offset["file"] in files)
            gtid_resume = bool(have_pos and not file_kept and offset and offset.get("gtids")
                               and not self._gtid_gap(cur, files[0] if files else None, str(offset["gtids"])))
            if mode == "always":
                need = True
            elif mode in ("initial", "initial_only"):
                need = not done
            elif mode == "when_needed":
                need = not done or (have_pos and not file_kept and not gtid_resume)
            else:
                need = False
            if have_pos and not file_kept and not need and not gtid_resume and offset is not None:
                gtids = f" and its GTID state {offset['gtids']} is older than the oldest binlog's" \
                    if offset.get("gtids") else ""
                raise SourceError(
                    f"connector '{cfg.name}': the binlog file {offset['file']} holding the stored position is "
                    f"no longer on the server (it has {files[0] if files else 'none'} to {current.file}){gtids}; "
                    "changes since then are lost to this connector. Take a new snapshot: set "
                    "snapshot.mode=when_needed (or always) and restart")
            self._do_snapshot = need
            self._stream_after = mode != "initial_only"
            self._schema_only = not need and not have_pos
            self._resume_gtid = gtid_resume and not need
            if need or self._schema_only:
                # The snapshot (or a schema-only read) fixes the starting position itself.
                self._state = StreamState(current, db_charsets=charsets)
                return
            assert offset is not None
            state = StreamState(BinlogPosition(str(offset["file"]), int(offset["pos"])), schemas=schemas,
                                stopped=stopped, db_charsets=charsets)
            gt = offset.get("gtids")
            if gt and self._flavor == "mariadb":
                state.gtids = {g.split("-", 1)[0]: g for g in str(gt).split(",") if g}
            elif gt:
                state.mysql_gtids = str(gt)
            self._state = state
            if self._resume_gtid:
                log.warning("connector %s: binlog file %s is gone; resuming from GTID state %s", cfg.name,
                            offset["file"], gt)

    def _gtid_gap(self, cur: Any, oldest: str | None, stored: str) -> bool:
        """Whether transactions after the stored GTID state were purged (MariaDB: compared with the
        GTID list that opens the oldest binlog file). MySQL's auto-position reports a gap itself."""
        if self._flavor != "mariadb" or oldest is None:
            return False
        cur.execute(f"SHOW BINLOG EVENTS IN '{oldest}' LIMIT 4")
        listed = next((str(r[5]) for r in cur.fetchall() if str(r[2]) == "Gtid_list"), "[]")
        have = {d: int(n) for d, _, n in (g.split("-") for g in stored.split(",") if g)}
        for g in listed.strip("[]").split(","):
            if g.strip():
                d, _, n = g.strip().split("-")
                if have.get(d, 0) < int(n):
                    return True
        return False

    def fetch_schema(self, db: str, table: str) -> TableSchema | None:
        """The current definition of a table from the live catalog (None if it does not exist)."""
        st = self._state
        with self._connect() as conn, conn.cursor() as cur:
            try:
                cur.execute(f"SHOW CREATE TABLE `{db.replace('`', '``')}`.`{table.replace('`', '``')}`")
            except pymysql.err.ProgrammingError:
                return None
            row = cur.fetchone()
            if row is None:
                return None
            charset = st.db_charsets.get(db) if st else None
            from cdc.readers import mysqlddl

            return mysqlddl.parse_create_table(str(row[1]), db, charset)

    async def close(self) -> None:
        if self._handoff is not None:
            self._handoff.stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    def confirm(self, lsn: int) -> None:
        """Nothing to do: the binlog position is stored in the journal with the events."""

    # ------------------------------------------------------------------ changes

    async def changes(self) -> AsyncIterator[CommittedTx]:
        from cdc.readers.mysqlsnapshot import schema_only, snapshot

        st = self._state
        assert st is not None
        if self._do_snapshot or self._schema_only:
            gen = snapshot if self._do_snapshot else schema_only
            async for unit in self._in_thread(lambda h: gen(self, h)):
                yield unit
        if not self._stream_after:
            return
        if (self.stop_at_end and self.end is not None and position_reached(st.position, self.end)
                and self._incr.ctx is None):
            return
        incr: BinlogIncremental | None = None
        if self.cfg.signal_table is not None:
            from cdc.readers.mysqlsnapshot import BinlogIncremental

            incr = BinlogIncremental(self.cfg, self._flavor, self._incr, st, self.fetch_schema)
        streamer = BinlogStreamer(self.cfg, st, self.cfg.database_server_id, self.spill_dir,
                                  self.end if self.stop_at_end else None, self._flavor, self.fetch_schema, incr)
        resume_gtid = self._resume_gtid
        async for unit in self._in_thread(lambda h: streamer.run(h, resume_gtid)):
            yield unit

    async def _in_thread(self, work: Callable[[_Handoff], None]) -> AsyncIterator[CommittedTx]:
        """Run `work` in a thread; yield the units it hands over until it hands over None."""
        h = self._handoff = _Handoff()
        t = self._thread = threading.Thread(target=work, args=(h,), name=f"binlog-{self.cfg.name}", daemon=True)
        t.start()
        try:
            while True:
                item = await h.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    err = classify(item) if isinstance(item, Exception) else item
                    if err is item:
                        raise item
                    raise err from item
                for unit in item:
                    yield unit
        finally:
            h.stop.set()
            with contextlib.suppress(queue.Empty):
                while True:   # release what the thread handed over but nobody will append
                    left = h.q.get_nowait()
                    if isinstance(left, list):
                        for unit in left:
                            unit.release()
            await asyncio.to_thread(t.join)
            self._thread = None
