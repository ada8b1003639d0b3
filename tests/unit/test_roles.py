"""Worker roles (`cdc.pipeline.roles`): which connectors a role runs, the data dir's locks, and the sink
role's journal watch, against real lock files and a real journal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cdc.errors import Permanent
from cdc.journal.sqlite import SqliteJournal
from cdc.pipeline.roles import CAPTURE_LOCK, DELIVERY_LOCK, DataDirLock, Role, held, watch_journal
from cdc.types import ChangeEvent


def test_each_role_runs_its_connectors_and_holds_its_locks() -> None:
    assert [Role.ALL.runs(True), Role.ALL.runs(False)] == [True, True]
    assert [Role.SOURCE.runs(True), Role.SOURCE.runs(False)] == [True, False]
    assert [Role.SINK.runs(True), Role.SINK.runs(False)] == [False, True]
    assert Role.ALL.locks() == [CAPTURE_LOCK, DELIVERY_LOCK]
    assert Role.SOURCE.locks() == [CAPTURE_LOCK]
    assert Role.SINK.locks() == [DELIVERY_LOCK]


def test_a_held_lock_refuses_a_second_holder_naming_the_first(tmp_path: Path) -> None:
    path = tmp_path / CAPTURE_LOCK
    assert not held(path)   # no file yet
    first = DataDirLock(path)
    first.acquire()
    assert held(path)
    with pytest.raises(Permanent) as e:
        DataDirLock(path).acquire()
    assert str(e.value) == (
        f"--data-dir {tmp_path}: another bridge (pid {os.getpid()}) already captures into this journal "
        "(capture.lock is locked); stop it or use another --data-dir (one data dir takes one --role all "
        "process, or one --role source and one --role sink)")
    first.release()
    assert not held(path)
    second = DataDirLock(path)
    second.acquire()
    second.release()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    path = tmp_path / DELIVERY_LOCK
    code = (f"from pathlib import Path; from cdc.pipeline.roles import DataDirLock\n"
            f"DataDirLock(Path({str(path)!r})).acquire(); print('locked', flush=True); input()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        assert held(path)
        with pytest.raises(Permanent, match=rf"pid {proc.pid}\) already delivers from this journal"):
            DataDirLock(path).acquire()
    finally:
        proc.kill()
        proc.wait()
    assert not held(path)   # the kernel dropped it with the process, SIGKILL and all
    lock = DataDirLock(path)
    lock.acquire()
    lock.release()


def test_watch_reports_growth_and_ends_when_no_process_captures(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "journal.db")
    capture = DataDirLock(tmp_path / CAPTURE_LOCK)
    capture.acquire()
    ends: list[int] = []

    async def scenario() -> bool:
        over = asyncio.Event()
        grew = asyncio.Event()

        def on_grew(end: int) -> None:
            ends.append(end)
            grew.set()

        task = asyncio.create_task(watch_journal(journal.path, on_grew, over.set))
        await grew.wait()   # the end at start
        for n in (1, 2):
            grew.clear()
            await asyncio.to_thread(journal.append, "pg", [[ChangeEvent("t", b"1", b"{}")] * n], {"lsn": n})
            await grew.wait()
        assert not over.is_set()
        capture.release()   # the capturing process is gone
        await task
        return over.is_set()

    try:
        assert asyncio.run(scenario())
    finally:
        capture.release()
        journal.close()
    assert ends == [0, 1, 3]
