"""The MySQL/MariaDB initial snapshot: every included table's rows at one binlog position, in chunks.

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

Failure story: driver errors propagate to the reader, which classifies them (connection loss is
`Transient`: the runner restarts and the snapshot is taken again); a value that cannot be converted
raises ValueError naming db.table.column.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pymysql
import pymysql.converters
import pymysql.cursors

from cdc.errors import SourceError
from cdc.readers import mysqlddl
from cdc.readers.base import CommittedTx, SchemaChange
from cdc.readers.mysqlevents import EnvelopeMaker, Origin
from cdc.readers.mysqlschema import TableSchema
from cdc.readers.mysqlvalues import SnapshotRowCodec, select_expression
from cdc.readers.pgevents import key_function
from cdc.readers.progress import SnapshotProgress
from cdc.types import ChangeEvent

if TYPE_CHECKING:
    from cdc.readers.mysql import BinlogReader, _Handoff

log = logging.getLogger(__name__)

SYSTEM_DATABASES = ("mysql", "information_schema", "performance_schema", "sys")
# The driver's parameter encoders without its result decoders: values arrive as the server prints them.
TEXT_ONLY: dict[int | type[Any], Callable[[Any], str] | Callable[[str], Any]] = {
    k: v for k, v in pymysql.converters.conversions.items() if not isinstance(k, int)}


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


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
    cur.execute("SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES "
                "WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN (%s, %s, %s, %s) "
                "ORDER BY TABLE_SCHEMA, TABLE_NAME", SYSTEM_DATABASES)
    tables = [(str(d), str(t), int(n)) for d, t, n in cur.fetchall() if cfg.table_included(str(d), str(t))]
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
            included = [cfg.column_included(db, table, c.name) for c in schema.columns]
            codec = SnapshotRowCodec(schema, modes, included)
            key = key_function([c for c in schema.primary_key if cfg.column_included(db, table, c)])
            origin = Origin(db, table, f"{cfg.topic_prefix}.{db}.{table}", started, 0, None, st.position.file,
                            st.position.pos, None, snapshot="true")
            with conn.cursor() as cur:
                cols = ", ".join(select_expression(c) for c in schema.columns)
                cur.execute(f"SELECT {cols} FROM {_quote(db)}.{_quote(table)}")
                while rows := cur.fetchmany(cfg.snapshot_fetch_size):
                    decoded = [(None, codec.decode(r)) for r in rows]
                    now_ms = time.time_ns() // 1_000_000
                    events: list[ChangeEvent] = list(envelopes.events(origin, key, "r", decoded, now_ms))
                    yield CommittedTx(offset, None, len(events), lambda ev=events: iter(ev))  # type: ignore[misc]
                    progress.advance(f"{db}.{table}", len(rows))
        conn.commit()
        progress.close()
    yield CommittedTx(st.offset(started), None, 0, lambda: iter(()), schemas=_history(reader))
