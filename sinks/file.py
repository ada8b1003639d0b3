"""FileStreamSink: Kafka Connect's FileStreamSinkConnector, made durable.

Writes one event value per line -- the value bytes exactly as the journal holds them (UTF-8 JSON, the
Debezium envelope), followed by b"\\n" -- appending to one file. `deliver` returns only after the batch
is written with one `write` call, flushed and fsynced, so the pipeline may move the sink's cursor as
soon as it returns (design §4): a delivered line survives SIGKILL and power loss.

With a mapping (``mapper.sql``) the delivery loop hands it business events instead: each line is then
one CloudEvent (see `mappers`), written the same way.

Tombstones (records whose value is None) are skipped: a value-only file has no way to carry "this key
was deleted" -- there is no key on the line and JSON `null` would be indistinguishable from an event
whose value is the JSON null. Kafka Connect's FileStreamSink writes the string "null" for them; we
prefer to write nothing. The delete event that precedes a tombstone is written as usual.

Crash story: delivery is at-least-once. A crash after the fsync but before the cursor commit
re-delivers the batch (duplicate lines, which consumers dedupe by the event's source position). A crash
during the write may leave a partial last line; that batch was never acknowledged, so it will be
re-delivered, and `open` truncates the file back to just after its last newline first.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from types import TracebackType

from cdc.errors import Permanent, Transient
from cdc.types import JournalRecord

__all__ = ["FileStreamSink"]

_SCAN_BLOCK = 64 * 1024
_PERMANENT_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EROFS, errno.ENAMETOOLONG}
)


def _last_newline_end(fd: int, size: int) -> int:
    """The offset just after the file's last b"\\n" (0 if it has none), scanning backwards."""
    end = size
    while end > 0:
        start = max(0, end - _SCAN_BLOCK)
        block = os.pread(fd, end - start, start)
        index = block.rfind(b"\n")
        if index >= 0:
            return start + index + 1
        end = start
    return 0


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStreamSink:
    """Appends event values as JSON lines to `path`, durably. Use from one thread at a time."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._size = 0  # bytes acknowledged so far: the file ends with a complete line here
        self.repaired_bytes = 0  # bytes of a partial last line dropped by the last `open`
        self._reopen = False  # closed by a failed delivery: the next deliver() re-opens (and repairs)

    def open(self) -> None:
        """Create the file (and its parent directories) or repair a partial last line; idempotent."""
        if self._fd is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
                    keep = _last_newline_end(fd, size)
                    os.ftruncate(fd, keep)
                    os.fsync(fd)
                    self.repaired_bytes = size - keep
                    size = keep
                if created:
                    os.fsync(fd)
                    _fsync_dir(self.path.parent)
            except BaseException:
                os.close(fd)
                raise
        except OSError as exc:
            raise self._classify(exc) from exc
        self._fd = fd
        self._size = size

    def deliver(self, records: Sequence[JournalRecord]) -> None:
        """Append the batch's values, one per line, with a single write; fsync before returning.

        Tombstones are skipped. Raises `Transient` for I/O errors (a full disk, say) after truncating
        away whatever part of the batch reached the file, so the batch can simply be delivered again
        (if even the truncation fails, the next `open` repairs the partial line).
        """
        self.deliver_values([v for r in records if (v := r.value) is not None])

    def deliver_values(self, values: list[bytes]) -> None:
        """`deliver` for the values of a batch, tombstones already left out."""
        if self._fd is None:
            if not self._reopen:
                raise Permanent(f"file sink {self.path}: deliver() before open()")
            self.open()
            self._reopen = False
        assert self._fd is not None
        if not values:
            return
        data = b"\n".join(chain(values, (b"",)))
        fd = self._fd
        try:
            view = memoryview(data)
            while view:  # write() may be short (signals, quotas): finish the batch
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, self._size)
            except OSError:
                self.close()  # cannot undo the partial write here: re-opening repairs it
                self._reopen = True
            raise self._classify(exc) from exc
        self._size += len(data)

    def close(self) -> None:
        """Close the file (idempotent). Everything delivered is already durable."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> FileStreamSink:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _classify(self, exc: OSError) -> Permanent | Transient:
        kind = Permanent if exc.errno in _PERMANENT_ERRNOS else Transient
        return kind(f"file sink {self.path}: {exc.strerror or exc}")
