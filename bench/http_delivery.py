"""End-to-end delivery benchmark: PostgreSQL -> journal -> SQL mapping -> generic REST emulator.

Three measurements, each beside its reference taken in the same run:

1. Batch endpoint (``http.batch.url``, 1,000 records per request): the Debezium harness's workload
   (200,000 inserts in 1,000-row transactions, 50,000 updates, 10,000 deletes: 260,000 events) captured
   from a slot and delivered by `cdc run --stop-at-end`, events/s over the whole process; then the same
   with capture and delivery as two processes on one data dir (`--role source` and `--role sink`, the
   sink started once the source holds the capture lock), from starting the source to both exited, with
   the CPU seconds every process of that run used (bridge, PostgreSQL, emulator) and so the most the
   machine's cores allow. Beside them: the emulator's own maximum for the same request shape (a bare
   client on the bridge's own transport, 4 concurrent requests) and Debezium's capture-only figure on
   this machine (../shared/bench/debezium/reference-results.md).
2. One request per record (``http.url`` only): a tenth of that workload; the rate at which the emulator
   applied the writes (first to last), beside the emulator's own per-record maximum (32 concurrent
   PUTs), and the CPU each side spent per request, the bridge's less that of a run with nothing to
   deliver: the side that spends more per request is the limit.
3. Latency: `cdc run` streaming while 1,000 rows/s are inserted for `--seconds`, one per transaction;
   per event, the emulator's apply time minus the source commit time carried in the CloudEvent
   (``http.body=cloudevent``): p50/p90/p99/max.

Each measurement gets a fresh emulator process (`python -m tests.emulators generic`; its ledger keeps
every record); every `cdc run` serves its admin API and metrics, as by default. Prints a table;
asserts nothing. `python -m bench.http_delivery [--seconds 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg

from bench.pg_catchup import DEBEZIUM, orders_database, process_cpu, server_cpu
from bench.workload import TOTAL, transactions
from cdc.pipeline.roles import CAPTURE_LOCK, held
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

    def cpu(self) -> float:
        return process_cpu(self.proc.pid)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def emulator_max(emu: EmulatorProcess, per_record: bool, seconds: float = 4.0) -> tuple[float, float]:
    """Records/s the emulator absorbs from a bare client -- batches of 1,000 (4 in flight) or single PUTs
    (32 in flight) -- sent through the bridge's own HTTP transport, the cheapest client at hand, so that
    the client is not the limit (aiohttp's client costs 2.5 times its CPU per request); and the emulator's
    CPU seconds per record meanwhile."""
    url = emu.url
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

    t, cpu = time.perf_counter(), emu.cpu()
    try:
        await asyncio.gather(*((singles if per_record else batches)(w) for w in range(32 if per_record else 4)))
    finally:
        client.close()
    return done / (time.perf_counter() - t), (emu.cpu() - cpu) / done


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


@dataclass
class Finished:
    """A `cdc run` that ended: wall seconds from its start, peak RSS bytes, CPU seconds and its log."""

    wall: float
    rss: int
    cpu: float
    log: str

    @property
    def pipeline(self) -> float:
        """Seconds from opening the connectors to everything delivered (the run's own "done in")."""
        done = re.search(r"done in ([0-9.]+) s", self.log)
        return float(done.group(1)) if done else self.wall


def spawn(files: list[Path], data: Path, role: str = "all") -> tuple[subprocess.Popen[bytes], Path, float]:
    """`cdc run --stop-at-end --role ROLE`, with its admin API (and so its metrics) on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = data.with_name(f"{data.name}-{role}.log")
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "cdc.cli", "run", "--data-dir", str(data), "--stop-at-end",
                                 "--role", role, "--http", f"127.0.0.1:{port}", *map(str, files)],
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=out)
    return proc, log, started


def reap(proc: subprocess.Popen[bytes], log: Path, started: float) -> Finished:
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    text = log.read_text()
    if proc.returncode != 0:
        raise SystemExit(f"cdc run {log.stem} failed ({proc.returncode}):\n{text[-3000:]}")
    return Finished(wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime, text)


def run_to_end(files: list[Path], data: Path) -> Finished:
    return reap(*spawn(files, data))


def run_two_processes(files: list[Path], data: Path) -> tuple[float, Finished, Finished]:
    """A `--role source` and a `--role sink` run on one data dir, the sink started once the source holds the
    capture lock: seconds from starting the source to both exited, and each run."""
    source = spawn(files, data, "source")
    deadline = time.monotonic() + 60
    while not held(data / CAPTURE_LOCK) and time.monotonic() < deadline:
        time.sleep(0.002)
    sink = spawn(files, data, "sink")
    first, second = reap(*source), reap(*sink)
    return time.perf_counter() - source[2], first, second


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
    rows: list[tuple[str, str, str]] = []
    # A fresh emulator for each measurement: its ledger keeps every record, and a fuller one is slower.
    try:
        with EmulatorProcess() as emu:
            batch_max, _ = asyncio.run(emulator_max(emu, per_record=False))
        _, events = prepare(srv, "batch", 1.0)
        with EmulatorProcess() as emu:
            one = run_to_end(connector_files(work, srv, "batch", {"http.batch.url": f"{emu.url}/batch"}),
                             work / "data_batch")
        _, events = prepare(srv, "split", 1.0)
        with EmulatorProcess() as emu:
            files = connector_files(work, srv, "split", {"http.batch.url": f"{emu.url}/batch"})
            before = server_cpu(srv), emu.cpu()
            wall, source, sink = run_two_processes(files, work / "data_split")
            pg_cpu, emu_cpu = server_cpu(srv) - before[0], emu.cpu() - before[1]
        total = source.cpu + sink.cpu + pg_cpu + emu_cpu
        cores = os.cpu_count() or 1
        rows += [("bridge, batch endpoint (whole process)", f"{events / one.wall:,.0f} events/s",
                  f"{events:,} events in {one.wall:.1f} s, peak RSS {one.rss / 2**20:.0f} MiB"),
                 ("bridge, batch endpoint (pipeline)", f"{events / one.pipeline:,.0f} events/s",
                  "from connect to done"),
                 ("bridge as two processes, batch endpoint", f"{events / wall:,.0f} events/s",
                  f"--role source + --role sink, peak RSS {source.rss / 2**20:.0f} + {sink.rss / 2**20:.0f} MiB"),
                 ("  CPU seconds of that run", f"{total:.1f} s",
                  f"source {source.cpu:.1f} + sink {sink.cpu:.1f} + PostgreSQL {pg_cpu:.1f} + emulator {emu_cpu:.1f}; "
                  f"{cores} cores allow at most {events * cores / total:,.0f} events/s"),
                 ("emulator alone, batch endpoint", f"{batch_max:,.0f} records/s", "1,000 per request, 4 in flight"),
                 ("Debezium capture only (reference)", f"{DEBEZIUM['events/s']:,} events/s",
                  f"peak RSS {DEBEZIUM['rss_mib']} MiB, no delivery")]

        with EmulatorProcess() as emu:
            single_max, emu_alone = asyncio.run(emulator_max(emu, per_record=True))
        single = {"delivery.lanes": "64", "max.in.flight.requests": "64"}
        prepare(srv, "idle", 0.0)
        with EmulatorProcess() as emu:  # the fixed cost of a run: start-up, compiling the mapping, the end
            idle = run_to_end(connector_files(work, srv, "idle", {"http.url": f"{emu.url}/records/{{subject}}",
                                                                  **single}), work / "data_idle")
        _, events = prepare(srv, "single", 0.1)
        with EmulatorProcess() as emu:
            files = connector_files(work, srv, "single", {"http.url": f"{emu.url}/records/{{subject}}", **single})
            cpu = emu.cpu()
            run = run_to_end(files, work / "data_single")
            emu_cpu = emu.cpu() - cpu
            applied = [w[6] for w in emu.ledger(writes=True)["write_log"]]
        steady = (len(applied) - 1) / (max(applied) - min(applied))
        rows += [("bridge, one request per record", f"{steady:,.0f} events/s",
                  f"{events:,} events, first to last write at the emulator; from connect to done "
                  f"{events / run.pipeline:,.0f}/s, whole process {events / run.wall:,.0f}/s, "
                  f"peak RSS {run.rss / 2**20:.0f} MiB"),
                 ("emulator alone, one request per record", f"{single_max:,.0f} requests/s", "32 in flight"),
                 ("  CPU per request", f"bridge {(run.cpu - idle.cpu) / events * 1e6:,.0f} µs",
                  f"emulator {emu_cpu / events * 1e6:,.0f} µs in that run, {emu_alone * 1e6:,.0f} µs alone (the "
                  f"bridge's {run.cpu:.1f} s less the {idle.cpu:.1f} s of a run with nothing to deliver)")]

        with EmulatorProcess() as emu:
            lat = sorted(latency(srv, work, emu, args.seconds))
        q = statistics.quantiles(lat, n=100)
        rows.append(("commit-to-acknowledgement at 1,000 events/s",
                     f"p50 {q[49]:.0f} ms, p99 {q[98]:.0f} ms",
                     f"p90 {q[89]:.0f} ms, max {lat[-1]:.0f} ms over {len(lat):,} events (Sequin: 253 ms p99)"))
    finally:
        srv.destroy()
    width = max(len(r[0]) for r in rows)
    print(f"\nPostgreSQL -> mapping -> generic REST emulator ({TOTAL:,}-event workload)")
    for name, figure, note in rows:
        print(f"  {name:<{width}}  {figure:>22}  {note}")


if __name__ == "__main__":
    main()
