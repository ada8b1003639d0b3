"""Catch-up benchmark: PostgreSQL → journal → FileStreamSink for 260,000 change events.

The workload of ../shared/bench/debezium (table `orders`, 200,000 inserts in 1,000-row transactions,
50,000 updates, 10,000 deletes) runs with two slots already in place; then, in the same run, each
reader catches up from the pre-workload position to the WAL end:

- `pg_recvlogical` (pgoutput proto 1 → /dev/null, `--endpos`): the server's own streaming limit;
- `cdc run --stop-at-end` (snapshot.mode=no_data): capture, decode, Debezium JSON, durable journal,
  durable file sink, cursor committed.

Each is timed by wall clock and measured for peak RSS (getrusage of a fresh launcher's children), with
the PostgreSQL server's CPU seconds during the run. Debezium's figures on this machine come from
../shared/bench/debezium/reference-results.md (it needs a JVM; see that folder to re-run it).
Prints a table; asserts nothing. `python -m bench.pg_catchup [--rounds N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from bench.workload import TOTAL, transactions
from tests.servers.postgres import PgServer

ROOT = Path(__file__).resolve().parents[1]
DEBEZIUM = {"events/s": 21_943, "seconds": 11.85, "rss_mib": 1106, "cpu": "181 % of 200"}


def workload(dsn: str) -> None:
    """The Debezium harness's workload (same rows, same transactions)."""
    with psycopg.connect(dsn) as c:
        cur = c.cursor()
        for sql, params in transactions("now()"):
            cur.execute(sql, params)
            c.commit()


def orders_database(srv: PgServer, db: str, slots: list[str]) -> str:
    """A fresh database `db` with the workload's empty `orders` table, publication `bench_pub` and the
    pgoutput slots `slots` (created before the workload, so they see all of it); returns its DSN."""
    with psycopg.connect(srv.dsn(), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {db}")
    dsn = srv.dsn(db)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE orders(id bigserial primary key, customer_id int, status text, "
                  "amount numeric(12,2), note text, updated_at timestamptz)")
        c.execute("CREATE PUBLICATION bench_pub FOR TABLE orders")
        for slot in slots:
            c.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    return dsn


def measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run `cmd` under a fresh launcher; return (wall seconds, peak RSS bytes, stderr)."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
            "w = time.perf_counter() - t; sys.stderr.write(p.stderr); "
            "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)")
    p = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, env=env, check=True)
    wall, rss_kb, rc = p.stdout.split()
    if rc != "0":
        raise SystemExit(f"{cmd[0]} failed ({rc}):\n{p.stderr[-3000:]}")
    return float(wall), int(rss_kb) * 1024, p.stderr


