"""Multi-table mappings: planning (tables, root, how each table's rows name their root, the generated
parameterised query) and `JoinedMapper` on synthetic change events with a fake source reader."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
import pytest
import sqlglot

from cdc.types import JournalRecord
from mappers.compiler import parse_mapping
from mappers.entities import Order
from mappers.errors import MappingError, MappingRuntimeError, Problem
from mappers.joined import JoinedMapper, JoinedMapping, compile_joined, is_multi_table
from mappers.sqltypes import Catalog, Dialect, SqlType

DDL = """CREATE TABLE m3.oohead (oacono smallint, oaorno char(10), oacuno char(10), oaorst char(2), oaordt integer,
  oanetv numeric(17,2), PRIMARY KEY (oacono, oaorno));
CREATE TABLE m3.ooline (obcono smallint, oborno char(10), obponr integer, obitno char(15), obqty numeric(15,3),
  obsapr numeric(17,2), PRIMARY KEY (obcono, oborno, obponr));
CREATE TABLE m3.oonote (id integer PRIMARY KEY, orno char(10), txt text);
CREATE TABLE m3.ooship (id integer PRIMARY KEY, note_id integer)"""
CAT = Catalog.from_ddl(DDL, "postgres")
MY = Catalog.from_ddl("""CREATE TABLE erp.orders (id int PRIMARY KEY, status char(2));
CREATE TABLE erp.lines (order_id int, n int, qty decimal(12,3), PRIMARY KEY (order_id, n))""", "mysql")

ORDER = """SELECT TRIM(h.oaorno) AS id,
       TRIM(h.oacuno) AS customer_id,
       h.oaorst AS status,
       COALESCE((SELECT json_agg(json_build_object('line_number', l.obponr, 'product_id', TRIM(l.obitno),
                                                   'quantity', l.obqty) ORDER BY l.obponr)
                 FROM m3.ooline l
                 WHERE l.obcono = h.oacono AND l.oborno = h.oaorno), '[]') AS lines
FROM m3.oohead h
WHERE h.oacono = 100 AND h.oaorst < '90' -- open orders of company 100
"""

GROUPED = """SELECT TRIM(h.oaorno) AS id, json_agg(json_build_object('line_number', l.obponr)) AS lines
FROM m3.oohead h LEFT JOIN m3.ooline l ON l.oborno = h.oaorno
WHERE h.oacono = 100
GROUP BY h.oacono, h.oaorno
"""


def plan(text: str, catalog: Catalog = CAT, **kw: Any) -> JoinedMapping:
    stmt = parse_mapping(text, catalog.dialect, "order.sql")
    assert is_multi_table(stmt)
    return compile_joined(text, stmt, catalog, file="order.sql", **kw)


def problems(text: str, catalog: Catalog = CAT, **kw: Any) -> list[str]:
    with pytest.raises(MappingError) as e:
        plan(text, catalog, **kw)
    return e.value.problems


def runnable(sql: str, dialect: Dialect) -> None:
    """The generated query parses in the source's dialect once its placeholders are values."""
    sqlglot.parse_one(sql.replace("%%", "%").replace("%s", "NULL"), read=dialect)


def test_single_table_mappings_are_not_multi_table() -> None:
    assert not is_multi_table(parse_mapping("SELECT oaorno FROM m3.oohead WHERE oacono = 100", "postgres"))
    assert is_multi_table(parse_mapping(GROUPED, "postgres"))


def test_root_and_routes_from_the_join_conditions() -> None:
    m = plan(ORDER, entity=Order)
    assert m.root.qualified == "m3.oohead" and m.root_key == ("oacono", "oaorno")
    routes = {r.table.name: r for r in m.routes}
    assert routes["oohead"].columns == ("oacono", "oaorno")
    assert routes["oohead"].root_key({"oacono": 200, "oaorno": "O1"}) is None, "h.oacono = 100: never a member"
    assert routes["ooline"].columns == ("obcono", "oborno"), "l.obcono = h.oacono AND l.oborno = h.oaorno"
    assert routes["ooline"].root_key({"obcono": 100, "oborno": "O1        ", "obponr": 3}) == (100, "O1        ")
    assert routes["ooline"].root_key({"obcono": 100, "oborno": None, "obponr": 3}) is None
    assert m.names == ("id", "customer_id", "status", "lines") and [f.json for f in m.fields] == [0, 0, 0, 1]
    assert m.key_names == ("id",) and m.subject_values((100, "O1        ")) == ("O1",)


