"""Micro benchmark of the embedded journal alone: append, then read back.

260,000 change events with ~390-byte Debezium-like values, appended in 260 transactions of 1,000 events
(one `append` each, fsynced: synchronous=FULL) over 5 topics, then read back by one reader in batches
of 5,000 (all topics), and by another reader matching a single topic. Prints events/s; asserts only
that everything read back is what was written.

Topic layouts (`--layout`):

- `tx`     each transaction touches one table (topic t % 5): the bulk/ERP-batch shape;
- `mixed`  each transaction is 5 blocks of 200 events, one per topic;
- `event`  topics round-robin event by event: the worst case for packed runs (runs of one event).

`python -m bench.journal_micro [--layout tx|mixed|event] [--rounds N] [--module cdc.journal.sqlite]`
(`--module` names any module with the same `SqliteJournal` API, e.g. an older copy, for a before/after).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cdc.types import ChangeEvent

TXS, TX_SIZE, TOPICS, READ_BATCH = 260, 1_000, 5, 5_000
ALL = re.compile(r".*")


def value(n: int) -> bytes:
    """A ~390-byte Debezium-style value (an `orders` insert)."""
    return (
        b'{"before":null,"after":{"id":%d,"customer_id":%d,"status":"paid","amount":"%d.25",'
        b'"currency":"EUR","channel":"web","warehouse":"W-01","created_at":"2024-05-01T12:34:56.789012Z"},"source":{"version":"0.1.0","connector":"postgresql",'
        b'"name":"erp","ts_ms":1714567296789,"snapshot":"false","db":"erp","schema":"public",'
        b'"table":"orders","txId":%d,"lsn":%d},"op":"c","ts_ms":1714567296790}'
        % (n, n * 7 % 50_000, n % 10_000, n // TX_SIZE + 1000, 0x1000000 + n * 412)
    )


def event(layout: str, n: int) -> ChangeEvent:
    """The n-th event (seq n + 1) of the workload."""
    t, i = divmod(n, TX_SIZE)
    if layout == "tx":
        topic = t % TOPICS
    elif layout == "mixed":
        topic = i * TOPICS // TX_SIZE
    else:
        topic = n % TOPICS
    return ChangeEvent(f"erp.public.table{topic}", b'{"id":%d}' % n, value(n))


def transactions(layout: str) -> list[list[ChangeEvent]]:
    return [[event(layout, t * TX_SIZE + i) for i in range(TX_SIZE)] for t in range(TXS)]


def read_all(reader: Any, pattern: re.Pattern[str]) -> tuple[int, int, float]:
    """(records, last seq, seconds) of reading everything matching in batches of READ_BATCH."""
    started = time.perf_counter()
    after = count = 0
    while batch := reader.read(pattern, after, READ_BATCH):
        count += len(batch)
        after = batch[-1].seq
    return count, after, time.perf_counter() - started


def run_once(module: Any, layout: str, tmp: Path) -> tuple[float, float, float]:
    total = TXS * TX_SIZE
    txs = transactions(layout)
    journal = module.SqliteJournal(tmp / "journal.db")
    try:
        gc.collect()
        started = time.perf_counter()
        for t, tx in enumerate(txs):
            journal.append("pg", [tx], {"lsn": t + 1})
        append_s = time.perf_counter() - started
        # A sink does not hold the source's events: free them, so that the garbage collector's passes
        # over them do not count against reading.
        del txs, tx
        gc.collect()

        with journal.reader() as reader:
            count, last, read_s = read_all(reader, ALL)
            assert (count, last) == (total, total), (count, last)
        one = re.compile(r"erp\.public\.table3")
        with journal.reader() as reader:
            count, _, one_s = read_all(reader, one)
            assert count == total // TOPICS, count
        with journal.reader() as reader:  # untimed: check every record
            after = 0
            while batch := reader.read(ALL, after, READ_BATCH):
                for r in batch:
                    e = event(layout, r.seq - 1)
                    assert (r.topic, r.key, r.value) == (e.topic, e.key, e.value), r.seq
                after = batch[-1].seq
    finally:
        journal.close()
    return total / append_s, total / read_s, total / TOPICS / one_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layout", choices=("tx", "mixed", "event"), default="tx")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--module", default="cdc.journal.sqlite")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the journal (default: a temp dir)")
    args = parser.parse_args()
    module = importlib.import_module(args.module)
    results: list[tuple[float, float, float]] = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            results.append(run_once(module, args.layout, Path(tmp)))
    size = statistics.mean(len(value(n)) for n in range(0, TXS * TX_SIZE, 97))
    print(f"{args.module} layout={args.layout}: {TXS * TX_SIZE:,} events, mean value {size:.0f} B, "
          f"{args.rounds} rounds (median)")
    for i, label in enumerate(("append", "read all (5,000/batch)", "read 1 of 5 topics")):
        values = [r[i] for r in results]
        print(f"  {label:24} {statistics.median(values):>12,.0f} events/s   "
              f"(min {min(values):,.0f}, max {max(values):,.0f})")


if __name__ == "__main__":
    main()
