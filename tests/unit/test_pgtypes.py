"""PostgreSQL text values -> Debezium JSON encodings, every type and mode, with the edge cases."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from cdc.readers import pgtypes as pt
from cdc.readers.pgoutput import UNCHANGED_TOAST, Column
from cdc.readers.pgtypes import EncodingModes, RowCodec, TypeInfo, converter_for, identity, parse_array

DEFAULT = EncodingModes()
PRECISE = EncodingModes(decimal="precise")
DOUBLE = EncodingModes(decimal="double")


def conv(oid: int, typmod: int = -1, modes: EncodingModes = DEFAULT,
         types: dict[int, TypeInfo] | None = None) -> Callable[[str], Any]:
    return converter_for(oid, typmod, modes, types or {})


def numeric_typmod(p: int, s: int) -> int:
    return ((p << 16) | (s & 0x7FF)) + 4


def unscaled(b64: str) -> int:
    raw = base64.b64decode(b64)
    # minimal two's complement, like Java's BigInteger.toByteArray()
    assert len(raw) == 1 or not ((raw[0] == 0 and raw[1] < 0x80) or (raw[0] == 0xFF and raw[1] >= 0x80))
    return int.from_bytes(raw, "big", signed=True)


# ------------------------------------------------------------------------------------------- basics

def test_integers_bool_oid() -> None:
    for oid in (21, 23, 20, 26):
        assert conv(oid)("-42") == -42
    assert conv(20)("9223372036854775807") == 9223372036854775807
    assert conv(16)("t") is True and conv(16)("f") is False


def test_floats_and_their_special_values() -> None:
    for oid in (700, 701):
        c = conv(oid)
        assert c("1.5") == 1.5
        assert c("-0.1") == -0.1
        assert c("1e+20") == 1e20
        assert c("3.4028235e+38") == 3.4028235e38
        assert c("NaN") == "NaN"
        assert c("Infinity") == "Infinity"
        assert c("-Infinity") == "-Infinity"


def test_text_like_types_are_identity_and_keep_padding_and_emoji() -> None:
    for oid in (25, 1043, 1042, 19, 18, 2950, 114, 3802, 142):
        assert conv(oid) is identity
    assert conv(1042)("ab   ") == "ab   "
    assert conv(25)("héllo 😀 \\ \"") == "héllo 😀 \\ \""
    # inet, cidr, macaddr, point, ranges, tsvector, enum-like unknowns: the text
    for oid in (869, 650, 829, 774, 600, 3904, 3614, 3220, 99999):
        assert conv(oid)("x") == "x"


# ------------------------------------------------------------------------------------------- numeric

def test_numeric_string_mode_is_java_bigdecimal_tostring() -> None:
    c = conv(1700)
    assert c("123.45") == "123.45"
    assert c("-0.50") == "-0.50"
    assert c("100") == "100"
    assert c("0.000001") == "0.000001"
    assert c("0.0000001") == "1E-7"
    assert c("-0.00000012") == "-1.2E-7"
    assert c("0.00000000") == "0E-8"
    big = "9" * 1000 + "." + "1" * 20
    assert c(big) == big
    assert c("NaN") == "NAN"
    assert c("Infinity") == "POSITIVE_INFINITY"
    assert c("-Infinity") == "NEGATIVE_INFINITY"
    # PostgreSQL 15 negative scale: numeric(5,-2) holds 12300; Java prints 1.23E+4
    assert conv(1700, numeric_typmod(5, -2))("12300") == "1.23E+4"


def test_numeric_double_mode() -> None:
    c = conv(1700, modes=DOUBLE)
    assert c("123.45") == 123.45
    assert c("-1") == -1.0
    assert c("NaN") == "NaN"
    assert c("Infinity") == "Infinity"
    assert c("-Infinity") == "-Infinity"
    assert c("9" * 1000) == "Infinity"  # BigDecimal.doubleValue() overflows to Infinity
    assert c("0." + "0" * 400 + "1") == 0.0


def test_numeric_precise_fixed_scale() -> None:
    c = conv(1700, numeric_typmod(12, 2), PRECISE)
    assert c("95497.56") == "AJG3vA=="  # Debezium's own output in sample-events-pg.json
    assert c("-1.00") == "nA=="  # -100: one byte, 0x9c
    assert c("0.00") == "AA=="
    assert c("1.28") == "AIA="
    assert unscaled(c("-92233720368547758.08")) == -9223372036854775808
    assert c("NaN") is None
    assert conv(1700, numeric_typmod(5, 0), PRECISE)("128") == "AIA="
    assert conv(1700, numeric_typmod(5, -2), PRECISE)("12300") == "ew=="
    big = "-" + "7" * 1000
    assert unscaled(conv(1700, numeric_typmod(1000, 0), PRECISE)(big)) == int(big)


def test_numeric_precise_variable_scale() -> None:
    c = conv(1700, -1, PRECISE)
    assert c("1.500") == {"scale": 1, "value": "Dw=="}
    assert c("100") == {"scale": 0, "value": "ZA=="}
    assert c("-0.001") == {"scale": 3, "value": "/w=="}
    assert c("0.000") == {"scale": 0, "value": "AA=="}
    assert c("NaN") is None
    assert c("Infinity") is None
    digits = "1234567891" * 100
    v = c(digits + "." + digits + "000")
    assert v is not None and v["scale"] == 1000 and unscaled(v["value"]) == int(digits + digits)


def test_money_all_modes() -> None:
    assert conv(790)("$1,234.56") == "1234.56"
    assert conv(790)("-$1,234.56") == "-1234.56"
    assert conv(790)("$1,000.00") == "1000.0"  # Java Double.toString
    assert conv(790)("$12,345,678.90") == "1.23456789E7"
    assert conv(790, modes=DOUBLE)("-$1,234.56") == -1234.56
    assert conv(790, modes=DOUBLE)("($5.00)") == -5.0
    assert conv(790, modes=PRECISE)("$1,234.56") == "AeJA"
    assert unscaled(conv(790, modes=PRECISE)("-$0.01")) == -1


def test_java_double_str() -> None:
    f = pt.java_double_str
    assert [f(x) for x in (1.0, 0.001, 1234567.0, 1e7, 0.0001, -2.5e-10, 1e21, 0.0)] == [
        "1.0", "0.001", "1234567.0", "1.0E7", "1.0E-4", "-2.5E-10", "1.0E21", "0.0"]


# ------------------------------------------------------------------------------------------- bytea, bits

def test_bytea_binary_modes() -> None:
    assert conv(17)("\\x00ff10") == "AP8Q"
    assert conv(17, modes=EncodingModes(binary="base64"))("\\x00ff10") == "AP8Q"
    assert conv(17, modes=EncodingModes(binary="base64-url-safe"))("\\xfbff") == "-_8="
    assert conv(17)("\\xfbff") == "+/8="
    assert conv(17, modes=EncodingModes(binary="hex"))("\\x00FF10") == "00ff10"
    assert conv(17)("\\x") == ""
    with pytest.raises(ValueError, match="bytea"):
        conv(17)("abc")


def test_bits() -> None:
    assert conv(1560, 1)("1") is True
    assert conv(1562, 1)("0") is False
    assert conv(1562, -1)("101") == base64.b64encode(b"\x05").decode()
    assert conv(1560, 10)("0000000001") == "AQ=="
    assert conv(1560, 16)("1000000000000000") == base64.b64encode(b"\x00\x80").decode()


# ------------------------------------------------------------------------------------------- dates and times

def test_date_all_modes() -> None:
    c = conv(1082)
    assert c("1970-01-01") == 0
    assert c("2024-02-29") == (date(2024, 2, 29) - date(1970, 1, 1)).days
    assert c("0001-01-01") == -719162
    assert c("0001-12-31 BC") == -719163  # 1 BC is the proleptic year 0
    assert c("0044-03-15 BC") == -735160  # the server's own date arithmetic
    assert c("10000-01-01") == (date(9999, 12, 31) - date(1970, 1, 1)).days + 1
    assert c("infinity") == 2146033979 and c("-infinity") == -2147472692
    assert conv(1082, modes=EncodingModes(time_precision="connect"))("2024-02-29") == 19782
    iso = conv(1082, modes=EncodingModes(time_precision="isostring"))
    assert iso("2024-02-29") == "2024-02-29Z"
    assert iso("0044-03-15 BC") == "-0043-03-15Z"
    assert iso("10000-01-01") == "+10000-01-01Z"
    assert iso("infinity") == "+5877611-06-21Z"


def test_civil_days_roundtrip() -> None:
    for d in (-2147472692, -735160, -719163, -1, 0, 1, 19782, 2146033979):
        assert pt.days_from_civil(*pt.civil_from_days(d)) == d


def test_time_modes() -> None:
    us = ((10 * 60 + 15) * 60 + 30) * 1_000_000 + 123456
    assert conv(1083)("10:15:30.123456") == us  # plain time is time(6): MicroTime
    assert conv(1083, 3)("10:15:30.123") == us // 1000 * 1000 // 1000  # time(3): ms
    assert conv(1083, 4)("10:15:30.1234") == us - 56
    micro = EncodingModes(time_precision="adaptive_time_microseconds")
    assert conv(1083, 3, micro)("10:15:30.123") == 36930123000
    assert conv(1083, -1, EncodingModes(time_precision="connect"))("10:15:30.123456") == 36930123
    assert conv(1083)("24:00:00") == 86_400_000_000
    assert conv(1083)("00:00:00") == 0
    iso = conv(1083, -1, EncodingModes(time_precision="isostring"))
    assert iso("10:15:30.123450") == "10:15:30.12345Z"
    assert iso("10:15:00") == "10:15:00Z"


def test_timestamp_modes() -> None:
    c = conv(1114)
    assert c("2018-06-20 15:13:16.945104") == 1529507596945104  # Debezium docs' example
    assert c("1969-12-31 23:59:59.999999") == -1
    assert c("1970-01-01 00:00:00") == 0
    assert c("2018-06-20 15:13:16.5") == 1529507596500000
    assert conv(1114, 3)("2018-06-20 15:13:16.945") == 1529507596945
    assert conv(1114, 0)("2018-06-20 15:13:16") == 1529507596000
    connect = conv(1114, -1, EncodingModes(time_precision="connect"))
    assert connect("2018-06-20 15:13:16.945104") == 1529507596945
    assert connect("1969-12-31 23:59:59.999999") == -1  # floor, like Instant.toEpochMilli
    assert c("0044-03-15 12:00:00 BC") == pt.days_from_civil(-43, 3, 15) * 86_400_000_000 + 43_200_000_000
    assert c("10000-01-01 00:00:00") == (c("9999-12-31 00:00:00") + 86_400_000_000)
    assert c("infinity") == 9223372036825200000 and c("-infinity") == -9223372036832400000
    assert conv(1114, 3)("infinity") == 9223372036825200000
    iso = conv(1114, -1, EncodingModes(time_precision="isostring"))
    assert iso("2018-06-20 15:13:16.945104") == "2018-06-20T15:13:16.945104Z"
    assert iso("2018-06-20 15:13:16") == "2018-06-20T15:13:16Z"
    assert iso("0044-03-15 12:00:00 BC") == "-0043-03-15T12:00:00Z"


def test_timestamptz_zoned_timestamp() -> None:
    c = conv(1184)
    assert c("2026-11-24 05:56:41.175094+00") == "2026-11-24T05:56:41.175094Z"  # Debezium's sample output
    assert c("2026-11-24 05:56:41.17509+00") == "2026-11-24T05:56:41.175090Z"
    assert c("2026-11-24 05:56:41+00") == "2026-11-24T05:56:41.000000Z"
    assert c("2026-11-24 05:56:41.5+05:30") == "2026-11-24T00:26:41.500000Z"
    assert c("2026-11-24 22:00:00-03") == "2026-11-25T01:00:00.000000Z"
    assert c("1850-01-01 00:00:00+00:53:28") == "1849-12-31T23:06:32.000000Z"
    assert c("0044-03-15 12:00:00+00 BC") == "-0043-03-15T12:00:00.000000Z"
    assert c("10000-01-01 00:00:00+00") == "+10000-01-01T00:00:00.000000Z"
    assert c("infinity") == "infinity" and c("-infinity") == "-infinity"
    assert conv(1184, 3)("2026-11-24 05:56:41.17+00") == "2026-11-24T05:56:41.170Z"
    assert conv(1184, 0)("2026-11-24 05:56:41+00") == "2026-11-24T05:56:41Z"
    # the time precision mode does not change ZonedTimestamp
    assert conv(1184, -1, EncodingModes(time_precision="connect"))("2026-11-24 05:56:41+00") == \
        "2026-11-24T05:56:41.000000Z"


def test_timetz_zoned_time() -> None:
    c = conv(1266)
    assert c("10:15:30.123+00") == "10:15:30.123Z"
    assert c("10:15:30+00") == "10:15:30Z"
    assert c("01:00:00+02") == "23:00:00Z"
    assert c("10:15:30.1234+05:30") == "04:45:30.1234Z"
    assert c("23:30:00-01") == "00:30:00Z"


def test_interval_micro_duration_and_iso() -> None:
    c = conv(1186)
    assert c("1 year 2 mons 3 days 04:05:06.78") == 37091106780000
    assert c("-1 days +02:03:00") == -79_020_000_000
    assert c("00:00:00") == 0
    assert c("-00:00:01.5") == -1_500_000
    assert c("1 mon") == int(30.4375 * 86400 * 1e6)
    assert c("-1 years -2 mons") == int(-14 * 30.4375 * 86400 * 1e6)
    assert c("100:00:00") == 360_000_000_000
    s = conv(1186, modes=EncodingModes(interval="string"))
    assert s("1 year 2 mons 3 days 04:05:06.78") == "P1Y2M3DT4H5M6.78S"
    assert s("-1 days +02:03:00") == "P0Y0M-1DT2H3M0S"
    assert s("00:00:00") == "P0Y0M0DT0H0M0S"
    assert s("-00:00:01.5") == "P0Y0M0DT0H0M-1.5S"
    assert s("3 days") == "P0Y0M3DT0H0M0S"
    assert s("00:00:00.000001") == "P0Y0M0DT0H0M0.000001S"
    with pytest.raises(ValueError, match="interval"):
        c("P1Y")


# ------------------------------------------------------------------------------------------- arrays

def test_parse_array_literals() -> None:
    assert parse_array("{}") == []
    assert parse_array("{1,2,NULL}") == ["1", "2", None]
    assert parse_array('{"a b","c\\"d","NULL",NULL,"",plain,"back\\\\slash",null}') == [
        "a b", 'c"d', "NULL", None, "", "plain", "back\\slash", None]
    assert parse_array("{{1,2},{3,4}}") == [["1", "2"], ["3", "4"]]
    assert parse_array("[0:1]={5,6}") == ["5", "6"]
    assert parse_array('{"😀 é",x\\,y}') == ["😀 é", "x,y"]
    assert parse_array("{(1,2),(3,4);(5,6),(7,8)}", ";") == ["(1,2),(3,4)", "(5,6),(7,8)"]
    assert parse_array("{{}}") == [[]]
    for bad in ("{1,2", "1,2}", '{"a}', "{1}x"):
        with pytest.raises(ValueError, match="array"):
            parse_array(bad)


def test_array_converters() -> None:
    assert conv(1007)("{1,2,NULL}") == [1, 2, None]
    assert conv(1009)('{"a b",NULL,""}') == ["a b", None, ""]
    assert conv(1000)("{t,f}") == [True, False]
    assert conv(1016)("{{1,2},{3,4}}") == [[1, 2], [3, 4]]
    assert conv(1231, numeric_typmod(10, 2), PRECISE)("{1.00,NULL}") == ["ZA==", None]
    assert conv(1231, -1, PRECISE)("{1.5}") == [{"scale": 1, "value": "Dw=="}]
    assert conv(1231)("{NaN,1.5}") == ["NAN", "1.5"]
    assert conv(1185)('{"2026-01-01 00:00:00+00"}') == ["2026-01-01T00:00:00.000000Z"]
    assert conv(1182)("{1970-01-02,infinity}") == [1, 2146033979]
    assert conv(1001)('{"\\\\x00ff"}') == ["AP8="]
    assert conv(1187)('{"1 day"}') == [86_400_000_000]


# ------------------------------------------------------------------------------------------- catalog types

TYPES = {
    16500: TypeInfo(16500, "money2", "d", 1700, numeric_typmod(10, 2), 0),
    16501: TypeInfo(16501, "mood", "e"),
    16502: TypeInfo(16502, "_mood", "A", 0, -1, 16501),
    16503: TypeInfo(16503, "_money2", "A", 0, -1, 16500),
    16504: TypeInfo(16504, "money3", "d", 16500, -1, 0),
    16505: TypeInfo(16505, "pair", "c"),
    16506: TypeInfo(16506, "posint", "d", 23, -1, 0),
}


def test_domains_enums_arrays_from_the_catalog() -> None:
    assert conv(16500, -1, PRECISE, TYPES)("12.50") == "BOI="  # 1250 at the domain's scale 2
    assert conv(16500, -1, DEFAULT, TYPES)("12.50") == "12.50"
    assert conv(16504, -1, PRECISE, TYPES)("12.50") == "BOI="  # domain over the domain
    assert conv(16501, -1, DEFAULT, TYPES) is identity
    assert conv(16502, -1, DEFAULT, TYPES)('{happy,"very sad"}') == ["happy", "very sad"]
    assert conv(16503, -1, PRECISE, TYPES)("{1.00}") == ["ZA=="]
    assert conv(16505, -1, DEFAULT, TYPES)("(1,2)") == "(1,2)"
    assert conv(16506, -1, DEFAULT, TYPES)("7") == 7


def test_catalog_cycle_is_an_error_not_a_hang() -> None:
    loop = {1 << 20: TypeInfo(1 << 20, "a", "d", 1 << 20, -1, 0)}
    with pytest.raises(ValueError, match="too deep"):
        converter_for(1 << 20, -1, DEFAULT, loop)


def test_encoding_modes_validate() -> None:
    with pytest.raises(ValueError, match="decimal"):
        EncodingModes(decimal="exact")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time_precision"):
        EncodingModes(time_precision="nano")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="binary"):
        EncodingModes(binary="raw")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval"):
        EncodingModes(interval="iso")  # type: ignore[arg-type]


def test_type_catalog_sql_shape() -> None:
    assert "%s" in pt.TYPE_CATALOG_SQL and "pg_type" in pt.TYPE_CATALOG_SQL
    assert len(TypeInfo.__dataclass_fields__) == 7


# ------------------------------------------------------------------------------------------- rows

COLUMNS = [Column(True, "id", 20, -1), Column(False, "customer_id", 23, -1), Column(False, "status", 25, -1),
           Column(False, "amount", 1700, numeric_typmod(12, 2)), Column(False, "note", 25, -1),
           Column(False, "updated_at", 1184, -1)]
ROW = ("1", "8806", "paid", "95497.56", "order 1 note", "2026-11-24 05:56:41.175094+00")


def test_row_codec_decode_like_debezium_sample() -> None:
    codec = RowCodec(COLUMNS, None, {}, PRECISE)
    assert codec.decode(ROW) == {"id": 1, "customer_id": 8806, "status": "paid", "amount": "AJG3vA==",
                                 "note": "order 1 note", "updated_at": "2026-11-24T05:56:41.175094Z"}
    assert codec.key(ROW) == {"id": 1}
    assert codec.key(codec.decode(ROW)) == {"id": 1}
    assert codec.names == ("id", "customer_id", "status", "amount", "note", "updated_at")


def test_row_codec_nulls_toast_include_and_tuples() -> None:
    cols = [(c.name, c.type_oid, c.type_modifier) for c in COLUMNS]
    codec = RowCodec(cols, {"id", "amount", "note", "updated_at"}, {}, DEFAULT, key_columns=["id"])
    row = ("2", None, "x", None, UNCHANGED_TOAST, UNCHANGED_TOAST)
    out = codec.decode(row)
    assert out == {"id": 2, "amount": None, "note": UNCHANGED_TOAST, "updated_at": UNCHANGED_TOAST}
    assert list(out) == ["id", "amount", "note", "updated_at"]
    assert codec.key(row) == {"id": 2}
    assert RowCodec(cols, None, {}, DEFAULT).key(row) is None


def test_row_codec_column_names_needing_quotes() -> None:
    codec = RowCodec([("we'ird \"name\"", 23, -1), ("ключ", 25, -1)], None, {}, DEFAULT)
    assert codec.decode(("5", "v")) == {"we'ird \"name\"": 5, "ключ": "v"}


def test_row_codec_names_the_column_on_bad_data() -> None:
    codec = RowCodec(COLUMNS, None, {}, PRECISE)
    with pytest.raises(ValueError, match=r"column 'customer_id' \(type oid 23.*'abc'"):
        codec.decode(("1", "abc", "paid", "1.00", "n", "2026-11-24 05:56:41+00"))
    with pytest.raises(ValueError, match="tuple has 2 values"):
        codec.decode(("1", "2"))
    with pytest.raises(ValueError, match="key columns not in the relation"):
        RowCodec(COLUMNS, None, {}, PRECISE, key_columns=["nope"])
