"""Failures: a connector that fails is isolated and restarted while streaming; a batch run stops on it."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import psycopg

from tests.e2e.harness import Bridge, cdc_cmd, env, execute, read_events, replay, write_connectors
from tests.servers.postgres import PgServer


def test_a_failing_sink_ends_a_stop_at_end_run(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    dbname = pg_db.rsplit("dbname=", 1)[1]
    execute(pg_db, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    files = write_connectors(tmp_path, pg_server, dbname, "fail1")
    (tmp_path / "out" / "fail1.jsonl").mkdir(parents=True)   # the sink's file is a directory: cannot write
    p = subprocess.run(cdc_cmd(files, tmp_path / "data", "--stop-at-end"), env=env(), capture_output=True,
                       text=True, timeout=120, check=False)
    assert p.returncode == 1, p.stderr[-3000:]
    assert "sink-fail1-file failed" in p.stderr
    assert "fail1.jsonl" in p.stderr


def test_a_failing_sink_is_restarted_with_backoff_while_the_others_go_on(pg_server: PgServer, pg_db: str,
                                                                          tmp_path: Path) -> None:
    dbname = pg_db.rsplit("dbname=", 1)[1]
    execute(pg_db, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'a')")
    files = write_connectors(tmp_path, pg_server, dbname, "iso", snapshot="initial")
    good = tmp_path / "out" / "iso.jsonl"
    bad = tmp_path / "out" / "iso-bad.jsonl"
    bad.mkdir(parents=True)                                   # this sink cannot write until the directory goes
    second = tmp_path / "iso-bad-sink.json"
    second.write_text(json.dumps({"name": "iso-bad", "config": {
        "connector.class": "FileStreamSink", "file": str(bad), "topics.regex": "iso\\..*"}}))
    with Bridge([*files, second], tmp_path / "data", tmp_path / "cdc.log") as bridge:
        bridge.wait_lines(good, 1)
        bridge.wait_for(lambda: bridge.output().count("sink-iso-bad failed") >= 2,
                        "the failing sink failing again after its first backoff")
        assert "connector iso-bad: restarting in" in bridge.output()
        # The source and the healthy sink keep streaming meanwhile.
        execute(pg_db, "INSERT INTO t VALUES (2, 'b')", "UPDATE t SET v = 'c' WHERE id = 1")
        bridge.wait_lines(good, 3)
        bad.rmdir()                                           # the operator fixes it: the next restart delivers
        bridge.wait_for(lambda: len(read_events(bad)) >= 3, "the restarted sink catching up", timeout=90)
        assert bridge.stop() == 0
    with psycopg.connect(pg_db) as c:
        rows: dict[int, str] = dict(c.execute("SELECT id, v FROM t").fetchall())
    for out in (good, bad):
        state = replay(read_events(out), {"t": ["id"]})
        assert {k[0]: v["v"] for k, v in state["t"].items()} == rows


def test_no_tables_publication_is_created_empty(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    dbname = pg_db.rsplit("dbname=", 1)[1]
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute("CREATE TABLE t (id int PRIMARY KEY)")
    files = write_connectors(tmp_path, pg_server, dbname, "notables", snapshot="no_data",
                             extra={"publication.autocreate.mode": "no_tables"})
    p = subprocess.run(cdc_cmd(files, tmp_path / "data", "--stop-at-end"), env=env(), capture_output=True,
                       text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    with psycopg.connect(pg_db) as c:
        row = c.execute("SELECT puballtables, (SELECT count(*) FROM pg_publication_tables WHERE pubname = %s) "
                        "FROM pg_publication WHERE pubname = %s", ("pub_notables", "pub_notables")).fetchone()
    assert row == (False, 0)


def test_server_restart_mid_stream_reconnects_without_loss(pg_server: PgServer, pg_db: str,
                                                           tmp_path: Path) -> None:
    dbname = pg_db.rsplit("dbname=", 1)[1]
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
        c.execute("INSERT INTO orders SELECT g, 'new' FROM generate_series(1, 100) g")
    files = write_connectors(tmp_path, pg_server, dbname, "restart1")
    out = tmp_path / "out" / "restart1.jsonl"
    with Bridge(files, tmp_path / "data", tmp_path / "cdc.log") as bridge:
        bridge.wait_lines(out, 100)                              # the snapshot
        execute(pg_db, *(f"UPDATE orders SET status = 'paid' WHERE id = {i}" for i in range(1, 51)))
        bridge.wait_lines(out, 150)
        pg_server.stop_server("fast")                            # the ERP server restarts mid-stream
        pg_server.start_server()
        execute(pg_db, *(f"UPDATE orders SET status = 'shipped' WHERE id = {i}" for i in range(40, 101)),
                "DELETE FROM orders WHERE id <= 10", "INSERT INTO orders VALUES (1000, 'late')")
        bridge.wait_for(lambda: any(e["op"] == "c" and e["after"]["id"] == 1000 for e in read_events(out)),
                        "the change made after the restart", timeout=120)
        assert bridge.stop() == 0
        assert "reconnecting in" in bridge.output()
    state = replay(read_events(out), {"orders": ["id"]})
    with psycopg.connect(pg_db) as c:
        rows: dict[int, str] = dict(c.execute("SELECT id, status FROM orders").fetchall())
    assert {k[0]: v["status"] for k, v in state["orders"].items()} == rows


def test_sigkill_mid_snapshot_restarts_the_snapshot_without_loss(pg_server: PgServer, pg_db: str,
                                                                 tmp_path: Path) -> None:
    dbname = pg_db.rsplit("dbname=", 1)[1]
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
        c.execute("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 200000) g")
    files = write_connectors(tmp_path, pg_server, dbname, "snapkill",
                             extra={"snapshot.fetch.size": "2000"})
    out = tmp_path / "out" / "snapkill.jsonl"
    with Bridge(files, tmp_path / "data", tmp_path / "cdc.log") as bridge:
        # Kill once the first snapshot chunks are delivered, well before the table's end.
        bridge.wait_for(lambda: out.exists() and out.stat().st_size > 0, "the first snapshot rows")
        bridge.stop(signal.SIGKILL)
    first = len(read_events(out))
    assert 0 < first < 200000, first
    execute(pg_db, "UPDATE items SET label = 'changed' WHERE id = 7", "DELETE FROM items WHERE id = 8")
    p = subprocess.run(cdc_cmd(files, tmp_path / "data", "--stop-at-end"), env=env(), capture_output=True,
                       text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    state = replay(read_events(out), {"items": ["id"]})
    with psycopg.connect(pg_db) as c:
        rows: dict[int, str] = dict(c.execute("SELECT id, label FROM items").fetchall())
    assert {k[0]: v["label"] for k, v in state["items"].items()} == rows
