"""End-to-end delivery benchmark: PostgreSQL -> journal -> SQL mapping -> generic REST emulator.

Three measurements, each beside its reference taken in the same run:

1. Batch endpoint (``http.batch.url``, 1,000 records per request): the Debezium harness's workload
   (200,000 inserts in 1,000-row transactions, 50,000 updates, 10,000 deletes: 260,000 events) captured
   from a slot and delivered by `cdc run --stop-at-end`; events/s over the whole process, beside the
   emulator's own maximum for the same request shape (a bare client on the bridge's own transport, 4
   concurrent requests) and Debezium's capture-only figure on this machine
   (../shared/bench/debezium/reference-results.md).
2. One request per record (``http.url`` only): a tenth of that workload; requests/s beside the
   emulator's own per-record maximum (32 concurrent PUTs), so the limit shows where it is.
3. Latency: `cdc run` streaming while 1,000 rows/s are inserted for `--seconds`, one per transaction;
   per event, the emulator's apply time minus the source commit time carried in the CloudEvent
   (``http.body=cloudevent``): p50/p90/p99/max.

The emulator runs as its own process (`python -m tests.emulators generic`), so bridge and emulator
each have a core. Prints a table; asserts nothing. `python -m bench.http_delivery [--seconds 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg

from bench.pg_catchup import DEBEZIUM, measured, orders_database
from bench.workload import TOTAL, transactions
from sinks.transport import Transport
from tests.servers.postgres import PgServer

ROOT = Path(__file__).resolve().parents[1]
MAPPING = "SELECT id, customer_id, status, amount, note, updated_at FROM public.orders\n"


class EmulatorProcess:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.emulators", "generic", "--order-field", ""],
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            raise SystemExit(f"emulator did not start: {line!r}")
        self.url = line.split()[1]

    def ledger(self, writes: bool = False) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/_ledger{'?writes=1' if writes else ''}") as r:
            doc: dict[str, Any] = json.load(r)
            return doc

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


async def emulator_max(url: str, per_record: bool, seconds: float = 4.0) -> float:
    """Records/s the emulator absorbs from a bare client -- batches of 1,000 (4 in flight) or single PUTs
    (32 in flight) -- sent through the bridge's own HTTP transport, the cheapest client at hand, so that
    the client is not the limit (aiohttp's client costs 2.5 times its CPU per request)."""
    row = {"id": 1, "customer_id": 7, "status": "NEW", "amount": "12.50", "note": "n" * 40,
           "updated_at": "2026-01-01T00:00:00Z"}
    done = 0
    deadline = time.perf_counter() + seconds
    client = Transport(limit=64, timeout=30.0, headers={"User-Agent": "bench"})

    async def batches(w: int) -> None:
        nonlocal done
        n = 0
        while time.perf_counter() < deadline:
            recs = [{"id": f"m{w}-{n}-{i}", "subject": f"max{w}-{i}", "op": "upsert", "data": row}
                    for i in range(1000)]
            n += 1
            reply = await client.request("POST", f"{url}/batch", {"Content-Type": "application/json"},
                                         orjson.dumps({"records": recs}))
            assert reply.status == 200, reply
            done += 1000

    async def singles(w: int) -> None:
        nonlocal done
        n = 0
        body = orjson.dumps(row)
        while time.perf_counter() < deadline:
            n += 1
            reply = await client.request("PUT", f"{url}/records/max{w}-{n}",
                                         {"Content-Type": "application/json", "Idempotency-Key": f"m{w}-{n}"}, body)
            assert 200 <= reply.status < 300, reply
            done += 1

    t = time.perf_counter()
    try:
        await asyncio.gather(*((singles if per_record else batches)(w) for w in range(32 if per_record else 4)))
    finally:
        client.close()
    return done / (time.perf_counter() - t)


def prepare(srv: PgServer, db: str, scale: float) -> tuple[str, int]:
    dsn = orders_database(srv, db, [f"cdc_{db}"])
    events = 0
    with psycopg.connect(dsn) as c:
        cur = c.cursor()
        for sql, params in transactions("now()", scale):
            cur.execute(sql, params)
            events += max(cur.rowcount, 0)
            c.commit()
    return dsn, events


def connector_files(work: Path, srv: PgServer, db: str, sink: dict[str, str]) -> list[Path]:
    (work / "map.sql").write_text(MAPPING)
    src = {"name": f"src_{db}", "config": {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": str(srv.port), "database.user": "postgres",
        "database.dbname": db, "topic.prefix": "bench", "slot.name": f"cdc_{db}",
        "publication.name": "bench_pub", "publication.autocreate.mode": "disabled",
        "table.include.list": "public.orders", "snapshot.mode": "no_data", "tombstones.on.delete": "false"}}
    snk = {"name": f"http_{db}", "config": {"connector.class": "sinks.http.HttpSink", "topics": "bench.public.orders",
                                            "mapper.sql": str(work / "map.sql"), **sink}}
    files = [work / f"src_{db}.json", work / f"sink_{db}.json"]
    files[0].write_text(json.dumps(src))
    files[1].write_text(json.dumps(snk))
    return files


def run_to_end(files: list[Path], data: Path) -> tuple[float, float, int]:
    wall, rss, log = measured([sys.executable, "-m", "cdc.cli", "run", "--data-dir", str(data), "--stop-at-end",
                               *map(str, files)], env={**os.environ, "PYTHONPATH": str(ROOT)})
    done = re.search(r"done in ([0-9.]+) s", log)
    return wall, float(done.group(1)) if done else wall, rss


def _commit_time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def latency(srv: PgServer, work: Path, emu: EmulatorProcess, seconds: float) -> list[float]:
    db = "latency"
    dsn, _ = prepare(srv, db, 0.0)
    files = connector_files(work, srv, db, {"http.batch.url": f"{emu.url}/batch", "http.body": "cloudevent",
                                            "batch.linger.ms": "2"})
    before = len(emu.ledger(writes=True)["write_log"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bridge = subprocess.Popen([sys.executable, "-m", "cdc.cli", "run", "--data-dir", str(work / "data_latency"),
                               *map(str, files)], env=env, stderr=subprocess.DEVNULL)
    rows = int(seconds * 1000)
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("INSERT INTO orders (customer_id, status, amount, note, updated_at) "
                      "VALUES (0, 'WARM', 0, 'warm-up', now())")
            deadline = time.monotonic() + 60
            while emu.ledger()["writes"] <= before:
                if time.monotonic() > deadline:
                    raise SystemExit("the bridge delivered nothing within 60 s")
                time.sleep(0.1)
            before = emu.ledger()["writes"]
            start = time.monotonic()
            for i in range(rows):  # paced: row i is due at start + i ms
                pause = start + i / 1000 - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                c.execute("INSERT INTO orders (customer_id, status, amount, note, updated_at) "
                          "VALUES (%s, 'NEW', 1.5, 'latency', now())", (i,))
            deadline = time.monotonic() + 120
            while emu.ledger()["writes"] < before + rows:
                if time.monotonic() > deadline:
                    raise SystemExit("not every row was delivered within 120 s")
                time.sleep(0.2)
    finally:
        bridge.terminate()
        bridge.wait()
    log = emu.ledger(writes=True)["write_log"][before:]
    return [(w[6] - _commit_time(w[3]["time"])) * 1000 for w in log]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the 1,000 events/s latency run")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cdc-bench-http-"))
    srv = PgServer.start(settings={"fsync": "on"})
    emu = EmulatorProcess()
    rows: list[tuple[str, str, str]] = []
    try:
        batch_max = asyncio.run(emulator_max(emu.url, per_record=False))
        single_max = asyncio.run(emulator_max(emu.url, per_record=True))

        _, events = prepare(srv, "batch", 1.0)
        files = connector_files(work, srv, "batch", {"http.batch.url": f"{emu.url}/batch"})
        wall, pipeline, rss = run_to_end(files, work / "data_batch")
        rows += [("bridge, batch endpoint (whole process)", f"{events / wall:,.0f} events/s",
                  f"{events:,} events in {wall:.1f} s, peak RSS {rss / 2**20:.0f} MiB"),
                 ("bridge, batch endpoint (pipeline)", f"{events / pipeline:,.0f} events/s", "from connect to done"),
                 ("emulator alone, batch endpoint", f"{batch_max:,.0f} records/s", "1,000 per request, 4 in flight"),
                 ("Debezium capture only (reference)", f"{DEBEZIUM['events/s']:,} events/s",
                  f"peak RSS {DEBEZIUM['rss_mib']} MiB, no delivery")]

        _, events = prepare(srv, "single", 0.1)
        files = connector_files(work, srv, "single", {"http.url": f"{emu.url}/records/{{subject}}",
                                                       "delivery.lanes": "64", "max.in.flight.requests": "64"})
        wall, pipeline, rss = run_to_end(files, work / "data_single")
        rows += [("bridge, one request per record (pipeline)", f"{events / pipeline:,.0f} events/s",
                  f"{events:,} events, whole process {events / wall:,.0f}/s, peak RSS {rss / 2**20:.0f} MiB"),
                 ("emulator alone, one request per record", f"{single_max:,.0f} requests/s", "32 in flight")]

        lat = sorted(latency(srv, work, emu, args.seconds))
        q = statistics.quantiles(lat, n=100)
        rows.append(("commit-to-acknowledgement at 1,000 events/s",
                     f"p50 {q[49]:.0f} ms, p99 {q[98]:.0f} ms",
                     f"p90 {q[89]:.0f} ms, max {lat[-1]:.0f} ms over {len(lat):,} events (Sequin: 253 ms p99)"))
    finally:
        emu.close()
        srv.destroy()
    width = max(len(r[0]) for r in rows)
    print(f"\nPostgreSQL -> mapping -> generic REST emulator ({TOTAL:,}-event workload)")
    for name, figure, note in rows:
        print(f"  {name:<{width}}  {figure:>22}  {note}")


if __name__ == "__main__":
    main()
