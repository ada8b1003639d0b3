"""Real MariaDB 10.11: every column type through the row binlog, decoded by RowDecoder, checked against
what the server itself returns.

Rows of edge values are inserted, updated and deleted; the binlog is read with BinLogStreamReader (the
library parses the protocol and the table maps, RowDecoder the row bytes) under several encoding modes,
with the C fast path and with its pure-Python twin. Each decoded image is compared with the row as the
server returns it by SELECT before and after each statement, turned into Debezium's encoding by this
test's own arithmetic (epoch days and microseconds, Java BigDecimal text, base64 ...) and, for FLOAT and
BIT, by server-side expressions (CAST(f AS DOUBLE), CAST(b AS UNSIGNED)).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import struct
import zlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from cdc.readers import binlogrows
from cdc.readers.binlogrows import MyEncodingModes, RowDecoder, binlog_columns, event_span
from cdc.readers.mysqlschema import ColumnDef, TableSchema
from tests.servers.mariadb import MariaDbServer

C = ColumnDef
COLUMNS: tuple[ColumnDef, ...] = (
    C("id", "int", nullable=False),
    C("c_bool", "tinyint", 1), C("c_tiny", "tinyint"), C("c_utiny", "tinyint", unsigned=True),
    C("c_small", "smallint"), C("c_usmall", "smallint", unsigned=True),
    C("c_medium", "mediumint"), C("c_umedium", "mediumint", unsigned=True),
    C("c_int", "int"), C("c_uint", "int", unsigned=True), C("c_big", "bigint"), C("c_ubig", "bigint", unsigned=True),
    C("c_dec", "decimal", 12, 2), C("c_dec_big", "decimal", 65, 30), C("c_dec0", "decimal", 20, 0),
    C("c_dec_tiny", "decimal", 20, 10),
    C("c_float", "float"), C("c_float_md", "float", 7, 2), C("c_double", "double"),
    C("c_char", "char", 10, charset="utf8mb4"), C("c_varchar", "varchar", 100, charset="utf8mb4"),
    C("c_text", "text", charset="utf8mb4"), C("c_latin", "varchar", 40, charset="latin1"),
    C("c_latin_char", "char", 5, charset="latin1"), C("c_long_text", "longtext", charset="utf8mb4"),
    C("c_blob", "blob"), C("c_binary", "binary", 6), C("c_varbinary", "varbinary", 20),
    C("c_date", "date"), C("c_date_nn", "date", nullable=False), C("c_datetime", "datetime", 6),
    C("c_datetime0", "datetime"), C("c_datetime3", "datetime", 3),
    C("c_ts", "timestamp", 6), C("c_ts0", "timestamp"), C("c_ts3", "timestamp", 3),
    C("c_time", "time"), C("c_time6", "time", 6), C("c_time2", "time", 2),
    C("c_year", "year"), C("c_enum", "enum", values=("small", "médium", "large")),
    C("c_set", "set", values=("a", "b", "c", "d")), C("c_bit1", "bit", 1), C("c_bit12", "bit", 12),
    C("c_bit64", "bit", 64), C("c_json", "json", charset="utf8mb4"), C("c_point", "point"),
    C("c_geom", "geometry"),
)

DDL = """CREATE TABLE t (
  id int NOT NULL PRIMARY KEY,
  c_bool boolean, c_tiny tinyint, c_utiny tinyint unsigned, c_small smallint, c_usmall smallint unsigned,
  c_medium mediumint, c_umedium mediumint unsigned, c_int int, c_uint int unsigned, c_big bigint,
  c_ubig bigint unsigned,
  c_dec decimal(12,2), c_dec_big decimal(65,30), c_dec0 decimal(20,0), c_dec_tiny decimal(20,10),
  c_float float, c_float_md float(7,2), c_double double,
  c_char char(10), c_varchar varchar(100), c_text text, c_latin varchar(40) CHARACTER SET latin1,
  c_latin_char char(5) CHARACTER SET latin1, c_long_text longtext,
  c_blob blob, c_binary binary(6), c_varbinary varbinary(20),
  c_date date, c_date_nn date NOT NULL DEFAULT '2000-01-01', c_datetime datetime(6), c_datetime0 datetime,
  c_datetime3 datetime(3),
  c_ts timestamp(6) NULL, c_ts0 timestamp NULL, c_ts3 timestamp(3) NULL,
  c_time time, c_time6 time(6), c_time2 time(2),
  c_year year, c_enum enum('small','médium','large'), c_set set('a','b','c','d'),
  c_bit1 bit(1), c_bit12 bit(12), c_bit64 bit(64), c_json json, c_point point, c_geom geometry
) DEFAULT CHARSET=utf8mb4"""

NAMES = [c.name for c in COLUMNS]

ROW_1 = {
    "id": 1, "c_bool": 1, "c_tiny": -5, "c_utiny": 200, "c_small": -300, "c_usmall": 60000, "c_medium": -70000,
    "c_umedium": 16000000, "c_int": -123456, "c_uint": 4000000000, "c_big": -9000000000,
    "c_ubig": 18446744073709551615, "c_dec": "-1234.50",
    "c_dec_big": "12345678901234567890.123456789012345678901234567890",
    "c_dec0": "-98765432109876543210", "c_dec_tiny": "0.0000000001", "c_float": 1.1, "c_float_md": 3.14,
    "c_double": 0.30000000000000004, "c_char": "ab  ", "c_varchar": "emoji 😀 é ü", "c_text": "text\nwith\ttabs \"q\"",
    "c_latin": "café €uro \u201a ", "c_latin_char": "Àé", "c_long_text": "x" * 70000,
    "c_blob": b"\x00\x01\xff blob", "c_binary": b"ab", "c_varbinary": b"\x00\xfe\x00",
    "c_date": "2024-02-29", "c_date_nn": "1969-12-31", "c_datetime": "2024-02-29 23:59:59.999999",
    "c_datetime0": "1000-01-01 00:00:00", "c_datetime3": "1969-07-20 20:17:40.123",
    "c_ts": "2026-11-24 05:57:12.097831", "c_ts0": "2038-01-19 03:14:07", "c_ts3": "1970-01-01 00:00:01.5",
    "c_time": "-838:59:59", "c_time6": "-00:00:00.000001", "c_time2": "100:00:00.5",
    "c_year": 2155, "c_enum": "médium", "c_set": "a,d", "c_bit1": 1, "c_bit12": 0b101000000011,
    "c_bit64": 0xFFFFFFFFFFFFFFFF, "c_json": '{"k": [1, 2.5, "s", null, true], "é": {}}',
    "c_point": "POINT(1.5 -2)", "c_geom": "LINESTRING(0 0, 1 1, 2 0)",
}
ROW_2 = {
    "id": 2, "c_bool": 0, "c_tiny": -128, "c_utiny": 0, "c_small": -32768, "c_usmall": 0, "c_medium": -8388608,
    "c_umedium": 0, "c_int": -2147483648, "c_uint": 0, "c_big": -9223372036854775808, "c_ubig": 0,
    "c_dec": "-9999999999.99", "c_dec_big": "-0.000000000000000000000000000001", "c_dec0": "0", "c_dec_tiny": "0",
    "c_float": -3.4028234663852886e38, "c_float_md": -99999.99, "c_double": -1.7976931348623157e308,
    "c_char": "", "c_varchar": "", "c_text": "", "c_latin": "\x81\x8d\x8f\x90\x9d", "c_latin_char": "",
    "c_long_text": "", "c_blob": b"", "c_binary": b"\x00" * 6, "c_varbinary": b"",
    "c_date": "1000-01-01", "c_date_nn": "9999-12-31", "c_datetime": "1000-01-01 00:00:00.000001",
    "c_datetime0": "9999-12-31 23:59:59", "c_datetime3": "2000-01-01 00:00:00.001",
    "c_ts": "1970-01-01 00:00:01", "c_ts0": "1970-01-01 00:00:01", "c_ts3": "2038-01-19 03:14:07.999",
    "c_time": "838:59:59", "c_time6": "838:59:59.000000", "c_time2": "-838:59:58.99",
    "c_year": 1901, "c_enum": "small", "c_set": "", "c_bit1": 0, "c_bit12": 0, "c_bit64": 0, "c_json": "[]",
    "c_point": "POINT(0 0)", "c_geom": "POLYGON((0 0, 1 0, 1 1, 0 0))",
}
ROW_3 = {  # zero dates and the smallest nonzero values
    "id": 3, "c_tiny": 127, "c_utiny": 255, "c_small": 32767, "c_usmall": 65535, "c_medium": 8388607,
    "c_umedium": 16777215, "c_int": 2147483647, "c_uint": 4294967295, "c_big": 9223372036854775807,
    "c_ubig": 9223372036854775808, "c_dec": "9999999999.99",
    "c_dec_big": "99999999999999999999999999999999999.999999999999999999999999999999",
    "c_dec0": "99999999999999999999", "c_dec_tiny": "-0.0000001000", "c_float": 1e-45, "c_float_md": 0.01,
    "c_double": 5e-324, "c_latin": "plain", "c_date": "0000-00-00", "c_date_nn": "0000-00-00",
    "c_datetime": "0000-00-00 00:00:00", "c_datetime0": "0000-00-00 00:00:00", "c_datetime3": "0000-00-00 00:00:00",
    "c_ts": "0000-00-00 00:00:00", "c_ts0": "0000-00-00 00:00:00", "c_ts3": "0000-00-00 00:00:00",
    "c_time": "00:00:00", "c_time6": "-838:59:59.000000", "c_time2": "24:00:00", "c_year": 0, "c_set": "a,b,c,d",
    "c_enum": "large", "c_bit1": 1, "c_bit12": 0xFFF, "c_bit64": 1, "c_json": '"just a string"',
}
ROW_4 = {"id": 4, "c_date_nn": "2000-01-01"}  # everything else NULL
GEOMETRY = {"c_point", "c_geom"}

MODES = {
    "default": MyEncodingModes(),
    "precise-adaptive-url": MyEncodingModes(decimal="precise", time_precision="adaptive", binary="base64-url-safe",
                                            bigint_unsigned="precise"),
    "double-connect-hex": MyEncodingModes(decimal="double", time_precision="connect", binary="hex"),
}

# Extra server-side columns: exact values the text protocol would round (FLOAT) or send as bytes (BIT).
EXTRA = ("CAST(c_float AS DOUBLE) AS x_float, CAST(c_float_md AS DOUBLE) AS x_float_md, "
         "CAST(c_bit12 AS UNSIGNED) AS x_bit12, CAST(c_bit64 AS UNSIGNED) AS x_bit64")


def insert_sql(row: dict[str, Any]) -> tuple[str, list[Any]]:
    cols, marks, args = [], [], []
    for k, v in row.items():
        cols.append(k)
        if k in GEOMETRY:
            marks.append("ST_GeomFromText(%s, 4326)" if k == "c_point" else "ST_GeomFromText(%s)")
        else:
            marks.append("%s")
        args.append(v)
    return f"INSERT INTO t ({', '.join(cols)}) VALUES ({', '.join(marks)})", args


def select_rows(srv: MariaDbServer, db: str) -> dict[int, dict[str, Any]]:
    with srv.connect(db) as c, c.cursor() as cur:
        cur.execute(f"SELECT *, {EXTRA} FROM t ORDER BY id")
        names = [d[0] for d in cur.description]
        return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


# ---------------------------------------------------------------------------------- expected encodings
# The test's own arithmetic, independent of the module under test.

EPOCH = dt.datetime(1970, 1, 1)


def b64_decimal(unscaled: int) -> str:
    n = 1
    while not -(1 << (8 * n - 1)) <= unscaled < 1 << (8 * n - 1):
        n += 1
    return base64.b64encode(unscaled.to_bytes(n, "big", signed=True)).decode()


def java_decimal_text(d: Decimal) -> str:
    """BigDecimal.toString: Python's Decimal str follows the same rules for a non-positive exponent."""
    return str(d)


