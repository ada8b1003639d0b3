"""FileStreamSink: durable JSON lines, tombstones skipped, partial last line repaired on open."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cdc.errors import Permanent
from cdc.types import JournalRecord
from sinks.file import FileStreamSink


def rec(seq: int, value: bytes | None, topic: str = "erp.s.t") -> JournalRecord:
    return JournalRecord(seq, topic, b'{"id":%d}' % seq, value)


def test_appends_one_value_per_line_creating_directories(tmp_path: Path) -> None:
    path = tmp_path / "out" / "nested" / "events.jsonl"
    with FileStreamSink(path) as sink:
        sink.deliver([
            rec(1, b'{"op":"c","after":{"id":1}}'),
            rec(2, b'{"op":"u","after":{"id":1,"n":"\xc3\xa9"}}'),
        ])
        sink.deliver([])
        sink.deliver([rec(3, b'{"op":"d"}')])
    assert path.read_bytes() == (
        b'{"op":"c","after":{"id":1}}\n{"op":"u","after":{"id":1,"n":"\xc3\xa9"}}\n{"op":"d"}\n'
    )
    # Re-opening appends after the existing lines.
    with FileStreamSink(path) as sink:
        assert sink.repaired_bytes == 0
        sink.deliver([rec(4, b"{}")])
    assert path.read_bytes().splitlines()[-1] == b"{}"
    assert len(path.read_bytes().splitlines()) == 4


def test_tombstones_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with FileStreamSink(path) as sink:
        sink.deliver([rec(1, b'{"op":"d"}'), rec(2, None), rec(3, b'{"op":"c"}')])
        sink.deliver([rec(4, None)])  # a batch of tombstones only writes nothing
    assert path.read_bytes() == b'{"op":"d"}\n{"op":"c"}\n'


def test_deliver_fsyncs_before_returning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.jsonl"
    calls: list[str] = []
    real_write, real_fsync = os.write, os.fsync

    def write(fd: int, data: bytes | memoryview) -> int:
        calls.append("write")
        return real_write(fd, data)

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    with FileStreamSink(path) as sink:
        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)
        sink.deliver([rec(n, b'{"n":%d}' % n) for n in range(100)])
        monkeypatch.undo()
    assert calls == ["write", "fsync"]  # the whole batch in one write, then fsync
    assert len(path.read_bytes().splitlines()) == 100


def test_partial_last_line_is_truncated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with FileStreamSink(path) as sink:
        sink.deliver([rec(1, b'{"n":1}'), rec(2, b'{"n":2}')])
    with path.open("ab") as f:  # the process died in the middle of writing the next batch
        f.write(b'{"n":3}\n{"n":4,"half')
    with FileStreamSink(path) as sink:
        assert sink.repaired_bytes == len(b'{"n":4,"half')
        assert path.read_bytes() == b'{"n":1}\n{"n":2}\n{"n":3}\n'
        sink.deliver([rec(4, b'{"n":4}')])  # the unacknowledged batch is re-delivered
    assert path.read_bytes() == b'{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n'


def test_partial_only_line_and_long_partial_line(tmp_path: Path) -> None:
    only = tmp_path / "only.jsonl"
    only.write_bytes(b'{"never":"acknowledged"')
    with FileStreamSink(only) as sink:
        assert sink.repaired_bytes == len(b'{"never":"acknowledged"')
    assert only.read_bytes() == b""

    long = tmp_path / "long.jsonl"
    long.write_bytes(b'{"a":1}\n' + b"x" * 200_000)  # longer than one backwards-scan block
    with FileStreamSink(long) as sink:
        sink.deliver([rec(2, b'{"b":2}')])
    assert long.read_bytes() == b'{"a":1}\n{"b":2}\n'


def test_deliver_before_open_is_an_error(tmp_path: Path) -> None:
    sink = FileStreamSink(tmp_path / "x.jsonl")
    with pytest.raises(Permanent):
        sink.deliver([rec(1, b"{}")])
    sink.open()
    sink.open()  # idempotent
    sink.close()
    sink.close()
