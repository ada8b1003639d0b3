"""What `cdc run --http` shows and controls: the supervisor's connectors as the admin server's `AdminState`.

Role: `RunState` tells the admin server (`cdc.admin`) each connector's type, masked config, state (from the
`Supervisor`: RUNNING, PAUSED, STOPPED, FAILED with the error as Kafka Connect's ``trace``), lag and
dead-letter count; its stored offsets (a source's offset, a sink's journal cursor); and a history of
throughput and lag that `sample` (called every few seconds by the runner) records, while also
publishing the gauges and counters the pipeline does not update itself. Control calls (create, config,
pause, resume, stop, restart, delete, offsets) go to the supervisor, like a Kafka Connect worker in
standalone mode: a connector created or changed over the API lasts until `cdc run` ends -- the
connector files stay what the next start reads.

Failure story: an invalid config or mapping is refused with 400 and every problem (the running
connector, if any, is left as it was); offsets that do not fit the connector are refused with 400 and
say what fits. Offsets change only while the connector is STOPPED (the server checks), so its task is
not running while the journal is written.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdc.admin.metrics import Metrics
from cdc.admin.state import AdminError, ConnectorView, History, Offset
from cdc.config import BinlogSourceConfig, PostgresSourceConfig
from cdc.config.loader import validate_connector
from cdc.errors import CdcError, Transient
from cdc.journal.deadletters import DeadLetterFilter
from cdc.journal.sqlite import JournalReader, SqliteJournal
from cdc.pipeline.dispatch import DispatchStats
from cdc.pipeline.sourcelag import SourceLag, source_lag
from cdc.pipeline.supervisor import Connector, Supervisor
from cdc.readers.base import IncrementalProgress
from cdc.types import ConnectorState, SourceOffset

__all__ = ["RunState"]


@dataclass
class RunState:
    """The admin view of one `cdc run` (implements `cdc.admin.state.AdminState`)."""

    supervisor: Supervisor
    journal: Path
    worker_id: str
    metrics: Metrics
    _histories: dict[str, History] = field(default_factory=dict)
    _dead: dict[str, int] = field(default_factory=dict)
    _depth: dict[str, int] = field(default_factory=dict)
    _lag: dict[str, SourceLag] = field(default_factory=dict)
    _counted: dict[str, int] = field(default_factory=dict)

    # -- views -----------------------------------------------------------------------------------------

    def _view(self, c: Connector) -> ConnectorView:
        config = {k: str(v) for k, v in c.cfg.masked_dump().items() if v is not None}
        config["name"] = c.name
        lag = self._lag.get(c.name)
        return ConnectorView(c.name, "source" if c.is_source else "sink", config, c.state, self.worker_id,
                             c.trace, self._dead.get(c.name, 0), lag.lag_bytes if lag is not None else None,
                             self._depth.get(c.name))

    def _known(self, name: str) -> Connector:
        c = self.supervisor.get(name)
        if c is None:
            raise AdminError.not_found(name)
        return c

    def connectors(self) -> Sequence[ConnectorView]:
        return [self._view(c) for c in self.supervisor.connectors.values()]

    def connector(self, name: str) -> ConnectorView | None:
        c = self.supervisor.get(name)
        return self._view(c) if c is not None else None

    def history(self, name: str) -> History | None:
        if self.supervisor.get(name) is None:
            return None
        return self._histories.setdefault(name, History())

    # -- sampling --------------------------------------------------------------------------------------

    async def sample(self, reader: JournalReader) -> None:
        """Record a history sample per connector and publish the sampled metrics (every few seconds)."""
        sup = self.supervisor
        offsets = await asyncio.to_thread(reader.source_offsets)
        sources = sup.sources()
        lags = await asyncio.gather(*(source_lag(cfg, offsets.get(cfg.name, (None, 0))[0]) for cfg in sources))
        await asyncio.to_thread(self._sample, reader, dict(zip([cfg.name for cfg in sources], lags, strict=True)))

    def _sample(self, reader: JournalReader, lags: dict[str, SourceLag]) -> None:
        now = time.time()
        end = reader.end_seq()
        for name, c in list(self.supervisor.stats.capture.items()):
            ts_us = c.last_commit_us
            seconds = max(0.0, now - ts_us / 1e6) if ts_us else None
            lag = self._lag[name] = lags.get(name, SourceLag(None))
            self.metrics.source_lag(name, seconds=seconds, lag_bytes=lag.lag_bytes)
            self.metrics.slot_health(name, lag.wal_status, lag.safe_wal_size, lag.retained_bytes)
            self._histories.setdefault(name, History()).observe(now, c.events, seconds, 0)
            connector = self.supervisor.get(name)
            source = connector.reader if connector is not None else None
            if isinstance(source, IncrementalProgress):
                self.metrics.snapshot_progress(name, source.incremental_progress(), len(source.incremental_pending))
        for name, d in list(self.supervisor.stats.delivery.items()):
            dead = self._dead[name] = reader.count_dead_letters(DeadLetterFilter(connector=name))
            depth = self._depth[name] = max(0, end - d.cursor)
            self.metrics.dead_letters(name, dead)
            self.metrics.journal_depth(name, depth)
            self.metrics.sink_delivered(name, self._delta(name, d.delivered))
            if isinstance(d, DispatchStats):
                self.metrics.sink_retries(name, self._delta(f"{name}\0retries", d.retried))
            self._histories.setdefault(name, History()).observe(now, d.delivered, None, dead)

    def _delta(self, key: str, total: int) -> int:
        """The growth of a cumulative count since the last sample (0 if it went back: a replaced connector)."""
        before, self._counted[key] = self._counted.get(key, 0), total
        return max(0, total - before)

    # -- control -----------------------------------------------------------------------------------------

    async def _prepare(self, name: str, config: Mapping[str, str], target: ConnectorState) -> Connector:
        try:
            cfg = validate_connector({**config, "name": name})
            return await self.supervisor.prepare(cfg, target)
        except CdcError as e:
            raise AdminError.bad_request(str(e)) from e

    async def create(self, name: str, config: Mapping[str, str], initial_state: ConnectorState) -> ConnectorView:
        c = await self._prepare(name, config, initial_state)
        self.supervisor.launch(c)
        return self._view(c)

    async def put_config(self, name: str, config: Mapping[str, str]) -> tuple[ConnectorView, bool]:
        old = self.supervisor.get(name)
        c = await self._prepare(name, config, old.target if old is not None else ConnectorState.RUNNING)
        if old is None:
            self.supervisor.launch(c)
            return self._view(c), True
        await self.supervisor.replace(c)
        self._counted.pop(name, None)
        return self._view(c), False

    async def pause(self, name: str) -> None:
        await self.supervisor.pause(self._known(name).name)

    async def resume(self, name: str) -> None:
        await self.supervisor.resume(self._known(name).name)

    async def stop(self, name: str) -> None:
        await self.supervisor.stop(self._known(name).name)

    async def restart(self, name: str, include_tasks: bool, only_failed: bool) -> None:
        # One task per connector: the connector and its task restart together.
        await self.supervisor.restart(self._known(name).name, only_failed)

    async def delete(self, name: str) -> None:
        await self.supervisor.delete(self._known(name).name)
        for table in (self._histories, self._dead, self._depth, self._lag):
            table.pop(name, None)

    async def signal(self, name: str, signal_type: str, data: Mapping[str, Any]) -> str:
        c = self._known(name)
        if not isinstance(c.cfg, PostgresSourceConfig | BinlogSourceConfig):
            raise AdminError.bad_request(f"Connector {name} is not a source: signals (incremental snapshots) "
                                         "are read by PostgreSQL, MySQL and MariaDB sources")
        from cdc.signals import send_signal

        try:
            return await send_signal(c.cfg, signal_type, dict(data))
        except Transient as e:
            raise AdminError(503, str(e)) from e
        except CdcError as e:
            raise AdminError.bad_request(str(e)) from e

    # -- offsets -------------------------------------------------------------------------------------------

    def _partition(self, c: Connector) -> dict[str, str]:
        return {"server": c.name} if c.is_source else {"journal": str(self.journal)}

    async def offsets(self, name: str) -> list[Offset]:
        c = self._known(name)

        def read() -> list[Offset]:
            with JournalReader(self.journal) as reader:
                if not c.is_source:
                    return [{"partition": self._partition(c), "offset": {"seq": reader.cursor(name)}}]
                stored = reader.source_offsets().get(name)
            return [{"partition": self._partition(c), "offset": stored[0]}] if stored is not None else []

        return await asyncio.to_thread(read)

    async def alter_offsets(self, name: str, offsets: Sequence[Offset]) -> None:
        c = self._known(name)
        changes = [_checked(c, self._partition(c), o) for o in offsets]
        await asyncio.to_thread(self._write_offsets, c, changes)

    async def reset_offsets(self, name: str) -> None:
        c = self._known(name)
        await asyncio.to_thread(self._write_offsets, c, [None])

    def _write_offsets(self, c: Connector, changes: Sequence[SourceOffset | int | None]) -> None:
        """Store each change: a source offset (None: forget it), or a sink cursor (None: from the start)."""
        if c.is_source:
            with SqliteJournal(self.journal) as journal:
                for change in changes:
                    if change is None:
                        journal.delete_source_offset(c.name)
                    else:
                        assert isinstance(change, dict)
                        journal.set_source_offset(c.name, change)
            return
        with JournalReader(self.journal) as reader:
            for change in changes:
                reader.move_cursor(c.name, change if isinstance(change, int) else 0)


def _checked(c: Connector, partition: dict[str, str], entry: Offset) -> SourceOffset | int | None:
    """One offsets entry of a PATCH, checked against the connector: what to store, or a 400 saying what fits."""
    if entry["partition"] != partition:
        raise AdminError.bad_request(f"Connector {c.name} has one partition, {partition}; not {entry['partition']}")
    offset: Any = entry["offset"]
    if offset is None:
        return None
    if not c.is_source:
        seq = offset.get("seq")
        if set(offset) != {"seq"} or not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise AdminError.bad_request(f"A sink's offset is {{\"seq\": N}} with N >= 0, the journal seq it has "
                                         f"delivered up to; not {offset}")
        return seq
    if isinstance(c.cfg, PostgresSourceConfig):
        lsn = offset.get("lsn")
        if not isinstance(lsn, int) or isinstance(lsn, bool) or lsn < 0:
            raise AdminError.bad_request(f"A PostgreSQL source's offset needs \"lsn\" (an integer WAL position), "
                                         f"as GET .../offsets shows; not {offset}")
        return dict(offset)
    assert isinstance(c.cfg, BinlogSourceConfig)
    if not (isinstance(offset.get("file"), str) and isinstance(offset.get("pos"), int)) and not offset.get("gtids"):
        raise AdminError.bad_request(f"A MySQL/MariaDB source's offset needs \"file\" and \"pos\" (a binlog "
                                     f"position) or \"gtids\", as GET .../offsets shows; not {offset}")
    return dict(offset)
