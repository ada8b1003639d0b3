"""Pure conversion of MySQL/MariaDB text-protocol values (the snapshot's SELECT) to Debezium's encodings.

The snapshot reads rows with the text protocol and no driver conversions: every value arrives as the
server prints it (`str`), binary-collated ones (BLOB, BINARY, BIT) as `bytes`, under a UTC session.
`SnapshotRowCodec(schema, modes, included)` turns such a row into the same dict the binlog decoder
(`binlogrows`) produces for the same row, so snapshot and streaming events agree value for value
(the integration tests compare them). The encodings themselves are documented in `binlogrows`.

Bad input: a value a converter cannot parse raises ValueError naming db.table.column.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

from cdc.readers.binlogrows import (
    MyEncodingModes,
    b64,
    b64_unscaled,
    decimal_str,
    float32_str_value,
    geometry_value,
)
from cdc.readers.mysqlschema import ColumnDef, TableSchema
from cdc.readers.pgtypes import _iso_date, _iso_time, days_from_civil

Conv = Callable[[Any], Any]
_INT_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})
_DECIMAL_TYPES = frozenset({"decimal", "numeric", "dec", "fixed"})
_BINARY_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
_GEOMETRY_TYPES = frozenset({"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
                             "multipolygon", "geometrycollection", "geomcollection"})
_TEXT_TYPES = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"})


def select_expression(c: ColumnDef) -> str:
    """How the snapshot selects a column so that its text carries the exact stored value."""
    name = "`" + c.name.replace("`", "``") + "`"
    if c.type == "float":
        # The server prints FLOAT with 6 significant digits; as DOUBLE it prints the float32 exactly.
        return f"CAST({name} AS DOUBLE)"
    return name


def binary_encoder(mode: str) -> Callable[[bytes], str]:
    if mode == "hex":
        return lambda b: b.hex()
    if mode == "base64-url-safe":
        return lambda b: base64.urlsafe_b64encode(b).decode("ascii")
    return b64


def _date_days(s: str) -> int | None:
    y, m, d = int(s[0:4]), int(s[5:7]), int(s[8:10])
    if (y == 0 and m == 0 and d == 0) or m == 0 or d == 0:   # zero (or partly zero) dates
        return None
    return days_from_civil(y, m, d)


def _frac_us(s: str) -> int:
    return int(s.ljust(6, "0")[:6]) if s else 0


def _datetime_us(s: str) -> int | None:
    days = _date_days(s[:10])
    if days is None:
        return None
    t, _, frac = s[11:].partition(".")
    hh, mm, ss = t.split(":")
    return (days * 86_400 + int(hh) * 3600 + int(mm) * 60 + int(ss)) * 1_000_000 + _frac_us(frac)


def _time_us(s: str) -> int:
    neg = s.startswith("-")
    t, _, frac = s.lstrip("-").partition(".")
    hh, mm, ss = t.split(":")
    us = (int(hh) * 3600 + int(mm) * 60 + int(ss)) * 1_000_000 + _frac_us(frac)
    return -us if neg else us


def iso_utc(us: int, fsp: int) -> str:
    """ZonedTimestamp text: ISO-8601 in UTC with exactly `fsp` fraction digits."""
    days, rest = divmod(us, 86_400_000_000)
    return _iso_date(days) + "T" + _iso_time(rest, fsp) + "Z"


def _zero_aware(parse: Callable[[str], Any], c: ColumnDef, fallback: object) -> Conv:
    """A zero date is null, or Debezium's fallback value in a NOT NULL column (as `binlogrows`)."""
    zero = None if c.nullable else fallback

    def conv(s: str) -> Any:
        v = parse(s)
        return zero if v is None else v
    return conv


def _decimal(scale: int, mode: str) -> Conv:
    def unscaled(s: str) -> int:
        neg = s.startswith("-")
        ip, _, fp = s.lstrip("-").partition(".")
        u = int(ip + fp.ljust(scale, "0")[:scale]) if scale else int(ip)
        return -u if neg else u
    if mode == "string":
        return lambda s: decimal_str(unscaled(s), scale)
    if mode == "double":
        return float
    return lambda s: b64_unscaled(unscaled(s))


def converter(c: ColumnDef, modes: MyEncodingModes) -> Conv:
    """The text-protocol value -> Debezium value function for one column (None passes through)."""
    t = c.type
    if t in _INT_TYPES:
        if t == "bigint" and c.unsigned and modes.bigint_unsigned == "precise":
            return lambda s: b64_unscaled(int(s))
        return int
    if t in _DECIMAL_TYPES:
        return _decimal(c.scale or 0, modes.decimal)
    if t == "float":
        if c.scale is not None:      # FLOAT(M,D): the float32 widened to double, as Debezium's FLOAT64
            return float
        return lambda s: float32_str_value(float(s))
    if t in ("double", "real"):
        return float
    if t == "year":
        return int
    if t in _BINARY_TYPES:
        return binary_encoder(modes.binary)
    if t in _GEOMETRY_TYPES:   # the server sends its internal form, as the binlog holds it: SRID + WKB
        point = t == "point"
        return lambda b: geometry_value(b, point)
    if t == "bit":
        if (c.length or 1) == 1:
            return lambda b: int.from_bytes(b, "big") != 0
        nbytes = ((c.length or 1) + 7) // 8
        # Debezium's Bits: the value's bytes little-endian, always base64.
        return lambda b: b64(int.from_bytes(b, "big").to_bytes(nbytes, "little"))
    fsp = c.length or 0
    if t == "date":
        return _zero_aware(_date_days, c, 0)
    if t == "datetime":
        if modes.time_precision == "connect" or fsp <= 3:
            def datetime_ms(s: str) -> int | None:
                us = _datetime_us(s)
                return None if us is None else us // 1000
            return _zero_aware(datetime_ms, c, 0)
        return _zero_aware(_datetime_us, c, 0)
    if t == "timestamp":
        def timestamp(s: str) -> str | None:
            us = _datetime_us(s)
            return None if us is None or us == 0 else iso_utc(us, fsp)
        return _zero_aware(timestamp, c, "1970-01-01T00:00:00Z")
    if t == "time":
        if modes.time_precision == "connect" or (modes.time_precision == "adaptive" and fsp <= 3):
            return lambda s: _time_us(s) // 1000
        return _time_us
    return str


class SnapshotRowCodec:
    """Decodes whole text-protocol rows of one table into column -> Debezium value dicts."""

    __slots__ = ("_cols", "_where")

    def __init__(self, schema: TableSchema, modes: MyEncodingModes, included: Sequence[bool] | None = None) -> None:
        self._where = f"{schema.db}.{schema.table}"
        inc = included if included is not None else [True] * len(schema.columns)
        self._cols = [(i, c.name, None if c.type in _TEXT_TYPES else converter(c, modes))
                      for i, (c, keep) in enumerate(zip(schema.columns, inc, strict=True)) if keep]

    def decode(self, row: Sequence[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, name, conv in self._cols:
            v = row[i]
            if v is None or conv is None:
                out[name] = v
                continue
            try:
                out[name] = conv(v)
            except (ValueError, IndexError) as e:
                raise ValueError(f"{self._where}.{name}: cannot convert {str(v)[:40]!r}: {e}") from e
        return out

