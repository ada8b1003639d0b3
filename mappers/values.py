"""Change-event values -> SQL values, and SQL values -> event JSON: the two edges of evaluation.

Role: a row image in a change event holds Debezium's encodings (cdc/readers/pgtypes.py for PostgreSQL,
cdc/readers/binlogrows.py for MySQL/MariaDB): decimals as strings (``decimal.handling.mode=string``,
our default), as floats (``double``) or as base64 unscaled integers (``precise``); dates as days since
the epoch; timestamps as milliseconds or microseconds since the epoch (by column precision and
``time.precision.mode``) or ISO-8601 strings (``timestamptz``, MySQL ``TIMESTAMP``, ``isostring``); times
as ms/µs of the day. `decoder_for` picks, once per referenced column, the function that turns such a
value into the Python value the compiled expressions compute with: int, Decimal, float, str, bool,
date, datetime (naive, or aware UTC for timestamptz), time. `encode_default` is orjson's fallback
for the one type it does not write itself (Decimal, written in plain notation so no digit is lost).

Failure story: a value that does not fit its column's encoding (a corrupt event, a mode mismatch
between the mapping's source config and the journal) raises `EvalError` naming the value, and the
mapper reports it with the record. Values Python's date types cannot hold (PostgreSQL's ±infinity,
years beyond 9999, TIME '24:00:00') raise `EvalError` too: never a clamped or wrong value.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from mappers.sqltypes import Dialect, SqlType

__all__ = ["UNAVAILABLE", "Encoding", "EvalError", "decode_decimal_string", "decode_timestamptz", "decoder_for",
           "encode_default"]

# Debezium's placeholder for an unchanged TOAST value the bridge could not fill in.
UNAVAILABLE = "__debezium_unavailable_value"

_EPOCH_ORDINAL = 719163
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)


class EvalError(ValueError):
    """A value or an operation the source database would also refuse (or that we cannot represent)."""


@dataclass(frozen=True, slots=True)
class Encoding:
    """The source connector's value-encoding settings that decide how to read event values."""

    decimal: Literal["string", "double", "precise"] = "string"
    time_precision: Literal["adaptive", "adaptive_time_microseconds", "connect", "isostring"] = "adaptive"
    # Rows hold SQL values already (a database driver's, or decoded event values), not Debezium's
    # encodings: a multi-table mapping's business key is computed from such values.
    decoded: bool = False


Decoder = Callable[[Any], Any]


def decode_decimal_string(v: Any) -> Decimal:
    if v.__class__ is str:
        try:
            return Decimal(v)
        except InvalidOperation:
            special = _SPECIAL_DEC.get(v)
            if special is None:
                raise EvalError(f"not a decimal: {v!r}") from None
            return special
    if v.__class__ is int:
        return Decimal(v)
    if v.__class__ is float:
        return Decimal(repr(v))
    raise EvalError(f"not a decimal: {v!r}")


_SPECIAL_DEC = {"NAN": Decimal("NaN"), "POSITIVE_INFINITY": Decimal("Infinity"),
                "NEGATIVE_INFINITY": Decimal("-Infinity"), "NaN": Decimal("NaN"),
                "Infinity": Decimal("Infinity"), "-Infinity": Decimal("-Infinity")}


def _unscaled(b64: str) -> int:
    return int.from_bytes(base64.b64decode(b64), "big", signed=True)


def _dec_precise(scale: int | None) -> Decoder:
    def dec(v: Any) -> Decimal:
        if isinstance(v, dict):  # VariableScaleDecimal
            return Decimal(_unscaled(v["value"])).scaleb(-int(v["scale"]))
        if isinstance(v, str):
            if scale is None:
                raise EvalError(f"a precise decimal without a scale: {v!r}")
            return Decimal(_unscaled(v)).scaleb(-scale)
        return decode_decimal_string(v)
    return dec


