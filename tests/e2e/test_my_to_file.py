"""MariaDB → journal → FileStreamSink, end to end with `cdc run` as a real process (issue #3 acceptance).

Each test drives a real MariaDB 10.11 (session fixture) and checks that replaying the file sink's events
by key reproduces every captured table exactly: snapshot, small transactions, primary-key changes, a
table without a primary key, a rolled-back transaction, SIGKILL and restart, `FLUSH BINARY LOGS` and a
server restart mid-stream.
"""

from __future__ import annotations

import hashlib
import json
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Bridge, read_events, replay, run_to_end, run_to_end_measured
from tests.e2e.myharness import my_table_state, write_my_connectors
from tests.servers.mariadb import MariaDbServer

COLUMNS = ["id", "name", "qty", "price", "note"]
NOPK_COLUMNS = ["code", "msg"]


def _create(srv: MariaDbServer, db: str) -> None:
    srv.execute(db,
                "CREATE TABLE orders (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT, "
                "price DECIMAL(12,2), note TEXT) DEFAULT CHARSET=utf8mb4",
                "CREATE TABLE audit (code VARCHAR(10), msg VARCHAR(100))",
                "INSERT INTO orders VALUES (1, 'alpha', 1, 10.50, NULL), (2, 'beta', 2, -3.25, 'b'), "
                "(3, 'gamma', NULL, 0.00, 'ünïcødé 🚀')",
                "INSERT INTO audit VALUES ('a', 'one'), ('a', 'one'), ('b', NULL)")


def _expected(srv: MariaDbServer, db: str) -> dict[str, Any]:
    return {"orders": my_table_state(srv, db, "orders", ["id"], COLUMNS),
            "audit": my_table_state(srv, db, "audit", [], NOPK_COLUMNS)}


def _replayed(out: Path) -> dict[str, Any]:
    state = replay(read_events(out), {"orders": ["id"], "audit": []})
    orders = {(str(k[0]),): {c: None if v is None else str(v) for c, v in row.items()}
              for k, row in state.get("orders", {}).items()}
    audit: Counter[str] = Counter()
    for js, n in state.get("audit", Counter()).items():
        audit[json.dumps({c: None if v is None else str(v) for c, v in json.loads(js).items()},
                         sort_keys=True)] += n
    return {"orders": orders, "audit": +audit}


def _dml(srv: MariaDbServer, db: str, start: int, n: int) -> None:
    with srv.connect(db) as c, c.cursor() as cur:
        for i in range(start, start + n):
            cur.execute("INSERT INTO orders VALUES (%s, %s, %s, %s, %s)", (i, f"n{i}", i % 7, f"{i}.{i % 100:02d}",
                                                                         None if i % 3 else "x" * (i % 50)))
            if i % 5 == 0:
                cur.execute("UPDATE orders SET qty = qty + 1, note = 'upd' WHERE id = %s", (i - 1,))
            if i % 11 == 0:
                cur.execute("DELETE FROM orders WHERE id = %s", (i - 2,))
            if i % 13 == 0:
                cur.execute("INSERT INTO audit VALUES (%s, %s)", (f"c{i % 4}", f"m{i}"))


def test_snapshot_then_streaming_reproduces_tables(tmp_path: Path, my_server: MariaDbServer, my_db: str) -> None:
    srv, db = my_server, my_db
    _create(srv, db)
    files = write_my_connectors(tmp_path, srv, db, "myfile")
    out = tmp_path / "out" / "myfile.jsonl"
    run_to_end(files, tmp_path / "data")
    snap = read_events(out)
    assert {e["op"] for e in snap} == {"r"} and len(snap) == 6
    assert snap[0]["source"]["connector"] == "mariadb" and snap[0]["source"]["snapshot"] == "true"
    assert _replayed(out) == _expected(srv, db)

    _dml(srv, db, 10, 60)
    with srv.connect(db) as c, c.cursor() as cur:
        # a primary-key change, a rolled-back transaction, a keyless update and delete
        cur.execute("UPDATE orders SET id = 1000 WHERE id = 1")
        cur.execute("BEGIN")
        cur.execute("INSERT INTO orders VALUES (5000, 'never', 0, 0, NULL)")
        cur.execute("DELETE FROM orders WHERE id = 2")
        cur.execute("ROLLBACK")
        cur.execute("UPDATE audit SET msg = 'two' WHERE code = 'b'")
        cur.execute("DELETE FROM audit WHERE code = 'a' LIMIT 1")
    run_to_end(files, tmp_path / "data")
    events = read_events(out)
    streamed = events[len(snap):]
    assert streamed and all(e["source"]["snapshot"] == "false" for e in streamed)
    # the primary-key change: a delete of the old key, then a create of the new one
    moved = [(e["op"], (e["before"] or e["after"])["id"]) for e in streamed
             if (e["before"] or {}).get("id") == 1 or (e["after"] or {}).get("id") == 1000]
    assert moved == [("d", 1), ("c", 1000)]
    assert not any((e["after"] or {}).get("id") == 5000 for e in streamed)
    assert _replayed(out) == _expected(srv, db)


