"""Helpers for end-to-end tests: connector files, running `cdc` as a real process, replaying its output.

`replay` rebuilds table contents from a FileStreamSink file the way a downstream consumer would:
skipping re-delivered changes (same table, WAL position and op), then by key (c/r/u upsert the after
image, d removes the key, t empties the table); a table without a primary key is replayed as a
multiset (d removes one row equal to `before`, u swaps `before` for `after`).

`Bridge` runs `cdc run` in the background for tests that act while it streams; `wait_until` polls an
observable condition with a deadline (never a bare sleep).
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from cdc.journal.sqlite import JournalReader
from cdc.types import JournalRecord
from tests.servers.postgres import PgServer

ROOT = Path(__file__).resolve().parents[2]


def write_connectors(tmp: Path, srv: PgServer, db: str, name: str, *, tables: str = "public\\..*",
                     snapshot: str = "initial", extra: dict[str, str] | None = None,
                     omit: Sequence[str] = ()) -> list[Path]:
    """A source and a FileStreamSink connector file; `omit` removes properties the defaults set."""
    config = {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": str(srv.port), "database.user": "postgres",
        "database.password": "${env:E2E_PG_PASSWORD}", "database.dbname": db, "topic.prefix": name,
        "slot.name": f"slot_{name}", "publication.name": f"pub_{name}", "table.include.list": tables,
        "snapshot.mode": snapshot, "skipped.operations": "none", **(extra or {})}
    src = {"name": name, "config": {k: v for k, v in config.items() if k not in omit}}
    sink = {"name": f"{name}-file", "config": {"connector.class": "FileStreamSink",
                                               "file": str(tmp / "out" / f"{name}.jsonl"),
                                               "topics.regex": f"{name}\\..*"}}
    files = [tmp / f"{name}-source.json", tmp / f"{name}-sink.json"]
    files[0].write_text(json.dumps(src))
    files[1].write_text(json.dumps(sink))
    return files


def cdc_cmd(files: Sequence[Path], data_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cdc.cli", "run", "--data-dir", str(data_dir), *extra, *map(str, files)]


def env() -> dict[str, str]:
    # CDC_HTTP=off: no admin API unless a test passes --http (tests run bridges side by side).
    return {**os.environ, "CDC_HTTP": "off", "E2E_PG_PASSWORD": "not-used-trust-auth", "E2E_MY_PASSWORD": "cdc",
            "PYTHONPATH": str(ROOT)}


def run_to_end(files: Sequence[Path], data_dir: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`cdc run --stop-at-end`; fails the test with the process output if it does not exit 0."""
    p = subprocess.run(cdc_cmd(files, data_dir, "--stop-at-end", "--debug"), env=env(), capture_output=True, text=True,
                       timeout=timeout, check=False)
    assert p.returncode == 0, f"cdc exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr[-5000:]}"
    return p


def run_to_end_measured(files: Sequence[Path], data_dir: Path) -> tuple[subprocess.CompletedProcess[str], int]:
    """Like run_to_end, in a fresh launcher process so its children's peak RSS is the bridge's alone."""
    code = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, "
            "text=True); sys.stderr.write(p.stderr); sys.stdout.write(p.stdout); "
            "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
            "sys.exit(p.returncode)")
    p = subprocess.run([sys.executable, "-c", code, *cdc_cmd(files, data_dir, "--stop-at-end")], env=env(),
                       capture_output=True, text=True, timeout=1200, check=False)
    assert p.returncode == 0, f"cdc exited {p.returncode}\n{p.stdout}\n{p.stderr[-5000:]}"
    rss = int(p.stdout.strip().splitlines()[-1].split()[1])
    _ = resource  # the launcher measures; imported here for readers of this helper
    return p, rss * 1024


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events of a FileStreamSink file; a last line without its newline is still being written."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().split("\n")[:-1] if line]


def replay(events: Sequence[dict[str, Any]], pks: dict[str, Sequence[str]]) -> dict[str, Any]:
    """Table name → {key tuple: row} (or a Counter of rows for tables without a primary key)."""
    state: dict[str, Any] = {}
    seen: set[tuple[Any, ...]] = set()
    for ev in events:
        table = ev["source"]["table"]
        pk = pks.get(table, ())
        if ev["op"] != "r" or pk:
            # At-least-once: a re-delivered event repeats its identity, which a consumer skips. A streamed
            # change has its own WAL position (or binlog file/position/row); the reads of one snapshot chunk
            # share one, so a read's identity adds its key. Skipping only the changes would apply a
            # re-delivered read after its row's delete again. Reads of a table without a key can only count.
            src = ev["source"]
            ident = ((table, src["lsn"], ev["op"]) if "lsn" in src
                     else (table, src["file"], src["pos"], src["row"], ev["op"]))
            if ev["op"] == "r":
                ident += tuple(ev["after"][c] for c in pk)
            if ident in seen:
                continue
            seen.add(ident)
        op, before, after = ev["op"], ev["before"], ev["after"]
        if pk:
            rows = state.setdefault(table, {})
            if op in ("c", "r", "u"):
                rows[tuple(after[c] for c in pk)] = after
            elif op == "d":
                rows.pop(tuple(before[c] for c in pk), None)
            elif op == "t":
                rows.clear()
        else:
            bag: Counter[str] = state.setdefault(table, Counter())
            if op in ("c", "r"):
                bag[json.dumps(after, sort_keys=True)] += 1
            elif op == "u":
                bag[json.dumps(before, sort_keys=True)] -= 1
                bag[json.dumps(after, sort_keys=True)] += 1
            elif op == "d":
                bag[json.dumps(before, sort_keys=True)] -= 1
            elif op == "t":
                bag.clear()
            state[table] = +bag
    return state


