"""PostgreSQL source: slot and publication set-up, consistent snapshot, pgoutput streaming.

Lifecycle: `open()` connects (a normal connection for catalog queries and a `replication=database`
one for the stream), checks the server, creates or reuses the publication
(`publication.autocreate.mode`) and the slot, and decides whether to snapshot (`snapshot.mode`
against the stored offset and the slot: `initial`/`initial_only` without a completed snapshot,
`when_needed` also when the slot is gone, `always` every start). A snapshot taken with a new slot reads
what that slot exports (exact hand-over); one taken while a slot exists (a crash mid-snapshot,
`always`) reads the current state and streaming then resumes from the slot's confirmed position, so
changes in between come twice but none, deletes included, is lost. `initial_only`'s slot is temporary,
so a snapshot-only connector leaves nothing pinning WAL. `changes()` then yields `CommittedTx` batches
in commit order: first the snapshot, read in chunks inside the transaction snapshot the slot exported
(so streaming starts exactly where the snapshot ends: no gap, no overlap), then every committed
transaction from the stream.
Protocol v2 streaming is on (PostgreSQL 14+), so a transaction larger than `logical_decoding_work_mem`
arrives in chunks while still in progress; its changes wait in a SpillBuffer (memory-bounded, spilled
to disk) and reach the journal only at its stream commit, or vanish at its abort.

Incremental snapshots (`cdc.readers.incremental` holds the pure part): inserts into the signal table
(`signal.data.collection`, which must be published) are signals, acted on at their transaction's
commit. While one runs, the stream loop -- between transactions -- writes a low watermark, reads a
chunk of the current table by primary key on the normal connection, writes a high watermark, and keeps
streaming; changes of the chunk's keys committed meanwhile drop them from the chunk, and at the high
watermark the rest is yielded as read events in a unit of its own. The snapshot's context rides in the
offset of every unit yielded meanwhile, so `open` resumes it after a crash.

Hot path: each row change goes through `pgfast.encode_part` (C where built), which returns the row
images and keys as Debezium JSON -- for the usual change already as the parts the transaction buffers;
the dict path (`RowCodec`) serves the snapshot and updates carrying unchanged TOAST values, which are
filled from the old image or the last value recorded.

Offsets: the pipeline calls `confirm(lsn)` after the journal made a transaction durable; only then is
that LSN reported to the server as flushed. A crash at any point resumes from the journal's offset and
the server re-sends everything after it (duplicates possible, gaps never). A snapshot interrupted by a
crash is taken again from the start, and streaming still begins at the slot's original position.

Failure story: connection problems raise `Transient` (the runner reconnects with backoff); missing
privileges, `wal_level` not `logical`, a missing publication under `disabled`, a slot held by another
process (`SlotInUse`), a signal table that is missing or not published raise `SourceError` with what to
do; a malformed signal is logged and skipped. Passwords never reach a message: only
masked config is ever formatted.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
import psycopg
from psycopg import sql
from psycopg.types.string import TextLoader

from cdc.config import PostgresSourceConfig
from cdc.errors import SourceError, classify
from cdc.readers import incremental as inc
from cdc.readers import pgfast
from cdc.readers import pgoutput as po
from cdc.readers.base import CommittedTx
from cdc.readers.pgevents import KeyFn, Parts, TxInfo, assemble, change_parts, key_function
from cdc.readers.pgstream import ReplicationStream
from cdc.readers.pgtypes import TYPE_CATALOG_SQL, EncodingModes, RowCodec, TypeInfo
from cdc.readers.progress import SnapshotProgress
from cdc.readers.spill import SpillBuffer
from cdc.types import ChangeEvent, SourceOffset

log = logging.getLogger(__name__)

UNAVAILABLE = "__debezium_unavailable_value"   # Debezium's unavailable.value.placeholder
TOAST_MIN = 256          # values at least this long are remembered to fill unchanged-TOAST columns
TOAST_CACHE_SIZE = 50_000
MAX_TOAST_PER_TX = 100_000
BUILTIN_OID_LIMIT = 10_000   # oids below this are built-in types pgtypes knows without a lookup
# Built-in fixed-length types: never stored out of line (TOAST), so never worth remembering.
FIXED_LENGTH_OIDS = frozenset({16, 18, 20, 21, 23, 26, 700, 701, 790, 1082, 1083, 1114, 1184, 1186, 1266, 2950})


class SlotInUse(SourceError):
    """The replication slot is held by another connection (another bridge, or our own lost one)."""


@dataclass(slots=True)
class TableState:
    """What the stream needs to turn a relation's tuples into events (rebuilt on each Relation)."""

    topic: str
    schema: str
    table: str
    included: bool
    codec: RowCodec | None
    pk: tuple[str, ...]
    key: KeyFn | None                # compiled row -> primary-key dict
    spec: pgfast.Spec | None         # for the C encoder of row changes
    toast_columns: tuple[str, ...]   # included columns whose values can be TOASTed (text-like, bytea, ...)


@dataclass(slots=True)
class _OpenTx:
    xid: int
    commit_time_us: int
    buffer: SpillBuffer
    toast: list[tuple[str, bytes, str, str]] = field(default_factory=list)
    touched: list[bytes] = field(default_factory=list)   # keys of the open chunk's table it changed
    signals: list[tuple[str, str, str | None]] = field(default_factory=list)  # (id, type, data) rows


@dataclass(frozen=True, slots=True)
class _SnapshotTable:
    """A table as both snapshots read it: its columns (attribute order) and its event state."""

    oid: int
    schema: str
    table: str
    columns: list[tuple[str, int, int]]
    state: TableState

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    def select(self) -> sql.Composed:
        return sql.SQL("SELECT {} FROM ONLY {}").format(
            sql.SQL(", ").join(sql.Identifier(n) for n, _, _ in self.columns), sql.Identifier(self.schema, self.table))


@dataclass(frozen=True, slots=True)
class _IncrementalTable:
    """The table an incremental snapshot reads now: its primary key's column positions in `snap.columns`."""

    snap: _SnapshotTable
    key_index: tuple[int, ...]
    estimate: int


@dataclass(frozen=True, slots=True)
class SlotHealth:
    """The replication slot as the server sees it (pg_replication_slots), for warnings and metrics."""

    wal_status: str             # reserved | extended | unreserved | lost
    safe_wal_size: int | None   # bytes that can still be written before the slot is in danger (None: no limit)
    retained_bytes: int         # WAL the slot keeps: current WAL LSN - restart_lsn


