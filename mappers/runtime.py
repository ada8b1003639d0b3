"""The functions compiled mappings call per row, with each source dialect's semantics. Pure, no I/O.

Role: the compiler (`mappers.compiler`) generates Python source for a mapping in which NULL
propagation, three-valued logic, comparisons of same-typed values and integer/decimal arithmetic are
inline Python, and everything whose meaning differs between PostgreSQL, MySQL and Python is a call to a
function here: division and modulo, numeric result scales, text output of each type (what `||`,
CONCAT and CAST AS TEXT produce), CHAR padding, string functions (SUBSTRING positions, LPAD truncation,
TRIM, LENGTH in characters or bytes), casts with each server's input rules, legacy date conversions
(TO_DATE / STR_TO_DATE with YYYYMMDD formats), LIKE patterns, and MySQL's collation-aware string
comparison. Functions take non-NULL arguments: the generated code has already short-circuited NULLs
(the few that take NULLs, like CONCAT, say so).

Decimal arithmetic runs in `DCTX`, an explicit context with room for every PostgreSQL numeric, never
in the thread's default context (delivery runs in worker threads whose context has 28 digits).

Failure story: where the source database raises an error (division by zero in PostgreSQL, invalid
input for a cast, a date out of range) these raise `EvalError` with the server's wording; where MySQL
returns NULL with a warning (division by zero, STR_TO_DATE on a bad date), these return None too.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from functools import lru_cache
from typing import Any, TypeVar

from mappers.values import EvalError

_K = TypeVar("_K")
_R = TypeVar("_R")

DCTX = Context(prec=200_000, rounding=ROUND_HALF_UP, Emax=MAX_EMAX, Emin=MIN_EMIN,
               traps=[InvalidOperation, DivisionByZero, Overflow])
_ONE = Decimal(1)
_DEC_INT_RE = re.compile(r"\s*[+-]?\d+\s*")
_INT_RANGES = {"smallint": 2**15, "int2": 2**15, "integer": 2**31, "int": 2**31, "int4": 2**31,
               "bigint": 2**63, "int8": 2**63}


def int2(v: int) -> int:
    if -32768 <= v < 32768:
        return v
    raise EvalError("smallint out of range")


def int4(v: int) -> int:
    if -2147483648 <= v < 2147483648:
        return v
    raise EvalError("integer out of range")


def int8(v: int) -> int:
    if -9223372036854775808 <= v < 9223372036854775808:
        return v
    raise EvalError("bigint out of range")


def my_int8(v: int) -> int:
    if -9223372036854775808 <= v < 18446744073709551616:
        return v
    raise EvalError("BIGINT value is out of range")


def int_width(type_name: str) -> int:
    return {"smallint": 2, "int2": 2, "tinyint": 2, "bigint": 8, "int8": 8, "bigserial": 8}.get(type_name, 4)


def nz(d: Decimal) -> Decimal:
    """Neither server has a negative zero decimal: -0.00 prints as 0.00."""
    return d.copy_abs() if d.is_signed() and d.is_zero() else d


def dmul(a: Decimal, b: Decimal) -> Decimal:
    r = DCTX.multiply(a, b)
    return r.copy_abs() if r.is_zero() and r.is_signed() else r


def plain(d: Decimal) -> Decimal:
    """A decimal written with a positive exponent (1E+3) as the integer it is (1000), as numeric stores it."""
    exp = d.as_tuple().exponent
    if isinstance(exp, int) and exp > 0:
        return d.quantize(_ONE, context=DCTX)
    return d


def dscale(d: Decimal) -> int:
    """PostgreSQL's display scale of a numeric: digits after the decimal point."""
    exp = d.as_tuple().exponent
    return -exp if isinstance(exp, int) and exp < 0 else 0


def _div_round(num: int, den: int) -> int:
    """num/den rounded half away from zero (den != 0)."""
    neg = (num < 0) != (den < 0)
    q, r = divmod(abs(num), abs(den))
    if 2 * r >= abs(den):
        q += 1
    return -q if neg else q


def _scaled_quotient(a: Decimal, b: Decimal, scale: int) -> Decimal:
    """a / b rounded half away from zero to `scale` digits after the point, exactly (integer arithmetic)."""
    sa, da, ea = a.as_tuple()
    sb, db, eb = b.as_tuple()
    ua = int("".join(map(str, da)) or "0") * (-1 if sa else 1)
    ub = int("".join(map(str, db)) or "0") * (-1 if sb else 1)
    assert isinstance(ea, int) and isinstance(eb, int)
    shift = ea - eb + scale
    num, den = (ua * 10**shift, ub) if shift >= 0 else (ua, ub * 10**-shift)
    return Decimal(_div_round(num, den)).scaleb(-scale, DCTX)


