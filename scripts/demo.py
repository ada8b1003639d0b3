"""`make demo`: the bridge on the embedded default against local legacy ERP databases.

Starts a private PostgreSQL 15 holding the sample M3-style schema of config/demo/erp_schema.sql, runs
`cdc run` with the example connector files (snapshot, then streaming into a FileStreamSink file), plays
some ERP activity, and prints each change as it arrives. Then the same against a private MariaDB 10.11
holding config/demo/erp_schema_mariadb.sql, with config/examples/erp-mariadb.json (binlog capture).
Debian's packages are installed if needed. Everything lives in temp dirs and is removed at the end;
Ctrl-C stops early and still cleans up. `python -m scripts.demo [postgres|mariadb]` runs one of them.
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
from collections.abc import Callable
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from tests.servers.mariadb import MariaDbServer
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
# The same activity on the MariaDB copy of the schema (database erp, no schema qualifier).
MY_ACTIVITY = [(title, stmt.replace("m3.", "").replace("now()", "now(6)")) for title, stmt in ACTIVITY]


def show(events: list[dict[str, object]]) -> None:
    table = Table(show_header=True, header_style="bold")
    for col in ("op", "table", "key / after"):
        table.add_column(col)
    names = {"r": "snapshot", "c": "create", "u": "update", "d": "delete", "t": "truncate"}
    for ev in events:
        src = ev["source"]
        assert isinstance(src, dict)
        row = ev["after"] or ev["before"]
        table.add_row(names.get(str(ev["op"]), str(ev["op"])), f"{src.get('schema', src['db'])}.{src['table']}",
                      json.dumps(row, ensure_ascii=False)[:110])
    console.print(table)


def run_bridge(work: Path, src: dict[str, object], env: dict[str, str],
               activity: list[tuple[str, str]], execute: Callable[[list[str]], None]) -> int:
    """Run `cdc run` with `src` and the example file sink, play `activity`, show each change."""
    sink = json.loads((ROOT / "config/connectors/erp-file-sink.json").read_text())
    prefix = str(src["config"]["topic.prefix"])  # type: ignore[index]
    out = work / "out" / "erp-changes.jsonl"
    sink["config"]["file"] = str(out)
    sink["config"]["topics.regex"] = f"{prefix}\\..*"
    (work / "source.json").write_text(json.dumps(src, indent=2))
    (work / "erp-file-sink.json").write_text(json.dumps(sink, indent=2))
    cmd = [sys.executable, "-m", "cdc.cli", "run", "--data-dir", str(work / "data"),
           str(work / "source.json"), str(work / "erp-file-sink.json")]
    console.print(f"[dim]$ cdc run --data-dir {work / 'data'} source.json erp-file-sink.json[/]")
    proc = subprocess.Popen(cmd, env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
    try:
        seen = wait_lines(out, 0, 6, proc)   # the six seeded rows
        console.print("[bold]initial snapshot[/] (op r):")
        show(seen)
        total = len(seen)
        for title, stmt in activity:
            console.print(f"\n[bold cyan]ERP:[/] {title}")
            execute(stmt.split(";"))
            expected = stmt.count(";") + 1 + (stmt.count("),(") if "ooline" in stmt else 0)
            if "okcuno = 'C10003'" in stmt:
                expected = 2  # delete of the old key, then create of the new one (tombstone not in file)
            new = wait_lines(out, total, expected, proc)
            total += len(new)
            show(new)
        console.print(f"\n[green]{total} change events in {out}[/] (Debezium envelope, one per line)")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        console.print(f"bridge stopped cleanly (exit {proc.returncode})")
        return 0 if proc.returncode == 0 else 1
    finally:
        if proc.poll() is None:
            proc.kill()


def postgres_demo(work: Path) -> int:
    console.rule("[bold]PostgreSQL 15: logical replication (pgoutput)")
    console.print("starting a private PostgreSQL 15 with a sample legacy ERP schema ...")
    srv = PgServer.start()
    try:
        with psycopg.connect(srv.dsn(), autocommit=True) as c:
            c.execute("CREATE DATABASE erp")
        with psycopg.connect(srv.dsn("erp"), autocommit=True) as c:
            c.execute((ROOT / "config/demo/erp_schema.sql").read_text())
        src = json.loads((ROOT / "config/connectors/erp-postgres.json").read_text())
        src["config"].update({"database.port": str(srv.port), "database.user": "postgres"})

        def execute(statements: list[str]) -> None:
            with psycopg.connect(srv.dsn("erp"), autocommit=True) as c, c.transaction():
                for stmt in statements:
                    c.execute(stmt)
        return run_bridge(work, src, {"ERP_PG_PASSWORD": "demo-secret"}, ACTIVITY, execute)
    finally:
        srv.destroy()


def mariadb_demo(work: Path) -> int:
    console.rule("[bold]MariaDB 10.11: row binlog")
    console.print("starting a private MariaDB 10.11 with the same ERP schema ...")
    srv = MariaDbServer.start()
    try:
        srv.execute(None, "CREATE DATABASE erp")
        srv.execute("erp", *[s for s in (ROOT / "config/demo/erp_schema_mariadb.sql").read_text().split(";\n")
                             if s.strip()])
        src = json.loads((ROOT / "config/examples/erp-mariadb.json").read_text())
        src["config"].update({"database.port": str(srv.port), "database.user": srv.user})

        def execute(statements: list[str]) -> None:
            with srv.connect("erp", autocommit=False) as c, c.cursor() as cur:
                for stmt in statements:
                    cur.execute(stmt)
                c.commit()
        return run_bridge(work, src, {"ERP_MY_PASSWORD": srv.password}, MY_ACTIVITY, execute)
    finally:
        srv.destroy()


def main() -> int:
    which = sys.argv[1:] or ["postgres", "mariadb"]
    console.rule("[bold]ERP change-data-capture bridge: demo")
    status = 0
    for name in which:
        work = Path(tempfile.mkdtemp(prefix="cdc-demo-"))
        try:
            status |= {"postgres": postgres_demo, "mariadb": mariadb_demo}[name](work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    console.print("the demo's files are removed now")
    return status


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
