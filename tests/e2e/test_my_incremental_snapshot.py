"""Ad-hoc incremental snapshots of a MariaDB source while streaming, end to end (issue #6).

A connector with `snapshot.mode=no_data` streams a table whose rows were never read; `cdc snapshot`
(or a plain INSERT into the signal table) asks for an incremental snapshot while a writer keeps
updating, deleting, inserting and re-keying rows. The bridge bounds each chunk with its own
`snapshot-window-open` / `-close` rows in the signal table (Debezium's insert_insert watermarks) and
sees them come back through the binlog. Rows nobody changed can only reach the output through the
snapshot, and rows the writer changed must not be overtaken by an older read: so once the snapshot
finished and the writer stopped, replaying the FileStreamSink output by key must equal the table. One
bridge is SIGKILLed mid-snapshot (seen in the journal's stored offset) and restarted: the snapshot
resumes from the last journaled chunk and the table still comes out whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.e2e.churn import MARKER, Churn, assert_same_rows, assert_snapshot_logged, reads, stored_offset
from tests.e2e.harness import Bridge, read_events, replay, run_cdc
from tests.e2e.myharness import my_table_state, write_my_connectors
from tests.servers.mariadb import MariaDbServer

SIGNAL_DDL = ("CREATE TABLE debezium_signal (id VARCHAR(42) PRIMARY KEY, type VARCHAR(32) NOT NULL, "
              "data VARCHAR(2048) NULL)")
COLS = ["id", "name", "v"]


def signals(db: str) -> dict[str, str]:
    return {"signal.data.collection": f"{db}.debezium_signal", "incremental.snapshot.chunk.size": "100"}


def make_customers(srv: MariaDbServer, db: str, n: int) -> None:
    srv.execute(db, "CREATE TABLE customers (id INT PRIMARY KEY, name TEXT NOT NULL, v BIGINT)",
                f"INSERT INTO customers SELECT seq, CONCAT('customer ', seq), seq FROM seq_1_to_{n}",
                "ANALYZE TABLE customers", SIGNAL_DDL)


class Writer(Churn):
    def __init__(self, srv: MariaDbServer, db: str, n: int) -> None:
        super().__init__(n)
        self.srv, self.db = srv, db

    def session(self) -> Any:
        return self.srv.connect(self.db)

    def update(self, s: Any, k: int) -> None:
        s.cursor().execute("UPDATE customers SET v = v + 1, name = CONCAT(name, '+') WHERE id = %s", (k,))

    def delete(self, s: Any, k: int) -> None:
        s.cursor().execute("DELETE FROM customers WHERE id = %s", (k,))

    def upsert(self, s: Any, k: int) -> None:
        s.cursor().execute("INSERT INTO customers VALUES (%s, 'again', -1) ON DUPLICATE KEY UPDATE v = v * 2", (k,))

    def decrement_together(self, s: Any, keys: Sequence[int]) -> None:
        s.begin()
        for j in keys:
            s.cursor().execute("UPDATE customers SET v = v - 1 WHERE id = %s", (j,))
        s.commit()

    def rekey(self, s: Any, k: int, new: int) -> None:
        s.cursor().execute("UPDATE customers SET id = %s WHERE id = %s", (new, k))


def started(bridge: Bridge, data: Path, name: str) -> None:
    """The bridge recorded where its stream starts: a signal inserted from now on is seen."""
    bridge.wait_for(lambda: bool(stored_offset(data, name)), "the starting binlog position to be journaled")


def finish_and_compare(bridge: Bridge, srv: MariaDbServer, db: str, out: Path) -> list[dict[str, Any]]:
    """After the writer stopped: one more insert, wait for it in the output, then compare by key."""
    srv.execute(db, f"INSERT INTO customers VALUES ({MARKER}, 'marker', 0)")
    bridge.wait_for(lambda: any((e["after"] or {}).get("id") == MARKER for e in read_events(out)),
                    "the marker row in the output", timeout=120)
    events = read_events(out)
    got = {(str(k[0]),): {c: None if v is None else str(v) for c, v in row.items()}
           for k, row in replay(events, {"customers": ["id"]}).get("customers", {}).items()}
    want = my_table_state(srv, db, "customers", ["id"], COLS)
    assert_same_rows(got, want)
    return events


def test_incremental_snapshot_while_a_writer_changes_the_table(tmp_path: Path, my_server: MariaDbServer,
                                                                my_db: str) -> None:
    srv, db, n = my_server, my_db, 5000
    make_customers(srv, db, n)
    files = write_my_connectors(tmp_path, srv, db, "myincr", tables=f"{db}\\.customers", snapshot="no_data",
                                extra=signals(db))
    out, data = tmp_path / "out" / "myincr.jsonl", tmp_path / "data"
    with Bridge(files, data, tmp_path / "run.log") as bridge:
        started(bridge, data, "myincr")
        with Writer(srv, db, n) as writer:
            p = run_cdc(["snapshot", *map(str, files), "--tables", f"{db}.customers"])
            assert p.returncode == 0, p.stderr
            assert re.search(rf"signal [0-9a-f-]{{36}} \(execute-snapshot of {db}.customers\)", p.stdout), p.stdout
            bridge.wait_for(lambda: f"incremental snapshot of {db}.customers finished" in bridge.output(),
                            "the incremental snapshot to finish", timeout=180)
            writer.stop()
            assert writer.count > 100, "the writer barely ran during the snapshot"
        events = finish_and_compare(bridge, srv, db, out)
        assert bridge.stop() == 0, bridge.output()[-3000:]
    r, chunks = assert_snapshot_logged(bridge.output(), f"{db}.customers", events, n)
    assert {e["source"]["connector"] for e in r} == {"mariadb"}
    with srv.connect(db) as c, c.cursor() as cur:   # the watermark rows are left, as Debezium leaves them
        cur.execute("SELECT type, COUNT(*) FROM debezium_signal GROUP BY type ORDER BY type")
        marks = dict(cur.fetchall())
    assert marks["snapshot-window-close"] >= chunks and marks["snapshot-window-open"] >= chunks


def test_sigkill_mid_snapshot_resumes_from_the_last_journaled_chunk(tmp_path: Path, my_server: MariaDbServer,
                                                                    my_db: str) -> None:
    srv, db, n = my_server, my_db, 20_000
    make_customers(srv, db, n)
    files = write_my_connectors(tmp_path, srv, db, "myincrkill", tables=f"{db}\\.customers", snapshot="no_data",
                                extra=signals(db))
    out, data = tmp_path / "out" / "myincrkill.jsonl", tmp_path / "data"
    with Writer(srv, db, n) as writer:
        with Bridge(files, data, tmp_path / "run1.log") as first:
            started(first, data, "myincrkill")
            assert run_cdc(["snapshot", *map(str, files), "--tables", f"{db}\\.cust.*"]).returncode == 0
            first.wait_for(lambda: stored_offset(data, "myincrkill").get("incremental_snapshot_rows", 0) >= 2000,
                           "2000 rows of the snapshot journaled", timeout=120)
            first.stop(9)   # SIGKILL
        at_kill = stored_offset(data, "myincrkill")
        assert at_kill.get("incremental_snapshot_collections") == [f"{db}.customers"], "the snapshot was over"
        assert "file" in at_kill and "pos" in at_kill
        assert f"incremental snapshot of {db}.customers finished" not in first.output()
        with Bridge(files, data, tmp_path / "run2.log") as second:
            second.wait_for(lambda: f"incremental snapshot of {db}.customers finished" in second.output(),
                            "the resumed snapshot to finish", timeout=180)
            resumed = re.search(rf"resuming the incremental snapshot of {db}.customers \((\d+) rows",
                                second.output())
            assert resumed is not None and int(resumed[1]) >= 2000, second.output()[-3000:]
            writer.stop()
            events = finish_and_compare(second, srv, db, out)
            assert second.stop() == 0, second.output()[-3000:]
    # duplicates are allowed, a restart from scratch is not
    assert len(reads(events)) < n + n // 2
    assert "incremental_snapshot_collections" not in stored_offset(data, "myincrkill")


def test_a_signal_inserted_with_sql_into_a_captured_signal_table(tmp_path: Path, my_server: MariaDbServer,
                                                                 my_db: str) -> None:
    srv, db = my_server, my_db
    make_customers(srv, db, 350)
    srv.execute(db, "CREATE TABLE nokey (v INT)", "INSERT INTO nokey VALUES (1)")
    files = write_my_connectors(tmp_path, srv, db, "myincrsql",
                                tables=f"{db}\\.customers,{db}\\.debezium_signal,{db}\\.nokey", snapshot="no_data",
                                extra=signals(db))
    out, data = tmp_path / "out" / "myincrsql.jsonl", tmp_path / "data"
    with Bridge(files, data, tmp_path / "run.log") as bridge:
        started(bridge, data, "myincrsql")
        # Debezium's documented shape, in one transaction with a change: acted on at its commit
        with srv.connect(db, autocommit=False) as c, c.cursor() as cur:
            cur.execute("INSERT INTO debezium_signal VALUES ('sql-1', 'execute-snapshot', "
                        f"'{{\"data-collections\": [\"{db}.customers\", \"{db}.nokey\", \"{db}.nothing\"], "
                        "\"type\": \"INCREMENTAL\"}')")
            cur.execute("UPDATE customers SET v = 0 WHERE id = 7")
            c.commit()
        bridge.wait_for(lambda: "incremental snapshot complete" in bridge.output(), "the snapshot", timeout=120)
        events = finish_and_compare(bridge, srv, db, out)
        assert bridge.stop() == 0, bridge.output()[-3000:]
    log = bridge.output()
    assert f"'{db}.nothing' names no table this connector captures" in log
    assert f"incremental snapshot of {db}.nokey skipped: the table has no primary key" in log
    assert f"{db}.customers finished: 350 rows in 4 chunks" in log
    # the signal table is captured here, so its rows are journaled as any other (Debezium): the signal,
    # then the bridge's watermark rows, two per chunk read
    signal_rows = [e for e in events if e["source"]["table"] == "debezium_signal"]
    assert {e["op"] for e in signal_rows} == {"c"}
    assert signal_rows[0]["after"]["id"] == "sql-1"
    kinds = [e["after"]["type"] for e in signal_rows[1:]]
    assert kinds[:8] == ["snapshot-window-open", "snapshot-window-close"] * 4, kinds


def test_signal_problems(tmp_path: Path, my_server: MariaDbServer, my_db: str) -> None:
    srv, db = my_server, my_db
    srv.execute(db, "CREATE TABLE customers (id INT PRIMARY KEY)")
    plain = write_my_connectors(tmp_path, srv, db, "mynosig", snapshot="no_data")
    p = run_cdc(["snapshot", *map(str, plain), "--tables", f"{db}.customers"])
    assert p.returncode == 2 and "property 'signal.data.collection' is not set" in p.stderr, p.stderr
    missing = write_my_connectors(tmp_path, srv, db, "mymissing", snapshot="no_data",
                                  extra={"signal.data.collection": f"{db}.signals"})
    p = run_cdc(["snapshot", *map(str, missing), "--tables", f"{db}.customers"])
    assert p.returncode == 1, p.stderr
    assert f"the signal table {db}.signals does not exist; create it: CREATE TABLE {db}.signals" in p.stderr, p.stderr
    # the bridge refuses to start without it too, saying how to create it
    p = run_cdc(["run", "--data-dir", str(tmp_path / "d"), "--stop-at-end", *map(str, missing)])
    assert p.returncode == 1 and f"the signal table {db}.signals (signal.data.collection) does not exist" in p.stderr