# ----------------------------------------------------------------------------------------------- PostgreSQL

def pg_select_div_scale(a: Decimal, b: Decimal) -> int:
    """PostgreSQL's numeric division result scale (numeric.c select_div_scale): at least 16 significant
    digits, and no fewer fraction digits than either input shows."""
    def weight_first(d: Decimal) -> tuple[int, int]:
        if d.is_zero():
            return 0, 0
        ad = abs(d)
        w = ad.adjusted() // 4  # base-10000 digit groups, as numeric stores them
        first = int(ad.scaleb(-4 * w, DCTX))
        return w, first
    w1, f1 = weight_first(a)
    w2, f2 = weight_first(b)
    qweight = w1 - w2
    if f1 <= f2:
        qweight -= 1
    rscale = 16 - qweight * 4
    return min(max(rscale, dscale(a), dscale(b), 0), 1000)


def pg_ndiv(a: Decimal, b: Decimal) -> Decimal:
    if b.is_zero():
        raise EvalError("division by zero")
    if not (a.is_finite() and b.is_finite()):
        return DCTX.divide(a, b)
    return _scaled_quotient(a, b, pg_select_div_scale(a, b))


def pg_idiv(a: int, b: int) -> int:
    if b == 0:
        raise EvalError("division by zero")
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def pg_imod(a: int, b: int) -> int:
    if b == 0:
        raise EvalError("division by zero")
    return int(math.fmod(a, b)) if abs(a) < 2**52 and abs(b) < 2**52 else a - b * pg_idiv(a, b)


def pg_nmod(a: Decimal, b: Decimal) -> Decimal:
    if b.is_zero():
        raise EvalError("division by zero")
    return DCTX.remainder(a, b)


def pg_fdiv(a: float, b: float) -> float:
    if b == 0:
        raise EvalError("division by zero")
    return a / b


def pg_float_text(f: float) -> str:
    """float8out: shortest round-trip digits; exponent form below 1e-4 and from 1e15 (as %g does)."""
    if f != f:
        return "NaN"
    if f in (math.inf, -math.inf):
        return "Infinity" if f > 0 else "-Infinity"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    d = Decimal(repr(f))
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    e10 = len("".join(map(str, digits))) - 1 + exp
    s = "-" if sign else ""
    if e10 < -4 or e10 >= 15:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{s}{mant}e{'+' if e10 >= 0 else '-'}{abs(e10):02d}"
    return s + format(abs(d).normalize(DCTX), "f")


def ts_text(v: datetime, sep: str = " ") -> str:
    """timestamp output: fraction only when non-zero, trailing zeros dropped (both servers' style when
    printing a value computed without a declared precision)."""
    out = v.strftime("%Y-%m-%d") if v.year >= 1000 else f"{v.year:04d}-{v.month:02d}-{v.day:02d}"
    out += f"{sep}{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
    if v.microsecond:
        out += "." + f"{v.microsecond:06d}".rstrip("0")
    return out


def time_text(v: time) -> str:
    out = f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
    if v.microsecond:
        out += "." + f"{v.microsecond:06d}".rstrip("0")
    return out


def pg_text_of(kind: str) -> Callable[[Any], str]:
    """The type's output function, as `||`, concat() and ::text print a value of `kind`."""
    if kind == "bool":
        return lambda v: "t" if v else "f"
    if kind == "dec":
        return lambda v: format(v, "f") if v.is_finite() else {"NaN": "NaN"}.get(str(v), str(v))
    if kind == "float":
        return pg_float_text
    if kind == "date":
        return date.isoformat
    if kind == "ts":
        return ts_text
    if kind == "tstz":
        return lambda v: ts_text(v.astimezone(UTC).replace(tzinfo=None)) + "+00"
    if kind == "time":
        return time_text
    return str


def pg_upper(s: str) -> str:
    # towupper() per character: no expansions ('ß' stays 'ß', Python would make 'SS')
    return s.upper() if s.isascii() else "".join(u if len(u := c.upper()) == 1 else c for c in s)


def pg_lower(s: str) -> str:
    return s.lower() if s.isascii() else "".join(u if len(u := c.lower()) == 1 else c for c in s)


def pg_substr(s: str, start: int, length: int | None = None) -> str:
    if length is None:
        return s[max(start, 1) - 1:]
    if length < 0:
        raise EvalError("negative substring length not allowed")
    end = start + length
    begin = max(start, 1)
    return s[begin - 1:end - 1] if end > begin else ""


