"""Worker roles: which connectors one `cdc run` process runs, and how two processes share a data dir.

Role
    ``--role all`` (the default) runs every connector of the files; ``--role source`` only the sources
    (capture into the journal) and ``--role sink`` only the sinks (delivery from it). Started on one
    data dir, a source process and a sink process split capture and delivery over two cores, through
    the embedded journal: SQLite in WAL mode lets one process append while another reads. This is
    Kafka Connect's split into source and sink workers; a connector another role runs is listed as
    UNASSIGNED, as Kafka Connect lists a connector no worker of this one runs. Give both processes
    the same files: a sink's mapping is compiled against its source's live catalog.

    Each role locks its half of the data dir before anything starts: ``capture.lock`` (roles all and
    source) and ``delivery.lock`` (all and sink). Two processes capturing into one journal would
    confirm each other's slot positions, and two delivering the same sinks would race on their
    cursors. The lock files hold the holder's pid for the error message.

    A sink process learns of new events by polling the journal's end (`watch_journal`, every 20 ms,
    one indexed read) instead of the in-process wake-up of role all. With ``--stop-at-end`` it ends
    once no process holds ``capture.lock`` and it has delivered everything the journal then holds: start
    the source process first (or after it ended), or the sink process may find nothing to wait for.

Failure story
    A lock another process holds stops the run at once (`Permanent`, naming the pid and what to do).
    The kernel drops a lock when its process dies, SIGKILL included, so a crashed process never
    leaves a stale lock behind. The watcher's journal errors end the sink process as a failed run.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from cdc.errors import Permanent
from cdc.journal.sqlite import JournalReader

__all__ = ["CAPTURE_LOCK", "DELIVERY_LOCK", "DataDirLock", "Role", "held", "watch_journal"]

CAPTURE_LOCK = "capture.lock"
DELIVERY_LOCK = "delivery.lock"
WATCH_S = 0.02
_ACQUIRE_TRIES = 10   # a probe (`held`) holds the lock for microseconds: try again before refusing


class Role(StrEnum):
    """What one `cdc run` process runs: every connector, only the sources, or only the sinks."""

    ALL = "all"
    SOURCE = "source"
    SINK = "sink"

    def runs(self, is_source: bool) -> bool:
        """Whether a process of this role runs a connector (a source if `is_source`, else a sink)."""
        return self is Role.ALL or (self is Role.SOURCE) == is_source

    def locks(self) -> list[str]:
        """The lock files of the data dir this role holds."""
        return [lock for lock, role in ((CAPTURE_LOCK, Role.SOURCE), (DELIVERY_LOCK, Role.SINK))
                if self in (Role.ALL, role)]


class DataDirLock:
    """An exclusive `flock` on one lock file of the data dir, held until `release` or the process ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(_ACQUIRE_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == _ACQUIRE_TRIES - 1:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    os.close(fd)
                    half = "captures into" if self.path.name == CAPTURE_LOCK else "delivers from"
                    raise Permanent(
                        f"--data-dir {self.path.parent}: another bridge (pid {holder}) already {half} this "
                        f"journal ({self.path.name} is locked); stop it or use another --data-dir (one data dir "
                        "takes one --role all process, or one --role source and one --role sink)") from None
                time.sleep(0.01)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)   # closing the descriptor drops the lock
            self._fd = None


def held(path: Path) -> bool:
    """Whether some process holds the lock file `path` (probed by taking and dropping a shared lock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


async def watch_journal(journal: Path, grew: Callable[[int], None],
                        capture_over: Callable[[], None] | None = None) -> None:
    """Call `grew(end)` whenever the journal's end moves (and once at start). With `capture_over`, call
    it and return once no process holds the data dir's capture lock, after reporting the final end."""
    reader = await asyncio.to_thread(JournalReader, journal)
    lock = journal.parent / CAPTURE_LOCK
    try:
        last = -1
        while True:
            # The lock first: a capturer that released it committed its last append before, so the end
            # read after it is final.
            capturing = capture_over is None or held(lock)
            end = await asyncio.to_thread(reader.end_seq)
            if end != last:
                last = end
                grew(end)
            if not capturing:
                assert capture_over is not None
                capture_over()
                return
            await asyncio.sleep(WATCH_S)
    finally:
        await asyncio.to_thread(reader.close)
