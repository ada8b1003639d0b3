"""Binlog positions on MariaDB (issue #3): resuming by GTID when the stored file is purged, refusing to
resume past a gap, and `snapshot.mode=when_needed` taking a new snapshot instead.
"""

from __future__ import annotations

from pathlib import Path

from cdc.journal.sqlite import SqliteJournal
from tests.e2e.harness import read_events, replay, run_cdc, run_to_end, wait_until
from tests.e2e.myharness import my_table_state, write_my_connectors
from tests.servers.mariadb import MariaDbServer

COLUMNS = ["id", "v"]


def _purge_all_but_current(srv: MariaDbServer) -> str:
    srv.execute(None, "FLUSH BINARY LOGS")
    current, _ = srv.binlog_position()

    def purged() -> bool:
        # MariaDB keeps a file until its InnoDB binlog checkpoint has moved on (asynchronously).
        with srv.connect() as c, c.cursor() as cur:
            cur.execute(f"PURGE BINARY LOGS TO '{current}'")
            cur.execute("SHOW BINARY LOGS")
            return [r[0] for r in cur.fetchall()] == [current]
    wait_until(purged, f"binary logs before {current} purged", timeout=30)
    return current


def _state(out: Path) -> dict[tuple[str, ...], dict[str, str]]:
    got = replay(read_events(out), {"t": ["id"]}).get("t", {})
    return {tuple(str(k) for k in key): {c: str(v) for c, v in row.items()} for key, row in got.items()}


def test_purged_file_resumes_from_the_gtid_state(tmp_path: Path, my_server: MariaDbServer, my_db: str) -> None:
    srv, db = my_server, my_db
    srv.execute(db, "CREATE TABLE t (id INT PRIMARY KEY, v INT)", "INSERT INTO t VALUES (1, 1)")
    files = write_my_connectors(tmp_path, srv, db, "mygtid")
    data = tmp_path / "data"
    run_to_end(files, data)
    with SqliteJournal(data / "journal.db") as j:
        offset = j.source_offset("mygtid")
    assert offset is not None and offset["gtids"]
    srv.execute(db, "INSERT INTO t VALUES (2, 2)", "UPDATE t SET v = 10 WHERE id = 1")
    run_to_end(files, data)
    # The file holding the stored position is purged after the bridge read all of it: the GTID state
    # still says exactly where to go on.
    _purge_all_but_current(srv)
    srv.execute(db, "INSERT INTO t VALUES (3, 3)", "DELETE FROM t WHERE id = 2")
    p = run_to_end(files, data)
    assert "resuming from GTID state" in p.stderr
    assert _state(tmp_path / "out" / "mygtid.jsonl") == my_table_state(srv, db, "t", ["id"], COLUMNS)


def test_purged_changes_are_a_gap_even_with_gtids(tmp_path: Path, my_server: MariaDbServer, my_db: str) -> None:
    srv, db = my_server, my_db
    srv.execute(db, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
    files = write_my_connectors(tmp_path, srv, db, "mygap2")
    run_to_end(files, tmp_path / "data")
    srv.execute(db, "INSERT INTO t VALUES (1, 1)")     # never read: purged below
    _purge_all_but_current(srv)
    p = run_cdc(["run", "--data-dir", str(tmp_path / "data"), "--stop-at-end", *map(str, files)])
    assert p.returncode == 1
    assert "is older than the oldest binlog's" in p.stderr and "snapshot.mode=when_needed" in p.stderr


def test_a_gap_is_refused_unless_when_needed(tmp_path: Path, my_server: MariaDbServer, my_db: str) -> None:
    srv, db = my_server, my_db
    srv.execute(db, "CREATE TABLE t (id INT PRIMARY KEY, v INT)", "INSERT INTO t VALUES (1, 1)")
    files = write_my_connectors(tmp_path, srv, db, "mygap")
    data = tmp_path / "data"
    run_to_end(files, data)
    with SqliteJournal(data / "journal.db") as j:      # a position without GTIDs (as from a MySQL server
        offset = j.source_offset("mygap")               # without gtid_mode): only file and position
        assert offset is not None
        j.set_source_offset("mygap", {k: v for k, v in offset.items() if k != "gtids"})
    srv.execute(db, "DELETE FROM t WHERE id = 1", "INSERT INTO t VALUES (2, 2)")
    current = _purge_all_but_current(srv)
    p = run_cdc(["run", "--data-dir", str(data), "--stop-at-end", *map(str, files)])
    assert p.returncode == 1
    assert f"binlog file {offset['file']} holding the stored position is no longer on the server" in p.stderr
    assert "snapshot.mode=when_needed" in p.stderr and current in p.stderr

    files = write_my_connectors(tmp_path, srv, db, "mygap", snapshot="when_needed")
    run_to_end(files, data)
    events = read_events(tmp_path / "out" / "mygap.jsonl")
    assert [e["op"] for e in events] == ["r", "r"]     # the first snapshot, then a new one
    # The new snapshot shows id 2 only; a consumer that replays by key still holds the deleted id 1,
    # which is what a gap means: the snapshot repairs rows, not deletes it never saw.
    assert events[-1]["after"] == {"id": 2, "v": 2}