def test_a_constant_in_where_names_the_rest_of_the_root_key() -> None:
    m = plan(GROUPED)
    (line,) = [r for r in m.routes if r.table.name == "ooline"]
    assert line.columns == ("oborno",), "l.oborno = h.oaorno; h.oacono = 100 from WHERE"
    assert line.root_key({"obcono": 7, "oborno": "O2", "obponr": 1}) == (100, "O2")


def test_the_generated_query_is_the_mapping_with_the_root_key_added() -> None:
    m = plan(ORDER)
    sql, params = m.query([(100, "O1        "), (100, "O2        ")])
    assert sql.startswith('SELECT h."oacono" AS __cdc_rk0, h."oaorno" AS __cdc_rk1, TRIM(h.oaorno) AS id,')
    assert "WHERE ( h.oacono = 100 AND h.oaorst < '90'\n) AND " \
           '(h."oacono", h."oaorno") IN (SELECT * FROM unnest(%s::smallint[], %s::bpchar[]))\n' \
           " -- open orders of company 100" in sql, "a trailing comment stays after the condition"
    assert params == [[100, 100], ["O1        ", "O2        "]], "one array per key column: one query per batch"
    assert "json_agg(json_build_object('line_number', l.obponr" in sql, "the mapping's own text, as written"
    runnable(sql, "postgres")
    grouped, _ = plan(GROUPED).query([(100, "O1")])
    assert "WHERE ( h.oacono = 100\n) AND (" in grouped and grouped.rstrip().endswith("GROUP BY h.oacono, h.oaorno")
    runnable(grouped, "postgres")


def test_single_key_and_mysql_queries() -> None:
    text = """SELECT o.id, (SELECT JSON_ARRAYAGG(JSON_OBJECT('n', l.n, 'qty', l.qty)) FROM erp.lines l
    WHERE l.order_id = o.id) AS lines FROM erp.orders o WHERE o.status LIKE '2%'"""
    m = plan(text, MY)
    sql, params = m.query([(1,), (2,), (3,)])
    assert "o.`id` IN (%s, %s, %s)" in sql and params == [1, 2, 3]
    assert "LIKE '2%%'" in sql, "the drivers read % as a placeholder: the mapping's own % are doubled"
    runnable(sql, "mysql")
    pg, pg_params = plan("SELECT n.id, count(s.id) AS ships FROM m3.oonote n LEFT JOIN m3.ooship s "
                         "ON s.note_id = n.id GROUP BY n.id").query([(1,), (2,)])
    assert 'n."id" = ANY(%s::integer[])' in pg and pg_params == [[1, 2]]
    assert "\nWHERE " in pg, "a WHERE is added where the mapping has none"
    runnable(pg, "postgres")


@pytest.mark.parametrize(("text", "message"), [
    ("SELECT h.oaorno AS id, count(*) AS n FROM m3.oohead h JOIN m3.ooline l ON l.oborno = h.oaorno "
     "GROUP BY h.oaorno",
     "order.sql:1:104: GROUP BY must list the root key (h.oacono, h.oaorno): missing oacono"),
    ("SELECT h.oaorno AS id, count(*) AS n FROM m3.oohead h JOIN m3.ooline l ON l.oborno = h.oaorno "
     "GROUP BY h.oacono, h.oaorno",
     "order.sql:1:60: m3.ooline l cannot find its root: no condition gives the root key column h.oacono "
     "(add l.<column> = h.oacono to its JOIN ... ON or WHERE)"),
    ("SELECT h.oaorno AS id, (SELECT max(l.obqtx) FROM m3.ooline l WHERE l.oborno = h.oaorno "
     "AND l.obcono = h.oacono) AS q FROM m3.oohead h",
     "order.sql:1:36: unknown column 'obqtx' in m3.ooline (did you mean 'obqty'?)"),
    ("SELECT h.oacuno AS id, count(*) AS n FROM m3.oohead h GROUP BY h.oacono, h.oaorno",
     "order.sql:1:8: the business key must be computed from the root key (h.oacono, h.oaorno) alone, so that a "
     "deleted object has a subject; it reads oacuno"),
    ("SELECT h.oaorno AS id, x.n FROM m3.oohead h JOIN (SELECT 1 AS n) x ON true",
     "order.sql:1:58: JOIN must name a source table (derived tables and table functions are not supported in "
     "mappings; use a correlated subquery in the select list)"),
    ("SELECT h.oaorno AS id, old.oaorst AS s FROM m3.oohead h JOIN m3.ooline l ON l.oborno = h.oaorno",
     "order.sql:1:24: old.* is not available in a multi-table mapping: the object is re-read from the source, "
     "which has only the current rows"),
    ("SELECT h.oaorno AS id, z.obponr AS n FROM m3.oohead h JOIN m3.ooline l ON l.oborno = h.oaorno",
     "order.sql:1:24: unknown table or alias 'z' in column reference"),
    ("SELECT h.oaorno AS id, obponr, oacuno FROM m3.oohead h JOIN m3.oonote n ON n.orno = h.oaorno "
     "JOIN m3.ooline ON oborno = h.oaorno ORDER BY 1",
     "order.sql:1:139: ORDER BY: a mapping maps each object; order has no meaning"),
])
def test_load_time_errors(text: str, message: str) -> None:
    assert message in problems(text)


