"""`cdc.admin.metrics.Metrics` rendered and parsed back, and `cdc.admin.state.History`'s ring buffer."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from cdc.admin.metrics import COMMIT_TO_ACK_BUCKETS, CONTENT_TYPE, CircuitState, Metrics
from cdc.admin.state import History, Sample

ALL_METRICS = (
    "cdc_source_lag_seconds", "cdc_source_lag_bytes", "cdc_slot_wal_status", "cdc_slot_safe_wal_size_bytes",
    "cdc_slot_retained_wal_bytes",
    "cdc_source_events_total", "cdc_sink_journal_depth_events", "cdc_sink_request_seconds",
    "cdc_sink_retries_total", "cdc_sink_delivered_total", "cdc_sink_dead_letters", "cdc_sink_circuit_state",
    "cdc_sink_commit_to_ack_seconds",
)


def samples(m: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the rendered text, keyed by (sample name, labels)."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_every_metric_is_declared_before_use() -> None:
    text = Metrics().render().decode()
    for name in ALL_METRICS:
        assert f"# HELP {name} " in text
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_source_events_add_up_per_table_and_op() -> None:
    m = Metrics()
    m.source_events("erp", "public.orders", "c", 3)
    m.source_events("erp", "public.orders", "c", 2)
    m.source_event_counts("erp", {("public.orders", "u"): 4, ("public.lines", "c"): 10})
    m.source_events("crm", "public.orders", "c", 1)
    m.source_events("erp", "public.orders", "d", 0)   # nothing: no series
    s = samples(m)
    assert s[key("cdc_source_events_total", connector="erp", table="public.orders", op="c")] == 5
    assert s[key("cdc_source_events_total", connector="erp", table="public.orders", op="u")] == 4
    assert s[key("cdc_source_events_total", connector="erp", table="public.lines", op="c")] == 10
    assert s[key("cdc_source_events_total", connector="crm", table="public.orders", op="c")] == 1
    assert key("cdc_source_events_total", connector="erp", table="public.orders", op="d") not in s


def test_lag_gauges_and_unknown_values_drop_the_series() -> None:
    m = Metrics()
    m.source_lag("erp", seconds=2.5, lag_bytes=4096)
    s = samples(m)
    assert s[key("cdc_source_lag_seconds", connector="erp")] == 2.5
    assert s[key("cdc_source_lag_bytes", connector="erp")] == 4096
    m.source_lag("erp", seconds=None, lag_bytes=100)
    s = samples(m)
    assert key("cdc_source_lag_seconds", connector="erp") not in s
    assert s[key("cdc_source_lag_bytes", connector="erp")] == 100


def test_slot_health_is_one_hot_over_wal_statuses() -> None:
    m = Metrics()
    m.slot_health("erp", "reserved", 1 << 30, 5 << 20)
    s = samples(m)
    assert s[key("cdc_slot_retained_wal_bytes", connector="erp")] == 5 << 20
    assert s[key("cdc_slot_wal_status", connector="erp", status="reserved")] == 1
    for other in ("extended", "unreserved", "lost"):
        assert s[key("cdc_slot_wal_status", connector="erp", status=other)] == 0
    assert s[key("cdc_slot_safe_wal_size_bytes", connector="erp")] == 1 << 30
    m.slot_health("erp", "unreserved", None)   # max_slot_wal_keep_size = -1: no safe size
    s = samples(m)
    assert s[key("cdc_slot_wal_status", connector="erp", status="unreserved")] == 1
    assert s[key("cdc_slot_wal_status", connector="erp", status="reserved")] == 0
    assert key("cdc_slot_safe_wal_size_bytes", connector="erp") not in s
    assert key("cdc_slot_retained_wal_bytes", connector="erp") not in s
    m.slot_health("erp", None, None)
    assert not any(name == "cdc_slot_wal_status" for name, _ in samples(m))


def test_sink_counters_gauges_and_histograms() -> None:
    m = Metrics()
    m.journal_depth("crm", 120)
    m.sink_request("crm", "POST /orders", 0.02)
    m.sink_request("crm", "POST /orders", 0.3)
    m.sink_request("crm", "PATCH /accounts", 7.0)
    m.sink_retries("crm", 3)
    m.sink_retries("crm")
    m.sink_delivered("crm", 500)
    m.sink_delivered("crm", 20)
    m.dead_letters("crm", 2)
    m.circuit_state("crm", "POST /orders", CircuitState.OPEN)
    m.circuit_state("crm", "PATCH /accounts", 2)
    m.commit_to_ack("crm", [(0.2, 1), (0.4, 1), (120.0, 1)])
    s = samples(m)
    assert s[key("cdc_sink_journal_depth_events", connector="crm")] == 120
    assert s[key("cdc_sink_request_seconds_count", connector="crm", route="POST /orders")] == 2
    assert s[key("cdc_sink_request_seconds_sum", connector="crm", route="POST /orders")] == pytest.approx(0.32)
    assert s[key("cdc_sink_request_seconds_bucket", connector="crm", route="POST /orders", le="0.025")] == 1
    assert s[key("cdc_sink_request_seconds_bucket", connector="crm", route="PATCH /accounts", le="+Inf")] == 1
    assert s[key("cdc_sink_retries_total", connector="crm")] == 4
    assert s[key("cdc_sink_delivered_total", connector="crm")] == 520
    assert s[key("cdc_sink_dead_letters", connector="crm")] == 2
    assert s[key("cdc_sink_circuit_state", connector="crm", route="POST /orders")] == 1
    assert s[key("cdc_sink_circuit_state", connector="crm", route="PATCH /accounts")] == 2
    assert s[key("cdc_sink_commit_to_ack_seconds_count", connector="crm")] == 3
    assert s[key("cdc_sink_commit_to_ack_seconds_bucket", connector="crm", le="0.5")] == 2
    assert s[key("cdc_sink_commit_to_ack_seconds_sum", connector="crm")] == pytest.approx(120.6)


def test_forget_removes_only_that_connector() -> None:
    m = Metrics()
    for c in ("a", "b"):
        m.source_events(c, "t", "c", 1)
        m.sink_delivered(c, 1)
        m.sink_request(c, "POST /x", 0.1)
        m.slot_health(c, "reserved", 10)
        m.commit_to_ack(c, [(0.3, 2)])
    m.forget("a")
    connectors = {dict(labels).get("connector") for _, labels in samples(m)}
    assert connectors == {"b"}
    m.sink_delivered("a", 5)   # a connector created again under the same name starts from zero
    assert samples(m)[key("cdc_sink_delivered_total", connector="a")] == 5


def test_commit_to_ack_pairs_render_as_prometheus_client_would_render_each_event() -> None:
    pairs = [(0.0, 3), (0.05, 2), (0.07, 1), (1.0, 4), (2.4, 1), (99999.0, 2), (0.05, 5)]
    m = Metrics()
    m.commit_to_ack("crm", pairs[:3])
    m.commit_to_ack("crm", pairs[3:])
    reference = CollectorRegistry()
    h = Histogram("cdc_sink_commit_to_ack_seconds", "x", ["connector"], buckets=COMMIT_TO_ACK_BUCKETS,
                  registry=reference)
    for seconds, n in pairs:
        for _ in range(n):
            h.labels("crm").observe(seconds)
    ours = {k: v for k, v in samples(m).items() if k[0].startswith("cdc_sink_commit_to_ack_seconds")}
    theirs = {(s.name, frozenset(s.labels.items())): s.value for family in reference.collect()
              for s in family.samples if not s.name.endswith("_created")}
    assert ours.keys() == theirs.keys()
    assert all(ours[k] == pytest.approx(theirs[k]) for k in ours)
    assert ours[key("cdc_sink_commit_to_ack_seconds_bucket", connector="crm", le="0.05")] == 10


def test_each_metrics_has_its_own_registry() -> None:
    # The global registry would refuse the second set of names ("Duplicated timeseries").
    one, two = Metrics(), Metrics()
    one.sink_delivered("x", 1)
    assert key("cdc_sink_delivered_total", connector="x") not in samples(two)


def test_history_is_bounded_and_derives_rates() -> None:
    h = History(maxlen=3)
    assert h.latest() is None
    assert h.observe(100.0, 0, None, 0).events_per_second == 0.0
    assert h.observe(102.0, 50, 1.5, 0).events_per_second == 25.0
    assert h.observe(104.0, 40, 1.0, 1).events_per_second == 0.0   # counter reset by a restart
    h.add(Sample(105.0, 7.0, float("nan"), 2))
    got = h.samples()
    assert len(got) == len(h) == 3
    assert [s.timestamp for s in got] == [102.0, 104.0, 105.0]
    assert h.observe(106.0, 60, float("inf"), 2).lag_seconds is None   # not a number: unknown
    assert h.latest() == Sample(106.0, 10.0, None, 2)
