"""Binlog row decoding: byte fixtures per type and encoding mode, partial images, precise errors, and the
C fast path against its pure-Python twin.

Row bytes are built here by hand following the server's formats (MySQL's decimal2bin,
my_datetime_packed_to_binary, my_time_packed_to_binary, my_timestamp_to_binary; the JSONB layout), with a
few values as a real MariaDB logged them; tests/unit/fixtures/mariadb-binlog-rows.json holds whole events
captured from MariaDB 10.11 with the values the server returned for them. Every decoding test runs on
both paths (`native`): the compiled Python twin and, where it is built, the C extension. And every
decoding in this module is checked against the JSON path (the `json_path_agrees` fixture): the
`*_rows_json` methods must give exactly orjson's bytes of the dicts, keys included, or the same error.
"""

from __future__ import annotations

import base64
import json
import math
import random
import struct
import sys
from collections.abc import Callable, Iterator
from decimal import Context, Decimal, localcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from pymysqlreplication.column import Column
from pymysqlreplication.util.bytes import parse_decimal_from_bytes

from cdc.readers import binlogrows as br
from cdc.readers.binlogrows import BinlogColumn, MyEncodingModes, RowDecoder, binlog_columns, event_span
from cdc.readers.mysqlschema import ColumnDef, TableSchema

FIXTURE = Path(__file__).parent / "fixtures" / "mariadb-binlog-rows.json"
NATIVE = [False, *([True] if br.NATIVE_AVAILABLE else [])]
native_param = pytest.mark.parametrize("native", NATIVE, ids=lambda n: "c" if n else "python")

# binlog type codes (pymysqlreplication.constants.FIELD_TYPE)
TINY, SHORT, LONG, FLOAT, DOUBLE, TIMESTAMP, LONGLONG, INT24, DATE, TIME, DATETIME, YEAR = (
    1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13)
VARCHAR, BIT, TIMESTAMP2, DATETIME2, TIME2 = 15, 16, 17, 18, 19
JSON, NEWDECIMAL, ENUM, SET, BLOB, STRING, GEOMETRY = 245, 246, 247, 248, 252, 254, 255

DEFAULT = MyEncodingModes()

# ---------------------------------------------------------------------------------- binlog encoders

DIG2BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)


def dec_bin(text: str, precision: int, scale: int) -> bytes:
    """MySQL's decimal2bin: groups of 9 digits in 4 big-endian bytes, partial groups in fewer; the first
    bit set for a positive number, every bit inverted for a negative one."""
    d = Decimal(text)
    neg = d.is_signed()
    with localcontext(Context(prec=100)):
        ip, _, fp = format(abs(d).quantize(Decimal(1).scaleb(-scale)), "f").partition(".")
    intg = precision - scale
    ip = ip.lstrip("0").rjust(intg, "0")
    assert len(ip) == intg, (text, precision, scale)
    fp = fp.ljust(scale, "0")
    groups = ([ip[: intg % 9]] if intg % 9 else []) + [ip[k:k + 9] for k in range(intg % 9, intg, 9)]
    groups += [fp[k:k + 9] for k in range(0, scale - scale % 9, 9)] + ([fp[scale - scale % 9:]] if scale % 9 else [])
    out = bytearray(b"".join(int(g).to_bytes(DIG2BYTES[len(g)], "big") for g in groups))
    if neg:
        out = bytearray(~b & 0xFF for b in out)
    out[0] ^= 0x80
    return bytes(out)


