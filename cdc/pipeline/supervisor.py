"""Connector lifecycles inside one `cdc run`: start, pause, resume, stop, restart, delete, replace, and
failure isolation.

Role: the `Supervisor` owns one task per running connector -- a source's capture
(`cdc.pipeline.sources.supervise_source`, which itself reconnects after transient errors) or a sink's
delivery (`run_delivery` for the file sink, `run_dispatch` for API sinks) -- and the state Kafka Connect
would show for it. An operator's request (the admin API) sets a connector's *target* (RUNNING, PAUSED,
STOPPED) and the supervisor cancels or starts its task to match. Pausing and stopping both end the task:
a paused source holds no connection (its slot or binlog position keeps the changes), a paused sink no
HTTP session. Both are crash-safe by the same argument as a kill: capture confirms only what the journal
holds, delivery commits only what the target acknowledged, so a cancelled task resumes without loss.

Failure story: a connector whose task fails becomes FAILED, with its error as the trace, and nothing else
is touched: the other connectors keep running. In a streaming run it is started again after an
exponential backoff (1 s doubling to 60 s, with jitter; afresh once it had run a minute) until an
operator stops, deletes or fixes it; an operator's restart skips the wait. In a `--stop-at-end` run (a
batch job) a failure ends the run instead, and `shutdown` leaves the error in `error` for the caller.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
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
from cdc.journal.sqlite import SqliteJournal
from cdc.pipeline.capture import CaptureStats
from cdc.pipeline.delivery import DeliveryStats, RecordMapper, run_delivery
from cdc.pipeline.dispatch import DispatchStats, run_dispatch
from cdc.pipeline.roles import Role
from cdc.pipeline.sources import supervise_source
from cdc.readers.base import ChangeReader
from cdc.types import ConnectorState

if TYPE_CHECKING:
    from cdc.admin.metrics import Metrics

__all__ = ["Connector", "RunStats", "Supervisor", "compile_mapper"]

log = logging.getLogger(__name__)

_BACKOFF_START_S = 1.0
_BACKOFF_MAX_S = 60.0
_HEALTHY_S = 60.0   # a connector that ran this long before failing starts its backoff afresh


@dataclass
class RunStats:
    """Counters of the run's connectors by name (kept across restarts, so that rates stay continuous)."""

    capture: dict[str, CaptureStats] = field(default_factory=dict)
    delivery: dict[str, DeliveryStats | DispatchStats] = field(default_factory=dict)


def compile_mapper(sink: ConnectorConfig, sources: Sequence[SourceConfig]) -> RecordMapper | None:
    """A sink's mapping compiled against the sources' live catalogs (None: the sink has no mapping)."""
    if not isinstance(sink, FileStreamSinkConfig | DeliverySinkConfig) or sink.mapper_sql is None:
        return None
    from mappers.load import sink_mapper  # only runs with a mapping load the mapper package

    return sink_mapper(sink, sources)


@dataclass
class Connector:
    """One connector of the run: its config, where it is and where the operator wants it."""

    cfg: ConnectorConfig
    target: ConnectorState = ConnectorState.RUNNING   # RUNNING, PAUSED or STOPPED
    state: ConnectorState = ConnectorState.UNASSIGNED
    trace: str | None = None                            # the error while FAILED
    mapper: RecordMapper | None = None                  # compiled ahead, for the next start of a sink
    wake: asyncio.Event = field(default_factory=asyncio.Event)   # sinks: the journal grew
    task: asyncio.Task[None] | None = None
    retry: asyncio.TimerHandle | None = None
    failures: int = 0                                   # in a row, for the backoff
    started: float = 0.0
    completed: bool = False                             # a source that ended by itself
    reader: ChangeReader | None = None                  # a source's reader, once opened

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def is_source(self) -> bool:
        return isinstance(self.cfg, PostgresSourceConfig | BinlogSourceConfig)


