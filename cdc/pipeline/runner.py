"""The runner: every source's capture and every sink's delivery in one process, until told to stop.

Each source connector runs a supervised loop: open the reader from the journal's stored offset, capture
until the reader ends; a `Transient` failure (server restart, network) restarts it after an
exponential backoff (at most `errors.max.retries` times in a row, -1 = no limit, as Debezium counts
them), a `Permanent` one stops the run with the error. A slot busy at the first start is permanent
(another process uses it); after the connector has once opened, it is retried like a lost connection.
Each sink connector runs a delivery loop woken whenever the journal grows: the file sink's sequential
one (`cdc.pipeline.delivery`), or for API sinks the lane engine (`cdc.pipeline.dispatch`).

Stopping: with `stop_at_end` each reader ends at the WAL end it saw when it opened; a reader with
nothing to stream ends by itself (`snapshot.mode=initial_only`); SIGTERM/SIGINT cancel the readers.
Either way the journal writer finishes what it was handed (and confirms it), then the sinks deliver
everything the journal holds, commit their cursors, and `run` returns 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cdc.config import (
    BinlogSourceConfig,
    ConnectorConfig,
    DeliverySinkConfig,
    FileStreamSinkConfig,
    PostgresSourceConfig,
    SourceConfig,
)
from cdc.errors import CdcError, Permanent, Transient, classify
from cdc.journal.sqlite import JournalReader, SqliteJournal
from cdc.pipeline.capture import CaptureStats, run_capture
from cdc.pipeline.delivery import DeliveryStats, RecordMapper, run_delivery
from cdc.pipeline.dispatch import DispatchStats, run_dispatch
from cdc.readers.base import ChangeReader
from sinks.file import FileStreamSink

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from aiohttp import web

    from cdc.pipeline.control import RunState

_SAMPLE_S = 5.0  # seconds between admin history samples (720 of them: an hour of charts)


@dataclass
class RunStats:
    capture: dict[str, CaptureStats] = field(default_factory=dict)
    delivery: dict[str, DeliveryStats | DispatchStats] = field(default_factory=dict)


def _reader(cfg: SourceConfig, data_dir: Path, lookup: SqliteJournal) -> ChangeReader:
    spill = data_dir / "spill" / cfg.name
    # Readers and mappers are imported when used: a process loads only its sources' drivers.
    if isinstance(cfg, PostgresSourceConfig):
        from cdc.readers.postgres import PostgresReader

        return PostgresReader(cfg, spill, lookup.toast_value)
    from cdc.readers.mysql import BinlogReader

    return BinlogReader(cfg, spill, lambda: lookup.schema_history(cfg.name))


def _slot_in_use(err: CdcError) -> bool:
    from cdc.readers.postgres import SlotInUse

    return isinstance(err, SlotInUse)


def _mapper(sink: FileStreamSinkConfig | DeliverySinkConfig, sources: Sequence[SourceConfig]) -> RecordMapper | None:
    if sink.mapper_sql is None:
        return None
    from mappers.load import sink_mapper

    return sink_mapper(sink, sources)


async def _supervise_source(cfg: SourceConfig, journal: SqliteJournal, data_dir: Path,
                            wakes: Sequence[asyncio.Event], stop_at_end: bool, stats: CaptureStats) -> None:
    lookup = SqliteJournal(journal.path)
    delay = 1.0
    retries = 0
    opened = False
    try:
        while True:
            reader = _reader(cfg, data_dir, lookup)
            reader.stop_at_end = stop_at_end
            try:
                await reader.open(journal.source_offset(cfg.name))
                opened, retries, delay = True, 0, 1.0

                def durable(_seq: int) -> None:
                    for w in wakes:
                        w.set()

                await run_capture(cfg.name, reader, journal, durable, stats)
                return
            except Exception as e:   # OSError and psycopg errors included: classify decides
                err = classify(e)
                # Our own slot can still look busy just after a lost connection (the server has not
                # noticed yet); someone else's slot at the first start is an operator's problem.
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


async def _admin(connectors: Sequence[ConnectorConfig], journal: Path, stats: RunStats,
                 http: tuple[str, int], token: str | None) -> tuple[RunState, web.AppRunner]:
    """The admin HTTP server (`cdc.admin`) over this run's state."""
    # Imported only with --http: a run without it loads neither aiohttp nor prometheus-client for this.
    from cdc.admin import Metrics, create_app, serve
    from cdc.pipeline.control import RunState

    host, port = http
    state = RunState(connectors, journal, f"{host}:{port}", Metrics(), stats.capture, stats.delivery)
    try:
        server = await serve(create_app(state, state.metrics, token), host, port)
    except OSError as e:
        raise Permanent(f"--http {host}:{port}: cannot listen there ({e.strerror or e}); choose another "
                        "address, or --http off") from e
    log.info("admin API, metrics and status page on http://%s:%d/", host, port)
    return state, server


