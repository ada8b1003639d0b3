"""Shared by the incremental-snapshot tests of both sources: a writer that churns a `customers (id, name, v)`
table while a snapshot runs, the journal's stored offset, and the by-key comparison of output and table.

`Churn` runs random single-row and multi-row transactions in a thread until stopped -- updates, deletes,
inserts (also of deleted keys) and primary-key changes -- with a fixed seed; the SQL dialect is a
subclass's (`PgChurn` in the PostgreSQL test, `MyChurn` in the MariaDB one).
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

MARKER = 9_999_999   # the id of the row inserted after the writer stopped: its arrival means "caught up"


class Churn(ABC):
    def __init__(self, n: int) -> None:
        self.n = n
        self.done = threading.Event()
        self.count = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @abstractmethod
    def session(self) -> AbstractContextManager[Any]: ...

    @abstractmethod
    def update(self, s: Any, k: int) -> None: ...

    @abstractmethod
    def delete(self, s: Any, k: int) -> None: ...

    @abstractmethod
    def upsert(self, s: Any, k: int) -> None: ...

    @abstractmethod
    def decrement_together(self, s: Any, keys: Sequence[int]) -> None: ...

    @abstractmethod
    def rekey(self, s: Any, k: int, new: int) -> None: ...

    def _run(self) -> None:
        rng = random.Random(6)
        fresh = 2 * self.n
        try:
            with self.session() as s:
                while not self.done.is_set():
                    k = rng.randint(1, self.n)
                    op = rng.random()
                    if op < 0.4:
                        self.update(s, k)
                    elif op < 0.55:
                        self.delete(s, k)
                    elif op < 0.75:
                        self.upsert(s, k)
                    elif op < 0.9:
                        self.decrement_together(s, rng.sample(range(1, self.n + 1), 5))
                    else:
                        fresh += 1
                        self.rekey(s, k, fresh)
                    self.count += 1
        except BaseException as e:  # reported by stop()
            self.error = e

    def __enter__(self) -> Churn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.done.set()
        self._thread.join(timeout=60)
        assert self.error is None, f"writer failed: {self.error!r}"


def stored_offset(data_dir: Path, name: str) -> dict[str, Any]:
    """The connector's source offset as the journal stores it ({} before the first)."""
    path = data_dir / "journal.db"
    if not path.exists():
        return {}
    with sqlite3.connect(path, timeout=30) as db:
        try:
            row = db.execute('SELECT "offset" FROM source_offsets WHERE connector = ?', (name,)).fetchone()
        except sqlite3.OperationalError:   # not created yet
            return {}
    return json.loads(row[0]) if row else {}


def assert_same_rows(got: dict[Any, Any], want: dict[Any, Any]) -> None:
    """The replayed output equals the table, by key; on failure, say which keys are missing, extra or stale."""
    missing = sorted(set(want) - set(got), key=lambda k: int(k[0]))
    extra = sorted(set(got) - set(want), key=lambda k: int(k[0]))
    stale = sorted((k for k in want if k in got and got[k] != want[k]), key=lambda k: int(k[0]))
    assert not (missing or extra or stale), (f"{len(missing)} missing (e.g. {missing[:5]}), {len(extra)} extra "
                                             f"(e.g. {extra[:5]}), {len(stale)} stale (e.g. "
                                             f"{[(got[k], want[k]) for k in stale[:3]]})")


def reads(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["op"] == "r"]


def assert_snapshot_logged(log: str, table: str, events: list[dict[str, Any]],
                           n: int) -> tuple[list[dict[str, Any]], int]:
    """The log shows the table's snapshot start (with the planner's estimate) and end (rows, at least 40
    chunks of 100), matching the read events in the output; returns those reads and the chunk count."""
    assert re.search(rf"incremental snapshot of {re.escape(table)} started \(about \d+ rows, chunks of 100\)", log), log
    m = re.search(rf"incremental snapshot of {re.escape(table)} finished: (\d+) rows in (\d+) chunks", log)
    assert m is not None and int(m[2]) >= 40, log
    assert "incremental snapshot complete" in log
    r = reads(events)
    assert int(m[1]) == len(r) and 4000 < len(r) <= n
    assert {e["source"]["snapshot"] for e in r} == {"incremental"}
    assert {e["source"]["table"] for e in events} == {"customers"}   # the signal table is not captured
    return r, int(m[2])
