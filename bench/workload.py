"""The benchmark workload of ../shared/bench/debezium, for any SQL driver (psycopg, PyMySQL).

Table `orders`: 200,000 inserts in 1,000-row transactions, 50,000 updates (`id % 4 = 0`) and 10,000
deletes (`id % 20 = 1`), 1,000 rows per transaction: 260,000 row changes in 260 transactions, the same
rows as the Debezium reference run. `transactions()` yields one (SQL, parameters) per transaction;
the caller executes and commits each.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

N_INSERT, BATCH, N_UPDATE, N_DELETE = 200_000, 1_000, 50_000, 10_000
TOTAL = N_INSERT + N_UPDATE + N_DELETE
STATUSES = ["new", "paid", "packed", "shipped", "cancelled"]


def transactions(now: str, scale: float = 1.0) -> Iterator[tuple[str, list[object]]]:
    """The workload's statements, one per transaction; `now` is the dialect's current-time expression
    (``now()`` for PostgreSQL, ``now(6)`` for MySQL/MariaDB); `scale` shrinks it for quick runs."""
    for b in range(int(N_INSERT * scale) // BATCH):
        start = b * BATCH + 1
        rnd = random.Random(start)
        rows = [(rnd.randint(1, 50_000), STATUSES[i % 3], f"{rnd.randint(100, 10_000_000) / 100:.2f}",
                 f"order {i} note: lorem ipsum dolor sit amet {rnd.randint(0, 1 << 30)}")
                for i in range(start, start + BATCH)]
        yield ("INSERT INTO orders(customer_id,status,amount,note,updated_at) VALUES "
               + ",".join([f"(%s,%s,%s,%s,{now})"] * len(rows)), [v for r in rows for v in r])
    for b in range(int(N_UPDATE * scale) // BATCH):
        lo = b * 4 * BATCH
        yield (f"UPDATE orders SET status='shipped', amount=amount+1, updated_at={now}, "
               "note=concat(note, ' upd') WHERE id > %s AND id <= %s AND id %% 4 = 0", [lo, lo + 4 * BATCH])
    for b in range(int(N_DELETE * scale) // BATCH):
        lo = b * 20 * BATCH
        yield "DELETE FROM orders WHERE id > %s AND id <= %s AND id %% 20 = 1", [lo, lo + 20 * BATCH]
