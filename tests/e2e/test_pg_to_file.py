"""Acceptance: PostgreSQL → journal → FileStreamSink, replayed by key, equals the source tables.

Real PostgreSQL 15 (tests/conftest.py), real `cdc` processes; the oracle is the database itself.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.harness import (
    as_text,
    cdc_cmd,
    env,
    read_events,
    replay,
    run_to_end,
    run_to_end_measured,
    table_state,
    write_connectors,
)
from tests.servers.postgres import PgServer

CUSTOMER_COLS = ["id", "name", "balance", "active", "notes"]
AUDIT_COLS = ["code", "msg"]
BOOL = {True: "true", False: "false"}
CASTS = {"active": lambda v: BOOL[v], "id": str, "code": str}


def big_note(i: int) -> str:
    rnd = random.Random(i)
    return "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(6000))


def setup_schema(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE customers (id bigint PRIMARY KEY, name text, balance numeric(12,2), "
                  "active boolean, notes text)")
        c.execute("ALTER TABLE customers ALTER COLUMN notes SET STORAGE EXTERNAL")
        c.execute("CREATE TABLE audit_log (code int, msg text)")
        c.execute("ALTER TABLE audit_log REPLICA IDENTITY FULL")
        with c.transaction():
            for i in range(1, 301):
                c.execute("INSERT INTO customers VALUES (%s, %s, %s, %s, %s)",
                          (i, f"customer {i}", f"{i * 1.5:.2f}", i % 2 == 0,
                           big_note(i) if i % 10 == 0 else f"short {i}"))
            for i in range(50):
                c.execute("INSERT INTO audit_log VALUES (%s, %s)", (i % 7, f"event {i % 5}"))


def workload(dsn: str, seed: int, rounds: int) -> None:
    """Many small transactions: inserts, updates (TOAST changed and unchanged), deletes, PK changes,
    a rolled-back transaction, and changes to the table without a primary key."""
    rnd = random.Random(seed)
    with psycopg.connect(dsn, autocommit=True) as c:
        for r in range(rounds):
            i = rnd.randint(1, 400)
            op = r % 8
            if op == 0:
                c.execute("INSERT INTO customers VALUES (%s, %s, %s, true, %s) ON CONFLICT (id) DO NOTHING",
                          (1000 + seed * 10_000 + r, f"new {r}", "1.00", big_note(r) if r % 3 == 0 else "n"))
            elif op == 1:
                c.execute("UPDATE customers SET balance = balance + 1.25, name = name || '!' WHERE id = %s", (i,))
            elif op == 2:
                c.execute("UPDATE customers SET notes = %s WHERE id = %s", (big_note(r + 7), i))
            elif op == 3:
                c.execute("DELETE FROM customers WHERE id = %s", (rnd.randint(1, 300),))
            elif op == 4:
                c.execute("UPDATE customers SET id = id + 500000 WHERE id = %s", (i,))
            elif op == 5:
                with c.transaction(force_rollback=True):
                    c.execute("UPDATE customers SET name = 'rolled back' WHERE id < 100")
                    c.execute("DELETE FROM audit_log")
            elif op == 6:
                c.execute("UPDATE audit_log SET msg = msg || '+' WHERE ctid = (SELECT ctid FROM audit_log "
                          "WHERE code = %s LIMIT 1)", (r % 7,))
            else:
                with c.transaction():
                    c.execute("DELETE FROM audit_log WHERE ctid = (SELECT ctid FROM audit_log LIMIT 1)")
                    c.execute("INSERT INTO audit_log VALUES (%s, %s)", (r % 7, f"event {r % 5}"))
                    c.execute("UPDATE customers SET active = NOT active WHERE id BETWEEN %s AND %s", (i, i + 5))


def assert_replay_equals_source(dsn: str, out: Path) -> list[dict[str, Any]]:
    events = read_events(out)
    state = replay(events, {"customers": ["id"]})
    expected_c = table_state(dsn, "customers", ["id"], CUSTOMER_COLS)
    got_c = as_text(state.get("customers", {}), ["id"], CASTS)
    assert got_c.keys() == expected_c.keys()
    for k in expected_c:
        assert got_c[k] == expected_c[k], k
    assert as_text(state.get("audit_log", {}), [], CASTS) == table_state(dsn, "audit_log", [], AUDIT_COLS)
    assert not any("__debezium_unavailable_value" in json.dumps(e) for e in events)
    return events


def test_snapshot_stream_sigkill_restart(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    dbname = pg_db.rsplit("dbname=", 1)[1]
    setup_schema(pg_db)
    files = write_connectors(tmp_path, pg_server, dbname, "erp1")
    out = tmp_path / "out" / "erp1.jsonl"
    data = tmp_path / "data"

    log = (tmp_path / "cdc.log").open("w")
    proc = subprocess.Popen(cdc_cmd(files, data), env=env(), stdout=subprocess.DEVNULL, stderr=log)
    try:
        def wait_for(cond: Callable[[str], bool]) -> None:
            deadline = time.monotonic() + 120
            while not cond(out.read_text() if out.exists() else ""):
                assert proc.poll() is None, (tmp_path / "cdc.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "cdc.log").read_text()[-5000:]
                time.sleep(0.05)

        wait_for(lambda text: text.count("\n") >= 350)      # the snapshot is delivered
        load = threading.Thread(target=workload, args=(pg_db, 1, 800))
        load.start()
        # Kill once streamed changes are reaching the file, while the load is still running: mid-stream.
        wait_for(lambda text: '"op":"u"' in text)
        assert load.is_alive()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        load.join()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    first_run_lines = len(read_events(out))
    workload(pg_db, 2, 200)
    run_to_end(files, data)
    events = assert_replay_equals_source(pg_db, out)
    ops = {e["op"] for e in events}
    assert {"r", "c", "u", "d"} <= ops
    assert len(events) > first_run_lines
    assert not any(e["after"] and e["after"].get("name") == "rolled back" for e in events)
    # A primary-key change is a delete of the old key followed by a create of the new one.
    customers = [e for e in events if e["source"]["table"] == "customers"]
    for i, e in enumerate(customers):
        if e["op"] == "c" and e["after"]["id"] > 500000:
            old_id = e["after"]["id"] - 500000
            assert any(d["op"] == "d" and d["before"]["id"] == old_id for d in customers[max(0, i - 3):i])
            break
    else:
        raise AssertionError("no primary-key change captured")


def test_stop_at_end_is_incremental_and_idempotent(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    dbname = pg_db.rsplit("dbname=", 1)[1]
    setup_schema(pg_db)
    files = write_connectors(tmp_path, pg_server, dbname, "erp2")
    out = tmp_path / "out" / "erp2.jsonl"
    run_to_end(files, tmp_path / "data")
    snap = read_events(out)
    assert {e["op"] for e in snap} == {"r"} and len(snap) == 350
    run_to_end(files, tmp_path / "data")
    assert len(read_events(out)) == 350, "nothing new, nothing re-delivered"
    workload(pg_db, 3, 120)
    run_to_end(files, tmp_path / "data")
    assert_replay_equals_source(pg_db, out)


@pytest.mark.slow
def test_million_row_transaction_bounded_memory(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    dbname = pg_db.rsplit("dbname=", 1)[1]
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute("CREATE TABLE big (id bigint PRIMARY KEY, v int, t text)")
    files = write_connectors(tmp_path, pg_server, dbname, "erp3", snapshot="no_data",
                             extra={"tombstones.on.delete": "false"})
    run_to_end(files, tmp_path / "data")          # creates the slot: streaming starts here
    with psycopg.connect(pg_db) as c:
        c.execute("INSERT INTO big SELECT g, g % 977, 'row ' || g FROM generate_series(1, 1000000) g")
        c.commit()
        c.execute("INSERT INTO big SELECT g, 0, 'aborted' FROM generate_series(2000001, 2300000) g")
        c.rollback()
    _, rss = run_to_end_measured(files, tmp_path / "data")
    h = hashlib.md5()
    ids: list[int] = []
    rows: dict[int, str] = {}
    with (tmp_path / "out" / "erp3.jsonl").open() as f:
        for line in f:
            ev = json.loads(line)
            assert ev["op"] == "c"
            a = ev["after"]
            ids.append(a["id"])
            rows[a["id"]] = f"{a['id']}:{a['v']}:{a['t']}"
    assert len(ids) == 1_000_000 and len(rows) == 1_000_000
    for k in sorted(rows):
        h.update(rows[k].encode() + b",")
    with psycopg.connect(pg_db) as c:
        row = c.execute("SELECT md5(string_agg(id || ':' || v || ':' || t || ',', '' ORDER BY id)) "
                        "FROM big").fetchone()
    assert row is not None and h.hexdigest() == row[0]
    assert rss < 300 * 1024 * 1024, f"peak RSS {rss / 2**20:.0f} MiB"
