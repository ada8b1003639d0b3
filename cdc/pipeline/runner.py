"""The runner: every source's capture and every sink's delivery in one process, until told to stop.

The `Supervisor` (`cdc.pipeline.supervisor`) runs each connector as a task of its own -- a source's
supervised capture, a sink's delivery loop woken whenever the journal grows -- and keeps their failures
apart: in a streaming run a connector that fails is restarted with backoff while the others go on. With
`--http` the admin server (`cdc.admin`) shows them and lets an operator pause, resume, stop, restart,
create, reconfigure and delete them, and move their offsets (`cdc.pipeline.control`).
Journal retention (`cdc.journal.retention`) runs beside them, at start and every minute, over the
connectors of the moment. `--role source` or `sink` runs only one half (`cdc.pipeline.roles`): a sink
process is woken by a watch over the journal instead of by the sources, and leaves retention to the
capturing process.

Stopping: with `stop_at_end` each reader ends at the WAL end it saw when it opened; a reader with
nothing to stream ends by itself (`snapshot.mode=initial_only`); SIGTERM/SIGINT cancel the readers.
Either way the journal writer finishes what it was handed (and confirms it), then the sinks deliver
everything the journal holds, commit their cursors, and `run` returns. A `stop_at_end` run is a batch
job: there a failing connector ends the run with its error (exit 1) instead of being restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cdc.config import ConnectorConfig, SourceConfig
from cdc.errors import CdcError, Permanent
from cdc.journal.retention import Connectors, policies_of, retention_loop, sink_topics
from cdc.journal.sqlite import JournalReader, SqliteJournal
from cdc.pipeline.roles import DataDirLock, Role, watch_journal
from cdc.pipeline.supervisor import RunStats, Supervisor

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from aiohttp import web

    from cdc.pipeline.control import RunState

__all__ = ["RunStats", "run"]

_SAMPLE_S = 5.0  # seconds between admin history samples (720 of them: an hour of charts)


async def _admin(supervisor: Supervisor, journal: Path, http: tuple[str, int],
                 token: str | None) -> tuple[RunState, web.AppRunner]:
    """The admin HTTP server (`cdc.admin`) over this run's connectors."""
    from cdc.admin import create_app, serve
    from cdc.pipeline.control import RunState

    host, port = http
    assert supervisor.metrics is not None
    state = RunState(supervisor, journal, f"{host}:{port}", supervisor.metrics)
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
            await state.sample(reader)
            await asyncio.sleep(_SAMPLE_S)
    finally:
        await asyncio.to_thread(reader.close)


def _retention(supervisor: Supervisor, journal: Path) -> asyncio.Task[None]:
    """Journal retention (`cdc.journal.retention`) over the connectors of the moment, every minute."""
    def connectors() -> Connectors:
        return policies_of(supervisor.sources()), sink_topics(supervisor.sinks())

    def ended(task: asyncio.Task[None]) -> None:
        # Retention only frees space: its failure (a corrupt journal, which capture will meet too) is
        # reported, and delivery goes on.
        if not task.cancelled() and task.exception() is not None:
            log.error("journal retention stopped: %s", task.exception())

    task = asyncio.create_task(retention_loop(journal, connectors), name="journal-retention")
    task.add_done_callback(ended)
    return task


def _watch(supervisor: Supervisor, journal: Path) -> asyncio.Task[None]:
    """A sink role's wake-ups from the capture process (`cdc.pipeline.roles`); its failure fails the run."""
    def ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            supervisor.error = supervisor.error or task.exception()
            supervisor.request_stop()

    over = supervisor.capture_ended if supervisor.stop_at_end else None
    task = asyncio.create_task(watch_journal(journal, supervisor.grew, over), name="journal-watch")
    task.add_done_callback(ended)
    return task


async def run(connectors: Sequence[ConnectorConfig], data_dir: Path, stop_at_end: bool = False,
              http: tuple[str, int] | None = None, token: str | None = None, role: Role = Role.ALL) -> RunStats:
    """Run the connectors of `role` until the end (stop_at_end) or a signal; returns what was done. With
    `http`, serve the admin API, metrics and status page there while running."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    locks = [DataDirLock(data_dir / name) for name in role.locks()]
    try:
        for lock in locks:
            await asyncio.to_thread(lock.acquire)
        return await _run(connectors, data_dir, stop_at_end, http, token, role)
    finally:
        for lock in locks:
            lock.release()


async def _run(connectors: Sequence[ConnectorConfig], data_dir: Path, stop_at_end: bool,
               http: tuple[str, int] | None, token: str | None, role: Role) -> RunStats:
    metrics = None
    if http is not None:
        # Imported only with --http: a run without it loads neither aiohttp nor prometheus-client.
        from cdc.admin import Metrics

        metrics = Metrics()
    stats = RunStats()
    journal = SqliteJournal(data_dir / "journal.db")
    supervisor = Supervisor(journal, data_dir, stats, stop_at_end=stop_at_end, metrics=metrics, role=role)
    admin: tuple[RunState, web.AppRunner] | None = None
    sampler: asyncio.Task[None] | None = None
    retention: asyncio.Task[None] | None = None
    watch: asyncio.Task[None] | None = None
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        log.info("stopping: capture stops, sinks drain the journal")
        supervisor.request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
    try:
        # Mappings are compiled against the sources' live catalogs before capture starts: a bad mapping
        # (all its problems, with file, line and column) stops the run before anything is captured.
        sources = [c for c in connectors if isinstance(c, SourceConfig)]
        prepared = [await supervisor.prepare(cfg, sources=sources) for cfg in connectors]
        if http is not None:
            admin = await _admin(supervisor, journal.path, http, token)
            sampler = asyncio.create_task(_sampling(admin[0], journal.path), name="admin-sampler")
        for c in sorted(prepared, key=lambda c: not c.is_source):
            supervisor.launch(c)
        if role is Role.SINK:
            watch = _watch(supervisor, journal.path)
        else:  # the capturing process removes what retention lets go
            retention = _retention(supervisor, journal.path)
        await supervisor.wait()
        await supervisor.shutdown()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        for task in (sampler, retention, watch):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if admin is not None:
            await admin[1].cleanup()
        journal.close()
    error = supervisor.error
    if error is not None:
        if isinstance(error, CdcError):
            raise error
        raise Permanent(f"{type(error).__name__}: {error}") from error
    return stats
