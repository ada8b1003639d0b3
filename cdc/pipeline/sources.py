"""A source connector's capture, supervised: open its reader at the journal's offset, capture, and
reconnect after transient failures.

Role: `supervise_source` is the task the `Supervisor` runs for each source connector. It opens the
reader (PostgreSQL or MySQL/MariaDB, imported when used: a process loads only its sources' drivers)
from the journal's stored offset and runs `run_capture` until the reader ends.

Failure story: a `Transient` failure (server restart, network, a full disk) reopens the reader after an
exponential backoff (1 s doubling to 60 s; back to 1 s once capture journaled something again or stayed
up a minute), at most
`errors.max.retries` times in a row (-1 = no limit, as Debezium counts them); a
`Permanent` one ends the task with the error, and the supervisor decides what happens next. A slot busy
at the first open is permanent (another process uses it); once the connector has opened, it is retried
like a lost connection (the server may not have noticed our own dropped connection yet).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cdc.config import PostgresSourceConfig, SourceConfig
from cdc.errors import CdcError, Transient, classify
from cdc.journal.sqlite import SqliteJournal
from cdc.pipeline.capture import CaptureStats, run_capture
from cdc.readers.base import ChangeReader

if TYPE_CHECKING:
    from cdc.admin.metrics import Metrics

__all__ = ["supervise_source"]

log = logging.getLogger(__name__)

_HEALTHY_S = 60.0

def _reader(cfg: SourceConfig, data_dir: Path, lookup: SqliteJournal) -> ChangeReader:
    spill = data_dir / "spill" / cfg.name
    if isinstance(cfg, PostgresSourceConfig):
        from cdc.readers.postgres import PostgresReader

        return PostgresReader(cfg, spill, lookup.toast_value)
    from cdc.readers.mysql import BinlogReader

    return BinlogReader(cfg, spill, lambda: lookup.schema_history(cfg.name))


def _slot_in_use(err: CdcError) -> bool:
    from cdc.readers.postgres import SlotInUse

    return isinstance(err, SlotInUse)


async def supervise_source(cfg: SourceConfig, journal: SqliteJournal, data_dir: Path,
                           on_durable: Callable[[int], None], stop_at_end: bool, stats: CaptureStats,
                           metrics: Metrics | None = None,
                           on_open: Callable[[ChangeReader], None] | None = None) -> None:
    """Capture `cfg`'s changes into `journal` until its reader ends (see the module docstring).
    `on_open` sees each reader once it opened (the admin sampler reads its snapshot progress)."""
    lookup = SqliteJournal(journal.path)
    on_counts = functools.partial(metrics.source_event_counts, cfg.name) if metrics is not None else None
    delay = 1.0
    retries = 0
    opened = False
    try:
        while True:
            reader = _reader(cfg, data_dir, lookup)
            reader.stop_at_end = stop_at_end
            progress, opened_at = stats.transactions, time.monotonic()
            try:
                await reader.open(journal.source_offset(cfg.name))
                opened = True
                if on_open is not None:
                    on_open(reader)
                await run_capture(cfg.name, reader, journal, on_durable, stats, on_counts=on_counts)
                return
            except Exception as e:   # OSError and psycopg errors included: classify decides
                err = classify(e)
                # A connector that journaled something, or stayed up a while, since it opened meets a new
                # failure: back to the first delay. Open-then-fail at once (a full disk) keeps backing off.
                if stats.transactions > progress or time.monotonic() - opened_at >= _HEALTHY_S:
                    retries, delay = 0, 1.0
                retriable = isinstance(err, Transient) or (opened and _slot_in_use(err))
                if not retriable or 0 <= cfg.errors_max_retries <= retries:
                    if err is e:
                        raise
                    raise err from e
                retries += 1
                log.warning("connector %s: %s; reconnecting in %.0f s", cfg.name, err, delay)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 60.0)
            finally:
                await reader.close()
    finally:
        lookup.close()
