"""Membership, transitions, CloudEvents and entity checks of `SqlMapper` on synthetic change events."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest

from cdc.config import load_connectors
from cdc.config.sinks import ENTITY_NAMES
from cdc.errors import ConfigError
from cdc.types import JournalRecord
from mappers.compiler import compile_mapping
from mappers.entities import ENTITIES, Customer, export_schemas
from mappers.errors import MappingRuntimeError
from mappers.mapper import SqlMapper
from mappers.sqltypes import Catalog

CAT = Catalog.from_ddl("""CREATE TABLE m3.c (cono smallint, cuno char(10), name varchar(36), stat char(2),
    credit numeric(15,2), rgdt integer, note text, PRIMARY KEY (cono, cuno))""", "postgres")
MAPPING = """SELECT TRIM(cuno) AS id, name, stat AS status, credit AS credit_limit,
  CASE WHEN old.stat = '10' AND stat = '20' THEN 'customer.approved' END AS _type
FROM m3.c WHERE stat IN ('20', '30')"""
ROW = {"cono": 100, "cuno": "C1        ", "name": "Nordic", "stat": "20", "credit": "10.50", "rgdt": 0, "note": "x"}
SOURCE = {"name": "erp", "schema": "m3", "table": "c", "lsn": 4242, "ts_us": 1706700000123456}


def mapper(entity: bool = True, sql: str = MAPPING) -> SqlMapper:
    return SqlMapper(compile_mapping(sql, CAT, file="c.sql"), topic="erp.m3.c", name="crm",
                     entity=Customer if entity else None, connector="erp-pg")


def record(op: str, before: dict[str, Any] | None, after: dict[str, Any] | None, lsn: int = 4242) -> JournalRecord:
    value = orjson.dumps({"before": before, "after": after, "op": op, "source": {**SOURCE, "lsn": lsn}})
    return JournalRecord(7, "erp.m3.c", b'{"cono":100}', value)


def events(m: SqlMapper, rec: JournalRecord) -> list[dict[str, Any]]:
    return [json.loads(e.value or b"") for e in m.map(rec)]


def types(m: SqlMapper, rec: JournalRecord) -> list[str]:
    return [e["type"] for e in events(m, rec)]


def test_cloudevent_attributes() -> None:
    (ev,) = events(mapper(), record("c", None, ROW))
    assert ev["specversion"] == "1.0" and ev["type"] == "customer.upserted" and ev["subject"] == "C1"
    assert ev["source"] == "/erp/m3/c" and ev["time"] == "2024-01-31T11:20:00.123456Z"
    assert ev["dataschema"] == "urn:erp-cdc:entity:customer:v1"
    assert ev["data"] == {"id": "C1", "name": "Nordic", "status": "20", "credit_limit": "10.50"}
    assert len(ev["id"]) == 32
    # deterministic: the same change gives the same id, another position another one
    assert events(mapper(), record("c", None, ROW))[0]["id"] == ev["id"]
    assert events(mapper(), record("c", None, ROW, lsn=1))[0]["id"] != ev["id"]


def test_membership_transitions() -> None:
    m = mapper()
    out = {**ROW, "stat": "90"}
    assert types(m, record("r", None, ROW)) == ["customer.upserted"]
    assert types(m, record("c", None, out)) == []
    assert types(m, record("u", ROW, out)) == ["customer.deleted"]
    assert types(m, record("u", out, ROW)) == ["customer.upserted"]
    assert types(m, record("u", {**ROW, "stat": "10"}, ROW)) == ["customer.approved"]
    assert types(m, record("u", ROW, {**ROW, "note": "unmapped"})) == []
    assert types(m, record("u", ROW, {**ROW, "credit": "11.00"})) == ["customer.upserted"]
    assert types(m, record("d", ROW, None)) == ["customer.deleted"]
    assert types(m, record("d", out, None)) == []
    assert types(m, record("u", ROW, {**ROW, "cuno": "C2        "})) == ["customer.deleted", "customer.upserted"]
    assert types(m, record("t", None, None)) == []


def test_without_a_before_image() -> None:
    m = mapper()
    assert types(m, record("u", None, ROW)) == ["customer.upserted"]
    assert types(m, record("u", None, {**ROW, "stat": "90"})) == ["customer.deleted"]
    key_only = {"cono": 100, "cuno": "C1        ", "name": None, "stat": None, "credit": None, "rgdt": None,
                "note": None}
    (ev,) = events(m, record("d", key_only, None))
    assert ev["type"] == "customer.deleted" and ev["data"] == {"id": "C1"} and "dataschema" not in ev


def test_free_form_mapping_uses_the_sink_name() -> None:
    m = mapper(entity=False, sql="SELECT cono, TRIM(cuno) AS customer, rgdt FROM m3.c")
    (ev,) = events(m, record("c", None, ROW))
    assert ev["type"] == "crm.upserted" and ev["subject"] == "100" and ev["data"]["rgdt"] == 0
    boolean = mapper(entity=False, sql="SELECT cono = 100 AS big, TRIM(cuno) AS customer FROM m3.c")
    assert [e["subject"] for e in events(boolean, record("c", None, ROW))] == ["true"]  # not str(True)


def test_runtime_errors_name_the_row() -> None:
    m = mapper(entity=False, sql="SELECT TRIM(cuno) AS id, to_date(rgdt::text, 'YYYYMMDD') AS d FROM m3.c")
    with pytest.raises(MappingRuntimeError, match=r"c.sql:1:26: field d: .*journal seq 7.*key \{\"cono\":100\}"):
        m.map(record("c", None, {**ROW, "rgdt": 20240230}))
    with pytest.raises(MappingRuntimeError, match="business key"):
        mapper().map(record("c", None, {**ROW, "cuno": None}))


def test_entity_names_match_the_config_vocabulary(tmp_path: Path) -> None:
    assert tuple(ENTITIES) == ENTITY_NAMES
    paths = export_schemas(tmp_path)
    assert {p.name for p in paths} == {f"{n.lower()}.v1.schema.json" for n in ENTITY_NAMES}
    schema = json.loads((tmp_path / "customer.v1.schema.json").read_text())
    assert schema["$id"] == "urn:erp-cdc:entity:customer:v1" and "id" in schema["required"]


def test_sink_config_resolves_the_mapping_relative_to_its_file(tmp_path: Path) -> None:
    (tmp_path / "conf" / "maps").mkdir(parents=True)
    (tmp_path / "conf" / "maps" / "c.sql").write_text(MAPPING)
    sink = tmp_path / "conf" / "sink.json"
    sink.write_text(json.dumps({"name": "s", "config": {"connector.class": "FileStreamSink", "file": "out.jsonl",
                                                        "topics": "erp.m3.c", "mapper.sql": "maps/c.sql",
                                                        "mapper.entity": "customer", "mapper.key": "id"}}))
    (cfg,) = load_connectors([sink])
    assert cfg.mapper_sql == tmp_path / "conf" / "maps" / "c.sql"  # type: ignore[union-attr]
    assert cfg.mapper_entity == "Customer" and cfg.mapper_key == ("id",)  # type: ignore[union-attr]
    sink.write_text(json.dumps({"name": "s", "config": {"connector.class": "FileStreamSink", "file": "o",
                                                        "topics": "t", "mapper.sql": "maps/none.sql",
                                                        "mapper.entity": "Custmer"}}))
    with pytest.raises(ConfigError) as e:
        load_connectors([sink])
    text = "\n".join(e.value.problems)
    assert "property 'mapper.sql' = 'maps/none.sql' is not a readable file" in text
    assert "(did you mean 'Customer'?)" in text


def test_event_bytes_equal_the_reference_cloudevent() -> None:
    """The concatenated CloudEvent equals the dict-and-orjson reference, and entity data written without
    pydantic equals what pydantic validation gives."""
    from mappers.cloudevents import cloudevent, commit_time, event_id, source_uri
    from mappers.entities import validate

    m = mapper(sql="SELECT TRIM(cuno) AS id, name, stat AS status, credit AS credit_limit, "
                   "TO_DATE(NULLIF(rgdt, 0)::text, 'YYYYMMDD') AS registered_on, stat = '20' AS active FROM m3.c")
    for row in (ROW, {**ROW, "name": None, "credit": "-0.00", "rgdt": 20240229},
                {**ROW, "credit": "12345678901234.5", "rgdt": 0, "name": 'quote " and \\ é'}):
        (got,) = m.map(record("c", None, row))
        vals = m.compiled.project(row, None)
        data = validate(Customer, dict(zip(m.compiled.names, vals, strict=True)))
        subject = vals[0]
        source = {**SOURCE, "lsn": 4242}
        id_ = event_id("erp-pg", "lsn:4242", "c", subject, "customer.upserted", m.compiled.fingerprint)
        assert got.value == cloudevent(id_, source_uri(source), "customer.upserted", subject, commit_time(source), data,
                                       "urn:erp-cdc:entity:customer:v1")
    free = mapper(entity=False, sql="SELECT TRIM(cuno) AS id, credit * 1000000 AS big, rgdt FROM m3.c")
    (ev,) = events(free, record("c", None, {**ROW, "credit": "1E+3"}))
    assert ev["data"] == {"id": "C1", "big": "1000000000", "rgdt": 0}, "decimals in plain notation"


def test_required_entity_fields_are_checked_per_event() -> None:
    compiled = compile_mapping("SELECT TRIM(cuno) AS country, name AS id FROM m3.c", CAT, file="c.sql")
    m = SqlMapper(compiled, topic="erp.m3.c", name="crm", entity=Customer, key=("country",), connector="erp-pg")
    with pytest.raises(MappingRuntimeError, match="not a valid Customer v1: id: is required, and NULL in this row"):
        m.map(record("c", None, {**ROW, "name": None}))


def test_an_update_of_unread_columns_is_not_evaluated() -> None:
    m = mapper(entity=False, sql="SELECT TRIM(cuno) AS id, credit FROM m3.c WHERE stat = '20'")
    assert m._unchanged is not None and types(m, record("u", ROW, {**ROW, "note": "other"})) == []
    assert types(m, record("u", ROW, {**ROW, "credit": "1.00"})) == ["crm.upserted"]
    assert mapper()._unchanged is None, "old.* and _type can make an event of an unchanged row"


MY_CAT = Catalog.from_ddl("""CREATE TABLE erp.c (cono smallint, cuno char(10), name varchar(36), stat char(2),
    credit decimal(15,2), rgdt int, note text, PRIMARY KEY (cono, cuno))""", "mysql")


def test_map_events_equals_the_parsed_cloudevents_of_map_batch() -> None:
    """Events built from their parts equal `parse_sink_event` of `map_batch`'s CloudEvents, field by field,
    and the envelope shortcut changes no byte: over custom types, deletes, key changes, entities, MySQL."""
    from cdc.readers.mysqlevents import EnvelopeMaker, Origin
    from cdc.readers.pgevents import TxInfo, assemble, change_parts, key_function
    from cdc.types import parse_sink_event

    rnd = random.Random(3)
    key = key_function(["cono", "cuno"])

    def row(i: int) -> dict[str, Any]:
        return {**ROW, "cuno": f"C{i % 7}        ", "stat": rnd.choice(("10", "20", "30", "90")),
                "credit": rnd.choice(("1.00", "-0.50", None)), "name": rnd.choice(("a", 'q"\\', None))}

    parts = []
    for i in range(300):
        op = rnd.choice("crrud")
        before, after = row(i), row(i + rnd.randint(0, 1))
        parts += change_parts(1, op, "erp.m3.c", "m3", "c", key, None if op in "cr" else before,
                              None if op == "d" else after, 1000 + i)
    changes = [e for n in range(0, len(parts), 50) for e in assemble(
        parts[n:n + 50], TxInfo("erp", "erp", n, 1706700000123456 + n, None), 1706700001000)]
    pg = [JournalRecord(seq, c.topic, c.key, c.value) for seq, c in enumerate(changes, start=1)]
    pg[100:100] = [record("u", ROW, {**ROW, "cuno": "C2        "}), record("u", {**ROW, "stat": "10"}, ROW)]
    maker = EnvelopeMaker("mysql", "erp", True)
    origin = Origin("erp", "c", "erp.erp.c", 1_795_499_832, 1, None, "binlog.000003", 4242, None)
    mine = [e for op in "cud" for e in maker.events(origin, key, op, [
        (None if op == "c" else row(i), None if op == "d" else row(i + 1)) for i in range(20)], 1_795_499_900_000)]
    my = [JournalRecord(seq, "erp.erp.c", c.key, c.value) for seq, c in enumerate(mine, start=1)]
    factories: list[tuple[Callable[[], SqlMapper], list[JournalRecord]]] = [
        (mapper, pg), (lambda: mapper(entity=False), pg),
        (lambda: SqlMapper(compile_mapping(MAPPING.replace("m3.c", "erp.c"), MY_CAT, file="c.sql"),
                           topic="erp.erp.c", name="crm", connector="erp-my"), my)]
    for make, records in factories:
        m = make()
        batch = m.map_batch(records)
        events = make().map_events(records)
        assert events == [parse_sink_event(r.seq, r.value or b"") for r in batch]
        assert {e.type for e in events} >= {f"{m.name}.upserted", f"{m.name}.deleted"} | (
            {"customer.approved"} if m.entity else set())
        if records is pg:
            assert any(a.seq == b.seq and a.type != b.type for a, b in pairwise(events))
        plain = make()  # every event parsed in full: the envelope shortcut changes no byte
        plain._parse = orjson.loads
        assert [(r.seq, r.key, r.value) for r in plain.map_batch(records)] == [(r.seq, r.key, r.value) for r in batch]


def test_map_events_raises_as_map_batch_raises() -> None:
    m = mapper(entity=False, sql="SELECT TRIM(cuno) AS id, to_date(rgdt::text, 'YYYYMMDD') AS d FROM m3.c")
    bad = [record("c", None, ROW), record("c", None, {**ROW, "rgdt": 20240230})]
    errors = []
    for call in (m.map_batch, m.map_events):
        with pytest.raises(MappingRuntimeError) as e:
            call(bad)
        errors.append(str(e.value))
    assert errors[0] == errors[1] and "journal seq 7" in errors[0]