def process_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds a live process has used so far (with its waited-for children's, if `children`); 0 once
    it is gone."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return sum(int(x) for x in f[11:15 if children else 13]) / os.sysconf("SC_CLK_TCK")


def server_cpu(srv: PgServer) -> float:
    """CPU seconds used so far by the cluster's processes (live ones, from /proc)."""
    pid = int((srv.datadir / "postmaster.pid").read_text().split()[0])
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return sum(process_cpu(p, children=True) for p in pids)


def one_round(srv: PgServer, work: Path, rnd: int) -> dict[str, dict[str, float]]:
    db = f"bench{rnd}"
    dsn = orders_database(srv, db, [f"recv_{rnd}", f"cdc_{rnd}"])
    workload(dsn)
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        end = row[0]
        c.execute("CHECKPOINT")
    results: dict[str, dict[str, float]] = {}
    readers = ["pg_recvlogical", "cdc"] if rnd % 2 == 0 else ["cdc", "pg_recvlogical"]
    for reader in readers:
        cpu0 = server_cpu(srv)
        if reader == "pg_recvlogical":
            wall, rss, _ = measured(["pg_recvlogical", "-d", dsn, "--slot", f"recv_{rnd}", "--start",
                                     "--no-loop", "--endpos", end, "-F", "0", "-f", "/dev/null",
                                     "-o", "proto_version=1", "-o", "publication_names=bench_pub"])
        else:
            out = work / f"out{rnd}.jsonl"
            src = {"name": f"bench{rnd}", "config": {
                "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                "database.hostname": "127.0.0.1", "database.port": str(srv.port), "database.user": "postgres",
                "database.dbname": db, "topic.prefix": "bench", "slot.name": f"cdc_{rnd}",
                "publication.name": "bench_pub", "publication.autocreate.mode": "disabled",
                "table.include.list": "public.orders", "snapshot.mode": "no_data",
                "tombstones.on.delete": "false"}}
            sink = {"name": f"file{rnd}", "config": {"connector.class": "FileStreamSink", "file": str(out),
                                                     "topics": "bench.public.orders"}}
            (work / "src.json").write_text(json.dumps(src))
            (work / "sink.json").write_text(json.dumps(sink))
            wall, rss, log = measured([sys.executable, "-m", "cdc.cli", "run", "--data-dir",
                                       str(work / f"data{rnd}"), "--stop-at-end", str(work / "src.json"),
                                       str(work / "sink.json")], env={**os.environ, "PYTHONPATH": str(ROOT)})
            with out.open("rb") as f:
                lines = sum(1 for _ in f)
            if lines != TOTAL:
                raise SystemExit(f"cdc delivered {lines} events, expected {TOTAL}\n{log[-3000:]}")
            out.unlink()
            # The bridge's own figure: from opening the connector to everything delivered (imports and
            # process start excluded, connecting included), like Debezium's catch-up window.
            done = re.search(r"done in ([0-9.]+) s", log)
            results[reader + " pipeline"] = {"seconds": float(done.group(1)) if done else wall, "rss": rss,
                                             "server_cpu": 0.0}
        results[reader] = {"seconds": wall, "rss": rss, "server_cpu": server_cpu(srv) - cpu0}
    with psycopg.connect(srv.dsn(), autocommit=True) as c:
        c.execute(f"DROP DATABASE {db} WITH (FORCE)")
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cdc-bench-"))
    srv = PgServer.start(settings={"fsync": "on"})
    runs: dict[str, list[dict[str, float]]] = {"pg_recvlogical": [], "cdc": [], "cdc pipeline": []}
    try:
        for r in range(args.rounds):
            t = time.perf_counter()
            res = one_round(srv, work, r)
            for k, v in res.items():
                runs[k].append(v)
            print(f"round {r + 1}/{args.rounds} ({time.perf_counter() - t:.0f} s): "
                  + ", ".join(f"{k} {v['seconds']:.2f} s" for k, v in res.items()), flush=True)
    finally:
        srv.destroy()
    print(f"\nPostgreSQL 15 catch-up, {TOTAL:,} change events (200k inserts / 50k updates / 10k deletes, "
          f"1,000-row transactions), median of {args.rounds}, this machine ({os.cpu_count()} cores):\n")
    print("| reader | seconds [all] | events/s | peak RSS MiB | server CPU s |")
    print("|---|---|---|---|---|")
    for name, label in (("cdc", "cdc run --stop-at-end → journal → file (this bridge, whole process)"),
                        ("cdc pipeline", "  the same run, open → all delivered (no process start-up)"),
                        ("pg_recvlogical", "pg_recvlogical pgoutput → /dev/null (server limit)")):
        secs = [r["seconds"] for r in runs[name]]
        med = statistics.median(secs)
        print(f"| {label} | {med:.2f} [{', '.join(f'{s:.2f}' for s in secs)}] | {TOTAL / med:,.0f} | "
              f"{statistics.median(r['rss'] for r in runs[name]) / 2**20:.0f} | "
              f"{statistics.median(r['server_cpu'] for r in runs[name]):.2f} |")
    print(f"| Debezium 3.6.3 embedded, first to last event (reference-results.md, same machine kind) | "
          f"{DEBEZIUM['seconds']} | "
          f"{DEBEZIUM['events/s']:,} | {DEBEZIUM['rss_mib']} | 0.82 |")
    _ = resource


if __name__ == "__main__":
    main()
