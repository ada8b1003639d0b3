"""Failures that must stop the bridge visibly: a sink that cannot write ends a running `cdc run`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg

from tests.e2e.harness import cdc_cmd, env, write_connectors
from tests.servers.postgres import PgServer


def test_permanently_failing_sink_stops_the_run(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    dbname = pg_db.rsplit("dbname=", 1)[1]
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute("CREATE TABLE t (id int PRIMARY KEY)")
        c.execute("INSERT INTO t VALUES (1)")
    files = write_connectors(tmp_path, pg_server, dbname, "fail1")
    (tmp_path / "out" / "fail1.jsonl").mkdir(parents=True)   # the sink's file is a directory: cannot write
    # Not --stop-at-end: without the failure this run would stream forever.
    p = subprocess.run(cdc_cmd(files, tmp_path / "data"), env=env(), capture_output=True, text=True,
                       timeout=120, check=False)
    assert p.returncode == 1, p.stderr[-3000:]
    assert "sink-fail1-file failed" in p.stderr
    assert "fail1.jsonl" in p.stderr


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
