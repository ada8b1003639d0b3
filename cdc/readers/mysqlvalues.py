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

from cdc.readers.binlogrows import MyEncodingModes
from cdc.readers.mysqlschema import ColumnDef, TableSchema
from cdc.readers.pgtypes import _numeric_converter, days_from_civil

Conv = Callable[[Any], Any]
_INT_TYPES = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})
_DECIMAL_TYPES = frozenset({"decimal", "numeric", "dec", "fixed"})
_BINARY_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})


def binary_encoder(mode: str) -> Callable[[bytes], str]:
    if mode == "hex":
        return lambda b: b.hex()
    if mode == "base64-url-safe":
        return lambda b: base64.urlsafe_b64encode(b).decode("ascii")
    return lambda b: base64.b64encode(b).decode("ascii")


def _date_days(s: str) -> int | None:
    y, m, d = int(s[0:4]), int(s[5:7]), int(s[8:10])
    if m == 0 or d == 0:   # zero (or partly zero) dates: Debezium emits null
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
    from cdc.readers.pgtypes import _iso_date, _iso_time

    days, rest = divmod(us, 86_400_000_000)
    return _iso_date(days) + "T" + _iso_time(rest, fsp) + "Z"


def converter(c: ColumnDef, modes: MyEncodingModes) -> Conv:
    """The text-protocol value -> Debezium value function for one column (None passes through)."""
    t = c.type
    if t in _INT_TYPES:
        if t == "bigint" and c.unsigned and modes.bigint_unsigned == "precise":
            dec = _numeric_converter(((20 << 16) | 0) + 4, modes.decimal)
            return lambda s: dec(str(s))
        return int
    if t in _DECIMAL_TYPES:
        precision = c.length or 10
        scale = c.scale or 0
        return _numeric_converter(((precision << 16) | scale) + 4, modes.decimal)
    if t in ("float", "double", "real"):
        return float
    if t == "year":
        return int
    if t in _BINARY_TYPES:
        return binary_encoder(modes.binary)
    if t == "bit":
        if (c.length or 1) == 1:
            return lambda b: b != b"\x00" and int.from_bytes(b, "big") != 0
        enc = binary_encoder(modes.binary)
        nbytes = ((c.length or 1) + 7) // 8
        # Debezium's Bits: the value's bytes little-endian.
        return lambda b: enc(int.from_bytes(b, "big").to_bytes(nbytes, "little"))
    if t == "date":
        return _date_days
    if t == "datetime":
        fsp = c.length or 0
        if modes.time_precision == "connect" or fsp <= 3:
            def datetime_ms(s: str) -> int | None:
                us = _datetime_us(s)
                return None if us is None else us // 1000
            return datetime_ms
        return _datetime_us
    if t == "timestamp":
        fsp = c.length or 0

        def timestamp(s: str) -> str | None:
            us = _datetime_us(s)
            return None if us is None else iso_utc(us, fsp)
        return timestamp
    if t == "time":
        if modes.time_precision == "connect":
            return lambda s: _time_us(s) // 1000
        return _time_us
    # character types, enum, set, json: the text itself
    return str


class SnapshotRowCodec:
    """Decodes whole text-protocol rows of one table into column -> Debezium value dicts."""

    __slots__ = ("_cols", "_where")

    def __init__(self, schema: TableSchema, modes: MyEncodingModes, included: Sequence[bool] | None = None) -> None:
        self._where = f"{schema.db}.{schema.table}"
        inc = included if included is not None else [True] * len(schema.columns)
        self._cols = [(i, c.name, None if c.type in ("char", "varchar", "text", "longtext", "mediumtext",
                                                       "tinytext", "enum", "set", "json")
                       else converter(c, modes))
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

