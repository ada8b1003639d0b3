"""Heartbeats: an idle captured database on a busy server does not pin the server's WAL.

The bridge streams a database nobody writes to, while another database of the same server writes
WAL. With `heartbeat.interval.ms` the bridge writes a logical decoding message into its own database
whenever it has been idle that long; decoding it carries the slot's confirmed position past the other
database's WAL. A second slot (test_decoding) in the captured database shows the messages themselves,
and a low `slot.retained.wal.warning.bytes` makes the retained-WAL warning appear.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from tests.e2e.harness import Bridge, execute, write_connectors
from tests.servers.postgres import PgServer


def lsn(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def slot_lsn(dsn: str, slot: str) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                        (slot,)).fetchone()
    return lsn(row[0]) if row and row[0] else 0


def heartbeats(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT count(*) FROM pg_logical_slot_peek_changes('peek_hb', NULL, NULL) "
                        "WHERE data LIKE 'message:%%erp-cdc-heartbeat%%'").fetchone()
    return int(row[0]) if row else 0


def test_an_idle_database_keeps_its_slot_moving(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    db = psycopg.conninfo.conninfo_to_dict(pg_db)["dbname"]
    assert isinstance(db, str)
    execute(pg_db, "CREATE TABLE quiet (id int PRIMARY KEY, v text)",
            "SELECT pg_create_logical_replication_slot('peek_hb', 'test_decoding')")
    files = write_connectors(tmp_path, pg_server, db, "hb", snapshot="no_data",
                             extra={"heartbeat.interval.ms": "300", "slot.retained.wal.warning.bytes": "1"})
    busy = pg_server.create_database("busy")
    try:
        with Bridge(files, tmp_path / "data", tmp_path / "run.log") as bridge:
            bridge.wait_for(lambda: slot_lsn(pg_db, "slot_hb") > 0, "the slot in use")
            execute(pg_server.dsn(busy), "CREATE TABLE noise (id serial, pad text)",
                    "INSERT INTO noise (pad) SELECT repeat('x', 500) FROM generate_series(1, 20000)")
            with psycopg.connect(pg_server.dsn(busy)) as c:
                row = c.execute("SELECT pg_current_wal_lsn()::text").fetchone()
                assert row is not None
                target = lsn(row[0])
            bridge.wait_for(lambda: slot_lsn(pg_db, "slot_hb") >= target, "the slot past the other database's WAL")
            bridge.wait_for(lambda: heartbeats(pg_db) >= 2, "heartbeat messages in the captured database")
            bridge.wait_for(lambda: "of WAL (wal_status" in bridge.output(), "the retained-WAL warning")
            assert bridge.stop() == 0
    finally:
        pg_server.drop_database(busy)
        execute(pg_db, "SELECT pg_drop_replication_slot('peek_hb')")
