"""Prometheus metrics of the bridge: what the pipeline reports, in a registry of its own.

Role: `Metrics` owns one `CollectorRegistry` (never prometheus-client's global one, so two runners in
one process -- tests, benchmarks -- do not share counters, and nothing else a library registers
globally leaks into our exposition). The pipeline calls its small typed methods with counts per batch
(`source_events(connector, table, op, n)`, `sink_delivered(connector, n)`, ...), never touching a
prometheus object; `render()` gives the text exposition format for ``GET /metrics``. Every metric
carries a ``connector`` label.

Cost: the labelled child of each series is looked up once and cached in a plain dict, so a call on the
hot path is a dict lookup and one locked add inside prometheus-client -- negligible when called per
batch. `forget(connector)` drops a deleted connector's series.

Failure story: recording a metric cannot fail the pipeline: values are plain numbers, and a value
the caller does not know (a lag before the first event, a slot without a WAL limit) is passed as
None, which removes the series rather than publishing a made-up number.

The metrics (names and meanings are also listed in the README):

- ``cdc_source_lag_seconds{connector}``: now minus the commit time of the last event captured.
- ``cdc_source_lag_bytes{connector}``: change log not yet confirmed by the bridge. PostgreSQL: the
  server's current WAL LSN minus the slot's confirmed flush LSN; MySQL: binlog end minus position.
- ``cdc_slot_wal_status{connector,status}``: 1 for the slot's current ``wal_status`` (reserved,
  extended, unreserved, lost), 0 for the others.
- ``cdc_slot_safe_wal_size_bytes{connector}``: bytes of WAL that can still be written before the slot
  is lost (``pg_replication_slots.safe_wal_size``; absent when ``max_slot_wal_keep_size`` is -1).
- ``cdc_slot_retained_wal_bytes{connector}``: WAL the slot keeps on the server (current WAL LSN minus
  the slot's ``restart_lsn``): what `slot.retained.wal.warning.bytes` warns about.
- ``cdc_source_events_total{connector,table,op}``: change events journaled, by table and operation.
- ``cdc_incremental_snapshot_rows{connector,table}``: rows an ad-hoc incremental snapshot has read of
  the table so far; ``cdc_incremental_snapshot_rows_estimate{connector,table}`` the planner's estimate of
  the table's rows; ``cdc_incremental_snapshot_pending_tables{connector}`` tables it still has to read.
- ``cdc_sink_journal_depth_events{connector}``: journal events the sink has not delivered yet.
- ``cdc_sink_request_seconds{connector,route}``: histogram of sink request durations.
- ``cdc_sink_retries_total{connector}``: events sent again after a retryable failure.
- ``cdc_sink_delivered_total{connector}``: events the target acknowledged.
- ``cdc_sink_dead_letters{connector}``: events currently parked in the dead-letter store.
- ``cdc_sink_circuit_state{connector,route}``: 0 closed, 1 open, 2 half-open.
- ``cdc_sink_commit_to_ack_seconds{connector}``: histogram of source commit -> target acknowledgement.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from enum import IntEnum
from itertools import accumulate
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["CONTENT_TYPE", "WAL_STATUSES", "CircuitState", "Metrics"]

# The classic text format, which every Prometheus (and scraper) reads. Our names and labels are all
# legacy-valid, so `generate_latest`'s output is that format whatever version prometheus-client is;
# its own CONTENT_TYPE_LATEST says 1.0.0 from 0.22 on, which older scrapers do not know.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# pg_replication_slots.wal_status values (PostgreSQL 13+). Every one is published (0 or 1), so that a
# query like `cdc_slot_wal_status{status="lost"} == 1` needs no `absent()` juggling.
WAL_STATUSES: Final = ("reserved", "extended", "unreserved", "lost")

# Sink requests: a fast API answers in milliseconds, a slow batch endpoint in tens of seconds.
REQUEST_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Commit to acknowledgement: sub-second when caught up, hours after an outage or a replay.
COMMIT_TO_ACK_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
                                 14400.0)


class CircuitState(IntEnum):
    """The value of ``cdc_sink_circuit_state`` (same numbers as `cdc.pipeline.breaker.BreakerState`)."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class _WeightedHistogram(Collector):
    """A histogram that takes (value, count) pairs: a batch of a thousand events acknowledged together is a
    handful of observations, where prometheus-client's Histogram takes one call (and one lock) per event.
    Rendered like prometheus-client's own, without the ``_created`` sample. The first label is the connector."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self._labels = list(labels)
        self._bounds = list(buckets)
        self._les = [*map(floatToGoString, buckets), "+Inf"]
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}  # -> (counts per bucket, [sum])

    def observe(self, labels: tuple[str, ...], pairs: Iterable[tuple[float, int]]) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = ([0] * len(self._les), [0.0])
        counts, total = series
        for value, n in pairs:
            counts[bisect_left(self._bounds, value)] += n  # the first bucket whose bound is >= value
            total[0] += value * n

    def forget(self, connector: str) -> None:
        for labels in [k for k in self._series if k[0] == connector]:
            del self._series[labels]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self._labels)
        for labels, (counts, total) in list(self._series.items()):
            family.add_metric(list(labels), list(zip(self._les, accumulate(counts), strict=True)), total[0])
        yield family


class Metrics:
    """The bridge's metrics; call sites pass plain numbers, per batch rather than per event."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self._lag_seconds = Gauge("cdc_source_lag_seconds", "Seconds between now and the commit time of the "
                                  "last change captured", ["connector"], registry=r)
        self._lag_bytes = Gauge("cdc_source_lag_bytes", "Change-log bytes not yet confirmed (PostgreSQL: current "
                                "WAL LSN - confirmed flush LSN; MySQL: binlog end - position)", ["connector"],
                                registry=r)
        self._wal_status = Gauge("cdc_slot_wal_status", "1 for the replication slot's current wal_status, "
                                 "0 for the others", ["connector", "status"], registry=r)
        self._safe_wal = Gauge("cdc_slot_safe_wal_size_bytes", "WAL bytes that can be written before the "
                               "slot is lost", ["connector"], registry=r)
        self._retained = Gauge("cdc_slot_retained_wal_bytes", "WAL the replication slot keeps on the server "
                               "(current WAL LSN - restart_lsn)", ["connector"], registry=r)
        self._events = Counter("cdc_source_events_total", "Change events journaled", ["connector", "table", "op"],
                               registry=r)
        self._depth = Gauge("cdc_sink_journal_depth_events", "Journal events the sink has not delivered yet",
                            ["connector"], registry=r)
        self._request = _WeightedHistogram("cdc_sink_request_seconds", "Duration of sink requests",
                                           ["connector", "route"], REQUEST_BUCKETS)
        r.register(self._request)
        self._retries = Counter("cdc_sink_retries_total", "Events sent again after a retryable failure",
                                ["connector"], registry=r)
        self._delivered = Counter("cdc_sink_delivered_total", "Events the target acknowledged", ["connector"],
                                  registry=r)
        self._dead = Gauge("cdc_sink_dead_letters", "Events parked in the dead-letter store", ["connector"],
                           registry=r)
        self._circuit = Gauge("cdc_sink_circuit_state", "Circuit breaker per route: 0 closed, 1 open, "
                              "2 half-open", ["connector", "route"], registry=r)
        self._commit_to_ack = _WeightedHistogram("cdc_sink_commit_to_ack_seconds", "Seconds from the source "
                                                 "commit to the target's acknowledgement", ["connector"],
                                                 COMMIT_TO_ACK_BUCKETS)
        r.register(self._commit_to_ack)
        self._snap_rows = Gauge("cdc_incremental_snapshot_rows", "Rows an incremental snapshot has read of the "
                                "table", ["connector", "table"], registry=r)
        self._snap_estimate = Gauge("cdc_incremental_snapshot_rows_estimate", "The planner's estimate of the rows "
                                    "of a table being snapshotted", ["connector", "table"], registry=r)
        self._snap_pending = Gauge("cdc_incremental_snapshot_pending_tables", "Tables an incremental snapshot "
                                   "still has to read", ["connector"], registry=r)
        # (metric, label values) -> child: prometheus-client's labels() takes a lock and validates
        # the values on every call; the cache makes a repeat call one dict lookup.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _drop(self, metric: Any, *labels: str) -> None:
        if self._children.pop((metric, labels), None) is not None:
            metric.remove(*labels)

    # -- sources --

    def source_lag(self, connector: str, seconds: float | None = None, lag_bytes: int | None = None) -> None:
        """The source's lag: seconds behind its last commit, and change-log bytes not yet confirmed.

        None leaves that series out (unknown, e.g. before the first event), rather than showing 0.
        """
        for metric, value in ((self._lag_seconds, seconds), (self._lag_bytes, lag_bytes)):
            if value is None:
                self._drop(metric, connector)
            else:
                self._child(metric, connector).set(value)

    def slot_health(self, connector: str, wal_status: str | None, safe_wal_size: int | None,
                    retained_bytes: int | None = None) -> None:
        """The replication slot's ``wal_status``, ``safe_wal_size`` and retained WAL (None: unknown / no limit)."""
        if retained_bytes is None:
            self._drop(self._retained, connector)
        else:
            self._child(self._retained, connector).set(retained_bytes)
        statuses = WAL_STATUSES if wal_status in (None, *WAL_STATUSES) else (*WAL_STATUSES, wal_status)
        for status in statuses:
            if wal_status is None:
                self._drop(self._wal_status, connector, status)
            else:
                self._child(self._wal_status, connector, status).set(1 if status == wal_status else 0)
        if safe_wal_size is None:
            self._drop(self._safe_wal, connector)
        else:
            self._child(self._safe_wal, connector).set(safe_wal_size)

    def source_events(self, connector: str, table: str, op: str, n: int = 1) -> None:
        """`n` change events of `table` (``schema.table``) with operation `op` (c, u, d, r, t) journaled."""
        if n:
            self._child(self._events, connector, table, op).inc(n)

    def source_event_counts(self, connector: str, counts: Mapping[tuple[str, str], int]) -> None:
        """A batch's events counted by (table, op): one call per journal append."""
        for (table, op), n in counts.items():
            self.source_events(connector, table, op, n)

    def snapshot_progress(self, connector: str, tables: Mapping[str, tuple[int, int | None]], pending: int) -> None:
        """Incremental snapshots: per table, rows read and the estimate (None: unknown); tables to go."""
        for table, (rows, estimate) in tables.items():
            self._child(self._snap_rows, connector, table).set(rows)
            if estimate is None:
                self._drop(self._snap_estimate, connector, table)
            else:
                self._child(self._snap_estimate, connector, table).set(estimate)
        self._child(self._snap_pending, connector).set(pending)

    # -- sinks --

    def journal_depth(self, connector: str, events: int) -> None:
        """Events in the journal after the sink's cursor (not delivered or dead-lettered yet)."""
        self._child(self._depth, connector).set(events)

    def sink_request(self, connector: str, route: str, seconds: float) -> None:
        """One request to the target took `seconds` (`route`: the endpoint, e.g. ``POST /orders``)."""
        self._request.observe((connector, route), ((seconds, 1),))

    def sink_retries(self, connector: str, n: int = 1) -> None:
        """`n` events are being sent again after a retryable failure."""
        if n:
            self._child(self._retries, connector).inc(n)

    def sink_delivered(self, connector: str, n: int = 1) -> None:
        """`n` events were acknowledged by the target."""
        if n:
            self._child(self._delivered, connector).inc(n)

    def dead_letters(self, connector: str, depth: int) -> None:
        """The dead-letter store holds `depth` events of this sink (pending ones, not dropped ones)."""
        self._child(self._dead, connector).set(depth)

    def circuit_state(self, connector: str, route: str, state: CircuitState | int) -> None:
        """The circuit breaker of `route` is now closed (0), open (1) or half-open (2)."""
        self._child(self._circuit, connector, route).set(int(state))

    def commit_to_ack(self, connector: str, seconds: Iterable[tuple[float, int]]) -> None:
        """Commit-to-acknowledgement latencies of the events of one acknowledged batch, as (seconds, number of
        events) pairs: the events of one source transaction share their commit time."""
        self._commit_to_ack.observe((connector,), seconds)

    # -- lifecycle and output --

    def forget(self, connector: str) -> None:
        """Remove every series of a connector (it was deleted): a dashboard must not show it frozen."""
        for metric, labels in [k for k in self._children if k[1][0] == connector]:
            self._drop(metric, *labels)
        self._request.forget(connector)
        self._commit_to_ack.forget(connector)

    def render(self) -> bytes:
        """The registry in Prometheus' text exposition format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
