"""Acceptance: a multi-table business object (an order header with its lines) from PostgreSQL, end to end.

PostgreSQL -> journal -> multi-table mapping (re-read from the source per batch) -> FileStreamSink of
CloudEvents, with real `cdc` processes. A header and lines are inserted, a line updated, a line deleted,
a header deleted with its lines, an order leaves the WHERE filter, and a line of an order outside the
filter changes; replaying the events by subject must equal the mapping run as a query on the final
source state. The lines table keeps PostgreSQL's default REPLICA IDENTITY: its primary key holds the
order key, so even a key-only delete names its order.
"""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import set_json_loads

from mappers.entities import Order, validate
from tests.e2e.harness import execute, read_events, run_cdc, run_to_end, write_connectors
from tests.servers.postgres import PgServer

MAPPING = """-- Orders of company 100 that are not closed (90), with their lines.
SELECT TRIM(h.oaorno)                                  AS id,
       TRIM(h.oacuno)                                  AS customer_id,
       h.oaorst                                        AS status,
       TO_DATE(NULLIF(h.oaordt, 0)::text, 'YYYYMMDD')  AS order_date,
       h.oanetv                                        AS net_amount,
       COALESCE((SELECT json_agg(json_build_object(
                          'line_number', l.obponr, 'product_id', TRIM(l.obitno), 'quantity', l.obqty,
                          'unit_price', l.obsapr, 'amount', round(l.obqty * l.obsapr, 2)) ORDER BY l.obponr)
                 FROM m3.ooline l
                 WHERE l.obcono = h.oacono AND l.oborno = h.oaorno), '[]') AS lines
FROM m3.oohead h
WHERE h.oacono = 100 AND h.oaorst < '90'
"""


def setup(dsn: str) -> None:
    execute(dsn,
            "CREATE SCHEMA m3",
            "CREATE TABLE m3.oohead (oacono smallint, oaorno char(10), oacuno char(10), oaorst char(2), "
            "oaordt integer, oanetv numeric(17,2), oatx40 varchar(40), PRIMARY KEY (oacono, oaorno))",
            "CREATE TABLE m3.ooline (obcono smallint, oborno char(10), obponr integer, obitno char(15), "
            "obqty numeric(15,3), obsapr numeric(17,2), PRIMARY KEY (obcono, oborno, obponr))",
            "INSERT INTO m3.oohead SELECT 100, 'O' || lpad(i::text, 4, '0'), 'C0001', '20', 20240101 + i, i * 10.5, "
            "'x' FROM generate_series(1, 5) i",
            "INSERT INTO m3.oohead VALUES (200, 'O0001', 'C0009', '20', 20240101, 1, 'other company')",
            "INSERT INTO m3.ooline SELECT 100, 'O' || lpad(o::text, 4, '0'), n, 'ITEM-' || n, n * 1.5, 9.99 "
            "FROM generate_series(1, 5) o, generate_series(1, 3) n",
            "INSERT INTO m3.ooline VALUES (200, 'O0001', 1, 'OTHER', 1, 1)")


def workload(dsn: str) -> None:
    execute(dsn,
            # a new order: header and lines in one transaction
            "BEGIN; INSERT INTO m3.oohead VALUES (100, 'O0006', 'C0002', '10', 20241231, 0, 'new');"
            "INSERT INTO m3.ooline VALUES (100, 'O0006', 1, 'NEW-1', 2, 3.50), (100, 'O0006', 2, 'NEW-2', 1, 0.99);"
            "COMMIT",
            "UPDATE m3.ooline SET obqty = 7.25 WHERE oborno = 'O0001' AND obponr = 2",   # a line changes
            "DELETE FROM m3.ooline WHERE oborno = 'O0002' AND obponr = 3",               # a line goes
            "BEGIN; DELETE FROM m3.ooline WHERE oborno = 'O0003'; DELETE FROM m3.oohead WHERE oaorno = 'O0003';"
            "COMMIT",                                                                    # an order goes
            "UPDATE m3.oohead SET oaorst = '90' WHERE oaorno = 'O0004'",                 # leaves the filter
            "UPDATE m3.oohead SET oatx40 = 'only an unmapped column' WHERE oaorno = 'O0005'",
            "UPDATE m3.ooline SET obqty = 99 WHERE obcono = 200",                         # not a member
            "INSERT INTO m3.ooline VALUES (100, 'O0006', 3, 'NEW-3', 4, 1)")             # a later line