def frac_bin(us: int, fsp: int) -> bytes:
    """The fractional part of TIMESTAMP2/DATETIME2: (fsp+1)//2 big-endian bytes."""
    nbytes = (fsp + 1) // 2
    if nbytes == 0:
        return b""
    return (us // (10000, 100, 1)[nbytes - 1]).to_bytes(nbytes, "big")


def datetime2_bin(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0, fsp: int = 0) -> bytes:
    ymd = (y * 13 + mo) << 5 | d
    hms = h << 12 | mi << 6 | s
    return ((ymd << 17 | hms) + 0x8000000000).to_bytes(5, "big") + frac_bin(us, fsp)


def timestamp2_bin(secs: int, us: int = 0, fsp: int = 0) -> bytes:
    return secs.to_bytes(4, "big") + frac_bin(us, fsp)


def c_rem(x: int, m: int) -> int:
    """C's % (the remainder takes the dividend's sign)."""
    return -((-x) % m) if x < 0 else x % m


def c_div(x: int, m: int) -> int:
    return -((-x) // m) if x < 0 else x // m


def time2_bin(neg: bool, h: int, mi: int, s: int, us: int, fsp: int) -> bytes:
    """my_time_packed_to_binary, literally: the packed time's integer part offset by 0x800000 and its
    fraction, or for fsp 5-6 the whole packed value offset by 0x800000000000."""
    packed = ((h << 12 | mi << 6 | s) << 24) + us
    if neg:
        packed = -packed
    int_part, frac_part = packed >> 24, c_rem(packed, 1 << 24)
    head = (int_part + 0x800000).to_bytes(3, "big")
    if fsp in (1, 2):
        return head + bytes([c_div(frac_part, 10000) & 0xFF])
    if fsp in (3, 4):
        return head + (c_div(frac_part, 100) & 0xFFFF).to_bytes(2, "big")
    if fsp in (5, 6):
        return (packed + 0x800000000000).to_bytes(6, "big")
    return head


def date_bin(y: int, mo: int, d: int) -> bytes:
    return (y << 9 | mo << 5 | d).to_bytes(3, "little")


def var(b: bytes, prefix: int) -> bytes:
    return len(b).to_bytes(prefix, "little") + b


def image(values: list[bytes | None], pad_bits: bool = True) -> bytes:
    """A row image: the null bitmap (MariaDB sets the unused high bits, so do we) and the non-NULL values."""
    n = len(values)
    bits = sum(1 << j for j, v in enumerate(values) if v is None)
    nbytes = (n + 7) // 8
    if pad_bits:
        bits |= ((1 << (8 * nbytes)) - 1) ^ ((1 << n) - 1)
    return bits.to_bytes(nbytes, "little") + b"".join(v for v in values if v is not None)


def jsonb(v: Any) -> bytes:
    """A MySQL binary JSON document (small containers only)."""
    t, body = _jsonb(v)
    return bytes([t]) + body


def _jsonb(v: Any) -> tuple[int, bytes]:
    if v is None or isinstance(v, bool):
        return 4, bytes([{None: 0, True: 1, False: 2}[v]])
    if isinstance(v, int):
        return 5, struct.pack("<h", v)
    if isinstance(v, float):
        return 11, struct.pack("<d", v)
    if isinstance(v, str):
        b = v.encode()
        assert len(b) < 128
        return 12, bytes([len(b)]) + b
    keys = [k.encode() for k in v] if isinstance(v, dict) else []
    items = list(v.values()) if isinstance(v, dict) else list(v)
    n = len(items)
    cursor = 4 + 4 * len(keys) + 3 * n
    key_entries = b""
    for k in keys:
        key_entries += struct.pack("<HH", cursor, len(k))
        cursor += len(k)
    entries, values = b"", b""
    for item in items:
        t, body = _jsonb(item)
        if t in (4, 5):  # inlined in a small container
            entries += bytes([t]) + (body + b"\0")[:2]
        else:
            entries += bytes([t]) + struct.pack("<H", cursor + len(values))
            values += body
    total = cursor + len(values)
    body = struct.pack("<HH", n, total) + key_entries + entries + b"".join(keys) + values
    return (0 if isinstance(v, dict) else 2), body


# ---------------------------------------------------------------------------------- expectations


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def b64_unscaled(u: int) -> str:
    n = 1
    while not -(1 << (8 * n - 1)) <= u < 1 << (8 * n - 1):
        n += 1
    return b64(u.to_bytes(n, "big", signed=True))


def decode_one(col: ColumnDef, bcol: BinlogColumn, raw: bytes | None, mode: MyEncodingModes = DEFAULT,
               native: bool = False) -> Any:
    """The decoded value of one column in a one-column table."""
    dec = RowDecoder(TableSchema("db", "t", (col,)), [bcol], mode, native=native)
    data = image([raw])
    rows = dec.write_rows(data, 0, len(data), b"\x01")
    assert len(rows) == 1
    return rows[0][col.name]


# ---------------------------------------------------------------------------------- the JSON path

_KEY_LACKING = "lacks the key column"


def _keyed(dec: RowDecoder) -> RowDecoder:
    """The same decoder with an event key: its included columns in reverse order (order matters)."""
    names = [n for n, inc in zip(dec.schema.names, dec._included, strict=True) if inc][::-1]
    return RowDecoder(dec.schema, dec._compiler.columns, dec.modes, dec._included, key=names, native=dec._native)


def _key_json(names: tuple[str, ...], row: dict[str, Any]) -> bytes | None:
    return orjson.dumps({n: row[n] for n in names}) if names else None


def _exact(*blobs: bytes | None) -> bool:
    """Exact-size bytes: nothing beyond the value kept alive (orjson's own results keep ~4 KiB)."""
    return all(b is None or sys.getsizeof(b) == sys.getsizeof(b"") + len(b) for b in blobs)


def check_json_path(dec: RowDecoder, method: str, args: tuple[Any, ...], rows: Any) -> None:
    """`dec`'s JSON method (and a keyed twin's) give orjson.dumps of the dict path's `rows`."""
    for d in (dec, _keyed(dec)):
        names = d._key_names
        try:
            got = getattr(d, method + "_json")(*args)
        except ValueError as e:
            # a partial image without the key columns: refused, naming one
            assert names and _KEY_LACKING in str(e), e
            images = [img for pair in rows for img in pair] if method == "update_rows" else rows
            assert not images or any(n not in img for img in images for n in names)
            continue
        want: list[tuple[bytes | None, ...]]
        if method == "update_rows":
            want = [(orjson.dumps(b), orjson.dumps(a), _key_json(names, b), _key_json(names, a)) for b, a in rows]
        else:
            want = [(orjson.dumps(r), _key_json(names, r)) for r in rows]
        assert got == want
        assert all(_exact(*item) for item in got)


@pytest.fixture(autouse=True)
def json_path_agrees(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every write_rows/delete_rows/update_rows call of this module's tests also runs the JSON twin of
    the call on the same decoder (and on a keyed copy): same bytes as orjson of the dicts, or, when the
    dict path raises ValueError, the same error."""
    def checked(method: str) -> Callable[..., Any]:
        original = getattr(RowDecoder, method)

        def call(self: RowDecoder, *args: Any) -> Any:
            try:
                rows = original(self, *args)
            except ValueError as e:
                with pytest.raises(ValueError) as got:
                    getattr(self, method + "_json")(*args)
                assert str(got.value) == str(e)
                raise
            check_json_path(self, method, args, rows)
            return rows
        return call

    for method in ("write_rows", "delete_rows", "update_rows"):
        monkeypatch.setattr(RowDecoder, method, checked(method))
    yield


# ---------------------------------------------------------------------------------- library glue


def test_binlog_columns_reads_the_library_columns() -> None:
    cols = [Column(type=VARCHAR, name="v", max_length=1200, unsigned=False),
            Column(type=NEWDECIMAL, name="d", precision=12, decimals=2),
            Column(type=DATETIME2, name="t", fsp=6), Column(type=BIT, name="b", bits=10, bytes=2),
            Column(type=ENUM, name="e", size=1, enum_values=["", "a"]), Column(type=BLOB, length_size=4)]
    assert binlog_columns(cols) == (
        BinlogColumn(VARCHAR, max_length=1200, name="v"), BinlogColumn(NEWDECIMAL, precision=12, decimals=2, name="d"),
        BinlogColumn(DATETIME2, fsp=6, name="t"), BinlogColumn(BIT, bits=10, name="b"),
        BinlogColumn(ENUM, size=1, name="e"), BinlogColumn(BLOB, length_size=4))


def test_event_span_is_the_packet_after_the_header_up_to_the_checksum() -> None:
    # OK byte, 19-byte header, post-header and bitmaps (read by the library), rows, 4-byte CRC
    data = b"\x00" + bytes(19) + b"POSTHEADER" + b"ROWS" + b"CRC!"
    packet = SimpleNamespace(_data=data, _position=30)
    ev = SimpleNamespace(packet=SimpleNamespace(packet=packet), event_size=len(data) - 1 - 19 - 4)
    d, pos, end = event_span(ev)
    assert d is data and d[pos:end] == b"ROWS"


def test_modes_are_checked() -> None:
    with pytest.raises(ValueError, match=r"MyEncodingModes.time_precision: 'isostring' is not one of"):
        MyEncodingModes(time_precision="isostring")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"MyEncodingModes.bigint_unsigned"):
        MyEncodingModes(bigint_unsigned="double")  # type: ignore[arg-type]
    assert MyEncodingModes("string", "adaptive_time_microseconds", "bytes", "long") == DEFAULT


# ---------------------------------------------------------------------------------- integers

INT_CASES = [
    ("tinyint", TINY, False, [-128, 0, 127]), ("tinyint", TINY, True, [0, 255]),
    ("smallint", SHORT, False, [-32768, 32767]), ("smallint", SHORT, True, [65535]),
    ("mediumint", INT24, False, [-8388608, -1, 8388607]), ("mediumint", INT24, True, [16777215, 1]),
    ("int", LONG, False, [-2147483648, 2147483647]), ("int", LONG, True, [4294967295]),
    ("bigint", LONGLONG, False, [-9223372036854775808, 9223372036854775807]),
    ("bigint", LONGLONG, True, [0, 9223372036854775808, 18446744073709551615]),
]


@native_param
@pytest.mark.parametrize(("type_", "code", "unsigned", "values"), INT_CASES)
def test_integers_signed_and_unsigned(type_: str, code: int, unsigned: bool, values: list[int], native: bool) -> None:
    size = {TINY: 1, SHORT: 2, INT24: 3, LONG: 4, LONGLONG: 8}[code]
    for v in values:
        raw = v.to_bytes(size, "little", signed=not unsigned)
        got = decode_one(ColumnDef("n", type_, unsigned=unsigned), BinlogColumn(code), raw, native=native)
        assert got == v and type(got) is int


@native_param
def test_bigint_unsigned_modes(native: bool) -> None:
    col, bcol = ColumnDef("n", "bigint", unsigned=True), BinlogColumn(LONGLONG)
    top = (2**64 - 1).to_bytes(8, "little")
    # 'long': the exact value (Debezium would wrap it to -1); 'precise': a Decimal at scale 0, in base64
    # whatever decimal.handling.mode says
    assert decode_one(col, bcol, top, native=native) == 18446744073709551615
    for decimal in ("string", "double", "precise"):
        mode = MyEncodingModes(decimal=decimal, bigint_unsigned="precise")
        assert decode_one(col, bcol, top, mode, native) == "AP//////////" == b64_unscaled(2**64 - 1)
        assert decode_one(col, bcol, (5).to_bytes(8, "little"), mode, native) == "BQ=="


@native_param
def test_tinyint1_boolean_is_the_stored_number(native: bool) -> None:
    # BOOLEAN is TINYINT(1); Debezium emits INT16 (no TinyIntOneToBooleanConverter configured)
    col = ColumnDef("flag", "tinyint", 1)
    for v in (0, 1, 7, -1):
        got = decode_one(col, BinlogColumn(TINY), v.to_bytes(1, "little", signed=True), native=native)
        assert got == v and type(got) is int


@native_param
def test_year(native: bool) -> None:
    col = ColumnDef("y", "year")
    assert [decode_one(col, BinlogColumn(YEAR), bytes([b]), native=native) for b in (0, 1, 124, 255)] == [
        0, 1901, 2024, 2155]  # YEAR 0000 stays 0 (Debezium: 1900)


# ---------------------------------------------------------------------------------- decimals


def test_decimal_encoder_matches_the_library() -> None:
    rnd = random.Random(7)
    for precision, scale in [(12, 2), (65, 30), (10, 0), (9, 9), (18, 4), (30, 10), (1, 0), (19, 10)]:
        for _ in range(30):
            digits = "".join(rnd.choice("0123456789") for _ in range(precision))
            text = ("-" if rnd.random() < 0.5 else "") + digits[: precision - scale] + "." + digits[precision - scale:]
            assert parse_decimal_from_bytes(dec_bin(text, precision, scale), precision, scale) == Decimal(text)


@native_param
@pytest.mark.parametrize(("precision", "scale"), [(12, 2), (65, 30), (10, 0), (9, 9), (18, 4), (18, 6), (30, 10),
                                                  (1, 0), (19, 10), (20, 7), (38, 0)])
def test_decimal_every_mode_random(precision: int, scale: int, native: bool) -> None:
    rnd = random.Random(precision * 100 + scale)
    col = ColumnDef("d", "decimal", precision, scale)
    bcol = BinlogColumn(NEWDECIMAL, precision=precision, decimals=scale)
    modes = [MyEncodingModes(decimal="string"), MyEncodingModes(decimal="double"), MyEncodingModes(decimal="precise")]
    decoders = [RowDecoder(TableSchema("db", "t", (col,)), [bcol], m, native=native) for m in modes]
    for k in range(200):
        n = rnd.choice([0, 1, min(2, precision), precision // 2, precision])
        digits = "".join(rnd.choice("0123456789") for _ in range(n)).rjust(precision, "0")
        text = ("-" if k % 3 == 0 else "") + digits[: precision - scale] + "." + digits[precision - scale:]
        value = Decimal(text)
        data = image([dec_bin(text, precision, scale)])
        as_string, as_double, as_precise = (d.write_rows(data, 0, len(data), b"\x01")[0]["d"] for d in decoders)
        # Java BigDecimal.toString at the column's scale: Python's Decimal str has the same rules
        with localcontext(Context(prec=100)):
            unscaled = int(value.scaleb(scale))
            # (a negative zero, which MySQL never stores, still decodes as BigDecimal's only zero)
            assert as_string == str((value if value else Decimal(0)).quantize(Decimal(1).scaleb(-scale)))
        assert as_double == float(value) and type(as_double) is float
        assert as_precise == b64_unscaled(unscaled)


@native_param
def test_decimal_text_is_java_bigdecimal(native: bool) -> None:
    cases = [
        (12, 2, "95497.56", "95497.56", "AJG3vA=="),  # the amount of ../shared/bench's Debezium sample event
        (12, 2, "-1234.50", "-1234.50", None), (12, 2, "0.00", "0.00", "AA=="), (12, 2, "-0.01", "-0.01", "/w=="),
        (20, 10, "0.0000000001", "1E-10", "AQ=="), (20, 10, "0", "0E-10", "AA=="),
        (20, 10, "-0.0000001000", "-1.000E-7", None), (20, 10, "0.0000010000", "0.0000010000", None),
        (10, 0, "-9999999999", "-9999999999", None), (65, 30, "-0.000000000000000000000000000001", "-1E-30", "/w=="),
        (65, 30, "12345678901234567890.123456789012345678901234567890",
         "12345678901234567890.123456789012345678901234567890", None),
    ]
    col_modes = [MyEncodingModes(), MyEncodingModes(decimal="precise")]
    for precision, scale, text, want, want_b64 in cases:
        col, bcol = ColumnDef("d", "decimal", precision, scale), BinlogColumn(NEWDECIMAL, precision=precision,
                                                                              decimals=scale)
        raw = dec_bin(text, precision, scale)
        assert decode_one(col, bcol, raw, col_modes[0], native) == want
        if want_b64:
            assert decode_one(col, bcol, raw, col_modes[1], native) == want_b64


@native_param
def test_decimal_bad_digits_raise_naming_the_column(native: bool) -> None:
    col, bcol = ColumnDef("amount", "decimal", 12, 2), BinlogColumn(NEWDECIMAL, precision=12, decimals=2)
    raw = bytearray(dec_bin("1.00", 12, 2))
    raw[-1] = 0xC8  # 200 in a 2-digit group
    with pytest.raises(ValueError, match=r"^db\.t\.amount \(decimal\): row 0 of the event: DECIMAL digits out of"):
        decode_one(col, bcol, bytes(raw), native=native)


# ---------------------------------------------------------------------------------- floats


@native_param
def test_float_is_java_float_tostring_and_float_md_is_widened(native: bool) -> None:
    f32 = struct.Struct("<f")
    col, bcol = ColumnDef("f", "float"), BinlogColumn(FLOAT, size=4)
    for value, want in [(1.1, 1.1), (3.14, 3.14), (0.0, 0.0), (-2.5, -2.5), (1e10, 1e10),
                        (3.4028234663852886e38, 3.4028235e38), (1.401298464324817e-45, 1.4e-45),
                        (16777217.0, 16777216.0), (0.1, 0.1), (123456.789, 123456.79)]:
        got = decode_one(col, bcol, f32.pack(value), native=native)
        assert got == want and type(got) is float
        assert f32.pack(got) == f32.pack(value)
    # FLOAT(M,D) is FLOAT64 in Debezium: the float32 widened, digits and all
    widened = decode_one(ColumnDef("f", "float", 7, 2), bcol, f32.pack(3.14), native=native)
    assert widened == 3.140000104904175
    assert decode_one(ColumnDef("d", "double"), BinlogColumn(DOUBLE, size=8), struct.pack("<d", 0.1 + 0.2),
                      native=native) == 0.30000000000000004


# ---------------------------------------------------------------------------------- strings and binary


@native_param
def test_text_in_column_charsets(native: bool) -> None:
    cases = [
        ("varchar", "utf8mb4", VARCHAR, 400, "emoji 😀 é ü ∑", "utf-8"),
        ("char", "utf8mb4", STRING, 40, "ab", "utf-8"),
        ("varchar", "utf8mb3", VARCHAR, 300, "é", "utf-8"),
        ("varchar", "latin1", VARCHAR, 40, "café €uro \u201a", "cp1252"),
        ("varchar", "ascii", VARCHAR, 10, "plain", "ascii"),
        ("varchar", "ucs2", VARCHAR, 20, "Ωmega", "utf-16-be"),
        ("varchar", "cp1251", VARCHAR, 20, "Привет", "cp1251"),
        ("text", "utf8mb4", BLOB, 0, "text\n\t\"", "utf-8"),
    ]
    for type_, charset, code, max_length, text, codec in cases:
        raw = text.encode(codec)
        length_size = 2 if code == BLOB else 0
        prefix = length_size or (1 if max_length < 256 else 2)
        bcol = BinlogColumn(code, max_length=max_length, length_size=length_size)
        got = decode_one(ColumnDef("s", type_, charset=charset), bcol, var(raw, prefix), native=native)
        assert got == text, (charset, got)


@native_param
def test_latin1_is_mysql_latin1(native: bool) -> None:
    # MySQL's latin1 is cp1252 whose five undefined bytes are the C1 controls, as the server converts them
    got = decode_one(ColumnDef("s", "varchar", charset="latin1"), BinlogColumn(VARCHAR, max_length=20),
                     var(bytes([0x80, 0x81, 0x8D, 0x8F, 0x90, 0x9D, 0xE9]), 1), native=native)
    assert got == "€\x81\x8d\x8f\x90\x9dé"


@native_param
def test_table_charset_is_the_default_and_unknown_charsets_are_refused(native: bool) -> None:
    schema = TableSchema("db", "t", (ColumnDef("s", "varchar"),), charset="latin1")
    dec = RowDecoder(schema, [BinlogColumn(VARCHAR, max_length=10)], DEFAULT, native=native)
    data = image([var(b"\xe9", 1)])
    assert dec.write_rows(data, 0, len(data))[0] == {"s": "é"}
    with pytest.raises(ValueError, match=r"^db\.t\.s: character set 'swe7' is not supported"):
        RowDecoder(TableSchema("db", "t", (ColumnDef("s", "varchar", charset="swe7"),)),
                   [BinlogColumn(VARCHAR, max_length=10)], DEFAULT, native=native)


@native_param
def test_invalid_utf8_names_column_and_row(native: bool) -> None:
    schema = TableSchema("erp", "customers", (ColumnDef("id", "int"), ColumnDef("name", "varchar", charset="utf8mb4")))
    dec = RowDecoder(schema, [BinlogColumn(LONG), BinlogColumn(VARCHAR, max_length=400)], DEFAULT, native=native)
    data = image([struct.pack("<i", 1), var(b"ok", 2)]) + image([struct.pack("<i", 2), var(b"\xff\xfe", 2)])
    with pytest.raises(ValueError, match=r"^erp\.customers\.name \(varchar\): row 1 of the event: 'utf-8' codec"):
        dec.write_rows(data, 0, len(data))


BINARY_CASES = [
    ("binary", STRING, 6, 6, b"ab", b"ab\0\0\0\0"),  # BINARY(n) comes back zero-padded to n (DBZ-254)
    ("binary", STRING, 4, 4, b"", b"\0\0\0\0"),
    ("varbinary", VARCHAR, 20, 300, b"\x00\xfb\xff", b"\x00\xfb\xff"),
    ("blob", BLOB, None, 0, b"\xfb\xef\xbe" * 50, b"\xfb\xef\xbe" * 50),
    ("tinyblob", BLOB, None, 0, b"", b""),
]


@native_param
@pytest.mark.parametrize(("type_", "code", "length", "max_length", "raw", "value"), BINARY_CASES)
def test_binary_modes(type_: str, code: int, length: int | None, max_length: int, raw: bytes, value: bytes,
                      native: bool) -> None:
    col = ColumnDef("b", type_, length)
    want = {"bytes": b64(value), "base64": b64(value), "base64-url-safe": base64.urlsafe_b64encode(value).decode(),
            "hex": value.hex()}
    for length_size in [1, 2, 3, 4] if code == BLOB else [0]:  # BLOBs: a 1-4 byte length
        prefix = length_size or (1 if max_length < 256 else 2)
        bcol = BinlogColumn(code, max_length=max_length, length_size=length_size)
        for mode, expect in want.items():
            got = decode_one(col, bcol, var(raw, prefix), MyEncodingModes(binary=mode), native)  # type: ignore[arg-type]
            assert got == expect, (mode, length_size)


@native_param
def test_text_in_charset_binary_is_binary(native: bool) -> None:
    got = decode_one(ColumnDef("t", "text", charset="binary"), BinlogColumn(BLOB, length_size=2),
                     var(b"\xff\x00", 2), MyEncodingModes(binary="hex"), native)
    assert got == "ff00"


# ---------------------------------------------------------------------------------- BIT, ENUM, SET


@native_param
def test_bit(native: bool) -> None:
    one = ColumnDef("b", "bit", 1)
    assert decode_one(one, BinlogColumn(BIT, bits=1), b"\x01", native=native) is True
    assert decode_one(one, BinlogColumn(BIT, bits=1), b"\x00", native=native) is False
    # BIT(n>1): io.debezium.data.Bits, little-endian bytes, base64 whatever binary.handling.mode says
    b12 = ColumnDef("b", "bit", 12)
    raw = (0b101000000011).to_bytes(2, "big")
    for mode in ("bytes", "hex"):
        got = decode_one(b12, BinlogColumn(BIT, bits=12), raw, MyEncodingModes(binary=mode), native)
        assert got == b64(bytes([0b00000011, 0b1010]))
    assert decode_one(b12, BinlogColumn(BIT, bits=12), b"\0\0", native=native) == "AAA="
    b64col = ColumnDef("b", "bit", 64)
    assert decode_one(b64col, BinlogColumn(BIT, bits=64), (1).to_bytes(8, "big"), native=native) == b64(
        (1).to_bytes(8, "little"))


@native_param
def test_enum_and_set(native: bool) -> None:
    enum = ColumnDef("e", "enum", values=("small", "médium", "large"))
    assert [decode_one(enum, BinlogColumn(ENUM, size=1), bytes([i]), native=native) for i in (0, 1, 2, 3)] == [
        "", "small", "médium", "large"]  # 0: the empty string MySQL stores for an invalid value
    wide = ColumnDef("e", "enum", values=tuple(f"v{i}" for i in range(300)))
    assert decode_one(wide, BinlogColumn(ENUM, size=2), (299).to_bytes(2, "little"), native=native) == "v298"
    with pytest.raises(ValueError, match=r"^db\.t\.e \(enum\): row 0 of the event: ENUM index 4 beyond the 3 members"):
        decode_one(enum, BinlogColumn(ENUM, size=1), b"\x04", native=native)
    members = tuple("abcdefghijklmnopqrstuvwxyz")
    set_ = ColumnDef("s", "set", values=members[:4])
    assert decode_one(set_, BinlogColumn(SET, size=1), b"\x00", native=native) == ""
    assert decode_one(set_, BinlogColumn(SET, size=1), b"\x09", native=native) == "a,d"
    big = ColumnDef("s", "set", values=tuple(f"m{i}" for i in range(64)))
    assert decode_one(big, BinlogColumn(SET, size=8), ((1 << 63) | 2).to_bytes(8, "little"), native=native) == "m1,m63"
    three = ColumnDef("s", "set", values=tuple(f"m{i}" for i in range(20)))
    assert decode_one(three, BinlogColumn(SET, size=3), (1 << 19).to_bytes(3, "little"), native=native) == "m19"
    with pytest.raises(ValueError, match=r"^db\.t\.s \(set\): row 0 of the event: SET bits 0x10 name members beyond"):
        decode_one(set_, BinlogColumn(SET, size=1), b"\x10", native=native)


# ---------------------------------------------------------------------------------- temporal

DAYS_2024_02_29 = 19782
US_2024_02_29 = DAYS_2024_02_29 * 86_400_000_000


@native_param
def test_date(native: bool) -> None:
    col, bcol = ColumnDef("d", "date"), BinlogColumn(DATE)
    assert decode_one(col, bcol, date_bin(2024, 2, 29), native=native) == DAYS_2024_02_29
    assert decode_one(col, bcol, date_bin(1969, 12, 31), native=native) == -1
    assert decode_one(col, bcol, date_bin(1, 1, 1), native=native) == -719162  # no 2-digit-year adjuster
    assert decode_one(col, bcol, date_bin(9999, 12, 31), native=native) == 2932896
    # zero dates: null, or Debezium's epoch fallback in a NOT NULL column
    for zero in (date_bin(0, 0, 0), date_bin(2024, 0, 15), date_bin(2024, 3, 0), date_bin(0, 1, 1)):
        assert decode_one(col, bcol, zero, native=native) is None
        assert decode_one(ColumnDef("d", "date", nullable=False), bcol, zero, native=native) == 0
    with pytest.raises(ValueError, match=r"^db\.t\.d \(date\): row 0 of the event: day is out of range for month"):
        decode_one(col, bcol, date_bin(2023, 2, 29), native=native)  # ALLOW_INVALID_DATES can store it
    with pytest.raises(ValueError, match=r"^db\.t\.d \(date\): row 0 of the event: month must be in 1..12"):
        decode_one(col, bcol, date_bin(2023, 13, 1), native=native)


MODES_T = {"amt": MyEncodingModes(), "adaptive": MyEncodingModes(time_precision="adaptive"),
           "connect": MyEncodingModes(time_precision="connect")}


@native_param
@pytest.mark.parametrize("fsp", range(7))
def test_datetime2_every_precision_and_mode(fsp: int, native: bool) -> None:
    col, bcol = ColumnDef("t", "datetime", fsp), BinlogColumn(DATETIME2, fsp=fsp)
    us = 123456 - 123456 % 10 ** (6 - fsp)
    raw = datetime2_bin(2024, 2, 29, 23, 59, 58, us, fsp)
    exact = US_2024_02_29 + (23 * 3600 + 59 * 60 + 58) * 1_000_000 + us
    for name, mode in MODES_T.items():
        want = exact // 1000 if name == "connect" or fsp <= 3 else exact
        assert decode_one(col, bcol, raw, mode, native) == want, name
    before_epoch = datetime2_bin(1969, 12, 31, 23, 59, 59, 999999 - 999999 % 10 ** (6 - fsp), fsp)
    want_us = -1_000_000 + 999999 - 999999 % 10 ** (6 - fsp)
    assert decode_one(col, bcol, before_epoch, MODES_T["connect"], native) == want_us // 1000  # floor, as Java
    zero = datetime2_bin(0, 0, 0, 0, 0, 0, 0, fsp)
    assert decode_one(col, bcol, zero, native=native) is None
    assert decode_one(ColumnDef("t", "datetime", fsp, nullable=False), bcol, zero, native=native) == 0


@native_param
@pytest.mark.parametrize("fsp", range(7))
def test_timestamp2_is_zoned_text_with_fsp_digits(fsp: int, native: bool) -> None:
    col, bcol = ColumnDef("t", "timestamp", fsp), BinlogColumn(TIMESTAMP2, fsp=fsp)
    secs = 1795499832  # 2026-11-24T05:57:12Z
    us = 97831 - 97831 % 10 ** (6 - fsp)
    frac = f".{us:06d}"[: fsp + 1] if fsp else ""
    for mode in MODES_T.values():  # ZonedTimestamp in every time.precision.mode
        assert decode_one(col, bcol, timestamp2_bin(secs, us, fsp), mode, native) == f"2026-11-24T05:57:12{frac}Z"
    zeros = "." + "0" * fsp if fsp else ""
    assert decode_one(col, bcol, timestamp2_bin(1, 0, fsp), native=native) == f"1970-01-01T00:00:01{zeros}Z"
    zero = timestamp2_bin(0, 0, fsp)
    assert decode_one(col, bcol, zero, native=native) is None
    not_null = ColumnDef("t", "timestamp", fsp, nullable=False)
    assert decode_one(not_null, bcol, zero, native=native) == "1970-01-01T00:00:00Z"


TIME_CASES = [(False, 0, 0, 0, 0), (False, 12, 34, 56, 789012), (True, 838, 59, 59, 0), (False, 838, 59, 59, 0),
              (True, 0, 0, 0, 1), (True, 0, 0, 1, 500000), (False, 100, 0, 0, 500000), (True, 25, 0, 0, 999999)]


@native_param
@pytest.mark.parametrize("fsp", range(7))
def test_time2_negative_and_beyond_a_day(fsp: int, native: bool) -> None:
    col, bcol = ColumnDef("t", "time", fsp), BinlogColumn(TIME2, fsp=fsp)
    for neg, h, mi, s, us in TIME_CASES:
        us -= us % 10 ** (6 - fsp)
        exact = ((h * 3600 + mi * 60 + s) * 1_000_000 + us) * (-1 if neg else 1)
        raw = time2_bin(neg, h, mi, s, us, fsp)
        assert decode_one(col, bcol, raw, MODES_T["amt"], native) == exact
        assert decode_one(col, bcol, raw, MODES_T["adaptive"], native) == (exact if fsp > 3 else exact // 1000)
        assert decode_one(col, bcol, raw, MODES_T["connect"], native) == exact // 1000  # floor (Duration.toMillis)


@native_param
def test_time2_as_mariadb_logged_it(native: bool) -> None:
    # TIME(3) '-838:59:59.999' from a real MariaDB 10.11 binlog
    got = decode_one(ColumnDef("t", "time", 3), BinlogColumn(TIME2, fsp=3), bytes.fromhex("4b9104d8fa"), native=native)
    assert got == -3020399999000


@native_param
def test_pre_56_temporal_formats(native: bool) -> None:
    """DATETIME/TIMESTAMP/TIME as MySQL < 5.6 logged them, and MariaDB's 'hires' variants with fsp > 0
    (created with mysql56_temporal_format=OFF); the hex values are from a real MariaDB 10.11 binlog."""
    dt0 = ColumnDef("t", "datetime")
    raw = (20240229101112).to_bytes(8, "little")
    assert decode_one(dt0, BinlogColumn(DATETIME), raw, native=native) == (US_2024_02_29 + 36672 * 1_000_000) // 1000
    assert decode_one(dt0, BinlogColumn(DATETIME), bytes(8), native=native) is None
    ts0 = ColumnDef("t", "timestamp")
    assert decode_one(ts0, BinlogColumn(TIMESTAMP), bytes.fromhex("4058e065"), native=native) == "2024-02-29T10:11:12Z"
    assert decode_one(ts0, BinlogColumn(TIMESTAMP), bytes(4), native=native) is None
    tm0 = ColumnDef("t", "time")
    assert decode_one(tm0, BinlogColumn(TIME), bytes.fromhex("5abdf0"), native=native) == -(100 * 3600 + 62) * 1_000_000
    # hires: DATETIME(1) '2024-01-01 00:00:00.5', TIMESTAMP(2) '2024-02-29 10:11:12.25', TIME(3) '01:00:00.001',
    # DATETIME(6) '2024-02-29 10:11:12.123456'
    assert decode_one(ColumnDef("t", "datetime", 1), BinlogColumn(DATETIME), bytes.fromhex("00a9628a0f05"),
                      native=native) == 1704067200500
    assert decode_one(ColumnDef("t", "timestamp", 2), BinlogColumn(TIMESTAMP), bytes.fromhex("65e0584019"),
                      native=native) == "2024-02-29T10:11:12.25Z"
    assert decode_one(ColumnDef("t", "time", 3), BinlogColumn(TIME), bytes.fromhex("00b43e9401"),
                      native=native) == 3600001000
    assert decode_one(ColumnDef("t", "datetime", 6), BinlogColumn(DATETIME), bytes.fromhex("01027abb71721240"),
                      native=native) == US_2024_02_29 + 36672 * 1_000_000 + 123456


# ---------------------------------------------------------------------------------- JSON, geometry


@native_param
def test_json_mariadb_text_and_mysql_binary(native: bool) -> None:
    text = '{"k": [1, 2.5, "s"], "é": {}}'
    assert decode_one(ColumnDef("j", "json", charset="utf8mb4"), BinlogColumn(BLOB, length_size=4),
                      var(text.encode(), 4), native=native) == text
    col, bcol = ColumnDef("j", "json"), BinlogColumn(JSON, length_size=4)
    doc = {"a": 1, "bb": [True, None, "x\"y\n"], "c": 2.5, "d": {"e": False}, "f": 1e20}
    got = decode_one(col, bcol, var(jsonb(doc), 4), native=native)
    # mysql-binlog-connector's JsonStringFormatter: compact, doubles as Java prints them unless exponent
    assert got == '{"a":1,"bb":[true,null,"x\\"y\\n"],"c":2.5,"d":{"e":false},"f":100000000000000000000}'
    assert json.loads(got) == doc
    assert decode_one(col, bcol, var(jsonb("scalar"), 4), native=native) == '"scalar"'
    assert decode_one(col, bcol, var(b"", 4), native=native) is None
    assert decode_one(ColumnDef("j", "json", nullable=False), bcol, var(b"", 4), native=native) == "{}"


@native_param
def test_geometry_and_point(native: bool) -> None:
    point_wkb = struct.pack("<BIdd", 1, 1, 1.5, -2.0)
    raw = struct.pack("<I", 4326) + point_wkb
    got = decode_one(ColumnDef("p", "point"), BinlogColumn(GEOMETRY, length_size=4), var(raw, 4), native=native)
    assert got == {"x": 1.5, "y": -2.0, "wkb": b64(point_wkb), "srid": 4326}
    line = struct.pack("<BII4d", 1, 2, 2, 0.0, 0.0, 1.0, 1.0)
    got = decode_one(ColumnDef("g", "geometry"), BinlogColumn(GEOMETRY, length_size=4),
                     var(b"\0\0\0\0" + line, 4), native=native)
    assert got == {"wkb": b64(line), "srid": 0}


# ---------------------------------------------------------------------------------- rows, images, nulls

ORDERS = TableSchema("erp", "orders", (
    ColumnDef("id", "bigint", nullable=False), ColumnDef("customer_id", "int"), ColumnDef("status", "text"),
    ColumnDef("amount", "decimal", 12, 2), ColumnDef("note", "text"), ColumnDef("updated_at", "timestamp", 6)),
    primary_key=("id",), charset="utf8mb4")
ORDERS_BIN = [BinlogColumn(LONGLONG, name="id"), BinlogColumn(LONG, name="customer_id"),
              BinlogColumn(BLOB, length_size=2, name="status"), BinlogColumn(NEWDECIMAL, precision=12, decimals=2,
                                                                              name="amount"),
              BinlogColumn(BLOB, length_size=2, name="note"), BinlogColumn(TIMESTAMP2, fsp=6, name="updated_at")]


def order(id_: int, status: str | None = "paid", amount: str | None = "95497.56", note: str | None = "n",
          us: int | None = 97831) -> list[bytes | None]:
    return [struct.pack("<q", id_), None if id_ % 7 == 0 else struct.pack("<i", 8806 + id_),
            None if status is None else var(status.encode(), 2),
            None if amount is None else dec_bin(amount, 12, 2), None if note is None else var(note.encode(), 2),
            None if us is None else timestamp2_bin(1795499832, us, 6)]


def order_dict(id_: int, status: str | None = "paid", amount: str | None = "95497.56", note: str | None = "n",
               us: int | None = 97831) -> dict[str, Any]:
    return {"id": id_, "customer_id": None if id_ % 7 == 0 else 8806 + id_, "status": status, "amount": amount,
            "note": note, "updated_at": None if us is None else f"2026-11-24T05:57:12.{us:06d}Z"}


@native_param
def test_many_rows_with_and_without_nulls(native: bool) -> None:
    dec = RowDecoder(ORDERS, ORDERS_BIN, DEFAULT, native=native)
    specs = [(i, *([None] * 4 if i % 5 == 0 else ["s", f"{i}.25", "ü" * i, i])) for i in range(1, 60)]
    data = b"".join(image(order(*s)) for s in specs)
    rows = dec.write_rows(data, 0, len(data), b"\x3f")
    assert rows == [order_dict(*s) for s in specs]
    assert all(list(r) == list(ORDERS.names) for r in rows)
    assert dec.delete_rows(data, 0, len(data), b"\x3f") == rows
    # a position inside a larger buffer, the end before its tail (the checksum)
    framed = b"HEADER" + data + b"CRC!"
    assert dec.write_rows(framed, 6, 6 + len(data), b"\xff") == rows


@native_param
def test_update_pairs(native: bool) -> None:
    dec = RowDecoder(ORDERS, ORDERS_BIN, DEFAULT, native=native)
    data = b"".join(image(order(i, "paid")) + image(order(i, "shipped", f"{i}.00", None, 1)) for i in (4, 8, 14))
    pairs = dec.update_rows(data, 0, len(data), b"\x3f", b"\x3f")
    assert pairs == [(order_dict(i, "paid"), order_dict(i, "shipped", f"{i}.00", None, 1)) for i in (4, 8, 14)]


@native_param
def test_partial_images(native: bool) -> None:
    """binlog_row_image=MINIMAL/NOBLOB: the present bitmaps say which columns an image holds; absent ones
    are left out of the dict."""
    dec = RowDecoder(ORDERS, ORDERS_BIN, DEFAULT, native=native)
    full = order(3)
    before = image([full[0]])  # the primary key only
    after = image([full[0], full[2], full[5]])  # id, status, updated_at
    data = before + after
    pairs = dec.update_rows(data, 0, len(data), b"\x01", b"\x25")
    assert pairs == [({"id": 3}, {"id": 3, "status": "paid", "updated_at": "2026-11-24T05:57:12.097831Z"})]
    nulls = image([full[0], None])  # id, customer_id (NULL)
    assert dec.write_rows(nulls, 0, len(nulls), b"\x03") == [{"id": 3, "customer_id": None}]
    # a bitmap with every column set is the full image, whatever its padding bits
    data = image(order(9))
    assert dec.write_rows(data, 0, len(data), b"\xff") == [order_dict(9)]


@native_param
def test_excluded_columns_are_read_past(native: bool) -> None:
    included = [True, False, False, True, False, True]
    dec = RowDecoder(ORDERS, ORDERS_BIN, DEFAULT, included, native=native)
    data = image(order(1)) + image(order(2, None, None, None, None)) + image(order(10, "x", "-1.00", "note", 5))
    assert dec.write_rows(data, 0, len(data), b"\x3f") == [
        {"id": 1, "amount": "95497.56", "updated_at": "2026-11-24T05:57:12.097831Z"},
        {"id": 2, "amount": None, "updated_at": None},
        {"id": 10, "amount": "-1.00", "updated_at": "2026-11-24T05:57:12.000005Z"}]
    partial = image([struct.pack("<q", 5), var(b"skipped", 2), None])
    assert dec.write_rows(partial, 0, len(partial), b"\x0d") == [{"id": 5, "amount": None}]


# ---------------------------------------------------------------------------------- errors


def test_schema_mismatches_are_refused_naming_the_column() -> None:
    with pytest.raises(ValueError, match=r"^erp\.orders: the binlog has 5 columns but the schema 6; the schema is"):
        RowDecoder(ORDERS, ORDERS_BIN[:5], DEFAULT)
    wrong = [*ORDERS_BIN[:1], BinlogColumn(DATETIME2, fsp=0), *ORDERS_BIN[2:]]
    with pytest.raises(ValueError, match=r"^erp\.orders\.customer_id: the binlog has DATETIME2 \(18\) but the schema"
                                         r" says int"):
        RowDecoder(ORDERS, wrong, DEFAULT)
    renamed = [*ORDERS_BIN[:2], BinlogColumn(BLOB, length_size=2, name="state"), *ORDERS_BIN[3:]]
    with pytest.raises(ValueError, match=r"^erp\.orders\.status: the binlog names this column 'state'"):
        RowDecoder(ORDERS, renamed, DEFAULT)
    rescaled = [*ORDERS_BIN[:3], BinlogColumn(NEWDECIMAL, precision=12, decimals=4), *ORDERS_BIN[4:]]
    with pytest.raises(ValueError, match=r"^erp\.orders\.amount: the binlog has DECIMAL\(12,4\) but the schema says "
                                         r"DECIMAL\(12,2\)"):
        RowDecoder(ORDERS, rescaled, DEFAULT)
    refsp = [*ORDERS_BIN[:5], BinlogColumn(TIMESTAMP2, fsp=3)]
    with pytest.raises(ValueError, match=r"^erp\.orders\.updated_at: the binlog has fractional precision 3 but the "
                                         r"schema says 6"):
        RowDecoder(ORDERS, refsp, DEFAULT)
    with pytest.raises(ValueError, match=r"^erp\.orders: `included` has 2 flags for 6 columns"):
        RowDecoder(ORDERS, ORDERS_BIN, DEFAULT, [True, False])
    uuid = TableSchema("erp", "t", (ColumnDef("u", "uuid"),))
    with pytest.raises(ValueError, match=r"^erp\.t\.u: type 'uuid' \(STRING \(254\) in the binlog\) is not supported"):
        RowDecoder(uuid, [BinlogColumn(STRING, max_length=16)], DEFAULT)


@native_param
def test_truncated_event_names_the_row(native: bool) -> None:
    dec = RowDecoder(ORDERS, ORDERS_BIN, DEFAULT, native=native)
    data = image(order(1)) + image(order(2, note="a longer note"))
    cut = len(data) - 12  # inside the second row's note
    with pytest.raises(ValueError, match=r"^erp\.orders: row 1 of the event runs past its end \(byte \d+ > \d+\)"):
        dec.write_rows(data, 0, cut, b"\x3f")
    with pytest.raises(ValueError, match=r"^erp\.orders: row 0 of the event runs past its end"):
        dec.update_rows(data, 0, cut, b"\x3f", b"\x3f")  # one (before, after) pair: row 0
    tiny = image(order(1))[:5]  # inside the first value
    with pytest.raises(ValueError, match=r"^erp\.orders(\.id \(bigint\))?: row 0 of the event"):
        dec.write_rows(tiny, 0, len(tiny), b"\x3f")


@native_param
def test_invalid_datetime_names_column_and_row(native: bool) -> None:
    schema = TableSchema("erp", "t", (ColumnDef("id", "int"), ColumnDef("at", "datetime", 6)))
    dec = RowDecoder(schema, [BinlogColumn(LONG), BinlogColumn(DATETIME2, fsp=6)], DEFAULT, native=native)
    data = (image([b"\1\0\0\0", datetime2_bin(2024, 2, 29, fsp=6)])
            + image([b"\2\0\0\0", datetime2_bin(2024, 2, 30, fsp=6)]))
    with pytest.raises(ValueError, match=r"^erp\.t\.at \(datetime\): row 1 of the event: day is out of range"):
        dec.write_rows(data, 0, len(data))


# ---------------------------------------------------------------------------------- real bytes


def fixture_decoders(mode: MyEncodingModes, native: bool) -> tuple[dict[str, Any], RowDecoder]:
    fx = json.loads(FIXTURE.read_text())
    schema = TableSchema.from_json(fx["schema"])
    columns = [BinlogColumn(**c) for c in fx["columns"]]
    return fx, RowDecoder(schema, columns, mode, native=native)


@native_param
@pytest.mark.parametrize("mode_name", ["default", "precise-adaptive-url", "double-connect-hex"])
def test_events_captured_from_mariadb(mode_name: str, native: bool) -> None:
    modes = {"default": MyEncodingModes(),
             "precise-adaptive-url": MyEncodingModes(decimal="precise", time_precision="adaptive",
                                                     binary="base64-url-safe", bigint_unsigned="precise"),
             "double-connect-hex": MyEncodingModes(decimal="double", time_precision="connect", binary="hex")}
    fx, dec = fixture_decoders(modes[mode_name], native)
    got: list[tuple[str, Any, Any]] = []
    for ev in fx["events"]:
        data = bytes.fromhex(ev["rows"])
        present = bytes.fromhex(ev["present"])
        if ev["kind"] == "u":
            got += [("u", b, a) for b, a in dec.update_rows(data, 0, len(data), present,
                                                           bytes.fromhex(ev["present2"]))]
        elif ev["kind"] == "c":
            got += [("c", None, a) for a in dec.write_rows(data, 0, len(data), present)]
        else:
            got += [("d", b, None) for b in dec.delete_rows(data, 0, len(data), present)]
    want = [(e["op"], e["before"] and e["before"][mode_name], e["after"] and e["after"][mode_name])
            for e in fx["expected"]]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[0] == w[0]
        for g_img, w_img in zip(g[1:], w[1:], strict=True):
            # JSON keeps the values' types (bool vs int, float vs int) apart: compare as JSON
            assert json.dumps(g_img, ensure_ascii=False) == json.dumps(w_img, ensure_ascii=False)


# ---------------------------------------------------------------------------------- C against Python


WIDE = TableSchema("db", "wide", (
    ColumnDef("i8", "tinyint"), ColumnDef("u16", "smallint", unsigned=True), ColumnDef("i24", "mediumint"),
    ColumnDef("u32", "int", unsigned=True), ColumnDef("u64", "bigint", unsigned=True),
    ColumnDef("d122", "decimal", 12, 2), ColumnDef("d184", "decimal", 18, 4), ColumnDef("d3010", "decimal", 30, 10),
    ColumnDef("d10", "decimal", 10, 0), ColumnDef("f", "float"), ColumnDef("fmd", "float", 7, 2),
    ColumnDef("g", "double"),
    ColumnDef("s", "varchar", charset="utf8mb4"), ColumnDef("l1", "char", charset="latin1"),
    ColumnDef("t", "mediumtext", charset="utf8mb4"), ColumnDef("bn", "binary", 5), ColumnDef("vb", "varbinary"),
    ColumnDef("bl", "longblob"), ColumnDef("dt", "date"), ColumnDef("dtn", "date", nullable=False),
    ColumnDef("dt0", "datetime", 0), ColumnDef("dt3", "datetime", 3), ColumnDef("dt6", "datetime", 6),
    ColumnDef("ts0", "timestamp", 0), ColumnDef("ts4", "timestamp", 4),
    ColumnDef("tsn", "timestamp", 6, nullable=False),
    ColumnDef("tm0", "time", 0), ColumnDef("tm2", "time", 2), ColumnDef("tm5", "time", 5), ColumnDef("y", "year"),
    ColumnDef("e", "enum", values=("a", "b", "c")), ColumnDef("st", "set", values=("x", "y", "z")),
    ColumnDef("b1", "bit", 1), ColumnDef("b9", "bit", 9), ColumnDef("j", "json"),
))
WIDE_BIN = [BinlogColumn(TINY), BinlogColumn(SHORT), BinlogColumn(INT24), BinlogColumn(LONG), BinlogColumn(LONGLONG),
            BinlogColumn(NEWDECIMAL, precision=12, decimals=2), BinlogColumn(NEWDECIMAL, precision=18, decimals=4),
            BinlogColumn(NEWDECIMAL, precision=30, decimals=10), BinlogColumn(NEWDECIMAL, precision=10, decimals=0),
            BinlogColumn(FLOAT, size=4), BinlogColumn(FLOAT, size=4), BinlogColumn(DOUBLE, size=8),
            BinlogColumn(VARCHAR, max_length=1020), BinlogColumn(STRING, max_length=10),
            BinlogColumn(BLOB, length_size=3), BinlogColumn(STRING, max_length=5),
            BinlogColumn(VARCHAR, max_length=100), BinlogColumn(BLOB, length_size=4),
            BinlogColumn(DATE), BinlogColumn(DATE), BinlogColumn(DATETIME2, fsp=0), BinlogColumn(DATETIME2, fsp=3),
            BinlogColumn(DATETIME2, fsp=6), BinlogColumn(TIMESTAMP2, fsp=0), BinlogColumn(TIMESTAMP2, fsp=4),
            BinlogColumn(TIMESTAMP2, fsp=6), BinlogColumn(TIME2, fsp=0), BinlogColumn(TIME2, fsp=2),
            BinlogColumn(TIME2, fsp=5), BinlogColumn(YEAR), BinlogColumn(ENUM, size=1), BinlogColumn(SET, size=1),
            BinlogColumn(BIT, bits=1), BinlogColumn(BIT, bits=9), BinlogColumn(JSON, length_size=4)]


def random_wide_row(rnd: random.Random) -> list[bytes | None]:
    def dec(p: int, s: int) -> bytes:
        digits = "".join(rnd.choice("0123456789") for _ in range(p))
        return dec_bin(("-" if rnd.random() < 0.4 else "") + digits[: p - s] + "." + digits[p - s:], p, s)

    us = rnd.randrange(1_000_000)
    y, mo, d = rnd.choice([(2024, 2, 29), (1969, 12, 31), (1, 1, 1), (9999, 12, 31), (0, 0, 0), (2024, 0, 3)])
    values: list[bytes | None] = [
        rnd.randrange(-128, 128).to_bytes(1, "little", signed=True), rnd.randrange(65536).to_bytes(2, "little"),
        rnd.randrange(-(1 << 23), 1 << 23).to_bytes(3, "little", signed=True),
        rnd.randrange(1 << 32).to_bytes(4, "little"),
        rnd.randrange(1 << 64).to_bytes(8, "little"), dec(12, 2), dec(18, 4), dec(30, 10), dec(10, 0),
        struct.pack("<f", rnd.uniform(-1e6, 1e6)), struct.pack("<f", rnd.uniform(-1e4, 1e4)),
        struct.pack("<d", rnd.uniform(-1e300, 1e300)),
        var(rnd.choice(["", "plain", "emoji 😀", "é" * 300]).encode(), 2),
        var(rnd.choice([b"", b"caf\xe9", b"\x81"]), 1),
        var("ü".encode() * rnd.randrange(100), 3), var(rnd.choice([b"", b"ab", b"\xff" * 5]), 1),
        var(bytes(rnd.randrange(256) for _ in range(rnd.randrange(20))), 1), var(rnd.randbytes(rnd.randrange(40)), 4),
        date_bin(y, mo, d), date_bin(y, mo, d),
        datetime2_bin(y, mo, d, 23, 59, 59, 0, 0), datetime2_bin(y, mo, d, 1, 2, 3, us - us % 1000, 3),
        datetime2_bin(y, mo, d, 12, 0, 0, us, 6), timestamp2_bin(rnd.choice([0, 1, 2**31 - 1])),
        timestamp2_bin(rnd.randrange(2**31), us - us % 100, 4), timestamp2_bin(rnd.choice([0, 2**32 - 1]), us, 6),
        time2_bin(rnd.random() < 0.5, rnd.randrange(839), 59, 59, 0, 0),
        time2_bin(rnd.random() < 0.5, rnd.randrange(839), 0, 1, us - us % 10000, 2),
        time2_bin(rnd.random() < 0.5, rnd.randrange(839), 30, 0, us - us % 10, 5),
        bytes([rnd.randrange(256)]), bytes([rnd.randrange(4)]), bytes([rnd.randrange(8)]), bytes([rnd.randrange(2)]),
        rnd.randrange(512).to_bytes(2, "big"), var(jsonb(rnd.choice([{"a": [1, "x"]}, [], "s", 3.5])), 4),
    ]
    return [None if rnd.random() < 0.1 else v for v in values]


@pytest.mark.skipif(not br.NATIVE_AVAILABLE, reason="C extension not built: the Python twin is in use")
@pytest.mark.parametrize("mode", [MyEncodingModes(), MyEncodingModes("precise", "adaptive", "hex", "precise"),
                                  MyEncodingModes("double", "connect", "base64-url-safe", "long")], ids=str)
def test_c_matches_the_python_twin(mode: MyEncodingModes) -> None:
    rnd = random.Random(11)
    rows = [random_wide_row(rnd) for _ in range(400)]
    data = b"".join(image(r) for r in rows)
    c_dec = RowDecoder(WIDE, WIDE_BIN, mode, native=True)
    py_dec = RowDecoder(WIDE, WIDE_BIN, mode, native=False)
    n = len(WIDE.columns)
    full = b"\xff" * ((n + 7) // 8)
    c_rows, py_rows = c_dec.write_rows(data, 0, len(data), full), py_dec.write_rows(data, 0, len(data), full)
    assert len(py_rows) == 400
    for c_row, py_row in zip(c_rows, py_rows, strict=True):
        assert json.dumps(c_row, ensure_ascii=False) == json.dumps(py_row, ensure_ascii=False)
    pairs = b"".join(image(r) + image(random_wide_row(rnd)) for r in rows[:50])
    assert c_dec.update_rows(pairs, 0, len(pairs), full, full) == py_dec.update_rows(pairs, 0, len(pairs), full, full)
    # a partial image with excluded columns
    included = [i % 3 != 1 for i in range(n)]
    present = sum(1 << i for i in range(n) if i % 4 != 2).to_bytes((n + 7) // 8, "little")
    part = b"".join(image([v for i, v in enumerate(r) if i % 4 != 2]) for r in rows[:50])
    c_part = RowDecoder(WIDE, WIDE_BIN, mode, included, native=True).write_rows(part, 0, len(part), present)
    py_part = RowDecoder(WIDE, WIDE_BIN, mode, included, native=False).write_rows(part, 0, len(part), present)
    assert c_part == py_part and len(c_part) == 50
    assert set(c_part[0]) == {c.name for i, c in enumerate(WIDE.columns) if i % 3 != 1 and i % 4 != 2}


def test_native_true_requires_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(br, "_myspeed", None)
    with pytest.raises(ValueError, match=r"the C extension cdc\.readers\._myspeed is not built"):
        RowDecoder(ORDERS, ORDERS_BIN, DEFAULT, native=True)
    dec = RowDecoder(ORDERS, ORDERS_BIN, DEFAULT)  # falls back to the Python twin
    data = image(order(1))
    assert dec.write_rows(data, 0, len(data)) == [order_dict(1)]


# ---------------------------------------------------------------------------------- JSON text


def json_rows(dec: RowDecoder, values: list[list[bytes | None]]) -> list[tuple[bytes, bytes | None]]:
    """write_rows_json of one row per entry of `values`, checked against orjson of the dicts (fixture)."""
    data = b"".join(image(v) for v in values)
    dec.write_rows(data, 0, len(data))  # the fixture compares the JSON path with the dict path here
    return dec.write_rows_json(data, 0, len(data))


@native_param
def test_json_floats_are_orjson_text(native: bool) -> None:
    """orjson's float text: the shortest round-trip digits, plain for 1e-5 <= |x| < 1e16, else 1.5e+16 /
    1e-6; NaN and infinities (a column never holds them) as null."""
    rnd = random.Random(5)
    specials = [0.0, -0.0, 1.0, -1.5, 0.1, 1e-5, 9.999999999999999e-6, 1e-6, 1e16, 9999999999999998.0, 1e15,
                123456789.125, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, math.nan, math.inf, -math.inf]
    doubles = specials + [struct.unpack("<d", rnd.randbytes(8))[0] for _ in range(3000)] + [
        rnd.uniform(-1, 1) * 10.0 ** rnd.randint(-12, 20) for _ in range(3000)]
    schema = TableSchema("db", "t", (ColumnDef("g", "double"), ColumnDef("fmd", "float", 7, 2),
                                     ColumnDef("f", "float")))
    dec = RowDecoder(schema, [BinlogColumn(DOUBLE, size=8), BinlogColumn(FLOAT, size=4), BinlogColumn(FLOAT, size=4)],
                     DEFAULT, native=native)
    rows = json_rows(dec, [[struct.pack("<d", x), struct.pack("<f", x if abs(x) < 3e38 or x != x else 1.0),
                            struct.pack("<f", x if abs(x) < 3e38 or x != x else 1.0)] for x in doubles])
    assert rows[0][0] == b'{"g":0.0,"fmd":0.0,"f":0.0}'
    assert [r[0].split(b",")[0] for r in rows[5:10]] == [b'{"g":0.00001', b'{"g":9.999999999999999e-6',
                                                        b'{"g":1e-6', b'{"g":1e+16', b'{"g":9999999999999998.0']
    assert rows[15][0].startswith(b'{"g":null')
    # DECIMAL in 'double' mode, including unscaled values past 2^53 (one division is no longer exact: the
    # correctly rounded quotient, here the double nearest 9007199254740.993); no negative zero
    col, bcol = ColumnDef("d", "decimal", 18, 3), BinlogColumn(NEWDECIMAL, precision=18, decimals=3)
    dec = RowDecoder(TableSchema("db", "t", (col,)), [bcol], MyEncodingModes(decimal="double"), native=native)
    texts = ["999999999999999.999", "-999999999999999.999", "9007199254740.993", "0.001", "-0.000", "12.5"] + [
        f"{rnd.choice(['', '-'])}{rnd.randrange(10 ** 15)}.{rnd.randrange(1000):03d}" for _ in range(500)]
    got = json_rows(dec, [[dec_bin(t, 18, 3)] for t in texts])
    assert got[2][0] == b'{"d":9007199254740.992}' and got[4][0] == b'{"d":0.0}'


UTF8_CASES = [
    bytes(range(128)), "\x7f\u2028\u2029é€😀\U0010ffff".encode(), b"",
    b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x8f\xbf\xbf",
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\x80", b"\xe2\x82", b"ab\xf0\x9f\x98", b"\xe2\x28\xa1",
    "\ud7ff\ue000\uffff".encode(),
]


@native_param
def test_json_strings_escape_as_orjson_and_utf8_is_strict(native: bool) -> None:
    """Control characters, quotes and backslashes escaped as orjson does, UTF-8 as is; invalid UTF-8
    (overlong forms, surrogates, past U+10FFFF, truncated) refused as Python's codec refuses it."""
    schema = TableSchema("db", "t", (ColumnDef("s", "varchar", charset="utf8mb4"),))
    dec = RowDecoder(schema, [BinlogColumn(VARCHAR, max_length=2000)], DEFAULT, key=("s",), native=native)
    rnd = random.Random(3)
    pieces = [b"a", b'"', b"\\", b"\x00", b"\x1f", b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\x80",
              b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]
    cases = UTF8_CASES + [b"".join(rnd.choice(pieces) for _ in range(rnd.randrange(8))) for _ in range(400)]
    for raw in cases:
        data = image([var(raw, 2)])
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            with pytest.raises(ValueError, match=r"^db\.t\.s \(varchar\): row 0 of the event: 'utf-8' codec"):
                dec.write_rows_json(data, 0, len(data))
            continue
        want = orjson.dumps(text)
        assert dec.write_rows_json(data, 0, len(data)) == [(b'{"s":' + want + b"}", b'{"s":' + want + b"}")]
        assert dec.write_rows(data, 0, len(data)) == [{"s": text}]
    assert json_rows(dec, [[var(b'a"b\\c\n\t\x01\x7f', 2)]])[0][0] == b'{"s":"a\\"b\\\\c\\n\\t\\u0001\x7f"}'


@native_param
def test_json_long_values(native: bool) -> None:
    """Texts past the encoder's 4 KiB stack buffer and chunk, escapes and multi-byte characters across
    its boundaries; a long binary in every mode."""
    schema = TableSchema("db", "t", (ColumnDef("id", "int"), ColumnDef("t", "longtext", charset="utf8mb4"),
                                     ColumnDef("b", "longblob")))
    bcols = [BinlogColumn(LONG), BinlogColumn(BLOB, length_size=4), BinlogColumn(BLOB, length_size=4)]
    texts = ["\x01" * 5000, "é" * 4097, "a" + "😀" * 3000, "x" * 4095 + "€" + "\n" * 3, "\"\\" * 9000]
    modes: list[br.BinaryMode] = ["bytes", "hex", "base64-url-safe"]
    for mode in modes:
        dec = RowDecoder(schema, bcols, MyEncodingModes(binary=mode), key=("id",), native=native)
        rows = json_rows(dec, [[struct.pack("<i", i), var(t.encode(), 4), var(bytes(range(256)) * 40, 4)]
                               for i, t in enumerate(texts)])
        assert [orjson.loads(r)["t"] for r, _ in rows] == texts
        assert [k for _, k in rows] == [b'{"id":%d}' % i for i in range(len(texts))]


@native_param
def test_json_keys(native: bool) -> None:
    """The key object: the key columns in key order, whatever the table order; None for a keyless table;
    a key column must be an included column, and every image must hold it."""
    rows = b"".join(image(order(i)) for i in (1, 7))
    keyed = RowDecoder(ORDERS, ORDERS_BIN, DEFAULT, key=("status", "id"), native=native)
    assert [k for _, k in keyed.write_rows_json(rows, 0, len(rows))] == [b'{"status":"paid","id":1}',
                                                                        b'{"status":"paid","id":7}']
    assert [k for _, k in keyed.delete_rows_json(rows, 0, len(rows))] == [b'{"status":"paid","id":1}',
                                                                         b'{"status":"paid","id":7}']
    keyless = RowDecoder(ORDERS, ORDERS_BIN, DEFAULT, native=native)
    assert [k for _, k in keyless.write_rows_json(rows, 0, len(rows))] == [None, None]
    pair = image(order(3)) + image(order(4, "shipped"))
    by_id = RowDecoder(ORDERS, ORDERS_BIN, DEFAULT, key=("id",), native=native)
    (before, after, old, new), = by_id.update_rows_json(pair, 0, len(pair))
    assert (old, new) == (b'{"id":3}', b'{"id":4}')
    assert (before, after) == (orjson.dumps(order_dict(3)), orjson.dumps(order_dict(4, "shipped")))
    assert keyless.update_rows_json(pair, 0, len(pair))[0][2:] == (None, None)
    with pytest.raises(ValueError, match=r"^erp\.orders: key column 'note' is not an included column"):
        RowDecoder(ORDERS, ORDERS_BIN, DEFAULT, [True, True, True, True, False, True], key=("note",))
    with pytest.raises(ValueError, match=r"^erp\.orders: key column 'nope' is not an included column"):
        RowDecoder(ORDERS, ORDERS_BIN, DEFAULT, key=("nope",))
    # binlog_row_image=MINIMAL: an update's after image without the primary key
    partial = image([struct.pack("<q", 3)]) + image([var(b"shipped", 2)])
    with pytest.raises(ValueError, match=r"^erp\.orders: a row image lacks the key column 'id'"):
        by_id.update_rows_json(partial, 0, len(partial), b"\x01", b"\x04")
    assert keyless.update_rows_json(partial, 0, len(partial), b"\x01", b"\x04") == [
        (b'{"id":3}', b'{"status":"shipped"}', None, None)]
