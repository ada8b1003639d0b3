"""A transaction's pending changes: held in memory up to a bound, spilled to a temp file beyond it.

Readers see a transaction's changes before its commit (PostgreSQL streams large in-progress
transactions; the binlog writes a whole transaction at once but it may hold a million rows). Until the
commit arrives nothing may reach the journal, so the changes wait here: the first `memory_limit`
records in a list, the rest pickled, length-prefixed, into an anonymous temp file under the data dir.
Memory therefore stays bounded whatever the transaction's size.

Records are plain tuples of str/bytes/int/None written and read back by this process only. A
subtransaction that aborts mid-stream is dropped by `discard_subxact`, which marks its xid; records of
marked xids are skipped when the buffer is replayed. On any I/O error (disk full) the exception
propagates and the reader restarts from the last durable offset: nothing was confirmed for it.
"""

from __future__ import annotations

import pickle
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_LEN = struct.Struct("<I")
Record = tuple[Any, ...]


class SpillBuffer:
    """Records of one transaction in arrival order; record[0] must be the (sub)transaction xid."""

    __slots__ = ("_aborted", "_dir", "_file", "_mem", "count", "memory_limit")

    def __init__(self, spill_dir: Path | None, memory_limit: int = 10_000) -> None:
        self._mem: list[Record] = []
        self._file: IO[bytes] | None = None
        self._dir = spill_dir
        self._aborted: set[int] = set()
        self.memory_limit = memory_limit
        self.count = 0

    def append(self, rec: Record) -> None:
        self.count += 1
        if self._file is None and len(self._mem) < self.memory_limit:
            self._mem.append(rec)
            return
        f = self._file
        if f is None:
            if self._dir is not None:
                self._dir.mkdir(parents=True, exist_ok=True)
            # Lives as long as the transaction, closed by close(): no `with` block fits.
            f = self._file = tempfile.TemporaryFile(dir=self._dir, prefix="spill-")  # noqa: SIM115
        data = pickle.dumps(rec, protocol=5)
        f.write(_LEN.pack(len(data)))
        f.write(data)

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def discard_subxact(self, xid: int) -> None:
        self._aborted.add(xid)

    def __iter__(self) -> Iterator[Record]:
        if self._file is None and not self._aborted:  # the usual transaction: no generator step per record
            return iter(self._mem)
        return self._records()

    def _records(self) -> Iterator[Record]:
        aborted = self._aborted
        for rec in self._mem:
            if rec[0] not in aborted:
                yield rec
        f = self._file
        if f is None:
            return
        f.flush()
        f.seek(0)
        read, unpack, loads = f.read, _LEN.unpack, pickle.loads
        while True:
            head = read(4)
            if not head:
                return
            rec = loads(read(unpack(head)[0]))
            if rec[0] not in aborted:
                yield rec

    def close(self) -> None:
        self._mem = []
        if self._file is not None:
            self._file.close()
            self._file = None