def table_state(dsn: str, table: str, pk: Sequence[str], columns: Sequence[str]) -> Any:
    """What the database holds, in the same shape as `replay` (values as their text form)."""
    cols = ", ".join(f"{c}::text" for c in columns)
    with psycopg.connect(dsn) as c:
        rows = c.execute(f"SELECT {cols} FROM {table}").fetchall()
    if pk:
        return {tuple(r[columns.index(k)] for k in pk): dict(zip(columns, r, strict=True)) for r in rows}
    return +Counter(json.dumps(dict(zip(columns, r, strict=True)), sort_keys=True) for r in rows)


def as_text(state: Any, pk: Sequence[str], casts: dict[str, Any]) -> Any:
    """Normalise replayed rows to the database's text form with per-column converters."""
    def conv(row: dict[str, Any]) -> dict[str, Any]:
        return {k: (None if v is None else casts.get(k, str)(v)) for k, v in row.items()}

    if pk:
        return {tuple(str(x) for x in key): conv(row) for key, row in state.items()}
    out: Counter[str] = Counter()
    for js, n in state.items():
        out[json.dumps(conv(json.loads(js)), sort_keys=True)] += n
    return +out


def run_cdc(args: Sequence[str], *, extra_env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m cdc.cli ARGS` as a real process; the caller checks the exit code and output."""
    return subprocess.run([sys.executable, "-m", "cdc.cli", *args], env={**env(), **(extra_env or {})},
                          capture_output=True, text=True, timeout=timeout, check=False)


def wait_until(cond: Callable[[], bool], what: str, timeout: float = 60,
               alive: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    """Poll `cond` until it holds; fail with `what` (and the process log) at the deadline or if the
    process `alive` exits first."""
    deadline = time.monotonic() + timeout
    while not cond():
        tail = log.read_text(errors="replace")[-5000:] if log is not None and log.exists() else ""
        assert alive is None or alive.poll() is None, f"cdc exited {alive.returncode} before {what}\n{tail}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{tail}"
        time.sleep(0.05)


class Bridge:
    """`cdc run` (no --stop-at-end) in the background, its stderr in a log file; killed if left running."""

    def __init__(self, files: Sequence[Path], data_dir: Path, log: Path, *extra: str) -> None:
        self.log = log
        self._log_file = log.open("w")
        self.proc = subprocess.Popen(cdc_cmd(files, data_dir, "--debug", *extra), env=env(), stdout=subprocess.DEVNULL,
                                     stderr=self._log_file)

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()

    def wait_for(self, cond: Callable[[], bool], what: str, timeout: float = 60) -> None:
        wait_until(cond, what, timeout, alive=self.proc, log=self.log)

    def wait_lines(self, out: Path, n: int, timeout: float = 60) -> None:
        self.wait_for(lambda: len(read_events(out)) >= n, f"{n} events in {out.name}", timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `sig` and wait for the exit (failing the test at `timeout`); returns the exit code."""
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"cdc did not exit within {timeout} s of signal {sig}\n"
                                 f"{self.log.read_text(errors='replace')[-5000:]}") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def execute(dsn: str, *statements: str) -> None:
    """Run statements in one autocommit session, each its own transaction."""
    with psycopg.connect(dsn, autocommit=True) as c:
        for stmt in statements:
            c.execute(stmt.encode())


def journal_records(data_dir: Path, topics: str = ".*") -> list[JournalRecord]:
    """Every record the journal in `data_dir` holds on topics fullmatching `topics` (keys included,
    which the FileStreamSink does not write)."""
    with JournalReader(data_dir / "journal.db") as j:
        return j.read(re.compile(topics), 0, 10_000_000)


def slot_names(dsn: str) -> list[str]:
    """Replication slots of the database `dsn` points at."""
    with psycopg.connect(dsn) as c:
        rows = c.execute("SELECT slot_name FROM pg_replication_slots WHERE database = current_database() "
                         "ORDER BY 1").fetchall()
    return [r[0] for r in rows]
