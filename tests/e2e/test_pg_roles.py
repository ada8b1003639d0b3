"""Acceptance: capture and delivery as two processes on one data dir (`cdc run --role source|sink`).

A `--role source` process captures a PostgreSQL customer table into the journal while a `--role sink`
process delivers it to the generic REST emulator (10 % of requests failing with 5xx). The sink process
is SIGKILLed mid-stream and started again; at the end the emulator holds the mapping run as a query
on the source, no key's version went backwards and nothing was applied twice. The data dir's locks
refuse a second capturer (a `--role source` or `--role all` run) with an error naming the first.

Then the batch form: both processes with `--stop-at-end` exit 0 once everything captured is delivered.
"""

from __future__ import annotations

import random
import re
import signal
import socket
import subprocess
from pathlib import Path

import psycopg

from cdc.pipeline.roles import CAPTURE_LOCK, held
from tests.e2e.harness import Bridge, cdc_cmd, env, execute, run_cdc, wait_until
from tests.e2e.test_pg_admin_api import free_port, get
from tests.e2e.test_pg_to_apis import actual, changes, customer_table, expected, write_files
from tests.emulators import start_emulator
from tests.servers.postgres import PgServer


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def dbname(dsn: str) -> str:
    db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    assert isinstance(db, str)
    return db


def test_a_source_and_a_sink_process_share_one_data_dir(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    customer_table(pg_db)
    data = tmp_path / "data"
    rnd = random.Random(11)
    with start_emulator("generic", auth="oauth2") as emu:
        files = write_files(tmp_path, pg_server, dbname(pg_db), "generic", emu)
        emu.faults.rate_5xx = 0.1
        port = free_port()
        with Bridge(files, data, tmp_path / "source.log", "--role", "source", "--http", f"127.0.0.1:{port}") as source:
            source.wait_for(lambda: held(data / CAPTURE_LOCK), "the source process to lock the capture")
            # The sink runs in the other process: this one shows it as Kafka Connect shows a connector no
            # worker of this one runs.
            source.wait_for(lambda: listening(port), "the admin API")
            assert get(f"http://127.0.0.1:{port}/connectors/crm/status")[1]["connector"]["state"] == "UNASSIGNED"
            assert get(f"http://127.0.0.1:{port}/connectors/erp/status")[1]["connector"]["state"] == "RUNNING"
            # One capturer per journal: a second one, whatever its role, is refused at once.
            for role in ("source", "all"):
                p = run_cdc(["run", "--role", role, "--stop-at-end", "--http", "off", "--data-dir", str(data),
                             *map(str, files)])
                assert p.returncode == 1, p.stderr
                assert (f"another bridge (pid {source.proc.pid}) already captures into this journal "
                        "(capture.lock is locked)") in " ".join(p.stderr.split())
            with Bridge(files, data, tmp_path / "sink1.log", "--role", "sink", "--http", "off") as sink:
                changes(pg_db, rnd, 30)
                sink.wait_for(lambda: emu.stats["applied"] > 200, "part of the stream delivered")
                sink.stop(signal.SIGKILL)
            changes(pg_db, rnd, 30)
            with Bridge(files, data, tmp_path / "sink2.log", "--role", "sink", "--http", "off") as sink:
                want = expected(pg_db)
                sink.wait_for(lambda: actual(emu) == want, "the API to hold the mapping's result", timeout=120)
                # Delivered by the sink process from the source process's captures, as they come.
                execute(pg_db, "UPDATE erp.customer SET name = 'Renamed', rowver = nextval('erp.rowver') "
                        "WHERE cuno = 'C0001'")
                sink.wait_for(lambda: actual(emu)["C0001"]["name"] == "Renamed", "a live change delivered")
                assert sink.stop() == 0
            assert source.stop() == 0
        assert emu.violations == []
        assert "source erp: " in source.output() and "sink crm" not in source.output()
        assert sum(emu.stats.get(f"status_{code}", 0) for code in (500, 502, 503)) > 0   # the faults happened


def test_source_and_sink_processes_stop_at_end(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    customer_table(pg_db)
    data = tmp_path / "data"
    with start_emulator("generic", auth="oauth2") as emu:
        files = write_files(tmp_path, pg_server, dbname(pg_db), "generic", emu)
        changes(pg_db, random.Random(3), 20)
        source = subprocess.Popen(cdc_cmd(files, data, "--role", "source", "--stop-at-end", "--http", "off"),
                                  env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: held(data / CAPTURE_LOCK) or source.poll() is not None, "the capture lock")
            sink = run_cdc(["run", "--role", "sink", "--stop-at-end", "--http", "off", "--data-dir", str(data),
                            *map(str, files)])
            _, source_err = source.communicate(timeout=120)
        finally:
            if source.poll() is None:
                source.kill()
                source.wait()
        assert source.returncode == 0, source_err
        assert sink.returncode == 0, sink.stderr
        want = expected(pg_db)
        assert actual(emu) == want
        assert emu.violations == []
        captured = re.search(r"source erp: (\d+) events", source_err)
        delivered = re.search(r"sink crm: (\d+) events delivered", sink.stderr)
        assert captured and delivered
        # The snapshot: one change per row, one event per row the mapping keeps, each delivered once.
        with psycopg.connect(pg_db) as c:
            rows = c.execute("SELECT count(*) FROM erp.customer").fetchone()
        assert rows is not None and int(captured.group(1)) == rows[0]
        assert int(delivered.group(1)) == len(want)
        assert "source erp" not in sink.stderr   # the sink process captured nothing