def test_entity_fields_are_checked_inside_the_nested_objects() -> None:
    text = ORDER.replace("'product_id'", "'produkt_id'").replace("AS status", "AS state")
    found = problems(text, entity=Order)
    assert "order.sql:3:8: Order has no field 'state' (did you mean 'status'?)" in found
    assert "order.sql:4:77: OrderLine has no field 'produkt_id' (did you mean 'product_id'?)" in found
    scalar = problems("SELECT TRIM(h.oaorno) AS id, h.oaorst AS lines FROM m3.oohead h "
                      "JOIN m3.ooline l ON l.oborno = h.oaorno AND l.obcono = h.oacono", entity=Order)
    assert any("Order.lines is a nested list: build it in a multi-table mapping with json_agg" in p for p in scalar)


# ---------------------------------------------------------------------------------------------- the mapper


class FakeReader:
    """The source as a dict: root key -> the select list's values; records every query."""

    def __init__(self, rows: dict[tuple[Any, ...], tuple[Any, ...]]) -> None:
        self.data = rows
        self.queries: list[tuple[str, list[Any]]] = []

    def rows(self, queries: Sequence[tuple[str, list[Any]]]) -> list[list[tuple[Any, ...]]]:
        self.queries += queries
        out = []
        for _, params in queries:
            keys = list(zip(*params, strict=True))
            out.append([(*k, *self.data[k]) for k in keys if k in self.data])
        return out

    def check(self, mapping: JoinedMapping) -> tuple[list[Problem], list[SqlType | None]]:
        return [], []

    def close(self) -> None:
        pass


SOURCE = {"name": "erp", "schema": "m3", "lsn": 0, "ts_us": 1706700000123456}