class Supervisor:
    """Runs the connectors of one `cdc run` (see the module docstring)."""

    def __init__(self, journal: SqliteJournal, data_dir: Path, stats: RunStats, *, stop_at_end: bool,
                 metrics: Metrics | None = None, role: Role = Role.ALL) -> None:
        self.journal = journal
        self.role = role
        self.data_dir = data_dir
        self.stats = stats
        self.stop_at_end = stop_at_end
        self.metrics = metrics
        self.connectors: dict[str, Connector] = {}
        self.error: BaseException | None = None
        self._capture_over = asyncio.Event()
        self._stopping = False
        self._had_sources = False
        self._end_seq: int | None = None   # set once capture is over: sinks deliver up to it and end

    # -- what runs ---------------------------------------------------------------------------------

    def configs(self) -> list[ConnectorConfig]:
        return [c.cfg for c in self.connectors.values()]

    def sources(self) -> list[SourceConfig]:
        return [c.cfg for c in self.connectors.values() if isinstance(c.cfg, PostgresSourceConfig | BinlogSourceConfig)]

    def sinks(self) -> list[FileStreamSinkConfig | DeliverySinkConfig]:
        return [c.cfg for c in self.connectors.values() if isinstance(c.cfg, FileStreamSinkConfig | DeliverySinkConfig)]

    def get(self, name: str) -> Connector | None:
        return self.connectors.get(name)

    async def prepare(self, cfg: ConnectorConfig, target: ConnectorState = ConnectorState.RUNNING,
                      sources: Sequence[SourceConfig] | None = None) -> Connector:
        """A connector ready to launch; a sink's mapping is compiled now, so that a bad one is refused
        (with file, line and column) before anything starts."""
        mapper = await asyncio.to_thread(compile_mapper, cfg, self.sources() if sources is None else sources)
        return Connector(cfg, target, mapper=mapper)

    def launch(self, c: Connector) -> None:
        """Add a prepared connector and start it, or hold it in its target state."""
        self.connectors[c.name] = c
        self._had_sources = self._had_sources or c.is_source
        if not self.role.runs(c.is_source):
            c.state = ConnectorState.UNASSIGNED   # another process's role runs it
        elif c.target is ConnectorState.RUNNING:
            self._start(c)
        else:
            c.state = c.target
        self._check_capture()

    # -- operator requests -----------------------------------------------------------------------------

    async def pause(self, name: str) -> None:
        await self._halt(self.connectors[name], ConnectorState.PAUSED)

    async def stop(self, name: str) -> None:
        await self._halt(self.connectors[name], ConnectorState.STOPPED)

    async def resume(self, name: str) -> None:
        c = self.connectors[name]
        c.target = ConnectorState.RUNNING
        if c.state in (ConnectorState.PAUSED, ConnectorState.STOPPED) and not self._stopping:
            c.failures = 0
            self._start(c)

    async def restart(self, name: str, only_failed: bool) -> None:
        """Restart a running or failed connector now (a paused or stopped one stays so, as in Kafka Connect)."""
        c = self.connectors[name]
        if (only_failed and c.state is not ConnectorState.FAILED) or c.target is not ConnectorState.RUNNING:
            return
        await self._halt(c, ConnectorState.RESTARTING)
        c.target, c.failures = ConnectorState.RUNNING, 0
        if not self._stopping:
            self._start(c)

    async def delete(self, name: str) -> None:
        """Stop and forget a connector (its offsets stay in the journal, as Kafka Connect keeps them)."""
        c = self.connectors[name]
        await self._halt(c, ConnectorState.STOPPED)
        del self.connectors[name]
        self.stats.capture.pop(name, None)
        self.stats.delivery.pop(name, None)
        await self._discard_mapper(c)
        self._check_capture()

    async def replace(self, new: Connector) -> None:
        """Swap a connector's config (prepared: already validated and compiled), restarting it if it ran."""
        old = self.connectors[new.name]
        new.target = old.target
        await self._halt(old, old.target if old.target is not ConnectorState.RUNNING else ConnectorState.STOPPED)
        await self._discard_mapper(old)
        if type(old.cfg) is not type(new.cfg):   # other counters: a file sink's are not an API sink's
            self.stats.capture.pop(new.name, None)
            self.stats.delivery.pop(new.name, None)
        self.launch(new)

    async def _halt(self, c: Connector, state: ConnectorState) -> None:
        """End the connector's task (if it runs) and leave it in `state`."""
        if state in (ConnectorState.PAUSED, ConnectorState.STOPPED):
            c.target = state
        if c.retry is not None:
            c.retry.cancel()
            c.retry = None
        c.state, c.trace = state, None
        task, c.task = c.task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @staticmethod
    async def _discard_mapper(c: Connector) -> None:
        if c.mapper is not None:
            await asyncio.to_thread(c.mapper.close)
            c.mapper = None

    # -- running and failing ---------------------------------------------------------------------------

    def _start(self, c: Connector) -> None:
        if not self.role.runs(c.is_source):
            c.state = ConnectorState.UNASSIGNED
            return
        if c.retry is not None:
            c.retry.cancel()
            c.retry = None
        c.state, c.trace, c.completed = ConnectorState.RUNNING, None, False
        c.started = time.monotonic()
        task = asyncio.create_task(self._job(c), name=f"{'source' if c.is_source else 'sink'}-{c.name}")
        c.task = task
        task.add_done_callback(functools.partial(self._ended, c))

    async def _job(self, c: Connector) -> None:
        cfg = c.cfg
        if isinstance(cfg, PostgresSourceConfig | BinlogSourceConfig):
            st = self.stats.capture.setdefault(cfg.name, CaptureStats())
            await supervise_source(cfg, self.journal, self.data_dir, self.grew, self.stop_at_end, st, self.metrics,
                                   on_open=functools.partial(setattr, c, "reader"))
            return
        # The mapping compiled when the connector was prepared serves its first start; a restart
        # compiles it again (the job closes its mapper when it ends, and the catalog may have changed).
        mapper, c.mapper = c.mapper, None
        if mapper is None:
            mapper = await asyncio.to_thread(compile_mapper, cfg, self.sources())
        if isinstance(cfg, FileStreamSinkConfig):
            ds = self.stats.delivery.get(cfg.name)
            if not isinstance(ds, DeliveryStats):
                ds = self.stats.delivery[cfg.name] = DeliveryStats()
            from sinks.file import FileStreamSink

            await run_delivery(cfg.name, self.journal, FileStreamSink(Path(cfg.file)), cfg.topic_pattern(), c.wake,
                               self._finished, ds, mapper=mapper)
            return
        assert isinstance(cfg, DeliverySinkConfig) and mapper is not None   # delivery sinks require mapper.sql
        ps = self.stats.delivery.get(cfg.name)
        if not isinstance(ps, DispatchStats):
            ps = self.stats.delivery[cfg.name] = DispatchStats()
        from sinks import open_sink

        await run_dispatch(cfg, self.journal, open_sink(cfg), mapper, c.wake, self._finished, ps, self.metrics)

    def grew(self, _seq: int) -> None:
        """New events are durable in the journal (a source here, or another process's): wake the sinks."""
        for c in self.connectors.values():
            c.wake.set()

    def _finished(self) -> int | None:
        return self._end_seq

    def _ended(self, c: Connector, task: asyncio.Task[None]) -> None:
        if c.task is not task:    # ended by `_halt`, which set the state
            return
        c.task = None
        error = None if task.cancelled() else task.exception()
        if error is None:
            # Ended by itself: a source at --stop-at-end's WAL end or after initial_only's snapshot, a
            # sink that delivered everything once capture was over, or a task cancelled at shutdown.
            c.state, c.completed = ConnectorState.STOPPED, c.is_source
            self._check_capture()
            return
        c.state, c.trace = ConnectorState.FAILED, str(error) or type(error).__name__
        log.error("%s failed: %s", task.get_name(), c.trace)
        if self.stop_at_end or self._stopping:
            self.error = self.error or error
            self.request_stop()
            return
        if time.monotonic() - c.started >= _HEALTHY_S:
            c.failures = 0
        delay = min(_BACKOFF_MAX_S, _BACKOFF_START_S * 2 ** c.failures) * (0.75 + random.random() / 2)
        c.failures += 1
        log.warning("connector %s: restarting in %.0f s (failure %d in a row); the other connectors go on",
                    c.name, delay, c.failures)
        c.retry = asyncio.get_running_loop().call_later(delay, self._retry_due, c)

    def _retry_due(self, c: Connector) -> None:
        c.retry = None
        if (self.connectors.get(c.name) is c and c.state is ConnectorState.FAILED
                and c.target is ConnectorState.RUNNING and not self._stopping):
            self._start(c)

    # -- the end of the run ------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop capturing (SIGTERM, or a failure in a --stop-at-end run); `shutdown` does the rest."""
        self._stopping = True
        self._capture_over.set()

    def capture_ended(self) -> None:
        """Capture in another process is over (a sink role's --stop-at-end): the sinks finish the journal."""
        self._capture_over.set()

    def _check_capture(self) -> None:
        # A run without sources (sinks re-delivering the journal) is over at once; one that had sources
        # when every remaining one ended by itself -- deleting the last source does not end the run. A sink
        # role's capture runs in another process: `cdc.pipeline.roles.watch_journal` says when it is over.
        if self.role is Role.SINK:
            return
        sources = [c for c in self.connectors.values() if c.is_source]
        if (not self._had_sources and not sources) or (sources and all(c.completed for c in sources)):
            self._capture_over.set()

    async def wait(self) -> None:
        """Until capture is over: a stop was requested, or every source ended by itself."""
        await self._capture_over.wait()

    async def shutdown(self) -> None:
        """Stop the sources (they finish their journal appends), then let the running sinks deliver what
        the journal holds -- or, after a failure of a --stop-at-end run, cancel them."""
        self._stopping = True
        for c in self.connectors.values():
            if c.retry is not None:
                c.retry.cancel()
                c.retry = None
        sources = [c.task for c in self.connectors.values() if c.is_source and c.task is not None]
        for t in sources:
            t.cancel()
        await asyncio.gather(*sources, return_exceptions=True)
        self._end_seq = self.journal.end_seq()
        sinks = [(c, c.task) for c in self.connectors.values() if not c.is_source and c.task is not None]
        for c, task in sinks:
            if self.error is not None:
                task.cancel()
            c.wake.set()
        await asyncio.gather(*(task for _, task in sinks), return_exceptions=True)
        for c in self.connectors.values():
            await self._discard_mapper(c)

