"""What `cdc run --http` shows: the runner's connectors as the admin server's `AdminState`, and metrics.

Role: `RunState` tells the admin server (`cdc.admin`) each connector's type, masked config, state
(RUNNING while its task runs, FAILED with the error as Kafka Connect's ``trace``, STOPPED once a
`--stop-at-end` run finished it) and dead-letter count; its stored offsets (a source's offset, a sink's
journal cursor); and a history of throughput and lag that `sample` (called every few seconds by the
runner) records, while also publishing the gauges and counters the pipeline does not update itself.

Changing connectors at run time (create, config, pause, resume, stop, restart, delete, offsets) is not
built yet: those calls answer 501 and say to edit the connector files and restart `cdc run` (or use
`cdc offsets` / `cdc replay` with the bridge stopped).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cdc.admin.metrics import Metrics
from cdc.admin.state import AdminError, ConnectorState, ConnectorView, History, Offset
from cdc.config import ConnectorConfig, SinkModel
from cdc.journal.deadletters import DeadLetterFilter
from cdc.journal.sqlite import JournalReader
from cdc.pipeline.capture import CaptureStats
from cdc.pipeline.delivery import DeliveryStats
from cdc.pipeline.dispatch import DispatchStats

__all__ = ["RunState"]

_NOT_YET = ("is not supported by this bridge yet: edit the connector files and restart `cdc run` "
            "(offsets: stop the bridge and use `cdc offsets set` or `cdc replay`)")


@dataclass
class RunState:
    """The admin view of one `cdc run` (implements `cdc.admin.state.AdminState`)."""

    configs: Sequence[ConnectorConfig]
    journal: Path
    worker_id: str
    metrics: Metrics
    capture: Mapping[str, CaptureStats] = field(default_factory=dict)
    delivery: Mapping[str, DeliveryStats | DispatchStats] = field(default_factory=dict)
    states: dict[str, tuple[ConnectorState, str | None]] = field(default_factory=dict)
    _histories: dict[str, History] = field(default_factory=dict)
    _dead: dict[str, int] = field(default_factory=dict)
    _counted: dict[str, int] = field(default_factory=dict)

    def watch(self, name: str, task: asyncio.Task[None]) -> None:
        """The connector runs as `task`: RUNNING now; FAILED (with its error) or STOPPED when it ends."""
        self.states[name] = (ConnectorState.RUNNING, None)

        def ended(t: asyncio.Task[None]) -> None:
            error = None if t.cancelled() else t.exception()
            self.states[name] = ((ConnectorState.FAILED, str(error)) if error is not None
                                 else (ConnectorState.STOPPED, None))

        task.add_done_callback(ended)

    def _view(self, cfg: ConnectorConfig) -> ConnectorView:
        state, trace = self.states.get(cfg.name, (ConnectorState.UNASSIGNED, None))
        config = {k: str(v) for k, v in cfg.masked_dump().items() if v is not None}
        config["name"] = cfg.name
        return ConnectorView(cfg.name, "sink" if isinstance(cfg, SinkModel) else "source", config, state,
                             self.worker_id, trace, self._dead.get(cfg.name, 0))

    def connectors(self) -> Sequence[ConnectorView]:
        return [self._view(c) for c in self.configs]

    def connector(self, name: str) -> ConnectorView | None:
        return next((self._view(c) for c in self.configs if c.name == name), None)

    def history(self, name: str) -> History | None:
        if self.connector(name) is None:
            return None
        return self._histories.setdefault(name, History())

    async def offsets(self, name: str) -> list[Offset]:
        with JournalReader(self.journal) as reader:
            if name in self.delivery:
                return [{"partition": {"journal": str(self.journal)}, "offset": {"seq": reader.cursor(name)}}]
            stored = reader.source_offsets().get(name)
        return [{"partition": {"server": name}, "offset": stored[0]}] if stored is not None else []

    def sample(self, reader: JournalReader) -> None:
        """Record a history sample per connector and publish the sampled metrics (every few seconds)."""
        now = time.time()
        end = reader.end_seq()
        for name, c in self.capture.items():
            ts_us = c.last_commit_us
            lag = max(0.0, now - ts_us / 1e6) if ts_us else None
            self.metrics.source_lag(name, seconds=lag)
            self.metrics.source_events(name, "*", "*", c.events - self._counted.get(name, 0))
            self._counted[name] = c.events
            self._histories.setdefault(name, History()).observe(now, c.events, lag, 0)
        for name, d in self.delivery.items():
            dead = reader.count_dead_letters(DeadLetterFilter(connector=name))
            self._dead[name] = dead
            self.metrics.dead_letters(name, dead)
            self.metrics.journal_depth(name, max(0, end - d.cursor))
            self.metrics.sink_delivered(name, d.delivered - self._counted.get(name, 0))
            self._counted[name] = d.delivered
            if isinstance(d, DispatchStats):
                self.metrics.sink_retries(name, d.retried - self._counted.get(f"{name}\0retries", 0))
                self._counted[f"{name}\0retries"] = d.retried
            self._histories.setdefault(name, History()).observe(now, d.delivered, None, dead)

    async def create(self, name: str, config: Mapping[str, str], initial_state: ConnectorState) -> ConnectorView:
        raise AdminError(501, f"creating connector {name!r} {_NOT_YET}")

    async def put_config(self, name: str, config: Mapping[str, str]) -> tuple[ConnectorView, bool]:
        raise AdminError(501, f"changing connector {name!r} {_NOT_YET}")

    async def pause(self, name: str) -> None:
        raise AdminError(501, f"pausing {name!r} {_NOT_YET}")

    async def resume(self, name: str) -> None:
        raise AdminError(501, f"resuming {name!r} {_NOT_YET}")

    async def stop(self, name: str) -> None:
        raise AdminError(501, f"stopping {name!r} {_NOT_YET}")

    async def restart(self, name: str, include_tasks: bool, only_failed: bool) -> None:
        raise AdminError(501, f"restarting {name!r} {_NOT_YET}")

    async def delete(self, name: str) -> None:
        raise AdminError(501, f"deleting {name!r} {_NOT_YET}")

    async def alter_offsets(self, name: str, offsets: Sequence[Offset]) -> None:
        raise AdminError(501, f"altering the offsets of {name!r} {_NOT_YET}")

    async def reset_offsets(self, name: str) -> None:
        raise AdminError(501, f"resetting the offsets of {name!r} {_NOT_YET}")
