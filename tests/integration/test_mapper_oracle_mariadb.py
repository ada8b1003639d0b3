"""Oracle: every supported MySQL-dialect function and operator, evaluated by the bridge and by MariaDB 10.11.

Edge-value rows (NULLs, empty strings, CHARs, negative and large decimals, boundary dates, legacy
YYYYMMDD integers and CHARs) live in a real server's table. Each row is encoded as the binlog reader
puts it in a change event, built from the server's own SELECT output with Debezium's MySQL encodings
(`mappers.sample.encode_mysql_value`: DECIMAL as a string, DATE as epoch days, DATETIME(0-3) in ms and
(4-6) in µs, TIMESTAMP as an ISO UTC string, TIME in µs) -- not from the reader, which is built
separately. For every expression, the compiled mapping must return what MariaDB returns for the same
SELECT on that row (value and type, Decimal scale included; MySQL booleans are integers).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pymysql
import pytest

from mappers.catalog import read_mysql_catalog
from mappers.compiler import compile_mapping
from mappers.sample import encode_mysql_value
from mappers.values import Encoding
from tests.servers.mariadb import MariaDbServer

DDL = """
CREATE TABLE o (
  id int PRIMARY KEY, i int, b bigint, n decimal(15,2), n6 decimal(20,6), f double, t varchar(40), c char(5),
  d date, dt datetime, dt3 datetime(3), dt6 datetime(6), ts timestamp NULL, ymd int, ymdc char(8),
  st char(2), cb varchar(10) COLLATE utf8mb4_bin
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_general_ci
"""

ROWS = [
    "(1, 1, 1, 1.50, 1.5, 1.5, 'abc', 'ab', '2024-01-31', '2024-01-31 10:20:30', '2024-01-31 10:20:30.123', "
    "'2024-01-31 10:20:30.123456', '2024-01-31 10:20:30', 20240131, '20240131', '20', 'Abc')",
    "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(3, 0, 0, 0.00, 0, 0, '', '', '1970-01-02', '1970-01-02 00:00:00', '1970-01-02 00:00:00', "
    "'1970-01-02 00:00:00', '1970-01-02 00:00:00', 0, '00000000', '10', '')",
    "(4, -7, -9223372036854775808, -9999999999999.99, -12345678901234.123456, -2.5, '  padded  ', ' a', "
    "'1000-01-01', '1000-01-01 00:00:00', '1000-01-01 00:00:00', '1000-01-01 00:00:00', '1970-01-02 00:00:01', "
    "19991231, '19991231', '90', 'abc')",
    "(5, 2147483647, 9223372036854775807, 9999999999999.99, 0.000001, 1e300, 'Ünïcödé ß straße', 'é', "
    "'9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999', '9999-12-31 23:59:59.999999', "
    "'2038-01-19 03:14:07', 20240229, '20240229', '20', 'ABC')",
    "(6, 7, 3, 2.50, -2.5, 0.1, 'a%b_c', 'A', '2000-02-29', '2000-02-29 12:00:00', '2000-02-29 12:00:00.001', "
    "'2000-02-29 12:00:00.000001', '2000-02-29 12:00:00', 20000229, '2000-02-', '3', 'x')",
    "(7, -1, 10, -0.01, 0.5, -0.0, 'ABC', 'ABC', '1999-12-31', '1999-12-31 23:59:59', '1999-12-31 23:59:59', "
    "'1999-12-31 23:59:59', NULL, 20241301, '2024130x', NULL, 'é')",
]

EXPRESSIONS = [
    # columns
    "i", "b", "n", "n6", "f", "t", "c", "d", "dt", "dt3", "dt6", "ts", "ymd", "ymdc", "cb",
    # arithmetic: '/' is exact with 4 more digits, DIV integer, NULL on division by zero
    "i + 1", "i - 3", "i * 2", "n + 1", "n - 0.005", "n * n", "i / 2", "i / 3", "-i / 2", "n / 3", "n6 / 7",
    "n / 0.3", "i DIV 2", "-i DIV 2", "n DIV 1", "i % 3", "-i % 3", "i MOD 3", "n % 0.7", "i / 0", "i DIV 0",
    "i % 0", "f * 2", "f / 3", "n + f", "-n", "-i", "abs(n)", "abs(i)", "round(n)", "round(n, 1)", "round(i)",
    "ceil(n)", "floor(n)", "t + 1", "c * 2",
    # comparisons, three-valued logic, collations
    "i = 1", "i <> 1", "i < 2", "n > 1.5", "n = 1.5", "t = 'abc'", "t = 'ABC'", "t = 'abc  '", "t < 'b'",
    "c = 'ab'", "c = 'A'", "cb = 'abc'", "cb < 'b'", "t = c", "i = '1'", "i = '1abc'", "n = '1.50'",
    "d = '2024-01-31'", "d > '2000-01-01'", "dt > '2000-01-01 00:00:00'", "d < dt",
    "i > 0 AND t = 'abc'", "i > 0 OR t IS NULL", "NOT (i > 0)", "i IS NULL", "t IS NOT NULL", "i <=> NULL",
    "i <=> 1", "i IN (1, 7, -7)", "i NOT IN (1, 7)", "i IN (1, NULL)", "t IN ('ABC', 'x')", "st IN ('20', '90')",
    "i BETWEEN 0 AND 10", "i NOT BETWEEN 0 AND 10", "d BETWEEN '2000-01-01' AND '2024-12-31'",
    "i XOR 1", "(i > 0) IS TRUE", "i AND 1", "t AND 1",
    # LIKE under the column's collation
    "t LIKE 'a%'", "t LIKE 'A%'", "t LIKE '%b%'", "t LIKE 'a_c'", "t NOT LIKE 'a%'", "c LIKE 'a%'",
    "cb LIKE 'a%'", "t LIKE 'a\\%b%'", "t LIKE 'a!%b%' ESCAPE '!'",
    # strings
    "CONCAT(t, 'x')", "CONCAT(t, NULL)", "CONCAT(c, '|')", "CONCAT(i, '-', n, '-', d)", "CONCAT(dt3, '|', dt6)",
    "CONCAT(ts, '')", "CONCAT_WS('-', t, c, i)", "CONCAT_WS('-', NULL, t)", "UPPER(t)", "LOWER(t)", "UCASE(c)",
    "LENGTH(t)", "CHAR_LENGTH(t)", "OCTET_LENGTH(c)", "LENGTH(i)", "TRIM(t)", "LTRIM(t)", "RTRIM(t)",
    "TRIM(BOTH 'a' FROM t)", "TRIM(LEADING 'ab' FROM t)", "TRIM(TRAILING ' ' FROM t)", "SUBSTRING(t, 2)",
    "SUBSTRING(t, 2, 3)", "SUBSTRING(t, 0, 2)", "SUBSTRING(t, -3, 2)", "SUBSTR(t, -1)", "MID(t, 2, 2)",
    "SUBSTRING(t, 2, -1)", "REPLACE(t, 'b', 'XX')", "REPLACE(t, '', 'x')", "LPAD(t, 6, '*-')", "RPAD(t, 6, '.')",
    "LPAD(t, 2, 'x')", "LPAD(t, 5, '')", "LPAD(t, -1, 'x')", "LEFT(t, 2)", "RIGHT(t, 2)", "LEFT(t, -1)",
    "LOCATE('b', t)", "INSTR(t, 'B')", "COALESCE(t, 'none')", "IFNULL(i, 0)", "COALESCE(n, i)", "NULLIF(t, '')",
    "NULLIF(i, 0)", "IF(i > 0, 'pos', 'neg')", "IF(i, t, c)", "GREATEST(i, 0)", "LEAST(i, 0, -1)",
    # CASE
    "CASE WHEN i > 0 THEN 'pos' WHEN i < 0 THEN 'neg' ELSE 'zero' END", "CASE WHEN i > 0 THEN 'pos' END",
    "CASE st WHEN '20' THEN 'definite' WHEN '90' THEN 'blocked' ELSE st END",
    # CAST
    "CAST(i AS CHAR)", "CAST(n AS CHAR)", "CAST(d AS CHAR)", "CAST(dt3 AS CHAR)", "CAST(t AS SIGNED)",
    "CAST(ymdc AS SIGNED)", "CAST(n AS SIGNED)", "CAST(f AS SIGNED)", "CAST(n AS DECIMAL(10,1))",
    "CAST(n6 AS DECIMAL(6,2))", "CAST(i AS DECIMAL(5,2))", "CAST(t AS DECIMAL(10,2))", "CAST(ymdc AS DATE)",
    "CAST(ymd AS DATE)", "CAST(dt AS DATE)", "CAST(d AS DATETIME)", "CAST(t AS CHAR(2))",
    # dates, legacy YYYYMMDD
    "STR_TO_DATE(ymdc, '%Y%m%d')", "STR_TO_DATE(ymd, '%Y%m%d')", "STR_TO_DATE(NULLIF(ymd, 0), '%Y%m%d')",
    "STR_TO_DATE(t, '%d.%m.%Y')", "STR_TO_DATE('31.01.2024', '%d.%m.%Y')", "DATE_FORMAT(d, '%Y%m%d')",
    "DATE_FORMAT(dt, '%Y-%m-%d %H:%i:%s')", "YEAR(d)", "MONTH(dt)", "DAY(d)", "DAYOFMONTH(dt3)", "QUARTER(d)",
    "DATE(dt)", "DATEDIFF(d, '2000-01-01')", "DATEDIFF(dt, d)", "DATE_ADD(d, INTERVAL 1 DAY)",
    "DATE_SUB(d, INTERVAL 1 MONTH)", "DATE_ADD(d, INTERVAL 1 YEAR)", "DATE_ADD(dt, INTERVAL 2 HOUR)",
    "EXTRACT(YEAR FROM d)", "EXTRACT(MONTH FROM dt)",
]

# Zero and invalid dates: MariaDB returns '0000-00-00' (or '2024-02-30') where the bridge gives NULL,
# as a change event carries NULL for zero dates (Debezium's encoding) and cannot carry invalid ones.
DIVERGENT: dict[tuple[str, int], str] = {
    ("CAST(ymdc AS DATE)", 3): "'00000000' is the zero date",
    ("CAST(ymd AS DATE)", 3): "0 is the zero date",
    ("STR_TO_DATE(ymdc, '%Y%m%d')", 3): "'00000000' is the zero date",
    ("STR_TO_DATE(ymd, '%Y%m%d')", 3): "MariaDB reads 0 as '2000-00-00', an invalid date",
    ("STR_TO_DATE(t, '%d.%m.%Y')", 3): "'' is the zero date",
}


@pytest.fixture(scope="module")
def oracle_db(my_server: MariaDbServer) -> Iterator[str]:
    name = my_server.create_database("mapper")
    with my_server.connect(name) as c, c.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(DDL)
        cur.execute("INSERT INTO o VALUES " + ", ".join(ROWS))
    try:
        yield name
    finally:
        my_server.drop_database(name)


@pytest.fixture(scope="module")
def catalog_rows(my_server: MariaDbServer, oracle_db: str) -> tuple[Any, list[dict[str, Any]]]:
    with my_server.connect(oracle_db) as c:
        catalog = read_mysql_catalog(c)
        with c.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute("SELECT * FROM o ORDER BY id")
            names = [d[0] for d in cur.description or ()]
            rows = cur.fetchall()
    (table,) = catalog.find(oracle_db, "o")
    types = {col.name: col.type for col in table.columns}
    enc = Encoding(time_precision="adaptive_time_microseconds")
    encoded = [{n: encode_mysql_value(v, types[n], enc) for n, v in zip(names, row, strict=True)} for row in rows]
    return catalog, encoded


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool):
        a = int(a)
    if type(a) is not type(b):
        return False
    if isinstance(a, Decimal):
        return str(a) == str(b)
    return bool(a == b)


def _server_values(srv: MariaDbServer, db: str, expr: str) -> dict[int, Any]:
    out: dict[int, Any] = {}
    with srv.connect(db) as c, c.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        for rid in range(1, len(ROWS) + 1):
            try:
                cur.execute(f"SELECT {expr} FROM o WHERE id = {rid}")  # no parameters: '%' stays literal
                row = cur.fetchone()
                out[rid] = row[0] if row is not None else None
            except pymysql.MySQLError as e:
                out[rid] = e
    return out


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_expression_matches_mariadb(expr: str, my_server: MariaDbServer, oracle_db: str,
                                    catalog_rows: tuple[Any, list[dict[str, Any]]]) -> None:
    catalog, rows = catalog_rows
    mapping = compile_mapping(f"SELECT {expr} AS v FROM o", catalog, encoding=Encoding(
        time_precision="adaptive_time_microseconds"))
    expected = _server_values(my_server, oracle_db, expr)
    problems = []
    for row in rows:
        want = expected[row["id"]]
        try:
            got = mapping.project(row, None)[0]
        except ValueError as e:
            if not isinstance(want, pymysql.MySQLError):
                problems.append(f"row {row['id']}: bridge raised {e!r}, MariaDB gave {want!r}")
            continue
        if isinstance(want, pymysql.MySQLError):
            problems.append(f"row {row['id']}: MariaDB raised {want!r}, bridge gave {got!r}")
        elif isinstance(want, str) and got is None and (expr, row["id"]) in DIVERGENT:
            continue
        elif not _same(got, want):
            problems.append(f"row {row['id']}: bridge {got!r} != MariaDB {want!r}")
    assert not problems, f"{expr}:\n" + "\n".join(problems)
