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
import random
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cdc.config import PostgresSourceConfig, load_connectors
from cdc.errors import ConfigError
from cdc.signals import send_signal
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
MARKER = 9_999_999
SIGNALS = {"signal.data.collection": "public.debezium_signal", "incremental.snapshot.chunk.size": "100"}


def dbname(dsn: str) -> str:
    return dsn.rsplit("dbname=", 1)[1]


def make_customers(dsn: str, n: int) -> None:
    execute(dsn, "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, v int)",
            f"INSERT INTO customers SELECT g, 'customer ' || g, g FROM generate_series(1, {n}) g",
            "ANALYZE customers", SIGNAL_DDL)


class Writer:
    """Random single-row and multi-row transactions on customers, in a thread, until stopped: updates,
    deletes, inserts (also of deleted keys) and primary-key changes."""

    def __init__(self, dsn: str, n: int) -> None:
        self.dsn, self.n = dsn, n
        self.done = threading.Event()
        self.count = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(6)
        fresh = 2 * self.n
        try:
            with psycopg.connect(self.dsn, autocommit=True) as c:
                while not self.done.is_set():
                    k = rng.randint(1, self.n)
                    op = rng.random()
                    if op < 0.4:
                        c.execute("UPDATE customers SET v = v + 1, name = name || '+' WHERE id = %s", (k,))
                    elif op < 0.55:
                        c.execute("DELETE FROM customers WHERE id = %s", (k,))
                    elif op < 0.75:
                        c.execute("INSERT INTO customers VALUES (%s, 'again', -1) ON CONFLICT (id) DO UPDATE "
                                  "SET v = customers.v * 2", (k,))
                    elif op < 0.9:
                        with c.transaction():
                            for j in rng.sample(range(1, self.n + 1), 5):
                                c.execute("UPDATE customers SET v = v - 1 WHERE id = %s", (j,))
                    else:
                        fresh += 1
                        c.execute("UPDATE customers SET id = %s WHERE id = %s", (fresh, k))
                    self.count += 1
        except BaseException as e:  # reported by stop()
            self.error = e

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.done.set()
        self._thread.join(timeout=60)
        assert self.error is None, f"writer failed: {self.error!r}"


def stored_offset(data_dir: Path, name: str) -> dict[str, Any]:
    path = data_dir / "journal.db"
    if not path.exists():
        return {}
    with sqlite3.connect(path, timeout=30) as db:
        try:
            row = db.execute('SELECT "offset" FROM source_offsets WHERE connector = ?', (name,)).fetchone()
        except sqlite3.OperationalError:   # not created yet
            return {}
    return json.loads(row[0]) if row else {}


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
    missing = sorted(set(want) - set(got), key=lambda k: int(k[0]))
    extra = sorted(set(got) - set(want), key=lambda k: int(k[0]))
    stale = sorted((k for k in want if k in got and got[k] != want[k]), key=lambda k: int(k[0]))
    assert not (missing or extra or stale), (f"{len(missing)} missing (e.g. {missing[:5]}), {len(extra)} extra "
                                             f"(e.g. {extra[:5]}), {len(stale)} stale (e.g. "
                                             f"{[(got[k], want[k]) for k in stale[:3]]})")
    return events


def reads(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["op"] == "r"]


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
    # progress: the table's start (with the planner's estimate) and its end, with rows and chunks
    assert re.search(r"incremental snapshot of public.customers started \(about 5000 rows, chunks of 100\)", log), log
    m = re.search(r"incremental snapshot of public.customers finished: (\d+) rows in (\d+) chunks", log)
    assert m is not None and int(m[2]) >= 40, log
    assert "incremental snapshot complete" in log
    r = reads(events)
    assert int(m[1]) == len(r) and 4000 < len(r) <= n
    assert {e["source"]["snapshot"] for e in r} == {"incremental"}
    assert {e["source"]["table"] for e in events} == {"customers"}   # the signal table is not captured


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
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "incrstop", tables="public\\.customers",
                             snapshot="no_data", extra=SIGNALS)
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