def pg_left(s: str, n: int) -> str:
    return s[:n] if n >= 0 else s[:max(len(s) + n, 0)]


def pg_right(s: str, n: int) -> str:
    if n >= 0:
        return s[len(s) - n:] if n else ""
    return s[min(-n, len(s)):]


def pg_lpad(s: str, n: int, fill: str = " ") -> str:
    if n <= 0:
        return ""
    if len(s) >= n or not fill:
        return s[:n]
    need = n - len(s)
    return (fill * (need // len(fill) + 1))[:need] + s


def pg_rpad(s: str, n: int, fill: str = " ") -> str:
    if n <= 0:
        return ""
    if len(s) >= n or not fill:
        return s[:n]
    need = n - len(s)
    return s + (fill * (need // len(fill) + 1))[:need]


def replace(s: str, old: str, new: str) -> str:
    return s.replace(old, new) if old else s


def pg_trim(s: str, chars: str, where: str) -> str:
    if where == "LEADING":
        return s.lstrip(chars)
    if where == "TRAILING":
        return s.rstrip(chars)
    return s.strip(chars)


def pg_position(s: str, sub: str) -> int:
    return s.find(sub) + 1


def pg_concat(texts: list[str | None]) -> str:
    return "".join(t for t in texts if t is not None)


def pg_round(d: Decimal, places: int = 0) -> Decimal:
    if not d.is_finite():
        return d
    if places >= 0:
        return nz(d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=DCTX))
    r = d.scaleb(places, DCTX).quantize(_ONE, ROUND_HALF_UP, DCTX).scaleb(-places, DCTX)
    return nz(r.quantize(_ONE, context=DCTX))


def dec_ceil(d: Decimal) -> Decimal:
    return nz(d.to_integral_value(ROUND_CEILING, DCTX)) if d.is_finite() else d


def dec_floor(d: Decimal) -> Decimal:
    return nz(d.to_integral_value(ROUND_FLOOR, DCTX)) if d.is_finite() else d


# -- casts (PostgreSQL input functions) --

_INT_DISPLAY = {"int": "integer", "int4": "integer", "int2": "smallint", "int8": "bigint"}


def pg_to_int(s: str, type_name: str = "integer") -> int:
    if not _DEC_INT_RE.fullmatch(s):
        raise EvalError(f'invalid input syntax for type {_INT_DISPLAY.get(type_name, type_name)}: "{s}"')
    return check_int(int(s), type_name)


def check_int(v: int, type_name: str) -> int:
    bound = _INT_RANGES.get(type_name, 2**63)
    if not -bound <= v < bound:
        raise EvalError(f"{_INT_DISPLAY.get(type_name, type_name)} out of range")
    return v


def pg_num_to_int(d: Decimal, type_name: str = "integer") -> int:
    if not d.is_finite():
        raise EvalError(f"cannot convert {d} to {type_name}")
    return check_int(int(d.to_integral_value(ROUND_HALF_UP, DCTX)), type_name)


def float_to_int(f: float, type_name: str = "integer") -> int:
    if f != f or f in (math.inf, -math.inf):
        raise EvalError(f"{type_name} out of range")
    return check_int(round(f), type_name)  # rint(): half to even


_PG_NUM_RE = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def pg_to_numeric(s: str) -> Decimal:
    t = s.strip()
    if _PG_NUM_RE.fullmatch(s):
        return plain(Decimal(t))
    low = t.lower()
    if low in ("nan", "infinity", "+infinity", "-infinity", "inf", "+inf", "-inf"):
        return Decimal(low.replace("inity", "").replace("inf", "Infinity"))
    raise EvalError(f'invalid input syntax for type numeric: "{s}"')


def pg_to_float(s: str) -> float:
    try:
        return float(s.strip())
    except ValueError:
        raise EvalError(f'invalid input syntax for type double precision: "{s}"') from None


def numeric_typmod(d: Decimal, precision: int | None, scale: int | None) -> Decimal:
    """Round to the declared scale and check the precision (PostgreSQL's numeric(p,s) input)."""
    if precision is None or not d.is_finite():
        return d
    s = scale or 0
    r = nz(d.quantize(Decimal(1).scaleb(-s), rounding=ROUND_HALF_UP, context=DCTX))
    if not r.is_zero() and r.adjusted() >= precision - s:
        raise EvalError(f"numeric field overflow: a field with precision {precision}, scale {s} must round to "
                        f"an absolute value less than 10^{precision - s}")
    return r


_BOOL_WORDS = {"t": True, "true": True, "y": True, "yes": True, "on": True, "1": True,
               "f": False, "false": False, "n": False, "no": False, "off": False, "0": False}


def pg_to_bool(s: str) -> bool:
    t = s.strip().lower()
    if t in _BOOL_WORDS:
        return _BOOL_WORDS[t]
    if len(t) >= 2:
        for word in ("true", "false", "yes", "no", "off"):
            if word.startswith(t) and t != "o":
                return _BOOL_WORDS[word]
    raise EvalError(f'invalid input syntax for type boolean: "{s}"')


_ISO_DATE = re.compile(r"\s*(\d{4,})-(\d{1,2})-(\d{1,2})\s*")
_COMPACT_DATE = re.compile(r"\s*(\d{4})(\d{2})(\d{2})\s*")
_ISO_TS = re.compile(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?)?"
                     r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?\s*")


def _make_date(y: int, m: int, d: int, text: str) -> date:
    try:
        return date(y, m, d)
    except ValueError:
        raise EvalError(f'date/time field value out of range: "{text}"') from None


def pg_to_date(s: str) -> date:
    m = _ISO_DATE.fullmatch(s) or _COMPACT_DATE.fullmatch(s)
    if m is None:
        ts = _ISO_TS.fullmatch(s)
        if ts is not None:
            return pg_to_ts(s).date()
        raise EvalError(f'invalid input syntax for type date: "{s}" (this bridge reads ISO dates '
                        "YYYY-MM-DD and YYYYMMDD)")
    return _make_date(int(m[1]), int(m[2]), int(m[3]), s)


def pg_to_ts(s: str) -> datetime:
    m = _ISO_TS.fullmatch(s)
    if m is None:
        m2 = _COMPACT_DATE.fullmatch(s)
        if m2 is not None:
            return datetime.combine(pg_to_date(s), time())
        raise EvalError(f'invalid input syntax for type timestamp: "{s}"')
    try:
        v = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4] or 0), int(m[5] or 0), int(m[6] or 0),
                     int((m[7] or "0").ljust(6, "0")))
    except ValueError:
        raise EvalError(f'date/time field value out of range: "{s}"') from None
    if m[8]:
        zone = m[8]
        if zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            off = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            v -= sign * off
    return v


