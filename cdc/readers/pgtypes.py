"""Pure conversion of PostgreSQL text-format column values into Debezium's JSON encodings.

Input is a column value exactly as `pgoutput` sends it: the type's output function under the session
settings the reader fixes (DateStyle 'ISO, MDY', TimeZone 'UTC', IntervalStyle 'postgres',
extra_float_digits 1, bytea_output 'hex', lc_monetary 'C'). Output is what Debezium's PostgreSQL connector
emits for that column through Kafka's JsonConverter with schemas disabled, under the configured
`decimal.handling.mode`, `time.precision.mode`, `binary.handling.mode` and `interval.handling.mode`
(`EncodingModes`). The mapping follows Debezium's PostgresValueConverter / JdbcValueConverters /
io.debezium.time.* (see tests/unit/test_pgtypes.py for every case), in short:

- int2/int4/int8/oid -> int; bool -> bool; float4/float8 -> float, NaN/±Infinity as the strings Jackson
  writes for them ("NaN", "Infinity", "-Infinity").
- numeric/decimal: 'string' -> Java BigDecimal.toString() of the value (the text, except values below 1e-6
  which Java writes as "1E-7"; NaN/±Infinity -> "NAN"/"POSITIVE_INFINITY"/"NEGATIVE_INFINITY", the names
  Debezium's SpecialValueDecimal gives them); 'double' -> float; 'precise' -> base64 of the
  two's-complement big-endian unscaled value at the column's scale, or for unconstrained numeric the
  VariableScaleDecimal object {"scale": s, "value": base64} with trailing zeros stripped. NaN/Infinity in
  precise mode -> None (Debezium stops the connector there; we emit null instead).
- money: parsed like the JDBC driver does (a double), then 'string' -> Java Double.toString, 'double' ->
  float, 'precise' -> Decimal at scale 2.
- text-like types, uuid, json/jsonb/xml, enums, network, geometric, range and unknown types -> the text.
- bytea -> base64 ('bytes', as JsonConverter writes BYTES; 'base64'), URL-safe base64, or lower-case hex.
- date -> days since epoch ('isostring': ISO-8601 date with "Z"); time/timestamp -> ms or µs by the column
  precision and mode; timestamptz -> ISO-8601 in UTC with exactly p fractional digits (p = the column's
  precision, 6 by default); timetz -> ISO-8601 time in UTC; ±infinity keep Debezium's special values.
- interval -> µs with 365.25/12 days a month (MicroDuration), or 'P1Y2M3DT4H5M6.78S' in string mode.
- arrays -> JSON lists of the element encodings; domains -> their base type's encoding (with the domain's
  type modifier when the column has none).

`converter_for()` returns a callable taking the text; `RowCodec` is built once per relation and decodes
whole tuples into column -> value dicts, skipping the call for text-like columns.

Bad input: a value a converter cannot parse raises ValueError naming the PostgreSQL type, and
`RowCodec.decode` re-raises it naming the column. Unknown types never fail: they pass the text through.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date as _date
from datetime import datetime as _datetime
from datetime import timedelta as _timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal, Protocol

__all__ = [
    "TYPE_CATALOG_SQL",
    "EncodingModes",
    "RowCodec",
    "TypeInfo",
    "converter_for",
    "identity",
    "parse_array",
]

DecimalMode = Literal["precise", "double", "string"]
TimePrecisionMode = Literal["adaptive", "adaptive_time_microseconds", "connect", "isostring"]
BinaryMode = Literal["bytes", "base64", "base64-url-safe", "hex"]
IntervalMode = Literal["numeric", "string"]

_DECIMAL_MODES = ("precise", "double", "string")
_TIME_MODES = ("adaptive", "adaptive_time_microseconds", "connect", "isostring")
_BINARY_MODES = ("bytes", "base64", "base64-url-safe", "hex")
_INTERVAL_MODES = ("numeric", "string")


@dataclass(frozen=True, slots=True)
class EncodingModes:
    """Debezium's value-encoding settings: decimal/time.precision/binary/interval.handling.mode."""

    decimal: DecimalMode = "string"
    time_precision: TimePrecisionMode = "adaptive"
    binary: BinaryMode = "bytes"
    interval: IntervalMode = "numeric"

    def __post_init__(self) -> None:
        for field, value, allowed in (("decimal", self.decimal, _DECIMAL_MODES),
                                      ("time_precision", self.time_precision, _TIME_MODES),
                                      ("binary", self.binary, _BINARY_MODES),
                                      ("interval", self.interval, _INTERVAL_MODES)):
            if value not in allowed:
                raise ValueError(f"EncodingModes.{field}: {value!r} is not one of {', '.join(allowed)}")


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """One pg_type row, as TYPE_CATALOG_SQL returns it (same column order).

    kind: 'b' base, 'e' enum, 'd' domain, 'A' array, 'c' composite, 'r' range, 'm' multirange,
    'p' pseudo. base_oid/base_typmod: a domain's base type and type modifier. elem_oid: an array's
    element type. delim: the array element delimiter (',' for all but box).
    """

    oid: int
    name: str
    kind: str
    base_oid: int = 0
    base_typmod: int = -1
    elem_oid: int = 0
    delim: str = ","


