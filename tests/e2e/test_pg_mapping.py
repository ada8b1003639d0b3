"""Acceptance: PostgreSQL -> journal -> SQL mapping -> FileStreamSink of CloudEvents.

Replaying the events by subject (upsert on every type but `.deleted`) must equal the mapping run as a
query on the final source state, while rows move into and out of the WHERE filter, are deleted,
re-keyed and updated in columns the mapping does not read. Real PostgreSQL, real `cdc` processes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from tests.e2e.harness import execute, read_events, run_to_end, write_connectors
from tests.servers.postgres import PgServer

MAPPING = """-- customers of company 100 that are definite (20) or on credit hold (30)
SELECT TRIM(cuno) AS id,
       name,
       stat AS status,
       credit AS credit_limit,
       TO_DATE(NULLIF(rgdt, 0)::text, 'YYYYMMDD') AS registered_on,
       CASE WHEN old.stat = '10' AND stat = '20' THEN 'customer.approved' END AS _type
FROM erp.customers
WHERE stat IN ('20', '30') AND cono = 100
"""

QUERY = """SELECT TRIM(cuno), name, stat, credit::text, to_date(nullif(rgdt, 0)::text, 'YYYYMMDD')::text
FROM erp.customers WHERE stat IN ('20', '30') AND cono = 100"""


def setup(dsn: str) -> None:
    execute(dsn,
            "CREATE SCHEMA erp",
            "CREATE TABLE erp.customers (cono smallint, cuno char(10), name varchar(36), stat char(2), "
            "credit numeric(15,2), rgdt int, notes text, PRIMARY KEY (cono, cuno))",
            "ALTER TABLE erp.customers REPLICA IDENTITY FULL",
            "INSERT INTO erp.customers SELECT 100, 'C' || lpad(i::text, 5, '0'), 'Customer ' || i, "
            "CASE i % 3 WHEN 0 THEN '10' WHEN 1 THEN '20' ELSE '30' END, i * 100.5, "
            "CASE WHEN i % 7 = 0 THEN 0 ELSE 20240101 + i % 28 END, 'n' FROM generate_series(1, 60) i",
            "INSERT INTO erp.customers VALUES (200, 'C00001', 'Other company', '20', 1, 20240101, 'n')")


def workload(dsn: str) -> None:
    execute(dsn,
            "UPDATE erp.customers SET stat = '20' WHERE cuno IN ('C00003', 'C00006', 'C00009')",   # approvals
            "UPDATE erp.customers SET stat = '90' WHERE cuno IN ('C00001', 'C00004')",             # out
            "UPDATE erp.customers SET notes = 'only an unmapped column' WHERE cuno = 'C00007'",    # nothing
            "UPDATE erp.customers SET credit = credit + 0.25 WHERE cuno = 'C00010'",              # upsert
            "DELETE FROM erp.customers WHERE cuno IN ('C00013', 'C00012')",                       # member, not
            "UPDATE erp.customers SET cuno = 'C09999' WHERE cuno = 'C00016'",                     # re-keyed
            "UPDATE erp.customers SET stat = '30' WHERE cuno = 'C00001'",                         # back in
            "INSERT INTO erp.customers VALUES (100, 'C00100', 'New', '10', 5, 20241231, 'n')",    # not yet
            "UPDATE erp.customers SET stat = '20', name = 'New AB' WHERE cuno = 'C00100'",        # approved
            "UPDATE erp.customers SET cono = 200 WHERE cuno = 'C00019'",                          # out (key)
            "UPDATE erp.customers SET rgdt = 19991231 WHERE cuno = 'C00020'")


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


def test_mapping_replay_equals_query(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    dbname = pg_db.rsplit("dbname=", 1)[1]
    setup(pg_db)
    files = write_connectors(tmp_path, pg_server, dbname, "map1", tables="erp\\..*")
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "customer.sql").write_text(MAPPING)
    sink = json.loads(files[1].read_text())
    sink["config"].update({"mapper.sql": "mappings/customer.sql", "mapper.entity": "Customer"})
    files[1].write_text(json.dumps(sink))
    out = tmp_path / "out" / "map1.jsonl"
    data = tmp_path / "data"

    run_to_end(files, data)
    snapshot = read_events(out)
    assert snapshot and {e["type"] for e in snapshot} == {"customer.upserted"}
    workload(pg_db)
    run_to_end(files, data)
    events = read_events(out)

    for e in events:
        assert e["specversion"] == "1.0" and e["source"] == "/map1/erp/customers" and e["time"].endswith("Z")
        assert e["datacontenttype"] == "application/json"
    assert len({e["id"] for e in events}) == len(events)
    with psycopg.connect(pg_db) as c:
        rows = c.execute(QUERY).fetchall()
    expected = {r[0]: {"id": r[0], "name": r[1], "status": r[2], "credit_limit": r[3], "registered_on": r[4]}
                for r in rows}
    got = replay(events)
    assert got == expected

    streamed = events[len(snapshot):]
    by_subject: dict[str, list[str]] = {}
    for e in streamed:
        by_subject.setdefault(e["subject"], []).append(e["type"])
    assert by_subject["C00003"] == ["customer.approved"]
    assert by_subject["C00004"] == ["customer.deleted"]
    assert by_subject["C00001"] == ["customer.deleted", "customer.upserted"]
    assert "C00007" not in by_subject, "an update of an unmapped column emits nothing"
    assert by_subject["C00010"] == ["customer.upserted"]
    assert by_subject["C00013"] == ["customer.deleted"] and "C00012" not in by_subject
    assert by_subject["C00016"] == ["customer.deleted"] and by_subject["C09999"] == ["customer.upserted"]
    assert by_subject["C00100"] == ["customer.approved"]
    assert by_subject["C00019"] == ["customer.deleted"]
    deleted = next(e for e in streamed if e["subject"] == "C00004")
    assert deleted["data"] == {"id": "C00004"}
    approved = next(e for e in streamed if e["subject"] == "C00100")
    assert approved["dataschema"] == "urn:erp-cdc:entity:customer:v1"
    assert approved["data"]["name"] == "New AB" and approved["data"]["registered_on"] == "2024-12-31"