def _float(v: Any) -> float:
    if v.__class__ is float:
        return v
    if isinstance(v, int | str):
        try:
            return float(v)
        except ValueError:
            raise EvalError(f"not a float: {v!r}") from None
    raise EvalError(f"not a float: {v!r}")


def _int(v: Any) -> int:
    if v.__class__ is int:
        return v
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, str):  # BIGINT UNSIGNED in precise mode: a scale-0 Decimal
        return _unscaled(v)
    raise EvalError(f"not an integer: {v!r}")


def _date(v: Any) -> date:
    try:
        if v.__class__ is int:
            return date.fromordinal(v + _EPOCH_ORDINAL)
        if isinstance(v, str):
            return date.fromisoformat(v.rstrip("Z"))
    except (ValueError, OverflowError):
        pass
    raise EvalError(f"date value {v!r} is outside the range this bridge computes with (years 1-9999)")


def _ts(unit_us: int) -> Decoder:
    def ts(v: Any) -> datetime:
        try:
            if v.__class__ is int:
                return _EPOCH + timedelta(microseconds=v * unit_us)
            if isinstance(v, str):
                return datetime.fromisoformat(v.rstrip("Z")).replace(tzinfo=None)
        except (ValueError, OverflowError):
            pass
        raise EvalError(f"timestamp value {v!r} is outside the range this bridge computes with (years 1-9999)")
    return ts


def decode_timestamptz(v: Any) -> datetime:
    if v.__class__ is str:
        try:
            t = datetime.fromisoformat(v)  # Debezium writes UTC with "Z"
            return t if t.tzinfo is UTC else t.astimezone(UTC)
        except ValueError:
            pass
    elif v.__class__ is int:
        return _EPOCH_UTC + timedelta(milliseconds=v)
    raise EvalError(f"timestamptz value {v!r} is outside the range this bridge computes with (years 1-9999)")


def _time(unit_us: int) -> Decoder:
    def tm(v: Any) -> time:
        if v.__class__ is int:
            us = v * unit_us
            if 0 <= us < 86_400_000_000:
                s, frac = divmod(us, 1_000_000)
                return time(s // 3600, s // 60 % 60, s % 60, frac)
        elif isinstance(v, str):
            try:
                return time.fromisoformat(v.rstrip("Z"))
            except ValueError:
                pass
        raise EvalError(f"time value {v!r} is outside 00:00:00-23:59:59.999999, which this bridge computes with")
    return tm


def _bool(v: Any) -> bool:
    if v is True or v is False:
        return v
    if v.__class__ is int:
        return v != 0
    raise EvalError(f"not a boolean: {v!r}")


def decoder_for(t: SqlType, dialect: Dialect, enc: Encoding) -> Decoder | None:
    """The event-value -> SQL-value function of a column (None: the event value is used as it is)."""
    if enc.decoded:
        return None
    k = t.kind
    if k == "int":
        return _int if t.unsigned or enc.decimal == "precise" else None
    if k == "dec":
        return _dec_precise(t.scale) if enc.decimal == "precise" else decode_decimal_string
    if k == "float":
        return _float
    if k in ("text", "char", "other"):
        return None
    if k == "bool":
        return _bool
    if k == "date":
        return _date
    mode = enc.time_precision
    p = t.precision if t.precision is not None else 6
    micros = mode != "connect" and (p > 3 or (k == "time" and mode == "adaptive_time_microseconds"))
    unit = 1 if micros else 1000
    if k == "ts":
        return _ts(unit)
    if k == "tstz":
        return decode_timestamptz
    if k == "time":
        return _time(unit)
    raise AssertionError(f"no decoder for {t}")


def encode_default(v: Any) -> Any:
    """orjson `default`: Decimal in plain notation (never exponent form, never through a float)."""
    if isinstance(v, Decimal):
        if v.is_finite():
            text = str(v)
            return text if "E" not in text else format(v, "f")
        return {"NaN": "NaN", "sNaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}[str(v)]
    raise TypeError(f"cannot encode {type(v).__name__} in an event")
