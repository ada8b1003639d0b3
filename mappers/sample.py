"""Sample rows for `cdc mapper test --from-db`: a table's current rows, encoded as change events carry them.

Role: reads up to N rows of the mapping's table with the source connector's settings (read-only) and
encodes each value as the capture path would put it in an event's ``after``: PostgreSQL through the
type output functions' text and the capture's own converters (`cdc.readers.pgtypes.converter_for`);
MySQL/MariaDB from the driver's values with Debezium's MySQL encodings (`encode_mysql_value`: DECIMAL
as a string, DATE as epoch days, DATETIME as ms/µs by precision, TIMESTAMP as an ISO UTC string,
TIME as µs). Debugging aid only: the pipeline never reads the source for a single-table mapping.

Failure story: connection and query errors are classified (`cdc.errors.classify`) and raised.
"""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from cdc.errors import classify
from mappers.catalog import source_dialect, source_encoding
from mappers.sqltypes import SqlType, Table
from mappers.values import Encoding

__all__ = ["encode_mysql_value", "sample_rows"]

_EPOCH = datetime(1970, 1, 1)


def _java_decimal(d: Decimal) -> str:
    """Java BigDecimal.toString(): plain, except exponent notation when the adjusted exponent < -6."""
    if d.is_zero() or d.adjusted() >= -6:
        return format(d, "f")
    return str(d).replace("e", "E")


def encode_mysql_value(v: Any, t: SqlType, enc: Encoding) -> Any:
    """A driver value of a MySQL/MariaDB column in Debezium's MySQL encoding."""
    if v is None:
        return None
    if isinstance(v, Decimal):
        if enc.decimal == "double":
            return float(v)
        if enc.decimal == "precise":
            scale = t.scale or 0
            u = int(v.scaleb(scale))
            n = (u + (u < 0)).bit_length() // 8 + 1
            return base64.b64encode(u.to_bytes(n, "big", signed=True)).decode()
        return _java_decimal(v)
    if isinstance(v, datetime):
        p = t.precision or 0
        if t.name == "timestamp":
            text = v.strftime("%Y-%m-%dT%H:%M:%S")
            return text + ("." + f"{v.microsecond:06d}"[:p] if p else "") + "Z"
        us = (v - _EPOCH) // timedelta(microseconds=1)
        micros = enc.time_precision != "connect" and p > 3
        return us if micros else us // 1000
    if isinstance(v, date):
        return (v - _EPOCH.date()).days
    if isinstance(v, timedelta):
        us = v // timedelta(microseconds=1)
        p = t.precision or 0
        micros = enc.time_precision == "adaptive_time_microseconds" or (enc.time_precision == "adaptive" and p > 3)
        return us if micros else us // 1000
    if isinstance(v, bytes | bytearray):
        return base64.b64encode(bytes(v)).decode()
    return v


def sample_rows(source_cfg: Any, table: Table, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` rows of `table`, encoded like a snapshot event's ``after``."""
    try:
        if source_dialect(source_cfg) == "mysql":
            return _mysql_rows(source_cfg, table, limit)
        return _pg_rows(source_cfg, table, limit)
    except Exception as e:  # driver errors of either kind: classified once, here
        raise classify(e) from e


def _pg_rows(cfg: Any, table: Table, limit: int) -> list[dict[str, Any]]:
    import psycopg
    from psycopg import sql
    from psycopg.types.string import TextLoader

    from cdc.readers.pgtypes import EncodingModes, converter_for

    modes = EncodingModes(decimal=cfg.decimal_handling_mode, time_precision=cfg.time_precision_mode,
                          binary=cfg.binary_handling_mode, interval=cfg.interval_handling_mode)
    with psycopg.connect(cfg.conninfo(), autocommit=True, connect_timeout=10) as c:
        c.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET extra_float_digits = 1; "
                  "SET bytea_output = 'hex'; SET IntervalStyle = 'postgres'")
        cols = c.execute("SELECT attname::text, atttypid::int, atttypmod FROM pg_attribute "
                         "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                         (f'"{table.schema}"."{table.name}"',)).fetchall()
        for _, oid, _ in cols:  # the output functions' text, as pgoutput sends it
            c.adapters.register_loader(oid, TextLoader)
        query = sql.SQL("SELECT * FROM {}.{} LIMIT %s").format(sql.Identifier(table.schema), sql.Identifier(table.name))
        rows = c.execute(query, (limit,)).fetchall()
    convs = [converter_for(oid, mod, modes, {}) for _, oid, mod in cols]
    return [{n: None if v is None else conv(v) for (n, _, _), conv, v in zip(cols, convs, row, strict=True)}
            for row in rows]


def _mysql_rows(cfg: Any, table: Table, limit: int) -> list[dict[str, Any]]:
    import pymysql

    enc = source_encoding(cfg)
    conn = pymysql.connect(**cfg.connect_kwargs())
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(f"SELECT * FROM `{table.schema}`.`{table.name}` LIMIT %s", (limit,))
            names = [d[0] for d in cur.description or ()]
            rows = cur.fetchall()
    finally:
        conn.close()
    types = {c.name: c.type for c in table.columns}
    return [{n: encode_mysql_value(v, types[n], enc) for n, v in zip(names, row, strict=True)} for row in rows]
