"""Oracle: every supported PostgreSQL function and operator, evaluated by the bridge and by PostgreSQL 15.

A table of edge-value rows (NULLs, empty strings, padded CHARs, negative and large decimals, boundary
dates, legacy YYYYMMDD integers and CHARs) is created on a real server. Each row is encoded exactly as
a change event carries it: the server's text output of each column through the capture path's own
converters (`cdc.readers.pgtypes.converter_for`, the default modes). For every expression, the compiled
mapping `SELECT <expr> AS v FROM o` evaluated on each encoded row must equal what PostgreSQL returns for
`SELECT <expr> FROM o` on that row, value and type (Decimal scale included); where PostgreSQL raises
an error for a row, the bridge must raise too. WHERE membership is checked the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.types.string import TextLoader

from cdc.readers.pgtypes import EncodingModes, converter_for
from mappers.catalog import read_pg_catalog
from mappers.compiler import compile_mapping
from mappers.values import Encoding
from tests.servers.postgres import PgServer

DDL = """
CREATE SCHEMA erp;
CREATE TABLE erp.o (
  id int PRIMARY KEY, i int, b bigint, s smallint, n numeric(15,2), nu numeric, n0 numeric(20,0), f float8,
  t text, v varchar(10), c char(5), d date, ts timestamp, ts3 timestamp(3), tz timestamptz, bo boolean,
  ymd int, ymdc char(8), st char(2)
)
"""

ROWS = [
    "(1, 1, 1, 1, 1.50, 1.5, 1, 1.5, 'abc', 'abc', 'ab', '2024-01-31', '2024-01-31 10:20:30.123456', "
    "'2024-01-31 10:20:30.123', '2024-01-31 10:20:30.5+00', true, 20240131, '20240131', '20')",
    "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(3, 0, 0, 0, 0.00, 0, 0, 0, '', '', '', '1970-01-01', '1970-01-01 00:00:00', '1970-01-01 00:00:00', "
    "'1970-01-01 00:00:00+00', false, 0, '00000000', '10')",
    "(4, -7, -9223372036854775808, -32768, -9999999999999.99, -123456789012345678901234567890.123456789, "
    "-12345678901234567890, -2.5, '  padded  ', ' x ', ' a   ', '0001-01-01', '0001-01-01 00:00:00', "
    "'0001-01-01 00:00:00', '0001-01-01 00:00:00+00', false, 19991231, '19991231', '90')",
    "(5, 2147483647, 9223372036854775807, 32767, 9999999999999.99, 0.000000123, 99999999999999999999, 1e300, "
    "'Ünïcödé ß straße', 'ÀÉÎ', 'é', '9999-12-31', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999', "
    "'9999-12-31 23:59:59.999999+00', true, 20240229, '20240229', '20')",
    "(6, 7, 3, 2, 2.50, -2.5, 5, 0.1, 'a%b_c\\d', 'A', 'abcde', '2000-02-29', '2000-02-29 12:00:00', "
    "'2000-02-29 12:00:00.001', '2000-02-29 12:00:00+00', true, 20000229, '2000-02-', '3 ')",
    "(7, -1, 10, -3, -0.01, 1e-20, -1, -0.0, 'ABC', 'abc  ', 'ABC  ', '1999-12-31', '1999-12-31 23:59:59', "
    "'1999-12-31 23:59:59', '1999-12-31 23:59:59.999+00', NULL, 20241301, '2024130x', NULL)",
    "(8, 100, 1000000, 10, 12345.67, 2, 12, 3.0, 'x', NULL, 'xy', '2024-02-29', NULL, NULL, NULL, true, NULL, "
    "'        ', '  ')",
]

# Each entry: an expression, evaluated as `SELECT <expr> FROM erp.o`. Rows where PostgreSQL raises an
# error must raise in the bridge too.
EXPRESSIONS = [
    # columns as they are (CHAR keeps its padding, decimals their scale, timestamps their precision)
    "i", "b", "s", "n", "nu", "n0", "f", "t", "v", "c", "d", "ts", "ts3", "tz", "bo", "ymd", "ymdc",
    # arithmetic, integer division, modulo, decimals
    "i + 1", "i - s", "i * 3", "b + 1", "i / 2", "i / 3", "-i / 2", "i % 3", "-i % 3", "i / NULLIF(s, 0)",
    "i / s", "n + 1", "n - 0.005", "n * n", "n / 3", "n / 7", "nu / 3", "n0 / 7", "n / 0.3", "1.0 / 3",
    "n % 0.7", "n / i", "i / n", "f * 2", "f / 3", "n + f", "i + f", "-n", "-f", "abs(n)", "abs(i)",
    "round(n)", "round(n, 1)", "round(nu, 3)", "round(f)", "ceil(n)", "floor(n)", "ceil(f)", "floor(nu)",
    "round(i)", "n0 * 10", "nu * 1000000", "b - 1", "i * b",
    # comparisons and three-valued logic
    "i = 1", "i <> 1", "i < s", "i >= 0", "n > 1.5", "n = 1.5", "n < i", "f > n", "t = 'abc'", "t < 'b'",
    "t > v", "c = 'ab'", "c = 'ab   '", "c < 'b'", "c = t", "c = v", "st = '3'", "v = 'abc'", "d > '2000-01-01'",
    "d = '2024-01-31'", "ts > '2024-01-01 00:00:00'", "tz > '2000-01-01'", "d < ts", "bo = true", "bo",
    "NOT bo", "bo AND i > 0", "bo OR i > 0", "NOT (bo OR i > 0)", "(i > 0) IS NULL", "i IS NULL",
    "t IS NOT NULL", "bo IS TRUE", "bo IS NOT FALSE", "i IS DISTINCT FROM 1", "c IS NOT DISTINCT FROM 'ab'",
    "i IN (1, 7, -7)", "i NOT IN (1, 7)", "i IN (1, NULL)", "i NOT IN (1, NULL)", "t IN ('abc', 'x')",
    "c IN ('ab', 'xy')", "st IN ('20', '90')", "i IN (s, b)", "i BETWEEN 0 AND 10", "i NOT BETWEEN 0 AND 10",
    "d BETWEEN '2000-01-01' AND '2024-12-31'", "n BETWEEN -1 AND 2",
    # LIKE / ILIKE
    "t LIKE 'a%'", "t LIKE '%b%'", "t LIKE 'a_c'", "t NOT LIKE 'a%'", "c LIKE 'ab'", "c LIKE 'ab%'",
    "t LIKE 'a\\%b%'", "t LIKE 'a!%b%' ESCAPE '!'", "t ILIKE 'AB%'", "v ILIKE '%à%'", "t LIKE ''",
    # strings
    "t || 'x'", "c || 'x'", "c || t", "'[' || c || ']'", "t || i", "i || t", "t || n", "t || d", "t || bo",
    "concat(c, '|')", "concat(t, NULL, i, n, d, bo)", "concat(ts, '|', tz)", "concat_ws('-', t, c, i)",
    "upper(t)", "lower(t)", "upper(c)", "lower(v)", "length(t)", "length(c)", "length(v)", "char_length(c)",
    "octet_length(t)", "octet_length(c)", "trim(t)", "ltrim(t)", "rtrim(t)", "trim(c)", "btrim(t, ' pa')",
    "trim(both 'a' from t)", "trim(leading ' ' from t)", "rtrim(v)", "trim(c) || '|'",
    "substring(t, 2)", "substring(t, 2, 3)", "substring(t, 0, 2)", "substring(t, -1, 3)", "substring(t from 2 for 1)",
    "substr(c, 1, 2)", "substring(t, 2, -1)", "substring(t, i)", "replace(t, 'b', 'XX')", "replace(t, '', 'x')",
    "replace(c, ' ', '_')", "lpad(t, 6)", "lpad(t, 6, '*-')", "rpad(t, 6, '.')", "lpad(t, 2)", "rpad(c, 7, '|')",
    "lpad(t, 0)", "lpad(t, -1)", "lpad(t, 5, '')", "left(t, 2)", "right(t, 2)", "left(t, -1)", "right(t, -1)",
    "position('b' in t)", "strpos(t, 'c')", "coalesce(t, 'none')", "coalesce(c, 'x') || '|'", "coalesce(i, s, 0)",
    "coalesce(n, i)", "coalesce(NULL, t)", "nullif(t, '')", "nullif(c, 'ab')", "nullif(i, 0)", "nullif(ymd, 0)",
    "greatest(i, s)", "least(i, s, 0)", "greatest(t, v)", "least(d, '2000-01-01')",
    # CASE
    "CASE WHEN i > 0 THEN 'pos' WHEN i < 0 THEN 'neg' ELSE 'zero' END",
    "CASE WHEN i > 0 THEN 'pos' END", "CASE st WHEN '20' THEN 'definite' WHEN '90' THEN 'blocked' ELSE st END",
    "CASE WHEN bo THEN n ELSE i END", "CASE i WHEN 1 THEN c ELSE 'other' END", "CASE WHEN NULL THEN 1 ELSE 2 END",
    "CASE WHEN c = 'ab' THEN c END || '|'",
    # CAST
    "CAST(i AS text)", "i::text", "n::text", "nu::text", "f::text", "d::text", "ts::text", "ts3::text", "tz::text",
    "bo::text", "c::text", "c::varchar", "t::char(3)", "t::varchar(2)", "i::char(4)", "t::int", "ymdc::int",
    "st::int", "v::numeric", "n::int", "nu::int", "f::int", "n::numeric(10,1)", "nu::numeric(40,2)",
    "i::numeric(5,2)", "f::numeric", "f::numeric(10,3)", "i::float8", "n::float8", "i::bigint", "b::int",
    "s::smallint", "i::smallint", "t::bool", "i::bool", "bo::int", "ymdc::date", "t::date", "d::timestamp",
    "ts::date", "tz::date", "ts::timestamptz", "ts3::timestamp(0)", "ts::timestamp(3)", "ymd::text::date",
    "'20'::int", "'2024-01-01'::date", "'1.50'::numeric + n", "date '2024-02-29' + 1",
    # dates, legacy YYYYMMDD
    "to_date(ymdc, 'YYYYMMDD')", "to_date(ymd::text, 'YYYYMMDD')", "to_date(nullif(ymd, 0)::text, 'YYYYMMDD')",
    "to_date(t, 'YYYY-MM-DD')", "to_date(ymdc, 'YYYY-MM-DD')", "to_timestamp(ymdc, 'YYYYMMDD')",
    "to_date('31.01.2024', 'DD.MM.YYYY')", "to_char(d, 'YYYYMMDD')", "to_char(ts, 'YYYY-MM-DD HH24:MI:SS')",
    "to_char(d, 'DD.MM.YY')", "d + 1", "d - 1", "d + i", "d - d", "d - '2000-01-01'::date",
    "extract(year from d)", "extract(month from ts)", "extract(day from tz)", "extract(dow from d)",
    "extract(doy from d)", "extract(quarter from d)", "extract(hour from ts)", "extract(second from ts)",
    "extract(epoch from ts)", "extract(epoch from d)", "extract(week from d)", "date_part('year', d)",
]

WHERES = [
    "st = '20'", "st >= '20'", "i > 0 AND bo", "bo OR i IS NULL", "NOT bo", "c LIKE 'a%'",
    "to_date(ymdc, 'YYYYMMDD') > '2000-01-01'", "n BETWEEN 0 AND 100", "coalesce(i, 0) <> 0", "t IN ('abc', 'ABC')",
]

# Where PostgreSQL reads garbage leniently and the bridge refuses the row (an error, never another
# value): to_date()/to_timestamp() with input that does not follow the format.
DIVERGENT = {
    ("to_date(ymdc, 'YYYYMMDD')", 6): "to_date('2000-02-', 'YYYYMMDD') is 2000-01-02 in PostgreSQL",
    ("to_date(ymdc, 'YYYY-MM-DD')", 6): "to_date('2000-02-', 'YYYY-MM-DD') is 2000-02-01 in PostgreSQL",
    ("to_timestamp(ymdc, 'YYYYMMDD')", 6): "to_timestamp('2000-02-', 'YYYYMMDD') is 2000-01-02 in PostgreSQL",
    ("to_date(ymdc, 'YYYYMMDD') > '2000-01-01'", 6): "see to_date(ymdc, 'YYYYMMDD')",
    # dates before year 1 exist in PostgreSQL (year 0000 is 1 BC); the bridge computes years 1-9999
    ("to_date(ymdc, 'YYYYMMDD') > '2000-01-01'", 3): "to_date('00000000', 'YYYYMMDD') is 0001-01-01 BC",
    ("to_date(ymdc, 'YYYYMMDD') > '2000-01-01'", 8): "to_date('', 'YYYYMMDD') is 0001-01-01 BC",
}

SESSION = ("SET DateStyle = 'ISO, MDY'; SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'; "
           "SET extra_float_digits = 1; SET bytea_output = 'hex'; SET lc_monetary = 'C'")


@pytest.fixture(scope="module")
def oracle_db(pg_server: PgServer) -> Iterator[str]:
    name = pg_server.create_database("mapper")
    dsn = pg_server.dsn(name)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(DDL)
        c.execute("INSERT INTO erp.o VALUES " + ", ".join(ROWS))
    try:
        yield dsn
    finally:
        pg_server.drop_database(name)


@pytest.fixture(scope="module")
def encoded_rows(oracle_db: str) -> list[dict[str, Any]]:
    """Each row as a change event's `after` carries it: text output -> the capture path's converters."""
    modes = EncodingModes()
    with psycopg.connect(oracle_db, autocommit=True) as c:
        c.execute(SESSION)
        cols = c.execute("SELECT attname, atttypid::int, atttypmod FROM pg_attribute "
                         "WHERE attrelid = 'erp.o'::regclass AND attnum > 0 ORDER BY attnum").fetchall()
        for _, oid, _ in cols:  # the type output functions' text, as pgoutput sends it (CHAR padded)
            c.adapters.register_loader(oid, TextLoader)
        rows = c.execute("SELECT * FROM erp.o ORDER BY id").fetchall()
    convs = [converter_for(oid, mod, modes, {}) for _, oid, mod in cols]
    return [{name: None if v is None else conv(v) for (name, _, _), conv, v in zip(cols, convs, row, strict=True)}
            for row in rows]


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, Decimal):
        return str(a) == str(b) or (a.is_nan() and b.is_nan())
    if isinstance(a, float) and a != a:
        return bool(b != b)
    return bool(a == b)


def _server_values(dsn: str, expr: str, ids: list[int]) -> dict[int, Any]:
    """id -> value, or -> the error PostgreSQL raised evaluating the row."""
    out: dict[int, Any] = {}
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(SESSION)
        try:
            for rid, value in c.execute(f"SELECT id, {expr} FROM erp.o ORDER BY id").fetchall():
                out[rid] = value
            return out
        except psycopg.Error:
            pass
        for rid in ids:
            try:
                out[rid] = c.execute(f"SELECT {expr} FROM erp.o WHERE id = %s", (rid,)).fetchone()[0]  # type: ignore[index]
            except psycopg.Error as e:
                out[rid] = e
    return out


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_expression_matches_postgres(expr: str, oracle_db: str, encoded_rows: list[dict[str, Any]]) -> None:
    with psycopg.connect(oracle_db) as c:
        catalog = read_pg_catalog(c)
    mapping = compile_mapping(f"SELECT {expr} AS v FROM erp.o", catalog, encoding=Encoding())
    expected = _server_values(oracle_db, expr, [r["id"] for r in encoded_rows])
    problems = []
    for row in encoded_rows:
        want = expected[row["id"]]
        if (expr, row["id"]) in DIVERGENT:
            with pytest.raises(ValueError):
                mapping.project(row, None)
            continue
        try:
            got = mapping.project(row, None)[0]
        except ValueError as e:
            if not isinstance(want, psycopg.Error):
                problems.append(f"row {row['id']}: bridge raised {e!r}, PostgreSQL gave {want!r}")
            continue
        if isinstance(want, psycopg.Error):
            problems.append(f"row {row['id']}: PostgreSQL raised {str(want).strip()!r}, bridge gave {got!r}")
        elif not _same(got, want):
            problems.append(f"row {row['id']}: bridge {got!r} != PostgreSQL {want!r}")
    assert not problems, f"{expr}:\n" + "\n".join(problems)


@pytest.mark.parametrize("where", WHERES)
def test_membership_matches_postgres(where: str, oracle_db: str, encoded_rows: list[dict[str, Any]]) -> None:
    with psycopg.connect(oracle_db) as c:
        catalog = read_pg_catalog(c)
    expected = _server_values(oracle_db, f"({where}) IS TRUE", [r["id"] for r in encoded_rows])
    mapping = compile_mapping(f"SELECT id FROM erp.o WHERE {where}", catalog)
    for row in encoded_rows:
        want = expected[row["id"]]
        if isinstance(want, psycopg.Error) or (where, row["id"]) in DIVERGENT:
            with pytest.raises(ValueError):
                mapping.evaluate(row, None)
        else:
            assert (mapping.evaluate(row, None) is not None) == want, (where, row["id"])
