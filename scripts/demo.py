"""`make demo`: the bridge on the embedded default against a local legacy ERP database.

Starts a private PostgreSQL 15 (installing Debian's package if needed) holding the sample M3-style
schema of config/demo/erp_schema.sql, runs `cdc run` with the example connector files (snapshot, then
streaming into a FileStreamSink file), plays some ERP activity, and prints each change as it arrives.
Everything lives in a temp dir and is removed at the end; Ctrl-C stops early and still cleans up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from tests.servers.postgres import PgServer

ROOT = Path(__file__).resolve().parents[1]
console = Console()

ACTIVITY = [
    ("new customer registered",
     "INSERT INTO m3.ocusma (okcono, okcuno, okcunm, okstat, okcscd, okcrlm, okrgdt) "
     "VALUES (100, 'C00004', 'Baltic Freight OU', '10', 'EE', 10000, 20261124)"),
    ("customer approved (status 10 -> 20)",
     "UPDATE m3.ocusma SET okstat = '20', oklmdt = now() WHERE okcono = 100 AND okcuno = 'C00004'"),
    ("order entered with two lines",
     "INSERT INTO m3.oohead (oacono, oaorno, oacuno, oaordt, oanetv) "
     "VALUES (100, '1000002', 'C00004', 20261124, 0);"
     "INSERT INTO m3.ooline VALUES (100, '1000002', 1, 'PALLET-EUR', 40, 12.5, '22'),"
     "(100, '1000002', 2, 'STRAP-25MM', 10, 3.2, '22');"
     "UPDATE m3.oohead SET oanetv = 532.00 WHERE oacono = 100 AND oaorno = '1000002'"),
    ("order line cancelled", "DELETE FROM m3.ooline WHERE obcono = 100 AND oborno = '1000002' AND obponr = 2"),
    ("stock movement logged (table without a primary key)",
     "INSERT INTO m3.mitlog VALUES (100, 'PALLET-EUR', -40, 20261124)"),
    ("customer renumbered (primary key change)",
     "UPDATE m3.ocusma SET okcuno = 'C10003' WHERE okcono = 100 AND okcuno = 'C00003'"),
]


def show(events: list[dict[str, object]]) -> None:
    table = Table(show_header=True, header_style="bold")
    for col in ("op", "table", "key / after"):
        table.add_column(col)
    names = {"r": "snapshot", "c": "create", "u": "update", "d": "delete", "t": "truncate"}
    for ev in events:
        src = ev["source"]
        assert isinstance(src, dict)
        row = ev["after"] or ev["before"]
        table.add_row(names.get(str(ev["op"]), str(ev["op"])), f"{src['schema']}.{src['table']}",
                      json.dumps(row, ensure_ascii=False)[:110])
    console.print(table)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="cdc-demo-"))
    console.rule("[bold]ERP change-data-capture bridge: demo")
    console.print("starting a private PostgreSQL 15 with a sample legacy ERP schema ...")
    srv = PgServer.start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        with psycopg.connect(srv.dsn(), autocommit=True) as c:
            c.execute("CREATE DATABASE erp")
        with psycopg.connect(srv.dsn("erp"), autocommit=True) as c:
            c.execute((ROOT / "config/demo/erp_schema.sql").read_text())
        src = json.loads((ROOT / "config/connectors/erp-postgres.json").read_text())
        src["config"].update({"database.port": str(srv.port), "database.user": "postgres"})
        sink = json.loads((ROOT / "config/connectors/erp-file-sink.json").read_text())
        out = work / "out" / "erp-changes.jsonl"
        sink["config"]["file"] = str(out)
        (work / "erp-postgres.json").write_text(json.dumps(src, indent=2))
        (work / "erp-file-sink.json").write_text(json.dumps(sink, indent=2))
        env = {**os.environ, "ERP_PG_PASSWORD": "demo-secret", "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "cdc.cli", "run", "--data-dir", str(work / "data"),
               str(work / "erp-postgres.json"), str(work / "erp-file-sink.json")]
        console.print(f"[dim]$ cdc run --data-dir {work / 'data'} erp-postgres.json erp-file-sink.json[/]")
        proc = subprocess.Popen(cmd, env=env)
        seen = wait_lines(out, 0, 6, proc)   # the six seeded rows of erp_schema.sql
        console.print("[bold]initial snapshot[/] (op r):")
        show(seen)
        total = len(seen)
        with psycopg.connect(srv.dsn("erp"), autocommit=True) as c:
            for title, stmt in ACTIVITY:
                console.print(f"\n[bold cyan]ERP:[/] {title}")
                with c.transaction():
                    for s in stmt.split(";"):
                        c.execute(s)
                expected = stmt.count(";") + 1 + (stmt.count("),(") if "ooline" in stmt else 0)
                if "okcuno = 'C10003'" in stmt:
                    expected = 2  # delete of the old key, then create of the new one (tombstone not in file)
                new = wait_lines(out, total, expected, proc)
                total += len(new)
                show(new)
        console.print(f"\n[green]{total} change events in {out}[/] (Debezium envelope, one per line)")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        console.print(f"bridge stopped cleanly (exit {proc.returncode}); the demo's files are removed now")
        return 0 if proc.returncode == 0 else 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        srv.destroy()
        shutil.rmtree(work, ignore_errors=True)


def wait_lines(path: Path, skip: int, at_least: int, proc: subprocess.Popen[bytes]) -> list[dict[str, object]]:
    """Wait (bounded) until the sink file holds `at_least` lines past `skip`; return them."""
    deadline = time.monotonic() + 60
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) - skip >= at_least:
            return [json.loads(x) for x in lines[skip:]]
        if proc.poll() is not None:
            raise SystemExit(f"the bridge exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for changes in {path}")
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
