"""Values that cross the bridge's internal boundaries: change events, journal records, positions.

These are plain frozen, slotted dataclasses: they sit on the hot path (one per row change) and carry
already-serialized JSON, so that the journal and the file sink never re-encode an event.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import orjson

# A source offset as stored in the journal, like a Kafka Connect source offset: a small JSON object.
# PostgreSQL: {"lsn": <int, resume streaming after this commit LSN>, "txId": int, "ts_usec": int}
SourceOffset = dict[str, Any]
_T = TypeVar("_T")


class ConnectorState(StrEnum):
    """Kafka Connect's connector and task states (RESTARTING only in a restart's answer): what the
    runner's supervisor tracks and the admin API shows."""

    UNASSIGNED = "UNASSIGNED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    RESTARTING = "RESTARTING"


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One row change as Kafka would carry it: topic, Debezium key JSON and value JSON.

    `key` is None for a table without a primary key; `value` is None for a tombstone.
    """

    topic: str
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """A change event as stored in the journal, with its global, gap-free-per-append sequence number."""

    seq: int
    topic: str
    key: bytes | None
    value: bytes | None


def fast_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A constructor of the plain frozen slotted dataclass `cls`, about three times as fast as its `__init__`.

    Readers build one ChangeEvent and the journal one JournalRecord per event, and a frozen dataclass's
    `__init__` goes through `object.__setattr__` once per field. Instead, each object is created as an
    instance of a twin class with the same `__slots__` and a plain `__init__` (whose slot stores CPython
    runs at full speed), which then switches its own `__class__` to `cls` -- allowed because the two
    layouts are identical, and the result is an ordinary `cls` in every respect (type, equality, hash,
    repr, immutability). This holds while `cls` stays a slotted dataclass without `__post_init__`:
    checked here with an object built both ways, falling back to `cls` itself otherwise.
    """
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    if tuple(getattr(cls, "__slots__", ())) != names or hasattr(cls, "__post_init__"):
        return cls
    ns: dict[str, Any] = {"target": cls}
    exec(f"def __init__(self, {', '.join(names)}):\n"
         + "".join(f"    self.{n} = {n}\n" for n in names) + "    self.__class__ = target\n", ns)
    make: Callable[..., _T] = type(f"_Unfrozen{cls.__name__}", (), {"__slots__": names, "__init__": ns["__init__"]})
    try:
        probe_args = tuple(range(len(names)))
        probe, expected = make(*probe_args), cls(*probe_args)
        if type(probe) is not cls or (probe, repr(probe), hash(probe)) != (expected, repr(expected), hash(expected)):
            return cls
    except (TypeError, AttributeError):
        return cls
    return make


make_change_event: Callable[[str, bytes | None, bytes | None], ChangeEvent] = fast_constructor(ChangeEvent)
make_journal_record: Callable[[int, str, bytes | None, bytes | None], JournalRecord] = fast_constructor(JournalRecord)


# --- Delivery to targets (issue #5): what the delivery engine hands a sink and what it gets back. ---

@dataclass(frozen=True, slots=True)
class SinkEvent:
    """One business event on its way to a target: a mapped CloudEvent, as the engine hands it to sinks.

    `seq` is the journal seq of the change it came from (several events may share one); `id` the
    CloudEvent id, which every request carries as its idempotency key; `type` e.g. ``customer.upserted``
    or ``customer.deleted``; `subject` the business key (text); `data_json` the event's ``data`` as JSON
    bytes (a sink that sends it unchanged embeds these bytes, never re-encoding them) and `data` the same
    parsed (a dict, or None; parsed on each access: read it once per event); `raw` the whole CloudEvent.
    """

    seq: int
    id: str
    type: str
    subject: str
    data_json: bytes
    raw: bytes
    time: str = ""   # the CloudEvent's time: the source commit (RFC 3339), for commit-to-ack latency

    @property
    def data(self) -> dict[str, Any] | None:
        data = orjson.loads(self.data_json)
        return data if isinstance(data, dict) else None

    @property
    def deleted(self) -> bool:
        return self.type.endswith(".deleted")


make_sink_event: Callable[[int, str, str, str, bytes, bytes, str], SinkEvent] = fast_constructor(SinkEvent)

_DATA = b',"data":'


def parse_sink_event(seq: int, value: bytes) -> SinkEvent:
    """A mapped CloudEvent (JSON) as the sinks see it, its ``data`` JSON kept as the event's own bytes.

    The mappers write ``data`` last, after attributes that are all strings (`mappers.cloudevents`), in
    which ``,"`` cannot occur unescaped: the first ``,"data":`` is the attribute, and the bytes after it
    are the data when they are one JSON value. Any other layout is parsed whole."""
    at = value.find(_DATA)
    if at > 0 and value.endswith(b"}"):
        data_json = value[at + len(_DATA):-1]
        try:
            orjson.loads(data_json)  # more attributes after the data would fail here
            ce = orjson.loads(value[:at] + b"}")
            return make_sink_event(seq, ce["id"], ce["type"], ce["subject"], data_json, value, ce.get("time") or "")
        except orjson.JSONDecodeError:
            pass
    ce = orjson.loads(value)
    return make_sink_event(seq, ce["id"], ce["type"], ce["subject"], orjson.dumps(ce.get("data")), value,
                           ce.get("time") or "")


class OutcomeKind(enum.Enum):
    DELIVERED = "delivered"  # the target acknowledged it (an idempotent repeat counts)
    RETRY = "retry"          # not applied; may succeed later (429, 5xx, timeout, connection reset)
    REJECTED = "rejected"    # the target refused this record for good (validation): dead-letter it


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one event of a batch. `status` is the target's HTTP status (per record where the
    vendor reports one), `error` its error text or body (secrets never), `retry_after` its Retry-After in
    seconds, if it sent one."""

    kind: OutcomeKind
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None


DELIVERED = Outcome(OutcomeKind.DELIVERED)


class Sink(Protocol):
    """A delivery target (design §9). The engine batches events that share a `route` (at most
    `max_batch_records` and `batch_limit(route)` records and `max_batch_bytes` bytes of `raw`, never two
    of one subject), keeps one batch in flight per key lane, rate-limits, retries and dead-letters per
    `Outcome`.

    `deliver` returns one Outcome per event, in order. It raises `Transient` when the whole batch failed
    in a way worth retrying (connection refused, timeout, a 5xx for a batch request: the engine retries
    every event), `Permanent` when no record can be delivered until an operator acts (bad credentials,
    an unknown object type): the sink stops.
    """

    name: str
    max_batch_records: int
    max_batch_bytes: int

    def route(self, event: SinkEvent) -> str:
        """The endpoint this event goes to (e.g. ``upsert Account``, ``delete Account``): events of one
        batch share it, and each route has its own circuit breaker."""
        ...

    def batch_limit(self, route: str) -> int:
        """The most records one request to `route` takes (1 for per-record endpoints)."""
        ...

    async def open(self) -> None: ...

    async def deliver(self, batch: Sequence[SinkEvent]) -> Sequence[Outcome]: ...

    async def close(self) -> None: ...
