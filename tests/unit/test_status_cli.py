"""`cdc status`'s pure part: the ``/api/history`` document as values, the values as table cells and text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console

from cdc.statuscli import (
    COLUMNS,
    ConnectorStatus,
    Status,
    StatusError,
    as_json,
    count,
    duration,
    first_line,
    normalize,
    parse,
    rate,
    render,
    row,
    size,
)


def document(**extra: Any) -> dict[str, Any]:
    """An answer as the lead's extended endpoint gives it: a source, a sink, a FAILED sink."""
    return {"now": 1_700_000_000.0, "worker_id": "127.0.0.1:8083", "connectors": [
        {"name": "erp", "type": "source", "state": "RUNNING", "trace": None, "dead_letters": 0,
         "events_per_second": 1234.4, "lag_seconds": 0.42, "lag_bytes": 3 * 1024 * 1024 + 200,
         "journal_depth": None, "series": {"t": [1.0], "lag_seconds": [0.42]}},
        {"name": "crm", "type": "sink", "state": "PAUSED", "trace": None, "dead_letters": 3,
         "events_per_second": 0.0, "lag_seconds": 192.2, "lag_bytes": None, "journal_depth": 12345},
        {"name": "erp-file", "type": "sink", "state": "FAILED", "dead_letters": 0, "events_per_second": None,
         "lag_seconds": None, "trace": "\nOSError: disk full\n  at line 3", **extra},
    ]}


def text(status: Status, width: int = 160) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(render(status))
    return console.export_text()


@pytest.mark.parametrize(("seconds", "shown"), [
    (None, "—"), (0, "0.0 s"), (0.42, "0.4 s"), (-3.0, "0.0 s"), (42.04, "42.0 s"), (59.96, "1 min 0 s"),
    (192.2, "3 min 12 s"), (3599.6, "1 h 0 min"), (7500, "2 h 5 min"), (3 * 86400 + 4 * 3600 + 59, "3 d 4 h"),
])
def test_durations(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown


@pytest.mark.parametrize(("n", "shown"), [
    (None, "—"), (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (3 * 1024 * 1024 + 200, "3.0 MiB"), (1024**3 - 1, "1.0 GiB"), (5 * 1024**3, "5.0 GiB"),
    (2048 * 1024**4, "2048.0 TiB"),
])
def test_sizes(n: int | None, shown: str) -> None:
    assert size(n) == shown


def test_counts_and_rates() -> None:
    assert (count(None), count(0), count(12345)) == ("—", "0", "12,345")
    assert (rate(None), rate(0.0), rate(12.34), rate(1234.4)) == ("—", "0.0", "12.3", "1,234")


def test_parse_reads_every_field_and_ignores_series() -> None:
    status = parse(document())
    assert (status.worker_id, status.now) == ("127.0.0.1:8083", 1_700_000_000.0)
    erp, crm, failed = status.connectors
    assert erp == ConnectorStatus("erp", "source", "RUNNING", 0.42, 3 * 1024 * 1024 + 200, None, 1234.4, 0, None)
    assert (crm.journal_depth, crm.dead_letters, crm.lag_bytes) == (12345, 3, None)
    assert failed.trace == "\nOSError: disk full\n  at line 3"


def test_fields_an_older_bridge_does_not_send_are_unknown() -> None:
    doc = document()
    for entry in doc["connectors"]:
        entry.pop("lag_bytes", None)
        entry.pop("journal_depth", None)
    status = parse(doc)
    assert all(c.lag_bytes is None and c.journal_depth is None for c in status.connectors)
    assert row(status.connectors[0]) == ("erp", "source", "RUNNING", "0.4 s", "—", "—", "1,234", "0")


def test_rows_in_column_order() -> None:
    erp, crm, failed = parse(document()).connectors
    assert COLUMNS == ("connector", "type", "state", "lag", "lag bytes", "behind", "events/s", "dead letters")
    assert row(erp) == ("erp", "source", "RUNNING", "0.4 s", "3.0 MiB", "—", "1,234", "0")
    assert row(crm) == ("crm", "sink", "PAUSED", "3 min 12 s", "—", "12,345", "0.0", "3")
    assert row(failed) == ("erp-file", "sink", "FAILED", "—", "—", "—", "—", "0")


@pytest.mark.parametrize("doc", [
    None, [], {"connectors": {}}, {"connectors": ["erp"]}, {"connectors": [{"state": "RUNNING"}]},
    {"connectors": [{"name": "erp"}]},
    {"connectors": [{"name": "erp", "state": "RUNNING", "lag_seconds": "soon"}]},
    {"connectors": [{"name": "erp", "state": "RUNNING", "lag_bytes": True}]},
])
def test_malformed_answers_are_refused_with_a_message(doc: Any) -> None:
    with pytest.raises(StatusError, match="malformed"):
        parse(doc)


def test_table_trace_and_summary() -> None:
    shown = text(parse(document()))
    for header in COLUMNS:
        assert header in shown
    assert "3 min 12 s" in shown and "3.0 MiB" in shown and "12,345" in shown
    # The first non-blank line of the trace only, under the table.
    assert "erp-file FAILED: OSError: disk full" in shown and "at line 3" not in shown
    assert "worker 127.0.0.1:8083" in shown and "3 connectors: 1 running, 1 paused, 1 failed" in shown
    assert shown.index("dead letters") < shown.index("erp-file FAILED")


def test_states_are_coloured() -> None:
    console = Console(width=160, record=True, color_system="standard", force_terminal=True)
    console.print(render(parse(document())))
    ansi = console.export_text(styles=True)
    assert "\x1b[32mRUNNING" in ansi and "\x1b[33mPAUSED" in ansi and "\x1b[1;31mFAILED" in ansi


def test_a_failed_connector_without_trace_and_an_empty_bridge() -> None:
    doc = {"now": 1.0, "worker_id": "w", "connectors": [{"name": "x", "type": "sink", "state": "FAILED"}]}
    assert "x FAILED: (no error text)" in text(parse(doc))
    assert "0 connectors" in text(parse({"worker_id": "w", "connectors": []}))


def test_json_keeps_the_values_not_the_text() -> None:
    doc = json.loads(as_json(parse(document())))
    assert doc["worker_id"] == "127.0.0.1:8083" and doc["now"] == 1_700_000_000.0
    assert doc["connectors"][1] == {"name": "crm", "type": "sink", "state": "PAUSED", "lag_seconds": 192.2,
                                    "lag_bytes": None, "journal_depth": 12345, "events_per_second": 0.0,
                                    "dead_letters": 3, "trace": None}


def test_first_line_and_urls() -> None:
    assert first_line("\n\n  boom  \nmore") == "boom" and first_line("") == ""
    assert normalize("127.0.0.1:8083") == "http://127.0.0.1:8083"
    assert normalize(" https://bridge.example:8443/ ") == "https://bridge.example:8443"
