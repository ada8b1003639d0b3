"""SpillBuffer keeps order across memory and disk, drops aborted subtransactions, bounds memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from cdc.readers.spill import SpillBuffer


def test_order_across_memory_and_file(tmp_path: Path) -> None:
    buf = SpillBuffer(tmp_path, memory_limit=10)
    for i in range(100):
        buf.append((1, i, b"v%d" % i, None))
    assert buf.spilled and buf.count == 100
    assert [r[1] for r in buf] == list(range(100))
    assert [r[1] for r in buf] == list(range(100)), "replayable twice"
    buf.close()


def test_aborted_subtransaction_dropped(tmp_path: Path) -> None:
    buf = SpillBuffer(tmp_path, memory_limit=3)
    for i in range(10):
        buf.append((7 if i % 2 else 5, i))
    buf.discard_subxact(7)
    assert [r[1] for r in buf] == [0, 2, 4, 6, 8]


def test_memory_bounded_for_large_transaction(tmp_path: Path) -> None:
    tracemalloc.start()
    buf = SpillBuffer(tmp_path, memory_limit=1000)
    for i in range(200_000):
        buf.append((1, "t", b"k%d" % i, b"x" * 200))
    n = sum(1 for _ in buf)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    buf.close()
    assert n == 200_000
    assert peak < 5_000_000, peak