class PostgresReader:
    """Reads one PostgreSQL database's changes for one connector config."""

    def __init__(self, cfg: PostgresSourceConfig, spill_dir: Path,
                 toast_lookup: Callable[[str, bytes, str], str | None] | None = None) -> None:
        self.cfg = cfg
        self.spill_dir = spill_dir
        self.modes = EncodingModes(decimal=cfg.decimal_handling_mode, time_precision=cfg.time_precision_mode,
                                   binary=cfg.binary_handling_mode, interval=cfg.interval_handling_mode)
        self._toast_lookup = toast_lookup
        self._skip = cfg.skipped_operations
        self._toast_cache: dict[tuple[str, bytes, str], str] = {}
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._repl: psycopg.AsyncConnection[Any] | None = None
        self._stream: ReplicationStream | None = None
        self._types: dict[int, TypeInfo] = {}
        self._tables: dict[int, TableState] = {}
        self._specs: dict[int, pgfast.Spec] = {}   # rel oid -> encoder spec, for included tables
        self._offset: SourceOffset | None = None
        self._snapshot_name: str | None = None
        self._consistent_lsn: int | None = None
        self._do_snapshot = False
        self._stream_after = False
        self._flushed = 0          # durable in the journal: the only LSN we report as flushed
        self._reported = -1
        self._last_status = 0.0
        self._last_commit_lsn: int | None = None
        self._last_yielded = 0     # end LSN of the last transaction handed to the pipeline
        self._idle_lsn = 0         # a keepalive's wal_end seen while nothing was in flight
        self._last_activity = time.monotonic()  # last commit streamed, or heartbeat written
        self._last_slot_check = 0.0
        self.slot_health: SlotHealth | None = None
        self.end_lsn: int | None = None
        self.stop_at_end = False
        # Incremental snapshots: the state (context, open chunk, progress), the table read now, the open
        # chunk's table oid for the hot path's one comparison (-1: no chunk open), the signal table's oid
        # and column positions.
        self._incr = inc.IncrementalState(cfg.name, cfg.incremental_snapshot_chunk_size)
        self._incr_table: _IncrementalTable | None = None
        self._chunk_rel = -1
        self._signal_oid = -1
        self._signal_cols: tuple[int, int, int] = (0, 1, 2)
        self._tx_offset: SourceOffset = {}    # the last streamed transaction's offset (chunks reuse it)

    # ------------------------------------------------------------------ set-up

    async def open(self, offset: SourceOffset | None) -> None:
        cfg = self.cfg
        self._offset = offset
        self._incr.resume(offset)
        try:
            self._conn = await psycopg.AsyncConnection.connect(cfg.conninfo(), autocommit=True)
            await self._check_server()
            await self._ensure_publication()
            await self._check_signal_table()
            slot = await self._slot_info()
            if slot is not None and slot["active_pid"] is not None:
                raise SlotInUse(self._slot_in_use(slot["active_pid"]))
            mode = cfg.snapshot_mode
            done = bool(offset and offset.get("snapshot_completed", True))
            lsn_known = bool(offset and "lsn" in offset)
            if mode == "always":
                need = True
            elif mode in ("initial", "initial_only"):
                need = not done
            elif mode == "when_needed":
                # Not "slot ahead of the offset": the reader itself confirms past the last journaled
                # transaction while idle (keepalives), so that is the normal state of an idle slot.
                need = not done or slot is None
            else:  # no_data / never
                need = False
            self._do_snapshot = need
            self._stream_after = mode != "initial_only"
            self._repl = await psycopg.AsyncConnection.connect(cfg.conninfo(replication=True), autocommit=True)
            if need and slot is None:
                # The reads use the snapshot a fresh slot exports, so that streaming starts exactly where
                # the snapshot ends. A snapshot-only connector's slot is temporary: it must not pin WAL.
                await self._create_slot(export=True, temporary=not self._stream_after)
            elif need and slot is not None:
                # An existing slot still holds every change since its confirmed position (a crash
                # mid-snapshot, `always`): keep it, read a new snapshot, then stream from that position.
                # The overlap repeats changes the snapshot already shows (at-least-once); dropping the
                # slot instead would lose the deletes made meanwhile, leaving those rows in every
                # consumer that saw an earlier snapshot.
                self._snapshot_name = None
                self._consistent_lsn = slot["confirmed"]
            elif slot is None and self._stream_after:
                if lsn_known:
                    log.warning("connector %s: slot %s is gone; changes since the stored offset that it "
                                "held are lost (snapshot.mode=when_needed takes a new snapshot instead)",
                                cfg.name, cfg.slot_name)
                await self._create_slot(export=False)
            self.end_lsn = po.str_to_lsn(str(await self._scalar("SELECT pg_current_wal_lsn()::text")))
        except psycopg.Error as e:
            await self.close()
            raise classify(e) from e

    async def _scalar(self, query: str, params: Sequence[Any] = ()) -> Any:
        assert self._conn is not None
        cur = await self._conn.execute(query, params)
        row = await cur.fetchone()
        return None if row is None else row[0]

    async def _check_server(self) -> None:
        wal_level = await self._scalar("SHOW wal_level")
        if wal_level != "logical":
            raise SourceError(f"connector '{self.cfg.name}': the server has wal_level={wal_level}; logical "
                              "decoding needs wal_level=logical (ALTER SYSTEM SET wal_level = logical; restart)")
        ok = await self._scalar("SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user")
        if not ok:
            raise SourceError(f"connector '{self.cfg.name}': user '{self.cfg.database_user}' lacks the "
                              "REPLICATION attribute (ALTER ROLE ... WITH REPLICATION)")

    async def _included_tables(self) -> list[tuple[str, str]]:
        assert self._conn is not None
        return [(s, t) for _, s, t, _ in await self._user_tables(self._conn)]

    async def _user_tables(self, conn: psycopg.AsyncConnection[Any]) -> list[tuple[int, str, str, int]]:
        """(oid, schema, table, estimated rows) of the tables the include/exclude lists select."""
        rows = await (await conn.execute(user_tables_sql(
            "c.oid::int, n.nspname, c.relname, greatest(c.reltuples, 0)::bigint"))).fetchall()
        return [(o, s, t, n) for o, s, t, n in rows if self.cfg.table_included(s, t)]

    async def _published_tables(self) -> list[tuple[str, str]]:
        """What a filtered publication holds: the captured tables, and the signal table (its inserts are
        how signals arrive, captured or not)."""
        tables = await self._included_tables()
        sig = self.cfg.signal_table
        if tables and sig is not None and sig not in tables:
            tables.append(sig)
        return tables

    async def _ensure_publication(self) -> None:
        cfg, conn = self.cfg, self._conn
        assert conn is not None
        pub = cfg.publication_name
        exists = await self._scalar("SELECT count(*) FROM pg_publication WHERE pubname = %s", (pub,))
        mode = cfg.publication_autocreate_mode
        if exists:
            if mode == "filtered":
                tables = await self._published_tables()
                if tables:
                    await conn.execute(sql.SQL("ALTER PUBLICATION {} SET TABLE {}").format(
                        sql.Identifier(pub), sql.SQL(", ").join(sql.Identifier(s, t) for s, t in tables)))
            return
        if mode == "disabled":
            raise SourceError(f"connector '{cfg.name}': publication '{pub}' does not exist and "
                              "publication.autocreate.mode=disabled; create it (CREATE PUBLICATION "
                              f"{pub} FOR TABLE ...) or set publication.autocreate.mode to filtered")
        if mode == "filtered":
            tables = await self._published_tables()
            if not tables:
                raise SourceError(f"connector '{cfg.name}': no table matches the include lists, so the "
                                  "filtered publication would be empty")
            stmt = sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
                sql.Identifier(pub), sql.SQL(", ").join(sql.Identifier(s, t) for s, t in tables))
        elif mode == "no_tables":   # Debezium: an empty publication the operator fills
            stmt = sql.SQL("CREATE PUBLICATION {}").format(sql.Identifier(pub))
        else:
            stmt = sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(sql.Identifier(pub))
        await conn.execute(stmt)
        log.info("connector %s: created publication %s (%s)", cfg.name, pub, mode)

    async def _check_signal_table(self) -> None:
        """With signal.data.collection set, the signal table must exist and be published: signals are
        its inserts, read from the stream."""
        cfg, sig = self.cfg, self.cfg.signal_table
        if sig is None:
            return
        name = f"{sig[0]}.{sig[1]}"
        found = await self._scalar(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')", sig)
        if not found:
            raise SourceError(f"connector '{cfg.name}': the signal table {name} (signal.data.collection) does not "
                              f"exist; create it: {inc.SIGNAL_TABLE_DDL.format(table=name)}")
        published = await self._scalar(
            "SELECT count(*) FROM pg_publication_tables WHERE pubname = %s AND schemaname = %s AND tablename = %s",
            (cfg.publication_name, *sig))
        if not published:
            raise SourceError(f"connector '{cfg.name}': the signal table {name} (signal.data.collection) is not in "
                              f"publication '{cfg.publication_name}', so no signal would reach the bridge; add it "
                              f"(ALTER PUBLICATION {cfg.publication_name} ADD TABLE {name}) or let the bridge "
                              "manage the publication (publication.autocreate.mode=filtered)")

    async def _slot_info(self) -> dict[str, Any] | None:
        assert self._conn is not None
        cur = await self._conn.execute(
            "SELECT plugin, database, confirmed_flush_lsn::text, active_pid FROM pg_replication_slots "
            "WHERE slot_name = %s", (self.cfg.slot_name,))
        row = await cur.fetchone()
        if row is None:
            return None
        plugin, database, confirmed, active_pid = row
        if plugin != "pgoutput" or database != self.cfg.database_dbname:
            raise SourceError(f"connector '{self.cfg.name}': slot '{self.cfg.slot_name}' exists for plugin "
                              f"{plugin} on database {database}; use another slot.name or drop it")
        return {"confirmed": po.str_to_lsn(confirmed) if confirmed else 0, "active_pid": active_pid}

    def _slot_in_use(self, pid: object) -> str:
        slot = self.cfg.slot_name
        return (f"connector '{self.cfg.name}': replication slot '{slot}' is in use by another process "
                f"(PID {pid}); stop the other consumer of this slot (or, if it is stale, end it with "
                f"SELECT pg_terminate_backend({pid})), or give this connector its own slot.name")

    async def _create_slot(self, export: bool, temporary: bool = False) -> None:
        assert self._repl is not None
        opt = "EXPORT_SNAPSHOT" if export else "NOEXPORT_SNAPSHOT"
        temp = "TEMPORARY " if temporary else ""
        cur = await self._repl.execute(
            f'CREATE_REPLICATION_SLOT "{self.cfg.slot_name}" {temp}LOGICAL pgoutput {opt}')
        row = await cur.fetchone()
        assert row is not None
        self._consistent_lsn = po.str_to_lsn(row[1])
        self._snapshot_name = row[2] if export else None
        log.info("connector %s: created slot %s at %s", self.cfg.name, self.cfg.slot_name, row[1])

    async def close(self) -> None:
        for c in (self._repl, self._conn):
            if c is not None and not c.closed:
                with contextlib.suppress(psycopg.Error):
                    await c.close()
        self._repl = self._conn = None

    # ------------------------------------------------------------------ catalog

    async def _load_types(self, oids: set[int]) -> None:
        missing = {o for o in oids if o >= BUILTIN_OID_LIMIT and o not in self._types}
        while missing:
            assert self._conn is not None
            rows = await (await self._conn.execute(TYPE_CATALOG_SQL, (list(missing),))).fetchall()
            nxt: set[int] = set()
            for r in rows:
                info = TypeInfo(*r)
                self._types[info.oid] = info
                for dep in (info.base_oid, info.elem_oid):
                    if dep and dep >= BUILTIN_OID_LIMIT and dep not in self._types:
                        nxt.add(dep)
            for o in missing:
                self._types.setdefault(o, TypeInfo(o, str(o), "b", 0, -1, 0))
            missing = nxt

    async def _primary_key(self, rel_oid: int) -> tuple[str, ...]:
        assert self._conn is not None
        rows = await (await self._conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s AND i.indisprimary "
            "ORDER BY array_position(i.indkey::int2[], a.attnum)", (rel_oid,))).fetchall()
        return tuple(r[0] for r in rows)

    async def _table_state(self, oid: int, schema: str, table: str,
                           columns: Sequence[tuple[str, int, int]]) -> TableState:
        cfg = self.cfg
        topic = f"{cfg.topic_prefix}.{schema}.{table}"
        if not cfg.table_included(schema, table):
            return TableState(topic, schema, table, False, None, (), None, None, ())
        await self._load_types({c[1] for c in columns})
        included = [n for n, _, _ in columns if cfg.column_included(schema, table, n)]
        codec = RowCodec(columns, included, self._types, self.modes)
        pk = tuple(c for c in await self._primary_key(oid) if c in included)
        toast = tuple(n for n, typ, _ in columns if n in included and self._toastable(typ))
        route = (topic, schema, table, TOAST_MIN if toast else pgfast.NEVER,
                 "".join(op for op in "cud" if op in self._skip))
        spec = pgfast.row_spec(columns, included, pk, self._types, self.modes, route)
        return TableState(topic, schema, table, True, codec, pk, key_function(pk), spec, toast)

    def _toastable(self, oid: int) -> bool:
        info = self._types.get(oid)
        if info is not None and info.kind == "d":
            return self._toastable(info.base_oid)
        if info is not None:
            return info.kind not in ("e",)   # arrays, composites, ranges, custom types: varlena
        return oid not in FIXED_LENGTH_OIDS

    # ------------------------------------------------------------------ snapshot

    async def _snapshot_table(self, conn: psycopg.AsyncConnection[Any], oid: int, schema: str,
                              table: str) -> _SnapshotTable:
        """A table's columns as `conn` sees them (a snapshot's transaction) and its event state."""
        rows = await (await conn.execute(
            "SELECT attname, atttypid::int, atttypmod FROM pg_attribute WHERE attrelid = %s "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (oid,))).fetchall()
        columns = [(n, t, m) for n, t, m in rows]
        st = await self._table_state(oid, schema, table, columns)
        assert st.codec is not None
        return _SnapshotTable(oid, schema, table, columns, st)

    def _read_parts(self, t: _SnapshotTable, rows: Sequence[Sequence[Any]], lsn: int,
                    toast: list[tuple[str, bytes, str, str]] | None) -> list[Parts]:
        """Read events' parts for rows selected with `t.select()` through `_text_loaders`; long values
        are remembered into `toast` (None: not now, the caller remembers what it emits)."""
        st = t.state
        assert st.codec is not None
        decode = st.codec.decode
        parts: list[Parts] = []
        for row in rows:
            after = decode(row)
            if toast is not None and st.toast_columns:
                self._remember(st, after, toast)
            parts.extend(change_parts(0, "r", st.topic, st.schema, st.table, st.key, None, after, lsn))
        return parts

    async def _snapshot(self) -> AsyncIterator[CommittedTx]:
        cfg = self.cfg
        assert self._consistent_lsn is not None
        lsn = self._consistent_lsn
        snap = await psycopg.AsyncConnection.connect(cfg.conninfo())
        started_us = time.time_ns() // 1000
        try:
            await snap.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if self._snapshot_name:
                await snap.execute(f"SET TRANSACTION SNAPSHOT '{self._snapshot_name}'")
            tables = await self._user_tables(snap)
            progress = SnapshotProgress(cfg.name, [(f"{s}.{t}", n) for _, s, t, n in tables])
            tx = TxInfo(server_name=cfg.topic_prefix, db=cfg.database_dbname, xid=None,
                        commit_time_us=started_us, last_commit_lsn=None, snapshot="true",
                        tombstones=cfg.tombstones_on_delete)
            for oid, schema, table, _n in tables:
                t = await self._snapshot_table(snap, oid, schema, table)
                async with snap.cursor(name=f"cdc_snapshot_{oid}") as cur:
                    _text_loaders(cur, t.columns)
                    cur.itersize = cfg.snapshot_fetch_size
                    await cur.execute(t.select())
                    while rows := await cur.fetchmany(cfg.snapshot_fetch_size):
                        toast: list[tuple[str, bytes, str, str]] = []
                        chunk = _snapshot_chunk(self._read_parts(t, rows, lsn, toast), tx, lsn)
                        chunk.toast = toast
                        yield chunk
                        progress.advance(t.name, len(rows))
            progress.close()
            await snap.execute("COMMIT")
        finally:
            await snap.close()
        yield CommittedTx({"lsn": lsn, "snapshot_completed": True}, None, 0, lambda: iter(()))

    # ------------------------------------------------------------------ streaming

    async def changes(self) -> AsyncIterator[CommittedTx]:
        """Snapshot chunks (if one is due), then committed transactions, in commit order."""
        if self._do_snapshot:
            async for tx in self._snapshot():
                yield tx
        if not self._stream_after:
            return
        async for tx in self._streaming():
            yield tx

    def confirm(self, lsn: int) -> None:
        """The journal made everything up to `lsn` durable: the next status may report it flushed."""
        if lsn > self._flushed:
            self._flushed = lsn

    def _start_lsn(self) -> int:
        if self._do_snapshot:
            return self._consistent_lsn or 0    # where the snapshot ends (new slot) or the slot stands
        if self._offset and "lsn" in self._offset and self._offset.get("snapshot_completed", True):
            return int(self._offset["lsn"])
        return self._consistent_lsn or 0

    async def _streaming(self) -> AsyncIterator[CommittedTx]:
        cfg = self.cfg
        assert self._repl is not None
        start = self._start_lsn()
        self._flushed = max(self._flushed, start)
        self._stream = stream = ReplicationStream(self._repl)
        assert self._conn is not None
        options = replication_options(cfg.publication_name, self._conn.info.server_version)
        try:
            await stream.start(f'START_REPLICATION SLOT "{cfg.slot_name}" LOGICAL {po.lsn_to_str(start)} '
                               f"({options})")
        except psycopg.errors.ObjectInUse as e:     # taken between open() and here
            raise SlotInUse(self._slot_in_use(str(e).rsplit(" ", 1)[-1])) from e
        log.info("connector %s: streaming from %s", cfg.name, po.lsn_to_str(start))
        stored = self._offset or {}
        self._tx_offset = ({k: stored[k] for k in ("lsn", "txId", "ts_usec") if k in stored}
                           if stored.get("lsn") == start else {"lsn": start})
        status_every = cfg.status_update_interval_ms / 1000
        incr = self._incr
        open_tx: _OpenTx | None = None
        streams: dict[int, _OpenTx] = {}
        in_stream: _OpenTx | None = None
        batch: list[memoryview | bytes] = []
        decode, parse_copy, encode, specs = po.decode_message, po.parse_copy_data, pgfast.encode_part, self._specs
        # An empty read asks the server for a keepalive (its WAL end): how --stop-at-end sees it is done.
        idle_wait = 0.05 if self.stop_at_end else 1.0
        while True:
            batch.clear()
            await stream.read(batch, wait=idle_wait)
            reply = False
            for raw in batch:
                target = in_stream or open_tx
                enc = encode(raw, in_stream is not None, specs, 0 if target is None else target.xid, self._chunk_rel)
                if enc is not None:  # the hot path: row changes, encoded to JSON in C where built
                    if target is None:
                        continue
                    if len(enc) == 9:  # the usual change, decided by the encoder: its parts
                        target.buffer.append(enc)
                    else:
                        self._on_row(cast(pgfast.Encoded, enc), raw, in_stream is not None, target)
                    continue
                frame = parse_copy(raw)
                if isinstance(frame, po.Keepalive):
                    if open_tx is None and not streams and self._flushed >= self._last_yielded:
                        # Nothing in flight and everything handed over is durable: no commit before
                        # wal_end is still unjournaled, so the slot may move there (keeps WAL from piling up).
                        self._idle_lsn = max(self._idle_lsn, frame.wal_end)
                    reply = reply or frame.reply_requested
                    continue
                msg = decode(raw, 25, in_stream is not None)
                if isinstance(msg, po.Begin):
                    open_tx = _OpenTx(msg.xid, msg.commit_time_us, SpillBuffer(self.spill_dir))
                elif isinstance(msg, po.Commit | po.StreamCommit):
                    if isinstance(msg, po.Commit):
                        done, open_tx = open_tx, None
                    else:
                        done = streams.pop(msg.xid)
                        done.commit_time_us = msg.commit_time_us
                    if done is None:
                        continue
                    self._last_activity = time.monotonic()
                    if msg.end_lsn <= start:    # journaled before a restart: the server sends it again
                        done.buffer.close()
                        continue
                    if done.touched and incr.window is not None:
                        incr.window.on_commit(done.xid, done.touched)
                    if done.signals:   # acted on at commit, so that this transaction's offset holds the result
                        await self._on_signals(done.signals)
                    yield self._committed(done, msg.commit_lsn, msg.end_lsn)
                elif isinstance(msg, po.Relation):
                    await self._on_relation(msg)
                elif isinstance(msg, po.StreamStart):
                    in_stream = streams.get(msg.xid)
                    if in_stream is None:
                        in_stream = streams[msg.xid] = _OpenTx(msg.xid, 0, SpillBuffer(self.spill_dir))
                elif isinstance(msg, po.StreamStop):
                    in_stream = None
                elif isinstance(msg, po.StreamAbort):
                    if msg.subxid == msg.xid:
                        aborted = streams.pop(msg.xid, None)
                        if aborted is not None:
                            aborted.buffer.close()
                    elif msg.xid in streams:
                        streams[msg.xid].buffer.discard_subxact(msg.subxid)
                elif isinstance(msg, po.Truncate):
                    target = in_stream or open_tx
                    if target is not None:
                        self._on_truncate(msg, frame.wal_start, target)
                elif (isinstance(msg, po.LogicalMessage) and msg.prefix == inc.WATERMARK_PREFIX
                      and incr.window is not None):
                    chunk = self._on_watermark(msg)
                    if chunk is not None:
                        yield chunk
                # Type, Origin and other logical messages need no event.
            if open_tx is None and not streams and self._idle_lsn > self._flushed:
                self._flushed = self._idle_lsn
            now = time.monotonic()
            if open_tx is None and not streams:
                # Between transactions: the next chunk's read may start (its changes come after it).
                if incr.ctx is not None and incr.window is None:
                    async for tx in self._open_chunk():
                        yield tx
                await self._heartbeat(now)
            if reply or not batch or now - self._last_status >= status_every or (
                    self._flushed > self._reported and now - self._last_status >= 0.2):
                await self._send_status(reply=not batch)
            if (self.stop_at_end and self.end_lsn is not None and open_tx is None and not streams
                    and self._flushed >= self.end_lsn and incr.ctx is None):
                await self._send_status()
                return

    async def _heartbeat(self, now: float) -> None:
        """While the captured database is idle, write a logical decoding message into its WAL every
        heartbeat.interval.ms: decoding it moves the walsender -- and with the keepalive the slot -- past
        WAL that other databases of a busy server wrote meanwhile. Also checks the slot's retained WAL."""
        cfg = self.cfg
        interval = cfg.heartbeat_interval_ms / 1000
        if interval <= 0 or now - self._last_activity < interval or self._conn is None:
            return
        self._last_activity = now
        try:
            await self._conn.execute("SELECT pg_logical_emit_message(false, 'erp-cdc-heartbeat', '')")
            if now - self._last_slot_check >= max(interval, 60.0) or self.slot_health is None:
                self._last_slot_check = now
                await self._check_slot()
        except psycopg.Error as e:  # the replication stream itself reports a lost server
            log.warning("connector %s: heartbeat failed: %s", cfg.name, e)

    async def _check_slot(self) -> None:
        assert self._conn is not None
        cur = await self._conn.execute(
            "SELECT wal_status, safe_wal_size, (pg_current_wal_lsn() - restart_lsn)::bigint "
            "FROM pg_replication_slots WHERE slot_name = %s", (self.cfg.slot_name,))
        row = await cur.fetchone()
        if row is None:
            return
        self.slot_health = health = SlotHealth(str(row[0]), None if row[1] is None else int(row[1]), int(row[2] or 0))
        limit = self.cfg.slot_retained_wal_warning_bytes
        if health.wal_status in ("unreserved", "lost") or (limit and health.retained_bytes > limit):
            log.warning("connector %s: slot %s retains %d MiB of WAL (wal_status %s, safe_wal_size %s); the "
                        "bridge is behind or stopped too long -- the slot is never dropped by the bridge, but the "
                        "server may invalidate it (max_slot_wal_keep_size)", self.cfg.name, self.cfg.slot_name,
                        health.retained_bytes >> 20, health.wal_status, health.safe_wal_size)

    # ------------------------------------------------------------------ incremental snapshots

    def incremental_progress(self) -> dict[str, tuple[int, int | None]]:
        """Per table of the incremental snapshots this reader ran or runs: (rows emitted so far, the
        planner's estimate of its rows or None when unknown). A table snapshotted again restarts at 0;
        after a restart a resumed table continues from the rows its stored offset counted."""
        return self._incr.progress.snapshot()

    @property
    def incremental_pending(self) -> tuple[str, ...]:
        """The tables the running incremental snapshot still has to read, the current one first."""
        return self._incr.pending

    def _on_signal_row(self, raw: memoryview | bytes, in_stream: bool, tx: _OpenTx) -> None:
        """A row change of the signal table: an insert is a signal, acted on when `tx` commits. The row
        is journaled only if the table is captured too (Debezium)."""
        ch = po.decode_change(raw, in_stream, po.UNCHANGED_TOAST)
        assert ch is not None
        st = self._tables.get(ch[3])
        if st is not None and st.included:
            self._on_change(ch, tx)
        new = ch[6]
        if ch[0] != 73 or new is None:
            return
        i, t, d = self._signal_cols
        values = [v if isinstance(v, str) else None for v in (new[i], new[t], new[d])]
        tx.signals.append((values[0] or "", values[1] or "", values[2]))

    async def _on_signals(self, signals: inc.Signals) -> None:
        """Act on the signals a transaction committed; the captured tables are listed first (once) when
        one of them may be an execute-snapshot."""
        captured: list[str] = []
        if any(sig_type == inc.EXECUTE for _, sig_type, _ in signals):
            assert self._conn is not None
            try:
                captured = [f"{s}.{t}" for _, s, t, _ in await self._user_tables(self._conn)]
            except psycopg.Error as e:
                raise classify(e) from e
        self._incr.on_signals(signals, lambda: captured)
        self._track()

    def _track(self) -> None:
        """The hot path's test follows the window: the open chunk's table oid, -1 while none is open."""
        t = self._incr_table
        self._chunk_rel = t.snap.oid if self._incr.window is not None and t is not None else -1

    def _context_tx(self) -> CommittedTx:
        """An empty unit that stores the incremental context as it now is (a table skipped or ended)."""
        return CommittedTx({**self._tx_offset, **self._incr.offset()}, None, 0, lambda: iter(()))

    async def _open_chunk(self) -> AsyncIterator[CommittedTx]:
        """Read the next chunk between a low and a high watermark; the window then waits for the stream
        to reach the high one. A table that ends or cannot be read moves the context on (an empty unit
        records that) until a chunk is open or nothing is left."""
        st = self._incr
        try:
            while st.ctx is not None and st.window is None:
                ctx = st.ctx
                t = self._incr_table
                if t is None or t.snap.name != ctx.current or not ctx.started:
                    found = await self._incremental_table(ctx.current)
                    if isinstance(found, str):
                        st.skip(found)
                        yield self._context_tx()
                        continue
                    t = self._incr_table = found
                    if ctx.started:   # resumed from a stored offset
                        st.progress.begin(ctx.current, t.estimate, ctx.rows)
                if not ctx.started:
                    top = await self._max_key(t)
                    if top is None:
                        st.empty(t.estimate)
                        yield self._context_tx()
                        continue
                    st.begin(top, t.estimate)
                if not await self._read_chunk(t):
                    st.end_table()
                    yield self._context_tx()
        except psycopg.Error as e:
            raise classify(e) from e

    async def _incremental_table(self, name: str) -> _IncrementalTable | str:
        """The captured table `name` with what its chunks need, or why it cannot be read."""
        assert self._conn is not None
        found = [(o, s, t, n) for o, s, t, n in await self._user_tables(self._conn) if f"{s}.{t}" == name]
        if not found:
            return "the table is gone or no longer captured"
        oid, schema, table, estimate = found[0]
        snap = await self._snapshot_table(self._conn, oid, schema, table)
        pk = await self._primary_key(oid)
        if not pk or snap.state.pk != pk:
            return ("a column of its primary key is excluded (column.exclude.list)" if pk else
                    "the table has no primary key, which chunks are read by (Debezium's message.key.columns "
                    "is not supported)")
        names = [c[0] for c in snap.columns]
        return _IncrementalTable(snap, tuple(names.index(c) for c in pk), estimate)

    def _key_sql(self, t: _IncrementalTable, desc: bool = False) -> tuple[sql.Composable, sql.Composable]:
        """The primary key's column list, and its ORDER BY list."""
        cols = [sql.Identifier(t.snap.columns[i][0]) for i in t.key_index]
        order = sql.SQL(" DESC, ") if desc else sql.SQL(", ")
        return sql.SQL(", ").join(cols), order.join(cols) + (sql.SQL(" DESC") if desc else sql.SQL(""))

    async def _max_key(self, t: _IncrementalTable) -> inc.Key | None:
        """The table's largest primary key now (rows inserted later come from the stream)."""
        assert self._conn is not None
        keys, order = self._key_sql(t, desc=True)
        query = sql.SQL("SELECT {} FROM ONLY {} ORDER BY {} LIMIT 1").format(
            keys, sql.Identifier(t.snap.schema, t.snap.table), order)
        async with self._conn.cursor() as cur:
            _text_loaders(cur, [t.snap.columns[i] for i in t.key_index])
            await cur.execute(query)
            row = await cur.fetchone()
        return None if row is None else tuple(row)

    async def _write_watermark(self, kind: str, chunk_id: str) -> int:
        """Write a watermark into the WAL; returns its LSN. Not transactional: it is decoded at its place
        in the WAL, between the commits around it. The xid taken alongside makes the statement commit
        with a WAL flush, so the walsender (which sends flushed WAL only) passes it on at once, not when
        the WAL writer gets to it."""
        lsn = await self._scalar("SELECT pg_logical_emit_message(false, %s, %s)::text, pg_current_xact_id()",
                                 (inc.WATERMARK_PREFIX, inc.watermark(kind, chunk_id)))
        return po.str_to_lsn(str(lsn))

    async def _read_chunk(self, t: _IncrementalTable) -> bool:
        """Low watermark, the next chunk of `t` after the context's last key (up to its maximum key), high
        watermark; opens the window and returns True, or False when no row is left."""
        conn, ctx = self._conn, self._incr.ctx
        assert conn is not None and ctx is not None and ctx.max_key is not None
        size = self.cfg.incremental_snapshot_chunk_size
        chunk_id = uuid.uuid4().hex
        low = await self._write_watermark("low", chunk_id)
        keys, order = self._key_sql(t)
        marks = sql.SQL(", ").join(sql.Placeholder() * len(t.key_index))
        # Row comparisons, so that a composite key pages correctly; the text parameters take the
        # columns' types.
        where = [sql.SQL("({}) <= ({})").format(keys, marks)]
        params: list[str] = list(ctx.max_key)
        if ctx.last_key is not None:
            where.insert(0, sql.SQL("({}) > ({})").format(keys, marks))
            params[:0] = ctx.last_key
        query = t.snap.select() + sql.SQL(" WHERE {} ORDER BY {} LIMIT {}").format(
            sql.SQL(" AND ").join(where), order, sql.Literal(size))
        async with conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = str(await self._scalar("SELECT pg_current_snapshot()::text"))
            async with conn.cursor() as cur:
                _text_loaders(cur, t.snap.columns)
                await cur.execute(query, params)
                rows = await cur.fetchall()
        if not rows:
            return False
        await self._write_watermark("high", chunk_id)
        xmax, in_progress = inc.parse_snapshot(snapshot)
        parts = self._read_parts(t.snap, rows, low, None)
        self._incr.window = inc.ChunkWindow(
            chunk_id, ctx.current, {orjson.dumps(p[5]): p for p in parts}, tuple(rows[-1][i] for i in t.key_index),
            len(rows), len(rows) < size, xmax, in_progress)
        self._track()
        return True

    def _on_watermark(self, msg: po.LogicalMessage) -> CommittedTx | None:
        """A watermark in the stream: the low one opens the window's DBLog half, the high one closes it."""
        mark = inc.parse_watermark(msg.content)
        w = None if mark is None else self._incr.on_watermark(*mark)
        self._track()
        return None if w is None else self._emit_chunk(w)

    def _emit_chunk(self, w: inc.ChunkWindow) -> CommittedTx:
        """The window's remaining rows as read events, in a unit of their own whose offset records the
        chunk as done (and the LSN of the last transaction handed over: nothing past it is claimed)."""
        t = self._incr_table
        assert t is not None and t.snap.name == w.table
        st = t.snap.state
        parts = [] if self.cfg.skipped("r") else list(w.rows.values())
        toast: list[tuple[str, bytes, str, str]] = []
        if st.toast_columns:
            for p in parts:
                after = p[7]
                assert isinstance(after, dict)
                self._remember(st, after, toast)
        self._incr.emitted(w, len(parts))
        offset = {**self._tx_offset, **self._incr.offset()}
        now_us = time.time_ns() // 1000
        info = TxInfo(server_name=self.cfg.topic_prefix, db=self.cfg.database_dbname, xid=None,
                      commit_time_us=now_us, last_commit_lsn=None, snapshot="incremental",
                      tombstones=self.cfg.tombstones_on_delete)
        return CommittedTx(offset, None, len(parts), lambda: assemble(parts, info, now_us // 1000), toast)

    async def _send_status(self, reply: bool = False) -> None:
        assert self._stream is not None
        await self._stream.send_status(self._flushed, self._flushed, reply)
        self._reported = self._flushed
        self._last_status = time.monotonic()

    def _committed(self, tx: _OpenTx, commit_lsn: int, end_lsn: int) -> CommittedTx:
        info = TxInfo(server_name=self.cfg.topic_prefix, db=self.cfg.database_dbname, xid=tx.xid,
                      commit_time_us=tx.commit_time_us, last_commit_lsn=self._last_commit_lsn,
                      tombstones=self.cfg.tombstones_on_delete)
        self._last_commit_lsn = commit_lsn
        self._last_yielded = end_lsn
        buf = tx.buffer
        self._tx_offset = offset = {"lsn": end_lsn, "txId": tx.xid, "ts_usec": tx.commit_time_us}
        if self._incr.ctx is not None:
            offset = {**offset, **self._incr.offset()}

        counts: Counter[tuple[str, str]] = Counter()

        def events() -> Iterator[ChangeEvent]:
            counts.clear()  # counted afresh by each pass over the events
            return assemble(iter(buf), info, time.time_ns() // 1_000_000, counts)

        return CommittedTx(offset, end_lsn, buf.count, events, tx.toast, buf.close, counts=counts)

    async def _on_relation(self, rel: po.Relation) -> None:
        cols = [(c.name, c.type_oid, c.type_modifier) for c in rel.columns]
        try:
            st = self._tables[rel.oid] = await self._table_state(rel.oid, rel.namespace, rel.name, cols)
        except psycopg.Error as e:
            raise classify(e) from e
        sig = self.cfg.signal_table
        if sig is not None and (rel.namespace, rel.name) == sig:
            # Its rows take the slow path (`_on_signal_row`), which also journals them if it is captured.
            self._signal_oid = rel.oid
            self._signal_cols = _signal_columns([c.name for c in rel.columns])
        elif st.spec is not None:
            self._specs[rel.oid] = st.spec
            return
        self._specs.pop(rel.oid, None)

    def _on_truncate(self, msg: po.Truncate, lsn: int, tx: _OpenTx) -> None:
        if self._chunk_rel in msg.rel_oids:
            tx.touched.append(inc.ALL_KEYS)
        if self.cfg.skipped("t"):
            return
        for oid in msg.rel_oids:
            st = self._tables.get(oid)
            if st is not None and st.included:
                tx.buffer.append((msg.xid or tx.xid, "t", st.topic, st.schema, st.table, None, None, None, lsn))

    def _on_row(self, enc: pgfast.Encoded, raw: memoryview | bytes, in_stream: bool, tx: _OpenTx) -> None:
        """A row change the encoder left to the reader (see `pgfast.encode_part`)."""
        status = enc[11]
        if status == pgfast.ENCODED:
            self._on_encoded(enc, tx)
        elif status == pgfast.UNCHANGED_TOAST_INSIDE:  # unchanged TOAST values to fill in: the dict path
            ch = po.decode_change(raw, in_stream, po.UNCHANGED_TOAST)
            assert ch is not None
            self._on_change(ch, tx)
        elif enc[3] == self._signal_oid:  # never encoded: see _on_relation
            self._on_signal_row(raw, in_stream, tx)

    def _on_encoded(self, enc: pgfast.Encoded, tx: _OpenTx) -> None:
        """A row change the encoder turned into JSON already (no unchanged TOAST in it)."""
        tag, lsn, xid, rel_oid, _old_kind, old_js, new_js, old_key, new_key, old_complete, longest, _ = enc
        st = self._tables[rel_oid]
        op = "c" if tag == 73 else "u" if tag == 85 else "d"
        if rel_oid == self._chunk_rel:   # the table an incremental snapshot chunk is open for
            tx.touched.extend(k for k in (old_key, new_key) if k is not None)
        if op in self._skip:
            return
        if longest >= TOAST_MIN and new_js is not None and st.toast_columns:
            self._remember(st, orjson.loads(new_js), tx.toast)
        append = tx.buffer.append
        xid = xid or tx.xid
        if op == "u" and old_complete and old_key != new_key:   # a primary-key change
            append((xid, "d", st.topic, st.schema, st.table, old_key, old_js, None, lsn))
            append((xid, "c", st.topic, st.schema, st.table, new_key, None, new_js, lsn))
        elif op == "d":
            append((xid, op, st.topic, st.schema, st.table, old_key, old_js, None, lsn))
        else:
            append((xid, op, st.topic, st.schema, st.table, new_key, old_js, new_js, lsn))

    def _on_change(self, ch: po.Change, tx: _OpenTx) -> None:
        tag, lsn, xid, rel_oid, old_kind, old, new, longest = ch
        st = self._tables.get(rel_oid)
        if st is None or st.codec is None:
            return
        decode = st.codec.decode
        before = None if old is None else decode(old)
        after = None if new is None else decode(new)
        if tag == 73:    # 'I'
            op = "c"
        elif tag == 85:  # 'U'
            op = "u"
            assert new is not None and after is not None
            if po.UNCHANGED_TOAST in new:
                self._fill_unchanged(st, before if old_kind == "O" else None, before, after)
        else:
            op = "d"
        parts = change_parts(xid or tx.xid, op, st.topic, st.schema, st.table, st.key, before, after, lsn)
        if rel_oid == self._chunk_rel:
            tx.touched.extend(orjson.dumps(p[5]) for p in parts if p[5] is not None)
        if op in self._skip:
            return
        if longest >= TOAST_MIN and after is not None and st.toast_columns:
            self._remember(st, after, tx.toast)
        for p in parts:
            tx.buffer.append(p)

    def _remember(self, st: TableState, row: dict[str, Any], out: list[tuple[str, bytes, str, str]]) -> None:
        """Record long values by row key: a later update may send them as unchanged TOAST (no value)."""
        key: bytes | None = None
        cache = self._toast_cache
        for col in st.toast_columns:
            v = row[col]
            if type(v) is str and len(v) >= TOAST_MIN and st.pk:
                if key is None:
                    key = orjson.dumps({c: row[c] for c in st.pk})
                enc = orjson.dumps(v).decode()
                if len(cache) >= TOAST_CACHE_SIZE:
                    del cache[next(iter(cache))]
                cache[(st.topic, key, col)] = enc
                if len(out) < MAX_TOAST_PER_TX:
                    out.append((st.topic, key, col, enc))

    def _fill_unchanged(self, st: TableState, full_before: dict[str, Any] | None,
                        before: dict[str, Any] | None, after: dict[str, Any]) -> None:
        """Replace unchanged-TOAST markers: from a full old image, else the last value recorded for the
        row (under its old key if the key just changed), else Debezium's placeholder, with a warning."""
        keys: list[bytes] = []
        if st.pk:
            keys.append(orjson.dumps({c: after[c] for c in st.pk}))
            if before is not None and None not in (before.get(c) for c in st.pk):
                keys.append(orjson.dumps({c: before[c] for c in st.pk}))
        for col, v in after.items():
            if v is not po.UNCHANGED_TOAST:
                continue
            if full_before is not None and full_before.get(col, po.UNCHANGED_TOAST) is not po.UNCHANGED_TOAST:
                after[col] = full_before[col]
                continue
            known = None
            for k in keys:
                known = self._toast_cache.get((st.topic, k, col))
                if known is None and self._toast_lookup is not None:
                    known = self._toast_lookup(st.topic, k, col)
                if known is not None:
                    break
            if known is not None:
                after[col] = orjson.loads(known)
            else:
                log.warning("connector %s: %s column %s of key %s is an unchanged TOAST value the bridge "
                            "never saw; emitting %s", self.cfg.name, st.topic, col,
                            keys[0].decode() if keys else "(no key)", UNAVAILABLE)
                after[col] = UNAVAILABLE


def user_tables_sql(columns: str) -> str:
    """SELECT `columns` (over pg_class c, pg_namespace n) of every user table a connector could capture:
    ordinary and partitioned tables, not partitions (they publish through their root), ordered by name."""
    return (f"SELECT {columns} FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
            "ORDER BY n.nspname, c.relname")


def replication_options(publication: str, server_version: int) -> str:
    """pgoutput options: protocol 2 with streaming of in-progress transactions from PostgreSQL 14 on; before
    that protocol 1, where the server decodes a large transaction whole before sending it (our side still
    spills it to disk, so memory stays bounded either way)."""
    pub = publication.replace('"', '""').replace("'", "''")
    if server_version >= 140000:
        return f"proto_version '2', streaming 'on', publication_names '\"{pub}\"', messages 'true'"
    return f"proto_version '1', publication_names '\"{pub}\"'"


def _signal_columns(names: Sequence[str]) -> tuple[int, int, int]:
    """Positions of Debezium's signal table columns id, type, data (by name; else the first three)."""
    wanted = ("id", "type", "data")
    if all(n in names for n in wanted):
        i, t, d = (list(names).index(n) for n in wanted)
        return i, t, d
    return 0, 1, 2


def _text_loaders(cur: psycopg.AsyncCursor[Any] | psycopg.AsyncServerCursor[Any],
                  columns: Sequence[tuple[str, int, int]]) -> None:
    """Load every column as the type's output function writes it, exactly as pgoutput sends it (a ::text
    cast is not the same: bool gives 'true', char(n) loses its padding, inet gains a /32)."""
    for _, typ, _ in columns:
        cur.adapters.register_loader(typ, TextLoader)


def _snapshot_chunk(parts: list[Parts], tx: TxInfo, lsn: int) -> CommittedTx:
    now_ms = time.time_ns() // 1_000_000
    return CommittedTx({"lsn": lsn, "snapshot_completed": False}, None, len(parts),
                       lambda: assemble(parts, tx, now_ms))
