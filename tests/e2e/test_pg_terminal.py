"""What a person at a terminal sees: `cdc run` shows a snapshot progress bar on a TTY, none in a pipe."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

import psycopg

from tests.e2e.harness import cdc_cmd, env, write_connectors
from tests.servers.postgres import PgServer


def run_on_tty(cmd: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run `cmd` with stdout/stderr on a pseudo-terminal; return (exit code, everything it printed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, env={**env(), "COLUMNS": "120", "TERM": "xterm"}, stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


def test_snapshot_progress_bar_on_a_terminal(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    dbname = pg_db.rsplit("dbname=", 1)[1]
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
        c.execute("INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 3000) g")
        c.execute("ANALYZE customers")
    files = write_connectors(tmp_path, pg_server, dbname, "tty1")
    code, shown = run_on_tty(cdc_cmd(files, tmp_path / "data", "--stop-at-end"))
    assert code == 0, shown[-3000:]
    assert "snapshot public.customers" in shown
    assert "100%" in shown
    # Without a terminal there is no bar, only log lines.
    files2 = write_connectors(tmp_path, pg_server, dbname, "tty2")
    p = subprocess.run(cdc_cmd(files2, tmp_path / "data2", "--stop-at-end"), env=env(), capture_output=True,
                       text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "snapshot public.customers" not in p.stderr and "snapshot complete" in p.stderr