# Run with one parameter, the list of type oids to describe; returns TypeInfo rows (TypeInfo(*row)) for
# them and, recursively, for the base types of domains and the element types of arrays among them.
TYPE_CATALOG_SQL: Final = """
WITH RECURSIVE wanted(oid) AS (
    SELECT unnest(%s::int8[])::oid
  UNION
    SELECT dep.oid
    FROM pg_catalog.pg_type t
    JOIN wanted w ON t.oid = w.oid
    CROSS JOIN LATERAL (VALUES (t.typbasetype),
                               (CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0::oid END)) dep(oid)
    WHERE dep.oid <> 0
)
SELECT t.oid::int8,
       t.typname::text,
       CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN 'A' ELSE t.typtype::text END,
       t.typbasetype::int8,
       t.typtypmod,
       CASE WHEN t.typcategory = 'A' THEN t.typelem::int8 ELSE 0 END,
       t.typdelim::text
FROM pg_catalog.pg_type t
JOIN wanted w ON t.oid = w.oid
"""

# ----------------------------------------------------------------------------------------- type oids

BOOL, BYTEA, CHAR, NAME, INT8, INT2, INT4, TEXT, OID = 16, 17, 18, 19, 20, 21, 23, 25, 26
JSON, XML, FLOAT4, FLOAT8, MONEY, BPCHAR, VARCHAR = 114, 142, 700, 701, 790, 1042, 1043
DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL, TIMETZ = 1082, 1083, 1114, 1184, 1186, 1266
BIT, VARBIT, NUMERIC, UUID, JSONB, BOX = 1560, 1562, 1700, 2950, 3802, 603

# Built-in array type -> element type, so common arrays need no catalog lookup.
_BUILTIN_ARRAYS: Final = {
    1000: BOOL, 1001: BYTEA, 1002: CHAR, 1003: NAME, 1005: INT2, 1007: INT4, 1009: TEXT, 1014: BPCHAR,
    1015: VARCHAR, 1016: INT8, 1021: FLOAT4, 1022: FLOAT8, 1028: OID, 1115: TIMESTAMP, 1182: DATE,
    1183: TIME, 1185: TIMESTAMPTZ, 1187: INTERVAL, 1270: TIMETZ, 1231: NUMERIC, 2951: UUID, 199: JSON,
    3807: JSONB, 791: MONEY, 143: XML, 1561: BIT, 1563: VARBIT, 1041: 869, 651: 650, 1040: 829,
    775: 774, 1017: 600, 1020: BOX, 3221: 3220, 1018: 601, 1019: 602, 1027: 604, 719: 718, 629: 628,
}


def identity(text: str) -> str:
    """The converter of types Debezium writes as their text; RowCodec never calls it."""
    return text


# ----------------------------------------------------------------------------------------- scalars

_TRUE = "t".__eq__


def _float(s: str) -> float | str:
    last = s[-1]
    if last == "N" or last == "y":  # NaN, Infinity, -Infinity: Jackson writes these as strings
        return s
    return float(s)


