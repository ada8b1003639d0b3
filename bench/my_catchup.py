"""Catch-up benchmark: MariaDB binlog → journal → FileStreamSink for 260,000 change events.

The workload of ../shared/bench/debezium (table `orders`, 200,000 inserts in 1,000-row transactions,
50,000 updates, 10,000 deletes) runs after the bridge has recorded its starting position (a
`snapshot.mode=no_data` run, like Debezium's primed offset); then, in the same run, each reader catches
up from the pre-workload position to the binlog end:

- `mariadb-binlog --read-from-remote-server --base64-output=decode-rows --verbose` → /dev/null: the
  server's streaming and C decoding limit;
- a bare `BinLogStreamReader` loop (mysql-replication, rows events only, every row decoded): the stock
  Python decoding this bridge replaces;
- `cdc run --stop-at-end`: capture, decode, Debezium JSON, durable journal, durable file sink, cursor
  committed.

Each is timed by wall clock with its peak RSS (getrusage of a fresh launcher's children). Debezium's
figures on this machine come from ../shared/bench/debezium/reference-results.md (it needs a JVM).
Prints a table; asserts nothing. `python -m bench.my_catchup [--rounds N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.pg_catchup import measured
from bench.workload import TOTAL, transactions
from tests.servers.mariadb import MariaDbServer, mariadb_bin

ROOT = Path(__file__).resolve().parents[1]
DEBEZIUM = {"events/s": 25_162, "seconds": 10.33, "rss_mib": 1006}
RAW_LOOP = """
import sys
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent
port, file, pos, db = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = BinLogStreamReader(connection_settings={"host": "127.0.0.1", "port": port, "user": "cdc", "passwd": "cdc"},
                       server_id=5402, blocking=False, resume_stream=True, log_file=file, log_pos=pos,
                       only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent], only_schemas=[db],
                       enable_logging=False)
n = sum(len(ev.rows) for ev in s)
s.close()
assert n == int(sys.argv[5]), n
"""


def workload(srv: MariaDbServer, db: str) -> None:
    """The Debezium harness's workload (same rows, same transactions)."""
    with srv.connect(db, autocommit=False) as c, c.cursor() as cur:
        for sql, params in transactions("now(6)"):
            cur.execute(sql, params)
            c.commit()


def one_round(srv: MariaDbServer, work: Path, rnd: int) -> dict[str, dict[str, float]]:
    db = f"bench{rnd}"
    srv.execute(None, f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db}")
    srv.execute(db, "CREATE TABLE orders(id bigint auto_increment primary key, customer_id int, status text, "
                    "amount decimal(12,2), note text, updated_at timestamp(6) NULL) ENGINE=InnoDB")
    out = work / f"out{rnd}.jsonl"
    src = {"name": f"bench{rnd}", "config": {
        "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
        "database.hostname": "127.0.0.1", "database.port": str(srv.port), "database.user": "cdc",
        "database.password": "cdc", "database.server.id": "5401", "topic.prefix": "bench",
        "database.include.list": db, "snapshot.mode": "no_data", "tombstones.on.delete": "false"}}
    sink = {"name": f"file{rnd}", "config": {"connector.class": "FileStreamSink", "file": str(out),
                                             "topics": f"bench.{db}.orders"}}
    (work / "src.json").write_text(json.dumps(src))
    (work / "sink.json").write_text(json.dumps(sink))
    cdc = [sys.executable, "-m", "cdc.cli", "run", "--data-dir", str(work / f"data{rnd}"), "--stop-at-end",
           str(work / "src.json"), str(work / "sink.json")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    measured(cdc, env=env)               # records the schemas and the starting position (the "prime")
    file, pos = srv.binlog_position()
    workload(srv, db)
    results: dict[str, dict[str, float]] = {}
    readers = ["mariadb-binlog", "BinLogStreamReader", "cdc"]
    readers = readers[rnd % 3:] + readers[:rnd % 3]
    for reader in readers:
        if reader == "mariadb-binlog":
            wall, rss, _ = measured([mariadb_bin("mariadb-binlog"), "--read-from-remote-server", "--host=127.0.0.1",
                                     f"--port={srv.port}", "--user=cdc", "--password=cdc",
                                     f"--start-position={pos}", "--to-last-log", "--base64-output=decode-rows",
                                     "--verbose", file])
        elif reader == "BinLogStreamReader":
            wall, rss, _ = measured([sys.executable, "-c", RAW_LOOP, str(srv.port), file, str(pos), db, str(TOTAL)])
        else:
            wall, rss, log = measured(cdc, env=env)
            with out.open("rb") as f:
                lines = sum(1 for _ in f)
            if lines != TOTAL:
                raise SystemExit(f"cdc delivered {lines} events, expected {TOTAL}\n{log[-3000:]}")
            out.unlink()
            done = re.search(r"done in ([0-9.]+) s", log)
            results["cdc pipeline"] = {"seconds": float(done.group(1)) if done else wall, "rss": rss}
        results[reader] = {"seconds": wall, "rss": rss}
    srv.execute(None, f"DROP DATABASE {db}")
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cdc-mybench-"))
    srv = MariaDbServer.start()
    runs: dict[str, list[dict[str, float]]] = {}
    try:
        for r in range(args.rounds):
            t = time.perf_counter()
            res = one_round(srv, work, r)
            for k, v in res.items():
                runs.setdefault(k, []).append(v)
            print(f"round {r + 1}/{args.rounds} ({time.perf_counter() - t:.0f} s): "
                  + ", ".join(f"{k} {v['seconds']:.2f} s" for k, v in res.items()), flush=True)
    finally:
        srv.destroy()
    print(f"\nMariaDB 10.11 catch-up, {TOTAL:,} change events (200k inserts / 50k updates / 10k deletes, "
          f"1,000-row transactions), median of {args.rounds}, this machine ({os.cpu_count()} cores):\n")
    print("| reader | seconds [all] | events/s | peak RSS MiB |")
    print("|---|---|---|---|")
    for name, label in (("cdc", "cdc run --stop-at-end → journal → file (this bridge, whole process)"),
                        ("cdc pipeline", "  the same run, open → all delivered (no process start-up)"),
                        ("BinLogStreamReader", "bare mysql-replication loop, rows decoded (stock Python decoding)"),
                        ("mariadb-binlog", "mariadb-binlog --read-from-remote-server, rows decoded → /dev/null")):
        secs = [r["seconds"] for r in runs[name]]
        med = statistics.median(secs)
        print(f"| {label} | {med:.2f} [{', '.join(f'{s:.2f}' for s in secs)}] | {TOTAL / med:,.0f} | "
              f"{statistics.median(r['rss'] for r in runs[name]) / 2**20:.0f} |")
    print(f"| Debezium 3.6.3 MySqlConnector, first to last event (reference-results.md, same machine kind) | "
          f"{DEBEZIUM['seconds']} | {DEBEZIUM['events/s']:,} | {DEBEZIUM['rss_mib']} |")


if __name__ == "__main__":
    main()