async def _sampling(state: RunState, journal: Path) -> None:
    reader = await asyncio.to_thread(JournalReader, journal)
    try:
        while True:
            await asyncio.to_thread(state.sample, reader)
            await asyncio.sleep(_SAMPLE_S)
    finally:
        await asyncio.to_thread(reader.close)


async def run(connectors: Sequence[ConnectorConfig], data_dir: Path, stop_at_end: bool = False,
              http: tuple[str, int] | None = None, token: str | None = None) -> RunStats:
    """Run every connector until the end (stop_at_end) or a signal; returns what was done. With `http`,
    serve the admin API, metrics and status page there while running."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    sources = [c for c in connectors if isinstance(c, PostgresSourceConfig | BinlogSourceConfig)]
    sinks = [c for c in connectors if isinstance(c, FileStreamSinkConfig | DeliverySinkConfig)]
    # Mappings are compiled against the sources' live catalogs before capture starts: a bad mapping
    # (all its problems, with file, line and column) stops the run before anything is captured.
    mappers = [await asyncio.to_thread(_mapper, scfg, sources) for scfg in sinks]
    stats = RunStats()
    journal = SqliteJournal(data_dir / "journal.db")
    admin: tuple[RunState, web.AppRunner] | None = None
    if http is not None:
        admin = await _admin(connectors, journal.path, stats, http, token)
    metrics = admin[0].metrics if admin is not None else None
    wakes = [asyncio.Event() for _ in sinks]
    capture_done = False
    end_seq: int | None = None

    def finished() -> int | None:
        return end_seq if capture_done else None

    loop = asyncio.get_running_loop()
    source_tasks = []
    for cfg in sources:
        st = stats.capture[cfg.name] = CaptureStats()
        source_tasks.append(asyncio.create_task(
            _supervise_source(cfg, journal, data_dir, wakes, stop_at_end, st), name=f"source-{cfg.name}"))
    sink_tasks = []
    for scfg, wake, mapper in zip(sinks, wakes, mappers, strict=True):
        if isinstance(scfg, FileStreamSinkConfig):
            ds = stats.delivery[scfg.name] = DeliveryStats()
            sink = FileStreamSink(Path(scfg.file))
            job = run_delivery(scfg.name, journal, sink, scfg.topic_pattern(), wake, finished, ds, mapper=mapper)
        else:
            from sinks import open_sink

            assert mapper is not None  # delivery sinks require mapper.sql
            ps = stats.delivery[scfg.name] = DispatchStats()
            job = run_dispatch(scfg, journal, open_sink(scfg), mapper, wake, finished, ps, metrics)
        sink_tasks.append(asyncio.create_task(job, name=f"sink-{scfg.name}"))

    def on_signal() -> None:
        log.info("stopping: capture stops, sinks drain the journal")
        for t in source_tasks:
            t.cancel()

    def sink_ended(task: asyncio.Task[None]) -> None:
        # A sink that fails for good while capture runs stops the run now, rather than at shutdown.
        if not capture_done and not task.cancelled() and task.exception() is not None:
            log.error("%s failed: %s; stopping", task.get_name(), task.exception())
            for t in source_tasks:
                t.cancel()

    for t in sink_tasks:
        t.add_done_callback(sink_ended)
    sampler = None
    if admin is not None:
        state = admin[0]
        names = [c.name for c in sources] + [c.name for c in sinks]
        for name, task in zip(names, [*source_tasks, *sink_tasks], strict=True):
            state.watch(name, task)
        sampler = asyncio.create_task(_sampling(state, journal.path), name="admin-sampler")

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
    error: BaseException | None = None
    try:
        results = await asyncio.gather(*source_tasks, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                error = r
        end_seq = journal.end_seq()
        capture_done = True
        for w in wakes:
            w.set()
        if error is not None:
            for t in sink_tasks:
                t.cancel()
        for r in await asyncio.gather(*sink_tasks, return_exceptions=True):
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError) and error is None:
                error = r
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        if admin is not None:
            await admin[1].cleanup()
        journal.close()
    if error is not None:
        if isinstance(error, CdcError):
            raise error
        raise Permanent(f"{type(error).__name__}: {error}") from error
    return stats