def change(seq: int, table: str, op: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> JournalRecord:
    value = {"before": before, "after": after, "op": op, "source": {**SOURCE, "table": table, "lsn": seq * 8}}
    return JournalRecord(seq, f"erp.m3.{table}", None, orjson.dumps(value))


def head(orno: str, stat: str = "20") -> dict[str, Any]:
    return {"oacono": 100, "oaorno": orno.ljust(10), "oacuno": "C1        ", "oaorst": stat, "oaordt": 0,
            "oanetv": "0.00"}


def line(orno: str, n: int) -> dict[str, Any]:
    return {"obcono": 100, "oborno": orno.ljust(10), "obponr": n, "obitno": "ITEM", "obqty": "1.000", "obsapr": "1"}


def mapper(reader: FakeReader) -> JoinedMapper:
    m = plan(ORDER, entity=Order)
    topics = {f"erp.m3.{r.table.name}": (r,) for r in m.routes}
    return JoinedMapper(m, topics=topics, reader=reader, name="orders", entity=Order, connector="erp-pg")


def test_one_batched_query_and_one_event_per_affected_root() -> None:
    lines = [{"line_number": 1, "product_id": "ITEM", "quantity": Decimal("2.500")}]
    reader = FakeReader({(100, "O1        "): ("O1", "C1", "20", lines)})
    records = [change(1, "oohead", "c", None, head("O1")), change(2, "ooline", "c", None, line("O1", 1)),
               change(3, "ooline", "c", None, line("O2", 1)), change(4, "ooline", "u", line("O1", 1), line("O1", 1)),
               change(5, "ocusma", "c", None, {"x": 1}), change(6, "ooline", "t", None, None)]
    out = mapper(reader).map_batch(records)
    assert len(reader.queries) == 1, "many changes, one query"
    assert reader.queries[0][1] == [[100, 100], ["O2        ", "O1        "]], "in order of each root's last change"
    events = [json.loads(r.value or b"") for r in out]
    assert [(r.seq, e["type"], e["subject"]) for r, e in zip(out, events, strict=True)] == \
        [(3, "order.deleted", "O2"), (4, "order.upserted", "O1")]
    deleted, upserted = events
    assert deleted["data"] == {"id": "O2"} and "dataschema" not in deleted
    assert upserted["data"] == {"id": "O1", "customer_id": "C1", "status": "20",
                                "lines": [{"line_number": 1, "product_id": "ITEM", "quantity": "2.500"}]}
    assert upserted["source"] == "/erp/m3/oohead" and upserted["dataschema"] == "urn:erp-cdc:entity:order:v1"
    assert upserted["time"] == "2024-01-31T11:20:00.123456Z" and out[1].key == b'"O1"'


def test_a_line_moving_to_another_order_refreshes_both() -> None:
    reader = FakeReader({})
    mapper(reader).map_batch([change(1, "ooline", "u", line("O1", 1), line("O2", 1))])
    assert reader.queries[0][1] == [[100, 100], ["O1        ", "O2        "]]


def test_a_key_only_delete_that_cannot_name_its_root_stops_with_advice() -> None:
    m = plan("SELECT TRIM(h.oaorno) AS id, (SELECT count(*) FROM m3.oonote n WHERE n.orno = h.oaorno) AS notes "
             "FROM m3.oohead h WHERE h.oacono = 100")
    topics = {f"erp.m3.{r.table.name}": (r,) for r in m.routes}
    jm = JoinedMapper(m, topics=topics, reader=FakeReader({}), name="orders")
    with pytest.raises(MappingRuntimeError, match=r"set REPLICA IDENTITY FULL on m3\.oonote"):
        jm.map_batch([change(1, "oonote", "d", {"id": 5, "orno": None, "txt": None}, None)])
    assert jm.map_batch([change(2, "oonote", "d", {"id": 5, "orno": "O1", "txt": None}, None)])[0].key == b'"O1"'


def test_more_than_one_row_for_a_root_is_an_error() -> None:
    class Twice(FakeReader):
        def rows(self, queries: Sequence[tuple[str, list[Any]]]) -> list[list[tuple[Any, ...]]]:
            return [[(100, "O1", "O1", None, None, []), (100, "O1", "O1", None, None, [])]]

    with pytest.raises(MappingRuntimeError, match="more than one row for 'O1'"):
        mapper(Twice({})).map_batch([change(1, "oohead", "c", None, head("O1"))])


def test_the_shipped_mappings_compile_against_the_demo_schema() -> None:
    from pathlib import Path

    from mappers.compiler import compile_mapping

    root = Path(__file__).resolve().parents[3]
    demo = Catalog.from_ddl((root / "config/demo/erp_schema.sql").read_text(), "postgres")
    orders = (root / "config/mappings/order_lines.sql").read_text()
    m = compile_joined(orders, parse_mapping(orders, "postgres"), demo, file="order_lines.sql", entity=Order)
    assert {t.qualified for t in m.tables} == {"m3.oohead", "m3.ooline"}
    compile_mapping((root / "config/mappings/order.sql").read_text(), demo)
    assert compile_mapping((root / "config/mappings/customer.sql").read_text(), demo).names[0] == "id"


async def test_delivery_retries_a_transient_source_query(tmp_path: Any) -> None:
    """A multi-table mapping's source query failing transiently is retried: the batch is mapped again."""
    import asyncio
    import re

    from cdc.errors import Transient
    from cdc.journal.sqlite import SqliteJournal
    from cdc.pipeline.delivery import DeliveryStats, run_delivery
    from cdc.types import ChangeEvent

    class Flaky(FakeReader):
        failures = 1

        def rows(self, queries: Sequence[tuple[str, list[Any]]]) -> list[list[tuple[Any, ...]]]:
            if self.failures:
                self.failures -= 1
                raise Transient("OperationalError: the source restarted")
            return super().rows(queries)

    class Sink:
        def __init__(self) -> None:
            self.got: list[JournalRecord] = []

        def open(self) -> None: ...

        def deliver(self, records: list[JournalRecord]) -> None:
            self.got += records

        def close(self) -> None: ...

    journal = SqliteJournal(tmp_path / "journal.db")
    rec = change(1, "oohead", "c", None, head("O1"))
    journal.append("erp", [[ChangeEvent(rec.topic, b"{}", rec.value)]], {"lsn": 1})
    reader = Flaky({(100, "O1        "): ("O1", "C1", "20", [])})
    sink = Sink()
    stats = DeliveryStats()
    await asyncio.wait_for(run_delivery("orders", journal, sink, re.compile(r"erp\..*"), asyncio.Event(),
                                        lambda: journal.end_seq(), stats, mapper=mapper(reader)), 30)
    journal.close()
    assert reader.failures == 0 and len(reader.queries) == 1
    assert [json.loads(r.value or b"")["type"] for r in sink.got] == ["order.upserted"] and stats.cursor == 1
