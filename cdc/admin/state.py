"""What the admin server shows and controls: the `AdminState` protocol the runner implements.

Role: the server (`cdc.admin.server`) knows connectors only through `AdminState`: a snapshot of each
one (`ConnectorView`: name, type, masked config, Kafka Connect state, worker, failure trace), its
recent samples for the status page's charts (`History`, a bounded ring buffer this module provides),
and async control callbacks (pause, resume, stop, restart, delete, create, put config, offsets).

Failure story: a callback that refuses raises `AdminError(status, message)`; the server answers
with that status and Kafka Connect's error body ``{"error_code": status, "message": message}``. The
usual refusals have constructors: `AdminError.not_found` (404), `AdminError.conflict` (409),
`AdminError.bad_request` (400, e.g. an invalid config with every problem in the message). The server
itself checks what it can before calling (the connector exists; offsets are changed only on a
STOPPED connector, as Kafka Connect 3.6+ requires), so an implementation need not repeat it.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict

from cdc.types import ConnectorState

__all__ = [
    "AdminError",
    "AdminState",
    "ConnectorState",
    "ConnectorType",
    "ConnectorView",
    "History",
    "Offset",
    "Sample",
]

ConnectorType = Literal["source", "sink"]


# States in which a connector is where an operator wants it: running, or held by request. Kafka
# Connect only enters PAUSED and STOPPED on request, and so does the bridge.
READY_STATES = frozenset({ConnectorState.RUNNING, ConnectorState.PAUSED, ConnectorState.STOPPED})


class Offset(TypedDict):
    """One entry of Kafka Connect 3.6's offsets body: a source partition and the position in it.

    Sources use e.g. ``{"server": "erp"}`` -> ``{"lsn": 123}``; sinks ``{"journal": "main"}`` ->
    ``{"seq": 42}``. A null ``offset`` in a PATCH removes the partition's offset.
    """

    partition: dict[str, Any]
    offset: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ConnectorView:
    """One connector as the REST API shows it. `config` must already be masked
    (`cdc.config.secrets.masked` / `ConnectorModel.masked_dump`); the server masks it again anyway."""

    name: str
    type: ConnectorType
    config: Mapping[str, str]
    state: ConnectorState
    worker_id: str
    trace: str | None = None   # the failure's text while FAILED (Kafka Connect's ``trace``)
    dead_letters: int = 0      # sinks: events parked in the dead-letter store
    lag_bytes: int | None = None       # sources: change log not yet confirmed (None: unknown)
    journal_depth: int | None = None   # sinks: journal events not delivered yet (None: unknown)


class AdminError(Exception):
    """A refusal of the admin API, answered with `status` and Kafka Connect's error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @classmethod
    def not_found(cls, name: str) -> AdminError:
        return cls(404, f"Connector {name} not found")

    @classmethod
    def conflict(cls, message: str) -> AdminError:
        return cls(409, message)

    @classmethod
    def bad_request(cls, message: str) -> AdminError:
        return cls(400, message)


@dataclass(frozen=True, slots=True)
class Sample:
    """One point of a connector's charts. `lag_seconds` is None while unknown (nothing captured yet)."""

    timestamp: float          # Unix seconds
    events_per_second: float
    lag_seconds: float | None
    dead_letters: int


@dataclass
class History:
    """The last `maxlen` samples of one connector (720 at one per 5 s: the last hour).

    Written by the runner's sampling task, read by the server: both on the event loop, but the lock
    makes it safe to feed from a worker thread too. `observe` turns a cumulative event counter into
    a rate, so the runner can pass its stats as they are.
    """

    maxlen: int = 720
    _samples: deque[Sample] = field(init=False, repr=False)
    _last: tuple[float, int] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._samples = deque(maxlen=self.maxlen)

    def add(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)

    def observe(self, timestamp: float, total_events: int, lag_seconds: float | None, dead_letters: int) -> Sample:
        """Add a sample from a cumulative event count (the rate is taken since the previous call;
        the first call, or a counter that went back after a restart, gives 0 events/s)."""
        rate = 0.0
        with self._lock:
            if self._last is not None:
                t0, n0 = self._last
                if timestamp > t0 and total_events >= n0:
                    rate = (total_events - n0) / (timestamp - t0)
            self._last = (timestamp, total_events)
            lag = lag_seconds if lag_seconds is None or math.isfinite(lag_seconds) else None
            sample = Sample(timestamp, rate, lag, dead_letters)
            self._samples.append(sample)
        return sample

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def latest(self) -> Sample | None:
        with self._lock:
            return self._samples[-1] if self._samples else None

    def __len__(self) -> int:
        return len(self._samples)


class AdminState(Protocol):
    """What the runner exposes to the admin server. Reads are synchronous snapshots (cheap, called
    on every request); controls are coroutines that return once the change is accepted (Kafka
    Connect's 202: the connector may reach the new state a little later)."""

    @property
    def worker_id(self) -> str:
        """This process as Kafka Connect's ``worker_id`` (``host:port`` of the REST listener)."""
        ...

    def connectors(self) -> Sequence[ConnectorView]:
        """Every connector, in a stable order (sources first is customary)."""
        ...

    def connector(self, name: str) -> ConnectorView | None:
        """One connector, or None when there is no such connector."""
        ...

    def history(self, name: str) -> History | None:
        """The connector's chart samples (None: no samples kept for it)."""
        ...

    async def create(self, name: str, config: Mapping[str, str], initial_state: ConnectorState) -> ConnectorView:
        """Add and start (or, KIP-980, hold PAUSED/STOPPED) a connector. Raises 409 if it exists,
        400 with every problem when the config is invalid."""
        ...

    async def put_config(self, name: str, config: Mapping[str, str]) -> tuple[ConnectorView, bool]:
        """Create the connector or replace its config (restarting it); True when it was created.
        Raises 400 with every problem when the config is invalid."""
        ...

    async def pause(self, name: str) -> None:
        """Stop consuming and delivering, keep the connection/slot (Kafka Connect's PAUSED)."""
        ...

    async def resume(self, name: str) -> None:
        """Back to RUNNING from PAUSED or STOPPED."""
        ...

    async def stop(self, name: str) -> None:
        """Shut the connector down, keeping its config and offsets (Kafka Connect's STOPPED)."""
        ...

    async def restart(self, name: str, include_tasks: bool, only_failed: bool) -> None:
        """Restart the connector (with `only_failed`: only if it FAILED)."""
        ...

    async def delete(self, name: str) -> None:
        """Stop and remove the connector (its offsets are kept, as Kafka Connect keeps them)."""
        ...

    async def offsets(self, name: str) -> list[Offset]:
        """The connector's committed offsets."""
        ...

    async def alter_offsets(self, name: str, offsets: Sequence[Offset]) -> None:
        """Replace the given partitions' offsets (the connector is STOPPED: the server checked).
        Raises 400 for a partition or offset the connector does not know."""
        ...

    async def reset_offsets(self, name: str) -> None:
        """Forget every offset (next start: from the beginning, or per ``snapshot.mode``)."""
        ...

    async def signal(self, name: str, signal_type: str, data: Mapping[str, Any]) -> str:
        """Send a Debezium signal (e.g. ``execute-snapshot``) to a source connector; returns its id.
        Raises 400 when the connector reads no signals or the signal is malformed."""
        ...