def test_sigkill_flush_logs_and_server_restart_lose_nothing(tmp_path: Path, my_server: MariaDbServer,
                                                            my_db: str) -> None:
    srv, db = my_server, my_db
    _create(srv, db)
    files = write_my_connectors(tmp_path, srv, db, "mycrash")
    out = tmp_path / "out" / "mycrash.jsonl"
    data = tmp_path / "data"
    with Bridge(files, data, tmp_path / "bridge1.log") as bridge:
        bridge.wait_lines(out, 6)
        _dml(srv, db, 100, 40)
        srv.execute(None, "FLUSH BINARY LOGS")
        _dml(srv, db, 200, 40)
        bridge.wait_for(lambda: any((e["after"] or {}).get("id") == 239 for e in read_events(out)), "row 239")
        _dml(srv, db, 300, 200)
        bridge.stop(signal.SIGKILL)
    _dml(srv, db, 600, 30)
    with Bridge(files, data, tmp_path / "bridge2.log") as bridge:
        bridge.wait_for(lambda: any((e["after"] or {}).get("id") == 629 for e in read_events(out)), "row 629")
        srv.stop_server()
        _restart_and_write(srv, db)
        bridge.wait_for(lambda: any((e["after"] or {}).get("id") == 729 for e in read_events(out)), "row 729",
                        timeout=120)
        assert bridge.stop() == 0
    assert _replayed(out) == _expected(srv, db)


def _restart_and_write(srv: MariaDbServer, db: str) -> None:
    srv.start_server()
    _dml(srv, db, 700, 30)


@pytest.mark.slow
def test_million_row_transaction_bounded_memory(tmp_path: Path, my_server: MariaDbServer, my_db: str) -> None:
    srv, db = my_server, my_db
    srv.execute(db, "CREATE TABLE big (id BIGINT PRIMARY KEY, v INT, t VARCHAR(40))")
    files = write_my_connectors(tmp_path, srv, db, "mybig", snapshot="no_data",
                                extra={"tombstones.on.delete": "false"})
    run_to_end(files, tmp_path / "data")          # records the starting position
    with srv.connect(db, autocommit=False) as c, c.cursor() as cur:
        cur.execute("INSERT INTO big SELECT seq, seq % 977, CONCAT('row ', seq) FROM seq_1_to_1000000")
        c.commit()
        cur.execute("INSERT INTO big VALUES (2000001, 0, 'aborted')")
        c.rollback()
    _, rss = run_to_end_measured(files, tmp_path / "data")
    h = hashlib.md5()
    rows: dict[int, str] = {}
    with (tmp_path / "out" / "mybig.jsonl").open() as f:
        for line in f:
            ev = json.loads(line)
            assert ev["op"] == "c"
            a = ev["after"]
            rows[a["id"]] = f"{a['id']}:{a['v']}:{a['t']}"
    assert len(rows) == 1_000_000
    for k in sorted(rows):
        h.update(rows[k].encode() + b",")
    with srv.connect(db) as c, c.cursor() as cur:
        cur.execute("SET SESSION group_concat_max_len = 100000000")
        cur.execute("SELECT MD5(GROUP_CONCAT(CONCAT(id, ':', v, ':', t, ',') ORDER BY id SEPARATOR '')) FROM big")
        row = cur.fetchone()
    assert row is not None and h.hexdigest() == row[0]
    assert rss < 300 * 1024 * 1024, f"peak RSS {rss / 2**20:.0f} MiB"