def binary(b: bytes, mode: MyEncodingModes) -> str:
    if mode.binary == "hex":
        return b.hex()
    if mode.binary == "base64-url-safe":
        return base64.urlsafe_b64encode(b).decode()
    return base64.b64encode(b).decode()


def expected(col: ColumnDef, row: dict[str, Any], mode: MyEncodingModes) -> Any:
    v = row[col.name]
    t = col.type
    if v is None:
        return None
    if t in ("tinyint", "smallint", "mediumint", "int", "year"):
        return v
    if t == "bigint":
        if col.unsigned and mode.bigint_unsigned == "precise":
            return b64_decimal(v)
        return v
    if t == "decimal":
        assert isinstance(v, Decimal) and v.as_tuple().exponent == -(col.scale or 0)
        if mode.decimal == "string":
            return java_decimal_text(v)
        if mode.decimal == "double":
            return float(v)
        sign, digits, _ = v.as_tuple()
        unscaled = int("".join(map(str, digits)))
        return b64_decimal(-unscaled if sign else unscaled)
    if t == "float":
        exact = row["x_" + col.name[2:]]
        if col.scale is not None:
            return exact  # FLOAT(M,D): the float32 widened to a double
        # Java's Float.toString (JDK 19+): the shortest decimal naming the same float32, at least 2 digits
        for n_digits in range(2, 10):
            shortest = float(f"{exact:.{n_digits}g}")
            with contextlib.suppress(OverflowError):  # rounded past the float32 range: more digits needed
                if struct.pack("<f", shortest) == struct.pack("<f", exact):
                    return shortest
        raise AssertionError(exact)
    if t == "double":
        return v
    if t in ("char", "varchar", "text", "longtext", "enum", "set", "json"):
        assert isinstance(v, str)
        return v
    if t in ("blob", "binary", "varbinary"):
        return binary(v, mode)
    if t == "bit":
        if col.length == 1:
            return v == b"\x01"
        n = int.from_bytes(v, "big")
        if col.name == "c_bit12":
            assert n == row["x_bit12"]
        return base64.b64encode(n.to_bytes(((col.length or 1) + 7) // 8, "little")).decode()
    if t == "date":
        if isinstance(v, str):  # '0000-00-00': pymysql cannot make a date of it
            return None if col.nullable else 0
        return (v - dt.date(1970, 1, 1)).days
    if t == "datetime":
        if isinstance(v, str):
            return None if col.nullable else 0
        us = (v - EPOCH) // dt.timedelta(microseconds=1)
        if mode.time_precision == "connect" or (col.length or 0) <= 3:
            return us // 1000
        return us
    if t == "timestamp":
        if isinstance(v, str):
            return None if col.nullable else "1970-01-01T00:00:00Z"
        fsp = col.length or 0  # the server's time zone is UTC (default-time-zone=+00:00)
        frac = f".{v.microsecond:06d}"[: fsp + 1] if fsp else ""
        return v.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
    if t == "time":
        us = v // dt.timedelta(microseconds=1)
        if mode.time_precision == "adaptive_time_microseconds" or (
                mode.time_precision == "adaptive" and (col.length or 0) > 3):
            return us
        return us // 1000
    if t in ("point", "geometry"):
        srid, wkb = int.from_bytes(v[:4], "little"), v[4:]
        out: dict[str, Any] = {"wkb": base64.b64encode(wkb).decode(), "srid": srid}
        if t == "point":
            x, y = struct.unpack("<dd", wkb[5:21])
            out = {"x": x, "y": y, **out}
        return out
    raise AssertionError(f"no expectation for {t}")


def expected_row(row: dict[str, Any], mode: MyEncodingModes) -> dict[str, Any]:
    return {c.name: expected(c, row, mode) for c in COLUMNS}


# ---------------------------------------------------------------------------------- the test


@pytest.fixture
def captured(my_server: MariaDbServer, my_db: str) -> Iterator[tuple[list[tuple[str, Any, Any]], str]]:
    """Runs the DML; yields (expected images in binlog order, the binlog position before the DML)."""
    my_server.execute(my_db, DDL)
    file, pos = my_server.binlog_position()
    images: list[tuple[str, Any, Any]] = []
    with my_server.connect(my_db) as c, c.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")  # zero dates allowed
        for row in (ROW_1, ROW_2, ROW_3, ROW_4):
            cur.execute(*insert_sql(row))
        s1 = select_rows(my_server, my_db)
        images += [("c", None, s1[i]) for i in (1, 2, 3, 4)]
        cur.execute("UPDATE t SET c_dec = c_dec + 1, c_text = CONCAT(c_text, ' upd ✓'), c_time6 = '12:34:56.789012', "
                    "c_ts = '2001-02-03 04:05:06.7', c_set = 'b', c_bit1 = NULL, c_date_nn = '0000-00-00' "
                    "WHERE id IN (1, 3, 4)")
        s2 = select_rows(my_server, my_db)
        images += [("u", s1[i], s2[i]) for i in (1, 3, 4)]
        cur.execute("UPDATE t SET id = 5 WHERE id = 2")  # a primary-key change is an update in the binlog
        s3 = select_rows(my_server, my_db)
        images.append(("u", s2[2], s3[5]))
        cur.execute("DELETE FROM t WHERE id IN (1, 5)")
        images += [("d", s3[1], None), ("d", s3[5], None)]
    yield images, f"{file}:{pos}"


def read_events(srv: MariaDbServer, db: str, start: str) -> list[tuple[str, bytes, int, int, Any, Any, Any]]:
    file, pos = start.rsplit(":", 1)
    stream = BinLogStreamReader(
        connection_settings={"host": srv.host, "port": srv.port, "user": srv.user, "password": srv.password},
        # a server id of its own: the server drops an older replica connection using the same id
        server_id=1000 + zlib.crc32(db.encode()) % 1_000_000, blocking=False, resume_stream=True,
        log_file=file, log_pos=int(pos),
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent], only_schemas=[db])
    out = []
    try:
        for ev in stream:
            data, p, end = event_span(ev)
            kind = {WriteRowsEvent: "c", UpdateRowsEvent: "u", DeleteRowsEvent: "d"}[type(ev)]
            out.append((kind, data, p, end, ev.columns_present_bitmap, getattr(ev, "columns_present_bitmap2", None),
                        binlog_columns(ev.table_map[ev.table_id].columns)))
    finally:
        stream.close()
    return out


NATIVE = [False, *([True] if binlogrows.NATIVE_AVAILABLE else [])]


@pytest.mark.parametrize("native", NATIVE, ids=lambda n: "c" if n else "python")
@pytest.mark.parametrize("mode_name", list(MODES))
def test_every_type_round_trips_against_the_server(my_server: MariaDbServer, my_db: str,
                                                  captured: tuple[list[tuple[str, Any, Any]], str],
                                                  mode_name: str, native: bool) -> None:
    images, start = captured
    mode = MODES[mode_name]
    schema = TableSchema(my_db, "t", COLUMNS, primary_key=("id",), charset="utf8mb4")
    events = read_events(my_server, my_db, start)
    assert events, "no rows events in the binlog"
    decoded: list[tuple[str, Any, Any]] = []
    for kind, data, pos, end, present, present2, columns in events:
        decoder = RowDecoder(schema, columns, mode, native=native)
        if kind == "u":
            decoded += [("u", b, a) for b, a in decoder.update_rows(data, pos, end, present, present2)]
        elif kind == "c":
            decoded += [("c", None, a) for a in decoder.write_rows(data, pos, end, present)]
        else:
            decoded += [("d", b, None) for b in decoder.delete_rows(data, pos, end, present)]
    assert [d[0] for d in decoded] == [i[0] for i in images]
    for n, ((op, before, after), (_, want_before, want_after)) in enumerate(zip(decoded, images, strict=True)):
        for got, want in ((before, want_before), (after, want_after)):
            if want is None:
                assert got is None
                continue
            assert list(got) == NAMES
            exp = expected_row(want, mode)
            for name in NAMES:
                assert got[name] == exp[name], (n, op, name, got[name], exp[name])
                assert type(got[name]) is type(exp[name]), (n, op, name, got[name], exp[name])


def test_columns_excluded_and_stale_schema(my_server: MariaDbServer, my_db: str,
                                           captured: tuple[list[tuple[str, Any, Any]], str]) -> None:
    images, start = captured
    schema = TableSchema(my_db, "t", COLUMNS, primary_key=("id",))
    events = read_events(my_server, my_db, start)
    _, data, pos, end, present, _, columns = events[0]
    keep = [c.name in ("id", "c_text", "c_geom") for c in COLUMNS]
    rows = RowDecoder(schema, columns, MyEncodingModes(), keep).write_rows(data, pos, end, present)
    geometry = expected_row(images[0][2], MyEncodingModes())["c_geom"]
    assert rows[0] == {"id": 1, "c_text": ROW_1["c_text"], "c_geom": geometry}
    # a schema that lost a column, or has another type, is refused with the column named
    with pytest.raises(ValueError, match=rf"{my_db}\.t: the binlog has {len(COLUMNS)} columns but the schema"):
        RowDecoder(TableSchema(my_db, "t", COLUMNS[:-1]), columns, MyEncodingModes())
    wrong = tuple(C("c_tiny", "varchar", 10) if c.name == "c_tiny" else c for c in COLUMNS)
    with pytest.raises(ValueError, match=rf"{my_db}\.t\.c_tiny: the binlog has TINY \(1\) but the schema says varchar"):
        RowDecoder(TableSchema(my_db, "t", wrong), columns, MyEncodingModes())
