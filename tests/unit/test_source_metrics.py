"""What the runner measures about sources: events by table and operation (from Debezium's own envelopes,
as the journal stores them) and the binlog lag in bytes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from cdc.pipeline.capture import _count
from cdc.pipeline.sourcelag import binlog_lag
from cdc.types import ChangeEvent

SAMPLES = json.loads((Path(__file__).parent / "fixtures" / "debezium-sample-pg.json").read_text())


def test_events_are_counted_by_topic_and_op_from_debezium_envelopes() -> None:
    # Debezium's own events (compact, as the journal stores them); a delete's tombstone is not an event.
    events = [ChangeEvent("erp.public.orders", b'{"id":1}', json.dumps(v, separators=(",", ":")).encode())
              for v in SAMPLES.values()]
    events.append(ChangeEvent("erp.public.orders", b'{"id":1}', None))
    events.append(ChangeEvent("erp.public.items", b'{"id":2}', b'{"before":null,"after":{"id":2},"op":"r"}'))
    counts: Counter[tuple[str, str]] = Counter()
    _count(events, counts)
    ops = Counter(v["payload"]["op"] if "payload" in v else v["op"] for v in SAMPLES.values())
    assert counts == {**{("erp.public.orders", op): n for op, n in ops.items()}, ("erp.public.items", "r"): 1}


def test_binlog_lag_counts_the_rest_of_the_file_and_every_later_file() -> None:
    logs = [("bin.000001", 1000), ("bin.000002", 500), ("bin.000003", 120)]
    assert binlog_lag(logs, "bin.000003", 120) == 0
    assert binlog_lag(logs, "bin.000002", 200) == 300 + 120
    assert binlog_lag(logs, "bin.000001", 4) == 996 + 500 + 120
    assert binlog_lag(logs, "bin.000000", 4) is None      # purged: the connector reports the gap itself