def _bits_converter(typmod: int, oid: int) -> Callable[[str], Any]:
    # BIT(1) and VARBIT(1) are booleans; longer bit strings are io.debezium.data.Bits: the bits as a
    # little-endian byte array sized by content, which JsonConverter writes as base64.
    if typmod == 1:
        return "1".__eq__

    def bits(s: str) -> str:
        v = int(s, 2) if s else 0
        return base64.b64encode(v.to_bytes((v.bit_length() + 7) // 8, "little")).decode("ascii")
    return bits


# -- numeric

def _b64_unscaled(u: int) -> str:
    """Kafka Connect Decimal bytes: Java BigInteger.toByteArray() of the unscaled value, base64."""
    n = (u + (u < 0)).bit_length() // 8 + 1
    return _b2a(u.to_bytes(n, "big", signed=True), newline=False).decode()


_b2a = binascii.b2a_base64


def _int_of_digits(digits: str) -> int:
    # int() refuses strings over sys.int_info.default_max_str_digits; numeric can have 131072 digits.
    return int(digits) if len(digits) < 4000 else int(Decimal(digits))


def _numeric_scale(typmod: int) -> int | None:
    if typmod < 4:
        return None
    return (((typmod - 4) & 0x7FF) ^ 1024) - 1024  # PG 15 allows negative scales


_SPECIAL_STRING = {"NaN": "NAN", "Infinity": "POSITIVE_INFINITY", "-Infinity": "NEGATIVE_INFINITY"}


def _numeric_converter(typmod: int, mode: str) -> Callable[[str], Any]:
    scale = _numeric_scale(typmod)
    if mode == "string":
        if scale is not None and scale < 0:
            q = Decimal(1).scaleb(-scale)

            def numeric_str_neg(s: str) -> str:
                if s[-1] in "Ny":
                    return _SPECIAL_STRING[s]
                return str(Decimal(s).quantize(q))
            return numeric_str_neg

        def numeric_str(s: str) -> str:
            last = s[-1]
            if last == "N" or last == "y":
                return _SPECIAL_STRING[s]
            if s.startswith(("0.000000", "-0.000000")):  # Java BigDecimal.toString: "1E-7", "0E-8"
                return str(Decimal(s))
            return s
        return numeric_str
    if mode == "double":
        def numeric_double(s: str) -> float | str:
            last = s[-1]
            if last == "N" or last == "y":
                return s
            v = float(s)
            if v in (_INF, _NINF):
                return "Infinity" if v > 0 else "-Infinity"
            return v
        return numeric_double
    if scale is None:
        def variable_scale(s: str) -> dict[str, Any] | None:
            last = s[-1]
            if last == "N" or last == "y":
                return None
            ip, _, fp = s.partition(".")
            fp = fp.rstrip("0")
            return {"scale": len(fp), "value": _b64_unscaled(_int_of_digits(ip + fp))}
        return variable_scale

    def fixed_scale(s: str) -> str | None:
        last = s[-1]
        if last == "N" or last == "y":
            return None
        i = s.find(".")
        if i < 0:
            u = _int_of_digits(s)
            d = scale
        else:
            u = _int_of_digits(s[:i] + s[i + 1:])
            d = scale - (len(s) - i - 1)
        if d == 0:
            n = (u + (u < 0)).bit_length() // 8 + 1
            return _b2a(u.to_bytes(n, "big", signed=True), newline=False).decode()
        if d > 0:
            u *= 10 ** d
        elif d < 0:  # more digits than the scale (not sent by PostgreSQL): round HALF_UP
            q, r = divmod(abs(u), 10 ** -d)
            if 2 * r >= 10 ** -d:
                q += 1
            u = -q if u < 0 else q
        return _b64_unscaled(u)
    return fixed_scale


_INF = float("inf")
_NINF = float("-inf")


# -- money

def _money_double(s: str) -> float:
    neg = "-" in s or s.startswith("(")
    digits = "".join(ch for ch in s if ch.isdigit() or ch == ".")
    if not digits:
        raise ValueError(f"money: cannot parse {s!r}")
    v = float(digits)
    return -v if neg else v


def java_double_str(d: float) -> str:
    """Java's Double.toString(d): plain in [1e-3, 1e7) with at least one decimal, else d.dddE±n."""
    if d != d:
        return "NaN"
    if d in (_INF, _NINF):
        return "Infinity" if d > 0 else "-Infinity"
    if d == 0:
        return "-0.0" if str(d).startswith("-") else "0.0"
    a = abs(d)
    if 1e-3 <= a < 1e7:
        r = repr(d)
        return r if "." in r else r + ".0"
    sign, digits, exp = Decimal(repr(d)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    e10 = len(ds) - 1 + int(exp)
    mant = ds[0] + "." + (ds[1:] or "0")
    return ("-" if sign else "") + mant + "E" + str(e10)


def _money_converter(mode: str) -> Callable[[str], Any]:
    if mode == "double":
        return _money_double
    if mode == "string":
        return lambda s: java_double_str(_money_double(s))
    cent = Decimal("0.01")

    def money_precise(s: str) -> str:
        v = Decimal(repr(_money_double(s))).quantize(cent, rounding=ROUND_HALF_UP)
        sign, digits, _ = v.as_tuple()
        u = int("".join(map(str, digits)))
        return _b64_unscaled(-u if sign else u)
    return money_precise


# -- bytea

def _bytea_converter(mode: str) -> Callable[[str], str]:
    if mode == "hex":
        def bytea_hex(s: str) -> str:
            if not s.startswith("\\x"):
                raise ValueError(f"bytea: expected hex output ('\\x...'), got {s[:20]!r}")
            return s[2:].lower()
        return bytea_hex
    encode = base64.urlsafe_b64encode if mode == "base64-url-safe" else base64.b64encode

    def bytea(s: str) -> str:
        if not s.startswith("\\x"):
            raise ValueError(f"bytea: expected hex output ('\\x...'; set bytea_output=hex), got {s[:20]!r}")
        return encode(bytes.fromhex(s[2:])).decode("ascii")
    return bytea


# ----------------------------------------------------------------------------------------- temporal

_EPOCH_ORDINAL: Final = 719163  # date(1970, 1, 1).toordinal()
_US_PER_DAY: Final = 86_400_000_000
_fromisoformat = _date.fromisoformat
_dt_fromisoformat = _datetime.fromisoformat
_EPOCH_DT: Final = _datetime(1970, 1, 1)
_ONE_US: Final = _timedelta(microseconds=1)

# Debezium's values for PostgreSQL's ±infinity (PostgresValueConverter / PGStatement):
# timestamps become the JDBC driver's DATE_POSITIVE/NEGATIVE_INFINITY, dates the epoch days of
# +5877611-06-21 / -5877611-06-22, timestamptz the strings "infinity" / "-infinity".
TS_POS_INFINITY: Final = 9223372036825200000
TS_NEG_INFINITY: Final = -9223372036832400000
DATE_POS_INFINITY: Final = 2146033979
DATE_NEG_INFINITY: Final = -2147472692


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (astronomical year: 1 BC is year 0)."""
    y -= m <= 2
    era = y // 400  # floor division: the C original's (y - 399) / 400 for negatives
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z: int) -> tuple[int, int, int]:
    """Inverse of days_from_civil."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return y + (m <= 2), m, d


def _date_days(s: str) -> int:
    """PostgreSQL ISO date text ('2024-01-31', '10000-01-01', '0044-03-15 BC') -> epoch days."""
    if len(s) == 10:
        return _fromisoformat(s).toordinal() - _EPOCH_ORDINAL
    bc = s.endswith(" BC")
    if bc:
        s = s[:-3]
    y = int(s[:-6])
    if s[-6] != "-" or s[-3] != "-":
        raise ValueError(f"not an ISO date: {s!r}")
    return days_from_civil(1 - y if bc else y, int(s[-5:-3]), int(s[-2:]))


def _time_us(t: str) -> int:
    """'HH:MM:SS[.ffffff]' -> microseconds (hours may be 24)."""
    if t[2] != ":" or t[5] != ":":
        raise ValueError(f"not a time: {t!r}")
    us = (int(t[0:2]) * 3600 + int(t[3:5]) * 60 + int(t[6:8])) * 1_000_000
    if len(t) > 8:
        if t[8] != ".":
            raise ValueError(f"not a time: {t!r}")
        us += int(t[9:15].ljust(6, "0"))
    return us


def _timestamp_us(s: str) -> int:
    """PostgreSQL timestamp text (no zone) -> microseconds since the epoch."""
    if 19 <= len(s) <= 26 and s[4] == "-" and s[-1] != "C":
        return (_dt_fromisoformat(s) - _EPOCH_DT) // _ONE_US
    bc = s.endswith(" BC")
    if bc:
        s = s[:-3]
    i = s.index(" ")
    d = s[:i]
    days = _date_days(d + " BC") if bc else _date_days(d)
    return days * _US_PER_DAY + _time_us(s[i + 1:])


def _split_offset(s: str) -> tuple[str, int]:
    """'HH:MM:SS[.f]+hh[:mm[:ss]]' -> (time text, offset seconds east of UTC)."""
    i = max(s.rfind("+"), s.rfind("-"))
    if i < 8:
        raise ValueError(f"no UTC offset in {s!r}")
    off = s[i + 1:].split(":")
    secs = int(off[0]) * 3600
    if len(off) > 1:
        secs += int(off[1]) * 60 + (int(off[2]) if len(off) > 2 else 0)
    return s[:i], (-secs if s[i] == "-" else secs)


def _iso_year(y: int) -> str:
    """java.time ISO year: 4-digit zero padded, '+' beyond 9999, '-' before year 0."""
    if 0 <= y <= 9999:
        return f"{y:04d}"
    return f"+{y}" if y > 0 else f"-{-y:04d}"


def _iso_date(days: int) -> str:
    y, m, d = civil_from_days(days)
    return f"{_iso_year(y)}-{m:02d}-{d:02d}"


def _iso_time(us_of_day: int, width: int | None) -> str:
    """HH:MM:SS plus the fraction: exactly `width` digits, or (None) as java.time prints it (no zeros)."""
    secs, frac = divmod(us_of_day, 1_000_000)
    h, rem = divmod(secs, 3600)
    out = f"{h:02d}:{rem // 60:02d}:{rem % 60:02d}"
    if width is None:
        if frac:
            out += "." + f"{frac:06d}".rstrip("0")
    elif width > 0:
        out += "." + f"{frac:06d}"[:width].ljust(width, "0")
    return out


def _time_precision(typmod: int) -> int:
    return 6 if typmod < 0 else typmod


def _date_converter(mode: str) -> Callable[[str], Any]:
    if mode == "isostring":
        def date_iso(s: str) -> str:
            if s[-1] == "y":
                return _iso_date(DATE_POS_INFINITY if s == "infinity" else DATE_NEG_INFINITY) + "Z"
            return _iso_date(_date_days(s)) + "Z"
        return date_iso

    def date_days(s: str) -> int:
        if s[-1] == "y":
            return DATE_POS_INFINITY if s == "infinity" else DATE_NEG_INFINITY
        return _date_days(s)
    return date_days


def _time_converter(typmod: int, mode: str) -> Callable[[str], Any]:
    p = _time_precision(typmod)
    if mode == "isostring":
        return lambda s: _iso_time(_time_us(s) % _US_PER_DAY, None) + "Z"
    if mode == "adaptive_time_microseconds" or (mode == "adaptive" and p > 3):
        return _time_us
    return lambda s: _time_us(s) // 1000


def _timestamp_converter(typmod: int, mode: str) -> Callable[[str], Any]:
    p = _time_precision(typmod)
    if mode == "isostring":
        def ts_iso(s: str) -> str:
            if s[-1] == "y":
                return s
            days, us = divmod(_timestamp_us(s), _US_PER_DAY)
            return _iso_date(days) + "T" + _iso_time(us, None) + "Z"
        return ts_iso
    if mode != "connect" and p > 3:
        def ts_micros(s: str) -> int:
            if s[-1] == "y":
                return TS_POS_INFINITY if s == "infinity" else TS_NEG_INFINITY
            return _timestamp_us(s)
        return ts_micros

    def ts_millis(s: str) -> int:
        if s[-1] == "y":
            return TS_POS_INFINITY if s == "infinity" else TS_NEG_INFINITY
        return _timestamp_us(s) // 1000
    return ts_millis


def _timestamptz_converter(typmod: int) -> Callable[[str], str]:
    """ZonedTimestamp: ISO-8601 in UTC, exactly p fractional digits (Debezium formats with the column's
    scale, which is the precision p, 6 for plain timestamptz; p = 0 prints no fraction)."""
    p = _time_precision(typmod)
    zeros = "." + "0" * p if p else ""

    def slow(s: str) -> str:
        bc = s.endswith(" BC")
        if bc:
            s = s[:-3]
        i = s.index(" ")
        t, off = _split_offset(s[i + 1:])
        days = _date_days(s[:i] + " BC") if bc else _date_days(s[:i])
        days, us = divmod(days * _US_PER_DAY + _time_us(t) - off * 1_000_000, _US_PER_DAY)
        return _iso_date(days) + "T" + _iso_time(us, p) + "Z"

    def timestamptz(s: str) -> str:
        n = len(s)
        # fast path: 'YYYY-MM-DD HH:MM:SS[.ffffff]+00' (the session is UTC)
        if s[n - 3] == "+" and s[n - 1] == "0" and s[n - 2] == "0" and s[4] == "-" and s[10] == " ":
            if n == 22:
                return s[:10] + "T" + s[11:19] + zeros + "Z"
            if s[19] == ".":
                return s[:10] + "T" + s[11:19] + "." + s[20:n - 3].ljust(p, "0") + "Z"
        if s[-1] == "y":
            return s  # 'infinity' / '-infinity'
        return slow(s)
    return timestamptz


def _timetz(s: str) -> str:
    """ZonedTime: the time moved to UTC, 'HH:MM:SS[.f]Z' as java.time's ISO_OFFSET_TIME prints it."""
    t, off = _split_offset(s)
    us = _time_us(t)
    if us == _US_PER_DAY and off == 0:
        return "24:00:00Z"
    return _iso_time((us - off * 1_000_000) % _US_PER_DAY, None) + "Z"


# -- interval

_INTERVAL_RE = re.compile(
    r"(?:([+-]?\d+) years? ?)?(?:([+-]?\d+) mons? ?)?(?:([+-]?\d+) days? ?)?"
    r"(?:([+-])?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?")
_DAYS_PER_MONTH_AVG: Final = 365.25 / 12.0


def _interval_parts(s: str) -> tuple[int, int, int, int, int, int, int]:
    """IntervalStyle 'postgres' text -> years, months, days, hours, minutes, whole seconds, µs (signed)."""
    m = _INTERVAL_RE.fullmatch(s)
    if m is None or not s:
        raise ValueError(f"interval: cannot parse {s!r} (IntervalStyle must be 'postgres')")
    y, mo, d, sign, hh, mi, ss, frac = m.groups()
    neg = -1 if sign == "-" else 1
    return (int(y or 0), int(mo or 0), int(d or 0), neg * int(hh or 0), neg * int(mi or 0),
            neg * int(ss or 0), neg * int((frac or "").ljust(6, "0")))


def _interval_micros(s: str) -> int:
    """io.debezium.time.MicroDuration.durationMicros with DAYS_PER_MONTH_AVG, in Java's double arithmetic."""
    y, mo, d, h, mi, ss, us = _interval_parts(s)
    seconds = ss + us / 1e6
    days = (y * 12 + mo) * _DAYS_PER_MONTH_AVG + d
    total = ((days * 24 + h) * 60 + mi) * 60 + seconds
    return int(total * 1e6)


def _interval_iso(s: str) -> str:
    """io.debezium.time.Interval.toIsoString: P<y>Y<m>M<d>DT<h>H<m>M<s>S, seconds without trailing zeros."""
    y, mo, d, h, mi, ss, us = _interval_parts(s)
    total = ss * 1_000_000 + us
    sec = "0" if total == 0 else format(Decimal(total).scaleb(-6).normalize(), "f")
    return f"P{y}Y{mo}M{d}DT{h}H{mi}M{sec}S"


# ----------------------------------------------------------------------------------------- arrays


def parse_array(text: str, delim: str = ",") -> list[Any]:
    """Parse a PostgreSQL array literal into nested lists of str | None.

    Handles quoting and backslash escapes, unquoted NULL, empty strings, nested dimensions and the
    '[lo:hi]=' dimension decoration. ValueError on a malformed literal.
    """
    i = 0
    if text.startswith("["):
        i = text.find("=") + 1
        if i <= 0:
            raise ValueError(f"array: malformed dimension decoration in {text[:40]!r}")
    try:
        out, i = _parse_array(text, i, delim)
    except IndexError:
        raise ValueError(f"array: unterminated literal {text[:60]!r}") from None
    if text[i:].strip():
        raise ValueError(f"array: junk after literal in {text[:60]!r}")
    return out


def _parse_array(s: str, i: int, delim: str) -> tuple[list[Any], int]:
    while s[i].isspace():
        i += 1
    if s[i] != "{":
        raise ValueError(f"array: expected '{{' at {i} in {s[:60]!r}")
    i += 1
    out: list[Any] = []
    while s[i].isspace():
        i += 1
    if s[i] == "}":
        return out, i + 1
    while True:
        while s[i].isspace():
            i += 1
        c = s[i]
        if c == "{":
            sub, i = _parse_array(s, i, delim)
            out.append(sub)
        elif c == '"':
            i += 1
            parts: list[str] = []
            while True:
                j = s.find('"', i)
                k = s.find("\\", i, j if j >= 0 else len(s))
                if j < 0:
                    raise ValueError(f"array: unterminated quoted element in {s[:60]!r}")
                if k >= 0:
                    parts.append(s[i:k])
                    parts.append(s[k + 1])
                    i = k + 2
                    continue
                parts.append(s[i:j])
                i = j + 1
                break
            out.append("".join(parts))
        else:
            start = i
            escaped = False
            chars: list[str] = []
            while True:
                c = s[i]
                if c == "\\":
                    chars.append(s[i + 1])
                    escaped = True
                    i += 2
                    continue
                if c == delim or c == "}":
                    break
                chars.append(c)
                i += 1
            item = "".join(chars).strip() if escaped else s[start:i].strip()
            out.append(None if not escaped and item.upper() == "NULL" else item)
        while s[i].isspace():
            i += 1
        c = s[i]
        if c == delim:
            i += 1
        elif c == "}":
            return out, i + 1
        else:
            raise ValueError(f"array: unexpected {c!r} at {i} in {s[:60]!r}")


def _array_converter(elem: Callable[[str], Any], delim: str) -> Callable[[str], list[Any]]:
    def convert(items: list[Any]) -> list[Any]:
        return [None if v is None else (convert(v) if type(v) is list else elem(v)) for v in items]

    if elem is identity:
        return lambda s: parse_array(s, delim)
    return lambda s: convert(parse_array(s, delim))


# ----------------------------------------------------------------------------------------- dispatch

_TEXT_LIKE: Final = frozenset({TEXT, VARCHAR, BPCHAR, NAME, CHAR, UUID, JSON, JSONB, XML})


def converter_for(type_oid: int, typmod: int, modes: EncodingModes,
                  types: Mapping[int, TypeInfo]) -> Callable[[str], Any]:
    """The converter of one column's text values to Debezium's encoding under `modes`.

    `types` describes non-built-in oids (TYPE_CATALOG_SQL rows): domains resolve to their base type's
    converter (with the domain's type modifier when the column has none), arrays parse the literal and
    convert each element, enums and unknown types pass the text through (`identity`).
    """
    return _converter_for(type_oid, typmod, modes, types, 0)


def _converter_for(oid: int, typmod: int, modes: EncodingModes, types: Mapping[int, TypeInfo],
                   depth: int) -> Callable[[str], Any]:
    if depth > 32:
        raise ValueError(f"type {oid}: domain/array nesting too deep (a cycle in the type catalog?)")
    if oid in _TEXT_LIKE:
        return identity
    if oid in (INT4, INT8, INT2, OID):
        return int
    if oid == NUMERIC:
        return _numeric_converter(typmod, modes.decimal)
    if oid == TIMESTAMPTZ:
        return _timestamptz_converter(typmod)
    if oid == TIMESTAMP:
        return _timestamp_converter(typmod, modes.time_precision)
    if oid == DATE:
        return _date_converter(modes.time_precision)
    if oid == BOOL:
        return _TRUE
    if oid in (FLOAT8, FLOAT4):
        return _float
    if oid == TIME:
        return _time_converter(typmod, modes.time_precision)
    if oid == TIMETZ:
        return _timetz
    if oid == BYTEA:
        return _bytea_converter(modes.binary)
    if oid == INTERVAL:
        return _interval_iso if modes.interval == "string" else _interval_micros
    if oid == MONEY:
        return _money_converter(modes.decimal)
    if oid in (BIT, VARBIT):
        return _bits_converter(typmod, oid)
    elem = _BUILTIN_ARRAYS.get(oid)
    if elem is not None:
        return _array_converter(_converter_for(elem, typmod, modes, types, depth + 1),
                                ";" if elem == BOX else ",")
    info = types.get(oid)
    if info is None:
        return identity
    if info.kind == "d" and info.base_oid:
        return _converter_for(info.base_oid, typmod if typmod >= 0 else info.base_typmod, modes, types,
                              depth + 1)
    if info.kind == "A" and info.elem_oid:
        return _array_converter(_converter_for(info.elem_oid, typmod, modes, types, depth + 1), info.delim)
    return identity  # enum, composite, range, extension and unknown types: the text


# ----------------------------------------------------------------------------------------- rows


class _ColumnLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def type_oid(self) -> int: ...
    @property
    def type_modifier(self) -> int: ...


ColumnSpec = _ColumnLike | tuple[str, int, int] | tuple[str, int, int, bool]


def _spec(c: ColumnSpec) -> tuple[str, int, int, bool]:
    if isinstance(c, tuple):
        return (c[0], c[1], c[2], bool(c[3]) if len(c) > 3 else False)
    return (c.name, c.type_oid, c.type_modifier, bool(getattr(c, "is_key", False)))


class RowCodec:
    """Decodes one relation's tuples (pgoutput column order) into {column: Debezium-encoded value}.

    Built once per Relation message: `columns` are the relation's columns in order, as pgoutput Column
    objects or (name, type_oid, type_modifier[, is_key]) tuples; `include` names the columns to emit (None:
    all); `key_columns` names the key (default: the columns flagged as key). NULL stays None and
    `UNCHANGED_TOAST` stays the sentinel. The per-row function is generated once with exec so that
    text-like columns cost a tuple index and the others one converter call.
    """

    __slots__ = ("_columns", "_convs", "_decode", "_decode_key", "key_columns", "names")

    def __init__(self, columns: Sequence[ColumnSpec], include: Collection[str] | None,
                 types: Mapping[int, TypeInfo], modes: EncodingModes,
                 key_columns: Sequence[str] | None = None) -> None:
        specs = [_spec(c) for c in columns]
        self._columns = specs
        inc = None if include is None else set(include)
        self._convs = [converter_for(oid, mod, modes, types) for _, oid, mod, _ in specs]
        picked = [i for i, s in enumerate(specs) if inc is None or s[0] in inc]
        self.names: tuple[str, ...] = tuple(specs[i][0] for i in picked)
        if key_columns is None:
            key_columns = [s[0] for s in specs if s[3]]
        by_name = {s[0]: i for i, s in enumerate(specs)}
        missing = [k for k in key_columns if k not in by_name]
        if missing:
            raise ValueError(f"key columns not in the relation: {', '.join(missing)}")
        self.key_columns: tuple[str, ...] = tuple(key_columns)
        self._decode = self._compile(picked)
        self._decode_key = self._compile([by_name[k] for k in key_columns])

    def _compile(self, indexes: Sequence[int]) -> Callable[[Sequence[Any]], dict[str, Any]]:
        ns: dict[str, Any] = {}
        items: list[str] = []
        for i in indexes:
            name = self._columns[i][0]
            conv = self._convs[i]
            if conv is identity:
                items.append(f"{name!r}: t[{i}]")
            else:
                ns[f"c{i}"] = conv
                items.append(f"{name!r}: (c{i}(v) if (v := t[{i}]).__class__ is str else v)")
        src = "def decode(t):\n    return {" + ", ".join(items) + "}\n"
        exec(compile(src, "<RowCodec>", "exec"), ns)
        fn: Callable[[Sequence[Any]], dict[str, Any]] = ns["decode"]
        return fn

    def decode(self, tuple_data: Sequence[Any]) -> dict[str, Any]:
        """Column -> encoded value for the included columns; ValueError naming the column on bad data."""
        try:
            return self._decode(tuple_data)
        except (ValueError, TypeError, IndexError, KeyError, ArithmeticError, binascii.Error) as e:
            raise self._explain(tuple_data, e) from e

    def key(self, data: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any] | None:
        """The key columns of a raw tuple or of an already decoded dict; None when there is no key."""
        if not self.key_columns:
            return None
        if isinstance(data, Mapping):
            return {k: data[k] for k in self.key_columns}
        try:
            return self._decode_key(data)
        except (ValueError, TypeError, IndexError, KeyError, ArithmeticError, binascii.Error) as e:
            raise self._explain(data, e) from e

    def _explain(self, tuple_data: Sequence[Any], err: Exception) -> ValueError:
        if len(tuple_data) != len(self._columns):
            return ValueError(f"tuple has {len(tuple_data)} values, "
                              f"the relation {len(self._columns)} columns")
        for (name, oid, mod, _), conv, v in zip(self._columns, self._convs, tuple_data, strict=True):
            if type(v) is str:
                try:
                    conv(v)
                except Exception as e:  # building the report: any failure names the column
                    return ValueError(f"column {name!r} (type oid {oid}, typmod {mod}): cannot convert "
                                      f"{v[:80]!r}: {e}")
        return ValueError(f"cannot decode tuple: {err}")
