"""The compiler and runtime semantics on plain values (the oracle tests check them against real servers)."""

from __future__ import annotations

import base64
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from mappers import runtime as rt
from mappers.compiler import compile_mapping
from mappers.errors import MappingError
from mappers.sqltypes import Catalog
from mappers.values import Encoding, EvalError

PG = Catalog.from_ddl("""CREATE TABLE m3.c (cono smallint, cuno char(10), name varchar(36), stat char(2),
    credit numeric(15,2), rgdt integer, ts timestamp(3), tz timestamptz, ok boolean, PRIMARY KEY (cono, cuno))""",
                      "postgres")
MY = Catalog.from_ddl("""CREATE TABLE erp.c (id int PRIMARY KEY, code char(10), name varchar(36), credit decimal(15,2),
    regdate int, created datetime(3), stamp timestamp, d date)""", "mysql")
ROW = {"cono": 100, "cuno": "C1        ", "name": "Nordic", "stat": "20", "credit": "1500.50", "rgdt": 20240131,
       "ts": 1706700000123, "tz": "2024-01-31T11:20:00.000000Z", "ok": True}
MYROW = {"id": 1, "code": "C1", "name": "Nordic", "credit": "1500.50", "regdate": 20240131,
         "created": 1706700000123, "stamp": "2024-01-31T11:20:00Z", "d": 19753}


def pg(expr: str, row: dict[str, Any] | None = None, old: dict[str, Any] | None = None) -> Any:
    return compile_mapping(f"SELECT {expr} AS v FROM m3.c", PG).project(row or ROW, old)[0]


def my(expr: str, row: dict[str, Any] | None = None) -> Any:
    return compile_mapping(f"SELECT {expr} AS v FROM erp.c", MY).project(row or MYROW, None)[0]


def test_event_values_are_decoded_by_column_type() -> None:
    assert pg("credit") == Decimal("1500.50")
    assert pg("ts") == datetime(2024, 1, 31, 11, 20, 0, 123000)
    assert pg("tz").isoformat() == "2024-01-31T11:20:00+00:00"
    assert my("created") == datetime(2024, 1, 31, 11, 20, 0, 123000)
    assert my("stamp") == datetime(2024, 1, 31, 11, 20)
    assert my("d") == date(2024, 1, 31)


def test_precise_decimals_and_connect_timestamps() -> None:
    m = compile_mapping("SELECT credit, ts FROM m3.c", PG, encoding=Encoding(decimal="precise",
                                                                            time_precision="connect"))
    unscaled = base64.b64encode((150010).to_bytes(3, "big", signed=True)).decode()
    expected = (Decimal("1500.10"), datetime(2024, 1, 31, 11, 20, 0, 123000))
    assert m.project({**ROW, "credit": unscaled}, None) == expected


def test_null_propagation_and_three_valued_logic() -> None:
    row = {**ROW, "credit": None, "ok": None}
    assert pg("credit + 1", row) is None
    assert pg("ok AND false", row) is False
    assert pg("ok AND true", row) is None
    assert pg("ok OR true", row) is True
    assert pg("NOT ok", row) is None
    assert pg("cono IN (1, NULL)") is None
    assert pg("cono NOT IN (1, 2)") is True


def test_decimal_and_integer_division_per_dialect() -> None:
    assert pg("rgdt / 7") == 2891447  # integer division truncates in PostgreSQL
    assert pg("credit / 3") == Decimal("500.1666666666666667")
    assert my("7 / 2") == Decimal("3.5000")  # MySQL: scale of the dividend + div_precision_increment
    assert my("7 DIV 2") == 3
    assert my("credit / 0") is None  # MySQL: NULL (with a warning)
    with pytest.raises(EvalError, match="division by zero"):
        pg("credit / 0")
    with pytest.raises(EvalError, match=r"(smallint|integer) out of range"):
        pg("cono * 100000000")


def test_char_padding() -> None:
    assert pg("cuno") == "C1        "  # CHAR keeps its padding when selected
    assert pg("cuno || '|'") == "C1|"  # ... and loses it as text
    assert pg("concat(cuno, '|')") == "C1        |"  # concat() prints it with the output function
    assert pg("cuno = 'C1'") is True
    assert pg("length(cuno)") == 2
    assert my("length('é')") == 2 and my("char_length('é')") == 1


def test_mysql_collation_and_concat() -> None:
    # booleans are MySQL integers; utf8mb4_general_ci compares without case, PAD SPACE
    assert my("name = 'NORDIC  '") == 1
    assert my("name LIKE 'nor%'") == 1
    assert my("CONCAT(name, NULL)") is None
    assert my("CONCAT_WS('-', name, NULL, id)") == "Nordic-1"
    assert my("id = '1abc'") == 1  # a string in numeric context: its numeric prefix


def test_legacy_dates() -> None:
    assert pg("to_date(rgdt::text, 'YYYYMMDD')") == date(2024, 1, 31)
    assert pg("to_date(nullif(rgdt, 0)::text, 'YYYYMMDD')", {**ROW, "rgdt": 0}) is None
    assert my("STR_TO_DATE(regdate, '%Y%m%d')") == date(2024, 1, 31)
    assert my("STR_TO_DATE('20240230', '%Y%m%d')") is None
    with pytest.raises(EvalError, match="out of range"):
        pg("to_date(rgdt::text, 'YYYYMMDD')", {**ROW, "rgdt": 20240230})


def test_previous_image_with_old_qualifier() -> None:
    expr = "CASE WHEN old.stat = '10' AND stat = '20' THEN 'customer.approved' END"
    assert pg(expr, ROW, {**ROW, "stat": "10"}) == "customer.approved"
    assert pg(expr, ROW, None) is None
    assert pg("old.stat", ROW, None) is None


def test_constants_are_folded_at_load_time() -> None:
    m = compile_mapping("SELECT cuno FROM m3.c WHERE rgdt > '20200101'", PG)
    assert "20200101" in m.python and "pg_to_int" not in m.python
    with pytest.raises(MappingError, match='invalid input syntax for type integer: "2020-01-01"'):
        compile_mapping("SELECT cuno FROM m3.c WHERE rgdt > '2020-01-01'", PG)


def test_select_star_and_aliases() -> None:
    m = compile_mapping("SELECT * FROM m3.c x WHERE x.stat = '20'", PG)
    assert m.names[:3] == ("cono", "cuno", "name")
    assert compile_mapping('SELECT cuno AS "customerId", cuno AS Other FROM m3.c', PG).names == ("customerId", "other")


def test_pg_division_scale_matches_numeric_c() -> None:
    assert rt.pg_ndiv(Decimal("1.0"), Decimal("3")) == Decimal("0.33333333333333333333")
    assert str(rt.pg_ndiv(Decimal("10"), Decimal("4.0"))) == "2.5000000000000000"
    assert str(rt.pg_ndiv(Decimal("100000"), Decimal("3.0"))) == "33333.333333333333"


def test_like_escape_and_patterns() -> None:
    assert rt.like("a%b", "a\\%b")
    assert not rt.like("axb", "a\\%b")
    assert rt.like("a.b", "a_b") and not rt.like("ab", "a_b")
    with pytest.raises(EvalError):
        rt.like("a", "a\\")


def test_the_generated_code_is_one_function_without_tree_walking() -> None:
    m = compile_mapping("SELECT TRIM(cuno) AS id, credit * 2 AS c FROM m3.c WHERE stat = '20'", PG)
    assert m.python.startswith("def evaluate(d, od):")
    assert "sqlglot" not in m.python