def pg_to_tstz(s: str) -> datetime:
    return pg_to_ts(s).replace(tzinfo=UTC)


def pg_to_time(s: str) -> time:
    try:
        return time.fromisoformat(s.strip())
    except ValueError:
        raise EvalError(f'invalid input syntax for type time: "{s}"') from None


def pg_ts_round(v: datetime, precision: int | None) -> datetime:
    if precision is None or precision >= 6:
        return v
    unit = 10 ** (6 - precision)
    us = v.microsecond
    r = _div_round(us, unit) * unit
    try:
        return v.replace(microsecond=0) + timedelta(microseconds=r)
    except OverflowError:
        raise EvalError("timestamp out of range") from None


def pg_date_add(d: date, n: int) -> date:
    try:
        return d + timedelta(days=n)
    except OverflowError:
        raise EvalError("date out of range") from None


def date_diff(a: date, b: date) -> int:
    return (a - b).days


def pg_extract(field: str, v: Any) -> Decimal:
    """EXTRACT(field FROM v): numeric since PostgreSQL 14."""
    if field == "YEAR":
        return Decimal(v.year)
    if field == "MONTH":
        return Decimal(v.month)
    if field == "DAY":
        return Decimal(v.day)
    if field == "QUARTER":
        return Decimal((v.month - 1) // 3 + 1)
    if field == "DOW":
        return Decimal(v.isoweekday() % 7)
    if field == "ISODOW":
        return Decimal(v.isoweekday())
    if field == "DOY":
        return Decimal(v.timetuple().tm_yday)
    if field == "WEEK":
        return Decimal(v.isocalendar()[1])
    if field == "HOUR":
        return Decimal(v.hour)
    if field == "MINUTE":
        return Decimal(v.minute)
    if field == "SECOND":
        return Decimal(v.second * 1_000_000 + v.microsecond).scaleb(-6)
    if field == "EPOCH":
        if isinstance(v, datetime):
            base = v if v.tzinfo is None else v.astimezone(UTC).replace(tzinfo=None)
            us = (base - datetime(1970, 1, 1)) // timedelta(microseconds=1)
            return Decimal(us).scaleb(-6)
        return Decimal((v - date(1970, 1, 1)).days * 86400)
    raise EvalError(f"EXTRACT field {field} is not supported")


# -- formats (TO_DATE / TO_CHAR / STR_TO_DATE / DATE_FORMAT), reduced by sqlglot to strftime codes --

_FORMAT_PARTS = re.compile(r"%[YymdHMSfjb]|%%|[^%A-Za-z]|[A-Za-z]")
_NUMERIC_FIELD = {"%Y": (4, "year"), "%y": (2, "year2"), "%m": (2, "month"), "%d": (2, "day"), "%H": (2, "hour"),
                  "%M": (2, "minute"), "%S": (2, "second"), "%f": (6, "micro"), "%j": (3, "doy")}


@lru_cache(maxsize=256)
def parse_format(fmt: str) -> tuple[str, ...]:
    """A date format reduced to strftime codes -> its parts; ValueError naming an unsupported element."""
    parts: list[str] = []
    pos = 0
    while pos < len(fmt):
        m = _FORMAT_PARTS.match(fmt, pos)
        if m is None:
            raise ValueError(f"format element at {fmt[pos:]!r} is not supported")
        part = m.group()
        if part.startswith("%") and part not in _NUMERIC_FIELD and part != "%%":
            raise ValueError(f"format element {part!r} is not supported (supported: year, month, day, hour, "
                             "minute, second, fraction as digits)")
        if part.isalpha():
            raise ValueError(f"format element {part!r} is not supported (supported: year, month, day, hour, "
                             "minute, second, fraction as digits)")
        parts.append(part)
        pos = m.end()
    return tuple(parts)


def _scan(text: str, parts: tuple[str, ...], strict_width: bool) -> dict[str, int] | None:
    """Read `text` by format parts; None when it does not match."""
    fields: dict[str, int] = {}
    i = 0
    n = len(text)
    for k, part in enumerate(parts):
        spec = _NUMERIC_FIELD.get(part)
        if spec is None:
            lit = "%" if part == "%%" else part
            if i < n and text[i] == lit:
                i += 1
            elif not strict_width and i < n and not text[i].isdigit():
                i += 1  # to_date skips one separator character whatever it is
            elif strict_width:
                return None
            continue
        width, name = spec
        nxt = parts[k + 1] if k + 1 < len(parts) else None
        fixed = nxt is not None and nxt in _NUMERIC_FIELD  # adjacent numbers: fixed width (YYYYMMDD)
        j = i
        if i < n and text[i] in "+-" and name == "year":
            j += 1
        limit = i + width if fixed or name == "micro" else n
        while j < n and j < limit and text[j].isdigit():
            j += 1
        if j == i:
            return None
        fields[name] = int(text[i:j].ljust(6, "0")) if name == "micro" else int(text[i:j])
        i = j
    if i < n and text[i:].strip():
        return None
    return fields


def _build(fields: dict[str, int], text: str) -> datetime:
    year = fields.get("year")
    if year is None and "year2" in fields:
        y2 = fields["year2"]
        year = 2000 + y2 if y2 < 70 else 1900 + y2
    try:
        return datetime(year if year is not None else 1, fields.get("month", 1), fields.get("day", 1),
                        fields.get("hour", 0), fields.get("minute", 0), fields.get("second", 0), fields.get("micro", 0))
    except ValueError:
        raise EvalError(f'date/time field value out of range: "{text}"') from None


@lru_cache(maxsize=256)
def _digits_layout(fmt: str) -> tuple[tuple[str, int, int], ...] | None:
    """For formats made only of numeric fields (legacy '%Y%m%d'): each field's name and slice."""
    out = []
    pos = 0
    for part in parse_format(fmt):
        spec = _NUMERIC_FIELD.get(part)
        if spec is None or spec[1] == "micro":
            return None
        out.append((spec[1], pos, pos + spec[0]))
        pos += spec[0]
    return tuple(out)


def _fields(text: str, fmt: str, strict_width: bool) -> dict[str, int] | None:
    layout = _digits_layout(fmt)
    if layout is not None and text.isdigit() and text.isascii() and len(text) == layout[-1][2]:
        # the common legacy case (YYYYMMDD in a CHAR or an integer): every digit where the format says
        return {name: int(text[a:b]) for name, a, b in layout}
    return _scan(text, parse_format(fmt), strict_width)


def _yyyymmdd(text: str) -> date | None:
    """The legacy YYYYMMDD fast path; None when `text` is not eight ASCII digits."""
    if len(text) == 8 and text.isdigit() and text.isascii():
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            raise EvalError(f'date/time field value out of range: "{text}"') from None
    return None


def pg_to_date_fmt(text: str, fmt: str) -> date:
    if fmt == "%Y%m%d" and (d := _yyyymmdd(text)) is not None:
        return d
    fields = _fields(text, fmt, strict_width=False)
    if fields is None:
        raise EvalError(f'invalid value "{text}" for format "{fmt}"')
    return _build(fields, text).date()


def memoized(fn: Callable[[_K], _R], keep: type, size: int = 65_536) -> tuple[dict[_K, _R], Callable[[_K], _R]]:
    """`fn` remembered by its argument, for the generated ``memo.get(x) or compute(x)``.

    Legacy date columns hold a few thousand distinct days, and parsing one costs more than all the rest
    of a typical row: a plain dict read in the generated code skips that (functools.lru_cache adds a
    wrapper call and its own bookkeeping, which ate the gain). `fn` must be pure and its results truthy
    (dates are). Only arguments of exactly the class `keep` are remembered (an int column's float
    20240101.0 equals 20240101 as a key but not as text); a falsy result (MySQL's NULL for a bad date)
    is recomputed each time, and an error is raised each time, never remembered. The memo is emptied
    when full, so a long run's changing working set (recent dates) keeps being served."""
    memo: dict[_K, _R] = {}

    def compute(x: _K) -> _R:
        v = fn(x)
        if v and x.__class__ is keep:
            if len(memo) >= size:
                memo.clear()
            memo[x] = v
        return v
    return memo, compute


def pg_to_ts_fmt(text: str, fmt: str) -> datetime:
    fields = _fields(text, fmt, strict_width=False)
    if fields is None:
        raise EvalError(f'invalid value "{text}" for format "{fmt}"')
    return _build(fields, text).replace(tzinfo=UTC)


def format_date(v: date | datetime, fmt: str) -> str:
    out: list[str] = []
    for part in parse_format(fmt):
        if part == "%%":
            out.append("%")
        elif part == "%Y":
            out.append(f"{v.year:04d}")
        elif part == "%y":
            out.append(f"{v.year % 100:02d}")
        elif part == "%m":
            out.append(f"{v.month:02d}")
        elif part == "%d":
            out.append(f"{v.day:02d}")
        elif part == "%j":
            out.append(f"{v.timetuple().tm_yday:03d}")
        elif part in ("%H", "%M", "%S", "%f"):
            t = v if isinstance(v, datetime) else datetime(v.year, v.month, v.day)
            out.append({"%H": f"{t.hour:02d}", "%M": f"{t.minute:02d}", "%S": f"{t.second:02d}",
                        "%f": f"{t.microsecond:06d}"}[part])
        else:
            out.append(part)
    return "".join(out)


# ----------------------------------------------------------------------------------------------- MySQL

_MY_NUM_PREFIX = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_MY_INT_PREFIX = re.compile(r"\s*[+-]?\d+")


def my_str_to_float(s: str) -> float:
    """A string in numeric context: its longest numeric prefix (MySQL warns and uses it), else 0."""
    m = _MY_NUM_PREFIX.match(s)
    if m is None:
        return 0.0
    try:
        return float(m.group())
    except ValueError:
        return 0.0


def my_str_to_dec(s: str) -> Decimal:
    m = _MY_NUM_PREFIX.match(s)
    return Decimal(m.group().strip()) if m is not None else Decimal(0)


def my_str_to_int(s: str) -> int:
    m = _MY_INT_PREFIX.match(s)
    return int(m.group()) if m is not None else 0


def my_div(a: Decimal, b: Decimal, scale: int) -> Decimal | None:
    """MySQL `/` on exact values: scale of the dividend + div_precision_increment (4), half up; NULL on 0."""
    if b.is_zero():
        return None
    return _scaled_quotient(a, b, min(scale + 4, 30))


def my_fdiv(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def my_intdiv(a: Decimal | int, b: Decimal | int) -> int | None:
    if b == 0:
        return None
    if isinstance(a, int) and isinstance(b, int):
        return pg_idiv(a, b)
    q = DCTX.divide_int(Decimal(a), Decimal(b))
    return int(q)


def my_mod(a: Any, b: Any) -> Any:
    if b == 0:
        return None
    if isinstance(a, int) and isinstance(b, int):
        return pg_imod(a, b)
    if isinstance(a, float) or isinstance(b, float):
        return math.fmod(a, b)
    return DCTX.remainder(Decimal(a), Decimal(b))


def my_dec_text(d: Decimal) -> str:
    return format(d, "f")


def my_float_text(f: float) -> str:
    """MySQL prints doubles with the shortest round-trip digits, exponent form as 1e20 / 1e-7."""
    if f == 0:
        return "0"
    r = repr(f)
    if "e" in r or "E" in r:
        mant, _, e = r.partition("e")
        mant = mant[:-2] if mant.endswith(".0") else mant
        return f"{mant}e{int(e)}"
    if abs(f) >= 1e15:
        d = Decimal(r)
        sign, digits, exp = d.normalize().as_tuple()
        assert isinstance(exp, int)
        ds = "".join(map(str, digits))
        return ("-" if sign else "") + ds[0] + ("." + ds[1:] if len(ds) > 1 else "") + f"e{len(ds) - 1 + exp}"
    return r[:-2] if r.endswith(".0") else r


def my_ts_text(precision: int | None) -> Callable[[datetime], str]:
    p = precision or 0

    def text(v: datetime) -> str:
        out = f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}"
        return out + "." + f"{v.microsecond:06d}"[:p] if p else out
    return text


def my_time_text(precision: int | None) -> Callable[[time], str]:
    p = precision or 0

    def text(v: time) -> str:
        out = f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
        return out + "." + f"{v.microsecond:06d}"[:p] if p else out
    return text


def my_text_of(kind: str, precision: int | None = None) -> Callable[[Any], str]:
    """How MySQL turns a value of `kind` into a string (CONCAT, CAST AS CHAR, string comparison)."""
    if kind == "bool":
        return lambda v: "1" if v else "0"
    if kind == "dec":
        return my_dec_text
    if kind == "float":
        return my_float_text
    if kind == "date":
        return date.isoformat
    if kind in ("ts", "tstz"):
        return my_ts_text(precision)
    if kind == "time":
        return my_time_text(precision)
    return str


def my_substr(s: str, pos: int, length: int | None = None) -> str:
    n = len(s)
    if pos == 0 or pos > n or pos < -n:
        return ""
    start = pos - 1 if pos > 0 else n + pos
    if length is None:
        return s[start:]
    if length <= 0:
        return ""
    return s[start:start + length]


def my_left(s: str, n: int) -> str:
    return s[:n] if n > 0 else ""


def my_right(s: str, n: int) -> str:
    return s[len(s) - n:] if n > 0 else ""


def my_lpad(s: str, n: int, fill: str) -> str | None:
    if n < 0:
        return None
    if len(s) >= n:
        return s[:n]
    if not fill:
        return None
    need = n - len(s)
    return (fill * (need // len(fill) + 1))[:need] + s


def my_rpad(s: str, n: int, fill: str) -> str | None:
    if n < 0:
        return None
    if len(s) >= n:
        return s[:n]
    if not fill:
        return None
    need = n - len(s)
    return s + (fill * (need // len(fill) + 1))[:need]


def my_trim(s: str, rem: str, where: str) -> str:
    """MySQL TRIM removes the whole string `rem` repeatedly (not a set of characters)."""
    if not rem:
        return s
    if where in ("BOTH", "LEADING"):
        while s.startswith(rem):
            s = s[len(rem):]
    if where in ("BOTH", "TRAILING"):
        while s.endswith(rem):
            s = s[:-len(rem)]
    return s


def my_concat(texts: list[str | None]) -> str | None:
    if None in texts:
        return None
    return "".join(texts)  # type: ignore[arg-type]


def my_concat_ws(sep: str, texts: list[str | None]) -> str:
    return sep.join(t for t in texts if t is not None)


def my_octet_length(s: str) -> int:
    return len(s.encode("utf-8"))


def my_to_date(s: str) -> date | None:
    """A string in DATE context: 'YYYY-MM-DD[ ...]' or 'YYYYMMDD'; NULL (with a warning) otherwise."""
    m = _ISO_DATE.match(s) or _COMPACT_DATE.fullmatch(s)
    if m is None:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def my_int_to_date(n: int) -> date | None:
    return my_to_date(f"{n:08d}") if n > 0 else None


def my_to_ts(s: str) -> datetime | None:
    try:
        v = pg_to_ts(s)
    except EvalError:
        d = my_to_date(s)
        return None if d is None else datetime(d.year, d.month, d.day)
    return v


def my_str_to_date(text: str, fmt: str) -> date | None:
    if fmt == "%Y%m%d":
        try:
            if (d := _yyyymmdd(text)) is not None:
                return d
        except EvalError:
            return None
    fields = _fields(text, fmt, strict_width=True)
    if fields is None:
        return None
    try:
        return _build(fields, text).date()
    except EvalError:
        return None


def my_str_to_datetime(text: str, fmt: str) -> datetime | None:
    fields = _fields(text, fmt, strict_width=True)
    if fields is None:
        return None
    try:
        return _build(fields, text)
    except EvalError:
        return None


def my_date_add(d: Any, n: int, unit: str) -> Any:
    try:
        if unit == "DAY":
            return d + timedelta(days=n)
        if unit == "WEEK":
            return d + timedelta(weeks=n)
        if unit in ("MONTH", "QUARTER", "YEAR"):
            months = n * {"MONTH": 1, "QUARTER": 3, "YEAR": 12}[unit]
            total = d.year * 12 + d.month - 1 + months
            y, m = divmod(total, 12)
            last = [31, 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30,
                    31, 30, 31][m]
            return d.replace(year=y, month=m + 1, day=min(d.day, last))
        if unit in ("HOUR", "MINUTE", "SECOND"):
            base = d if isinstance(d, datetime) else datetime(d.year, d.month, d.day)
            return base + timedelta(**{unit.lower() + "s": n})
    except (OverflowError, ValueError):
        return None
    raise EvalError(f"INTERVAL unit {unit} is not supported")


def my_round_dec(d: Decimal, places: int = 0) -> Decimal:
    return pg_round(d, places)


def my_dec_typmod(d: Decimal, precision: int | None, scale: int | None) -> Decimal:
    """CAST(... AS DECIMAL(p,s)): round half up; out of range clamps to the largest value (with a warning)."""
    p = precision if precision is not None else 10
    s = scale or 0
    r = nz(d.quantize(Decimal(1).scaleb(-s), rounding=ROUND_HALF_UP, context=DCTX))
    limit = Decimal(10) ** (p - s) - Decimal(1).scaleb(-s)
    if abs(r) > limit:
        return limit if r > 0 else -limit
    return r


def my_dec_to_int(d: Decimal) -> int:
    return int(d.to_integral_value(ROUND_HALF_UP, DCTX))


def my_float_to_int(f: float) -> int:
    """A double as BIGINT: rint() (half to even), clamped to the BIGINT range as MySQL does."""
    if f != f:
        return 0
    if f >= 9.223372036854775807e18:
        return 9223372036854775807
    if f <= -9.223372036854775808e18:
        return -9223372036854775808
    return round(f)


def my_truth(v: Any) -> bool | None:
    """A value in boolean context (WHERE, AND, IF): non-zero is true; strings as their numeric prefix."""
    if v is None:
        return None
    if isinstance(v, str):
        return my_str_to_float(v) != 0
    if isinstance(v, date | time):
        return True
    return bool(v != 0)


# -- collations --

def _general_ci_char(c: str) -> str:
    if c == "ß":
        return "S"
    base = unicodedata.normalize("NFD", c)[0]
    u = base.upper()
    return u if len(u) == 1 else base


@lru_cache(maxsize=65536)
def _general_ci_slow(s: str) -> str:
    return "".join(_general_ci_char(c) for c in s)


def general_ci_key(s: str) -> str:
    """utf8mb4_general_ci's comparison key: case- and accent-insensitive per character, PAD SPACE."""
    s = s.rstrip(" ")
    return s.upper() if s.isascii() else _general_ci_slow(s)


def general_ci_like_key(s: str) -> str:
    """The same per-character folding without PAD SPACE (LIKE compares character by character)."""
    return s.upper() if s.isascii() else _general_ci_slow(s)


def bin_key(s: str) -> str:
    return s.rstrip(" ")


def char_key(s: str) -> str:
    """PostgreSQL bpchar comparison: trailing spaces are insignificant."""
    return s.rstrip(" ")


# -- LIKE --

@lru_cache(maxsize=1024)
def like_regex(pattern: str, escape: str | None, flags: int) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if escape and c == escape:
            if i + 1 >= n:
                raise EvalError("LIKE pattern must not end with escape character")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "%":
            out.append(".*")
        elif c == "_":
            out.append(".")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), flags | re.DOTALL)


def like(s: str, pattern: str, escape: str | None = "\\", flags: int = 0) -> bool:
    return like_regex(pattern, escape, flags).fullmatch(s) is not None


def in_list(v: Any, items: tuple[Any, ...]) -> bool | None:
    """v IN (items) with SQL's NULL rules (v is not NULL): TRUE, NULL when unmatched and a NULL is listed."""
    saw_null = False
    for it in items:
        if it is None:
            saw_null = True
        elif v == it:
            return True
    return None if saw_null else False