def replay(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for e in events:
        if e["id"] in seen:  # at-least-once: targets dedupe on the id
            continue
        seen.add(e["id"])
        if e["type"].endswith(".deleted"):
            state.pop(e["subject"], None)
        else:
            state[e["subject"]] = e["data"]
    return state


def expected(dsn: str) -> dict[str, dict[str, Any]]:
    """The mapping run as a query on the source now, in the events' JSON form."""
    with psycopg.connect(dsn) as c:
        set_json_loads(functools.partial(json.loads, parse_float=Decimal), c)
        cur = c.execute(MAPPING)
        names = [d.name for d in cur.description or ()]
        rows = cur.fetchall()
    return {r[0]: json.loads(json.dumps(validate(Order, dict(zip(names, r, strict=True))))) for r in rows}


def test_order_with_lines_replay_equals_query(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    dbname = pg_db.rsplit("dbname=", 1)[1]
    setup(pg_db)
    files = write_connectors(tmp_path, pg_server, dbname, "ord1", tables="m3\\..*")
    (tmp_path / "order.sql").write_text(MAPPING)
    sink = json.loads(files[1].read_text())
    sink["config"].update({"mapper.sql": "order.sql", "mapper.entity": "Order"})
    files[1].write_text(json.dumps(sink))
    out = tmp_path / "out" / "ord1.jsonl"
    data = tmp_path / "data"

    run_to_end(files, data)
    snapshot = read_events(out)
    assert {e["subject"] for e in snapshot} == {"O0001", "O0002", "O0003", "O0004", "O0005"}, \
        "company 200's rows name no member"
    assert len(snapshot) <= 10, "one event per order per delivered batch, not one per line"
    assert {e["type"] for e in snapshot} == {"order.upserted"}
    assert replay(snapshot) == expected(pg_db)
    first = next(e for e in snapshot if e["subject"] == "O0001")
    assert first["data"]["lines"][0] == {"line_number": 1, "product_id": "ITEM-1", "quantity": "1.500",
                                         "unit_price": "9.99", "amount": "14.99"}
    assert first["source"] == "/ord1/m3/oohead" and first["dataschema"] == "urn:erp-cdc:entity:order:v1"
    assert first["data"]["order_date"] == "2024-01-02" and first["data"]["net_amount"] == "10.50"

    workload(pg_db)
    run_to_end(files, data)
    events = read_events(out)
    assert len({e["id"] for e in events}) == len(events)
    assert replay(events) == expected(pg_db)

    streamed: dict[str, list[str]] = {}
    for e in events[len(snapshot):]:
        streamed.setdefault(e["subject"], []).append(e["type"])
    assert streamed["O0006"][-1] == "order.upserted"
    assert streamed["O0001"] == ["order.upserted"] and streamed["O0002"] == ["order.upserted"]
    assert streamed["O0003"][-1] == "order.deleted" and streamed["O0004"] == ["order.deleted"]
    assert "O0005" in streamed, "a change of the root re-reads it (the bridge keeps no previous state)"
    new = [e for e in events[len(snapshot):] if e["subject"] == "O0006"][-1]
    assert [ln["line_number"] for ln in new["data"]["lines"]] == [1, 2, 3]
    gone = [e for e in events if e["subject"] == "O0003"][-1]
    assert gone["data"] == {"id": "O0003"}

    # `cdc mapper test --from-db` shows the events of the first roots the source holds
    p = run_cdc(["mapper", "test", str(tmp_path / "order.sql"), "--config", str(files[0]), "--entity", "Order",
                 "--from-db", "--limit", "2"])
    assert p.returncode == 0, p.stderr
    assert "maps m3.oohead (root) with m3.ooline" in " ".join(p.stdout.split())
    assert p.stdout.count('"type": "order.upserted"') == 2 and '"subject": "O0001"' in p.stdout
