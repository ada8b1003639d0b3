"""A really full disk under the data dir (a small tmpfs): capture stops cleanly, says why, and resumes by
itself once there is room -- nothing lost, the journal intact.

Mounting a tmpfs needs root (as `.ci/run` runs); elsewhere the test is skipped with that reason.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Bridge, execute, read_events, replay, table_state, write_connectors
from tests.servers.postgres import PgServer

ROWS = 20_000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_stops_capture_and_it_resumes_once_there_is_room(pg_server: PgServer, pg_db: str,
                                                                     tmp_path: Path, small_disk: Path) -> None:
    db = pg_db.rsplit("dbname=", 1)[1]
    execute(pg_db, "CREATE TABLE items (id int PRIMARY KEY, pad text)")
    files = write_connectors(tmp_path, pg_server, db, "full", snapshot="no_data")
    out, data = tmp_path / "out" / "full.jsonl", small_disk / "data"
    with Bridge(files, data, tmp_path / "run.log") as bridge:
        bridge.wait_for(lambda: "streaming from" in bridge.output(), "the source streaming")
        execute(pg_db, "INSERT INTO items VALUES (0, 'before')")
        bridge.wait_lines(out, 1)
        # About 14 MB of change events in one transaction: more than the whole 4 MiB disk.
        execute(pg_db, f"INSERT INTO items SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, {ROWS}) g")
        bridge.wait_for(lambda: "no space left on the disk holding the data dir" in bridge.output()
                        and "reconnecting in" in bridge.output(), "capture to stop on the full disk and say so")
        assert len(read_events(out)) == 1, "nothing of the transaction that did not fit was delivered"
        subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)   # room again
        bridge.wait_lines(out, ROWS + 1, timeout=180)
        assert bridge.stop() == 0
    assert "Traceback" not in bridge.output()
    state = replay(read_events(out), {"items": ["id"]})
    want = table_state(pg_db, "items", ["id"], ["id", "pad"])
    assert {(str(k[0]),): {c: str(v) for c, v in row.items()} for k, row in state["items"].items()} == want
    with sqlite3.connect(data / "journal.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
