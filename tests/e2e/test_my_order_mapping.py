"""Acceptance: a multi-table business object (an order with its lines) from MariaDB, end to end.

MariaDB binlog -> journal -> multi-table mapping in MySQL syntax (JSON_ARRAYAGG/JSON_OBJECT, re-read
from the source per batch) -> FileStreamSink of CloudEvents, with real `cdc` processes. Replaying the
events by subject must equal the mapping run as a query on the final source state.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from mappers.entities import Order, validate
from tests.e2e.harness import read_events, run_to_end
from tests.e2e.myharness import write_my_connectors
from tests.servers.mariadb import MariaDbServer


def mapping(db: str) -> str:
    return f"""-- open orders with their lines (MySQL syntax)
SELECT TRIM(h.orno)                                AS id,
       h.customer                                  AS customer_id,
       h.status                                    AS status,
       STR_TO_DATE(NULLIF(h.ordered, 0), '%Y%m%d') AS order_date,
       h.net                                       AS net_amount,
       COALESCE((SELECT JSON_ARRAYAGG(JSON_OBJECT('line_number', l.n, 'product_id', l.item,
                                                  'quantity', l.qty, 'unit_price', l.price)
                                      ORDER BY l.n)
                 FROM {db}.orderlines l
                 WHERE l.orno = h.orno), JSON_ARRAY()) AS `lines`
FROM {db}.orders h
WHERE h.status < '90'
"""


def replay(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for e in events:
        if e["id"] in seen:
            continue
        seen.add(e["id"])
        if e["type"].endswith(".deleted"):
            state.pop(e["subject"], None)
        else:
            state[e["subject"]] = e["data"]
    return state


def expected(srv: MariaDbServer, db: str) -> dict[str, dict[str, Any]]:
    with srv.connect(db) as c, c.cursor() as cur:
        cur.execute(mapping(db))  # no parameters: PyMySQL leaves the % of the formats alone
        names = [d[0] for d in cur.description or ()]
        rows = cur.fetchall()
    out = {}
    for r in rows:
        row = dict(zip(names, r, strict=True))
        row["lines"] = json.loads(row["lines"], parse_float=Decimal)
        out[row["id"]] = json.loads(json.dumps(validate(Order, row)))
    return out


def test_mariadb_order_with_lines_replay_equals_query(tmp_path: Path, my_server: MariaDbServer, my_db: str) -> None:
    srv, db = my_server, my_db
    srv.execute(db,
                "CREATE TABLE orders (orno CHAR(10) PRIMARY KEY, customer VARCHAR(10), status CHAR(2), "
                "ordered INT, net DECIMAL(12,2), note TEXT) DEFAULT CHARSET=utf8mb4",
                "CREATE TABLE orderlines (orno CHAR(10), n INT, item VARCHAR(15), qty DECIMAL(12,3), "
                "price DECIMAL(12,2), PRIMARY KEY (orno, n)) DEFAULT CHARSET=utf8mb4",
                "INSERT INTO orders VALUES ('O1', 'C1', '20', 20240131, 10.50, NULL), "
                "('O2', 'C1', '20', 0, 0, NULL), ('O3', 'C2', '30', 20240229, -1.25, NULL)",
                "INSERT INTO orderlines VALUES ('O1', 1, 'A', 1.5, 2.00), ('O1', 2, 'B', 2, 0.99), "
                "('O2', 1, 'C', 1, 1)")
    files = write_my_connectors(tmp_path, srv, db, "myord", server_id=5470)
    (tmp_path / "order.sql").write_text(mapping(db))
    sink = json.loads(files[1].read_text())
    sink["config"].update({"mapper.sql": "order.sql", "mapper.entity": "Order"})
    files[1].write_text(json.dumps(sink))
    out = tmp_path / "out" / "myord.jsonl"

    run_to_end(files, tmp_path / "data")
    snapshot = read_events(out)
    assert {e["subject"] for e in snapshot} == {"O1", "O2", "O3"}
    want = expected(srv, db)
    assert replay(snapshot) == want
    o1 = replay(snapshot)["O1"]
    assert o1["lines"][0] == {"line_number": 1, "product_id": "A", "quantity": "1.500", "unit_price": "2.00"}
    assert o1["order_date"] == "2024-01-31" and o1["net_amount"] == "10.50"

    srv.execute(db,
                "INSERT INTO orders VALUES ('O4', 'C3', '10', 20241231, 5, NULL)",
                "INSERT INTO orderlines VALUES ('O4', 1, 'D', 3, 1.10)",
                "UPDATE orderlines SET qty = 7.25 WHERE orno = 'O1' AND n = 2",
                "DELETE FROM orderlines WHERE orno = 'O2'",
                "DELETE FROM orders WHERE orno = 'O3'",
                "UPDATE orders SET status = '90' WHERE orno = 'O1'",
                "UPDATE orders SET status = '20' WHERE orno = 'O1'",
                "UPDATE orders SET note = 'unmapped' WHERE orno = 'O4'")
    run_to_end(files, tmp_path / "data")
    events = read_events(out)
    assert replay(events) == expected(srv, db)
    streamed = events[len(snapshot):]
    assert [e["type"] for e in streamed if e["subject"] == "O3"][-1] == "order.deleted"
    assert replay(events)["O2"]["lines"] == [] and replay(events)["O4"]["lines"][0]["quantity"] == "3.000"
    assert streamed[0]["source"] == f"/myord/{db}/orders"
