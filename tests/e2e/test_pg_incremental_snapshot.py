"""Ad-hoc incremental snapshots (DBLog watermarks) while streaming, end to end.

A connector with `snapshot.mode=no_data` streams a table whose rows were never read; `cdc snapshot`
(or a plain INSERT into the signal table) asks for an incremental snapshot while a writer keeps
updating, deleting, inserting and re-keying rows. Rows nobody changed can only reach the output through
the snapshot, and rows the writer changed must not be overtaken by an older read: so once the
snapshot finished and the writer stopped, replaying the FileStreamSink output by key must equal the
table. One bridge is SIGKILLed mid-snapshot (seen in the journal's stored offset) and restarted: the
snapshot resumes from the last journaled chunk and the table still comes out whole.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cdc.config import PostgresSourceConfig, load_connectors
from cdc.errors import ConfigError
from cdc.signals import send_signal
from tests.e2e.churn import MARKER, Churn, assert_same_rows, assert_snapshot_logged, reads, stored_offset
from tests.e2e.harness import (
    Bridge,
    as_text,
    execute,
    read_events,
    replay,
    run_cdc,
    table_state,
    write_connectors,
)
from tests.servers.postgres import PgServer

SIGNAL_DDL = ("CREATE TABLE debezium_signal (id VARCHAR(42) PRIMARY KEY, type VARCHAR(32) NOT NULL, "
              "data VARCHAR(2048) NULL)")
COLS = ["id", "name", "v"]
SIGNALS = {"signal.data.collection": "public.debezium_signal", "incremental.snapshot.chunk.size": "100"}


def dbname(dsn: str) -> str:
    return dsn.rsplit("dbname=", 1)[1]


def make_customers(dsn: str, n: int) -> None:
    execute(dsn, "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, v int)",
            f"INSERT INTO customers SELECT g, 'customer ' || g, g FROM generate_series(1, {n}) g",
            "ANALYZE customers", SIGNAL_DDL)


class Writer(Churn):
    def __init__(self, dsn: str, n: int) -> None:
        super().__init__(n)
        self.dsn = dsn

    def session(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True)

    def update(self, s: psycopg.Connection[Any], k: int) -> None:
        s.execute("UPDATE customers SET v = v + 1, name = name || '+' WHERE id = %s", (k,))

    def delete(self, s: psycopg.Connection[Any], k: int) -> None:
        s.execute("DELETE FROM customers WHERE id = %s", (k,))

    def upsert(self, s: psycopg.Connection[Any], k: int) -> None:
        s.execute("INSERT INTO customers VALUES (%s, 'again', -1) ON CONFLICT (id) DO UPDATE "
                  "SET v = customers.v * 2", (k,))

    def decrement_together(self, s: psycopg.Connection[Any], keys: Sequence[int]) -> None:
        with s.transaction():
            for j in keys:
                s.execute("UPDATE customers SET v = v - 1 WHERE id = %s", (j,))

    def rekey(self, s: psycopg.Connection[Any], k: int, new: int) -> None:
        s.execute("UPDATE customers SET id = %s WHERE id = %s", (new, k))


def streaming(bridge: Bridge) -> None:
    bridge.wait_for(lambda: "streaming from" in bridge.output(), "streaming to start")


def finish_and_compare(bridge: Bridge, dsn: str, out: Path) -> list[dict[str, Any]]:
    """After the writer stopped: one more insert, wait for it in the output, then compare by key."""
    execute(dsn, f"INSERT INTO customers VALUES ({MARKER}, 'marker', 0)")
    bridge.wait_for(lambda: any(e["after"] and e["after"]["id"] == MARKER for e in read_events(out)),
                    "the marker row in the output", timeout=120)
    events = read_events(out)
    got = as_text(replay(events, {"customers": ["id"]}).get("customers", {}), ["id"], {})
    want = table_state(dsn, "customers", ["id"], COLS)
    assert_same_rows(got, want)
    return events


@contextmanager
def bridge_for(files: list[Path], data_dir: Path, log: Path) -> Iterator[Bridge]:
    with Bridge(files, data_dir, log) as bridge:
        streaming(bridge)
        yield bridge
        assert bridge.stop() == 0, bridge.output()[-3000:]


def test_incremental_snapshot_while_a_writer_changes_the_table(pg_server: PgServer, pg_db: str,
                                                                tmp_path: Path) -> None:
    n = 5000
    make_customers(pg_db, n)
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "incr", tables="public\\.customers",
                             snapshot="no_data", extra=SIGNALS)
    out = tmp_path / "out" / "incr.jsonl"
    with bridge_for(files, tmp_path / "data", tmp_path / "run.log") as bridge, Writer(pg_db, n) as writer:
        p = run_cdc(["snapshot", *map(str, files), "--tables", "public.customers"])
        assert p.returncode == 0, p.stderr
        assert re.search(r"signal [0-9a-f-]{36} \(execute-snapshot of public.customers\)", p.stdout), p.stdout
        bridge.wait_for(lambda: "incremental snapshot of public.customers finished" in bridge.output(),
                        "the incremental snapshot to finish", timeout=180)
        writer.stop()
        assert writer.count > 100, "the writer barely ran during the snapshot"
        events = finish_and_compare(bridge, pg_db, out)
    log = bridge.output()
    assert "started (about 5000 rows" in log   # the planner's estimate, after ANALYZE
    assert_snapshot_logged(log, "public.customers", events, n)


def test_sigkill_mid_snapshot_resumes_from_the_last_journaled_chunk(pg_server: PgServer, pg_db: str,
                                                                    tmp_path: Path) -> None:
    n = 20_000
    make_customers(pg_db, n)
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "incrkill", tables="public\\.customers",
                             snapshot="no_data", extra=SIGNALS)
    out, data = tmp_path / "out" / "incrkill.jsonl", tmp_path / "data"
    with Writer(pg_db, n):
        with Bridge(files, data, tmp_path / "run1.log") as first:
            streaming(first)
            assert run_cdc(["snapshot", *map(str, files), "--tables", "public\\.cust.*"]).returncode == 0
            first.wait_for(lambda: stored_offset(data, "incrkill").get("incremental_snapshot_rows", 0) >= 2000,
                           "2000 rows of the snapshot journaled", timeout=120)
            first.stop(9)   # SIGKILL
        at_kill = stored_offset(data, "incrkill")
        assert at_kill.get("incremental_snapshot_collections") == ["public.customers"], "the snapshot was over"
        assert "incremental snapshot of public.customers finished" not in first.output()
        with bridge_for(files, data, tmp_path / "run2.log") as second:
            second.wait_for(lambda: "incremental snapshot of public.customers finished" in second.output(),
                            "the resumed snapshot to finish", timeout=180)
            resumed = re.search(r"resuming the incremental snapshot of public.customers \((\d+) rows", second.output())
            assert resumed is not None and int(resumed[1]) >= 2000, second.output()[-3000:]
            # (the writer stops here, at the end of its block, before the comparison)
    with Bridge(files, data, tmp_path / "run3.log") as third:
        streaming(third)
        events = finish_and_compare(third, pg_db, out)
        assert third.stop() == 0
    # duplicates are allowed, a restart from scratch is not
    assert len(reads(events)) < n + n // 2
    assert "incremental_snapshot_collections" not in stored_offset(data, "incrkill")


def test_a_signal_inserted_with_sql_into_a_captured_signal_table(pg_server: PgServer, pg_db: str,
                                                                 tmp_path: Path) -> None:
    make_customers(pg_db, 350)
    execute(pg_db, "CREATE TABLE nokey (v int)", "INSERT INTO nokey VALUES (1)")
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "incrsql",
                             tables="public\\.customers,public\\.debezium_signal,public\\.nokey", snapshot="no_data",
                             extra={**SIGNALS, "publication.autocreate.mode": "filtered"})
    out = tmp_path / "out" / "incrsql.jsonl"
    with bridge_for(files, tmp_path / "data", tmp_path / "run.log") as bridge:
        # Debezium's documented shape, in one transaction with a change: acted on at its commit
        with psycopg.connect(pg_db) as c:
            c.execute("INSERT INTO debezium_signal VALUES ('sql-1', 'execute-snapshot', "
                      "'{\"data-collections\": [\"public.customers\", \"public.nokey\", \"public.nothing\"], "
                      "\"type\": \"INCREMENTAL\"}')")
            c.execute("UPDATE customers SET v = 0 WHERE id = 7")
        bridge.wait_for(lambda: "incremental snapshot complete" in bridge.output(), "the snapshot", timeout=120)
        events = finish_and_compare(bridge, pg_db, out)
    log = bridge.output()
    assert "'public.nothing' names no table this connector captures" in log
    assert "incremental snapshot of public.nokey skipped: the table has no primary key" in log
    assert "public.customers finished: 350 rows in 4 chunks" in log
    # the signal table is captured here, so its row is journaled as any other (Debezium)
    signal_rows = [e for e in events if e["source"]["table"] == "debezium_signal"]
    assert [(e["op"], e["after"]["id"]) for e in signal_rows] == [("c", "sql-1")]


def test_stop_snapshot_cancels_it(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    n = 20_000
    make_customers(pg_db, n)
    # One row per chunk: the snapshot takes a round trip per row, about a minute, so the stop lands while it
    # runs (with chunks of 100 it was over in a second and could finish before the stop arrived).
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "incrstop", tables="public\\.customers",
                             snapshot="no_data", extra={**SIGNALS, "incremental.snapshot.chunk.size": "1"})
    out, data = tmp_path / "out" / "incrstop.jsonl", tmp_path / "data"
    with bridge_for(files, data, tmp_path / "run.log") as bridge:
        assert run_cdc(["snapshot", *map(str, files), "--tables", "public.customers"]).returncode == 0
        bridge.wait_for(lambda: stored_offset(data, "incrstop").get("incremental_snapshot_rows", 0) >= 500,
                        "the snapshot under way")
        p = run_cdc(["snapshot", *map(str, files), "--stop"])
        assert p.returncode == 0 and "stop-snapshot of every table" in p.stdout, p.stdout + p.stderr
        bridge.wait_for(lambda: "incremental snapshot of public.customers stopped" in bridge.output(), "the stop")
        execute(pg_db, f"INSERT INTO customers VALUES ({MARKER}, 'marker', 0)")
        bridge.wait_for(lambda: any(e["after"] and e["after"]["id"] == MARKER for e in read_events(out)),
                        "the marker row in the output")
        assert "incremental_snapshot_collections" not in stored_offset(data, "incrstop")
    assert "finished" not in bridge.output()
    assert 500 <= len(reads(read_events(out))) < n


def test_signal_configuration_problems(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    make_customers(pg_db, 3)
    db = dbname(pg_db)
    # no signal.data.collection: a config problem (exit 2)
    plain = write_connectors(tmp_path, pg_server, db, "nosig", snapshot="no_data")
    p = run_cdc(["snapshot", *map(str, plain), "--tables", "public.customers"])
    assert p.returncode == 2 and "property 'signal.data.collection' is not set" in p.stderr, p.stderr
    # a signal table that does not exist: the database refuses (exit 1), with the DDL to create it
    missing = write_connectors(tmp_path, pg_server, db, "missing", snapshot="no_data",
                               extra={"signal.data.collection": "public.signals"})
    p = run_cdc(["snapshot", *map(str, missing), "--tables", "public.customers"])
    assert p.returncode == 1 and "the signal table public.signals does not exist; create it: CREATE TABLE" in p.stderr
    # a signal the bridge could not act on is refused before it is written
    p = run_cdc(["snapshot", *map(str, missing), "--tables", "public.(cust"])
    assert p.returncode == 2 and "is not a valid regular expression" in p.stderr, p.stderr
    # a bridge-managed publication under `disabled` that lacks the signal table: refused at open
    execute(pg_db, "CREATE PUBLICATION pub_nopub FOR TABLE customers")
    nopub = write_connectors(tmp_path, pg_server, db, "nopub", snapshot="no_data",
                             extra={**SIGNALS, "publication.autocreate.mode": "disabled"})
    p = run_cdc(["run", "--data-dir", str(tmp_path / "d"), "--stop-at-end", *map(str, nopub)])
    assert p.returncode == 1, p.stderr
    assert ("the signal table public.debezium_signal (signal.data.collection) is not in publication 'pub_nopub'"
            in p.stderr and "ALTER PUBLICATION pub_nopub ADD TABLE public.debezium_signal" in p.stderr), p.stderr


def test_send_signal_inserts_a_row_and_returns_its_id(pg_server: PgServer, pg_db: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2E_PG_PASSWORD", "not-used-trust-auth")
    make_customers(pg_db, 1)
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "send", snapshot="no_data", extra=SIGNALS)
    cfg = next(c for c in load_connectors(files[:1]) if isinstance(c, PostgresSourceConfig))
    sig_id = asyncio.run(send_signal(cfg, "execute-snapshot", {"data-collections": ["public.customers"]}))
    assert uuid.UUID(sig_id)
    with psycopg.connect(pg_db) as c:
        row = c.execute("SELECT type, data FROM debezium_signal WHERE id = %s", (sig_id,)).fetchone()
    assert row is not None and row[0] == "execute-snapshot"
    assert json.loads(row[1]) == {"data-collections": ["public.customers"]}
    plain = write_connectors(tmp_path, pg_server, dbname(pg_db), "plain", snapshot="no_data")
    cfg = next(c for c in load_connectors(plain[:1]) if isinstance(c, PostgresSourceConfig))
    with pytest.raises(ConfigError, match=r"'signal\.data\.collection' is not set"):
        asyncio.run(send_signal(cfg, "stop-snapshot", {}))
