"""The C row encoder gives byte-for-byte the JSON of the converter path, for every type and edge value."""

from __future__ import annotations

import random
import shutil
import struct
from collections.abc import Callable

import orjson
import pytest

from cdc.readers import pgfast
from cdc.readers.pgtypes import EncodingModes, RowCodec
from tests.unit.test_pgoutput_changes import frame, tup

try:
    from cdc.readers._pgspeed import encode_change as c_encode
    from cdc.readers._pgspeed import encode_part as c_encode_part
except ImportError:  # pragma: no cover - the extension is optional
    c_encode = c_encode_part = None  # type: ignore[assignment]

needs_c = pytest.mark.skipif(c_encode is None, reason="C extension not built: the Python twin is in use")

# (column, type oid, typmod, sample text values as PostgreSQL outputs them)
COLUMNS: list[tuple[str, int, int, list[str]]] = [
    ("id", 20, -1, ["1", "-9223372036854775808", "9223372036854775807"]),
    ("small", 21, -1, ["0", "-32768"]),
    ("n", 23, -1, ["42", "-7"]),
    ("name", 25, -1, ["plain", 'quote " and \\ backslash', "ctl \x00\x01\x08\t\n\x0c\r\x1f\x7f", "é 🙂 \u2028", ""]),
    ("code", 1042, 14, ["C00001    ", "  "]),
    ("vc", 1043, 40, ["varchar"]),
    ("flag", 16, -1, ["t", "f"]),
    ("amount", 1700, (12 << 16 | 2) + 4, ["123.45", "-0.50", "0.00", "1000000.00"]),
    ("free", 1700, -1, ["0.0000001", "0.000001", "0.000000", "-0.0000000", "NaN", "Infinity", "-Infinity",
                        "12345678901234567890.123456789", "0", "-0", "7"]),
    ("at", 1184, -1, ["2026-11-24 05:56:41.175094+00", "2026-11-24 05:56:41.1+00", "2026-11-24 05:56:41+00",
                      "infinity", "-infinity", "0044-03-15 10:00:00+00 BC", "12026-01-01 00:00:00+00"]),
    ("at3", 1184, 3, ["2026-11-24 05:56:41.175+00"]),
    ("day", 1082, -1, ["2026-11-24", "infinity"]),
    ("ts", 1114, -1, ["2026-11-24 05:56:41.175094"]),
    ("blob", 17, -1, ["\\x00ff10", "\\x"]),
    ("doc", 3802, -1, ['{"a": [1, 2]}']),
    ("uid", 2950, -1, ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
    ("ratio", 701, -1, ["1.5", "NaN", "-Infinity"]),
    ("span", 1186, -1, ["1 year 2 mons 3 days 04:05:06.78"]),
    ("tags", 1009, -1, ['{a,"b c",NULL,"q\\"x"}', "{}"]),
]
REL = 16384


def tuple_bytes(values: list[str | None]) -> bytes:
    """Text values, NULL for None, unchanged TOAST for the marker "\\0UNCHANGED"."""
    return tup(*(None if v is None else "u" if v == "\0UNCHANGED" else v.encode() for v in values))


def rows(seed: int, n: int) -> list[list[str | None]]:
    rnd = random.Random(seed)
    return [[rnd.choice([*samples, None]) for _, _, _, samples in COLUMNS] for _ in range(n)]


@needs_c
@pytest.mark.parametrize("decimal", ["string", "precise", "double"])
def test_c_encoder_matches_converter_path(decimal: str) -> None:
    modes = EncodingModes(decimal=decimal)  # type: ignore[arg-type]
    cols = [(n, oid, mod) for n, oid, mod, _ in COLUMNS]
    include = {n for n, _, _ in cols} - {"vc"}
    spec = pgfast.row_spec(cols, include, ["id", "n"], {}, modes)
    specs = {REL: spec}
    codec = RowCodec(cols, include, {}, modes)
    for old, new in zip(rows(1, 150), rows(2, 150), strict=True):
        new[0], old[0] = new[0] or "1", old[0] or "2"
        bodies = [
            (b"I" + struct.pack(">I", REL) + b"N" + tuple_bytes(new), False),
            (b"I" + struct.pack(">II", 9, REL) + b"N" + tuple_bytes(new), True),
            (b"U" + struct.pack(">I", REL) + b"O" + tuple_bytes(old) + b"N" + tuple_bytes(new), False),
            (b"U" + struct.pack(">I", REL) + b"N" + tuple_bytes(new), False),
            (b"D" + struct.pack(">I", REL) + b"K" + tuple_bytes(old), False),
        ]
        for body, in_stream in bodies:
            buf = frame(body)
            got = c_encode(buf, in_stream, specs)
            assert got == pgfast.encode_change_py(buf, in_stream, specs)
            assert got is not None and got[11] == 0
            if got[6] is not None:  # and it is exactly what the dict path serialises
                assert got[6] == orjson.dumps(codec.decode(tuple(new)))


@needs_c
def test_status_for_unknown_relation_and_unchanged_toast() -> None:
    spec = pgfast.row_spec([("id", 23, -1), ("t", 25, -1)], {"id", "t"}, ["id"], {}, EncodingModes())
    buf = frame(b"U" + struct.pack(">I", REL) + b"N" + tuple_bytes(["1", "\0UNCHANGED"]))
    got = c_encode(buf, False, {REL: spec})
    assert got is not None and got[11] == 2 and got[6] is None
    assert got == pgfast.encode_change_py(buf, False, {REL: spec})
    other = c_encode(buf, False, {})
    assert other is not None and other[11] == 1
    assert c_encode(frame(b"B" + struct.pack(">QqI", 1, 2, 3)), False, {}) is None


@needs_c
def test_key_completeness_and_errors() -> None:
    spec = pgfast.row_spec([("id", 23, -1), ("t", 25, -1)], {"id", "t"}, ["id"], {}, EncodingModes())
    buf = frame(b"D" + struct.pack(">I", REL) + b"K" + tuple_bytes([None, None]))
    got = c_encode(buf, False, {REL: spec})
    assert got is not None and got[7] == b'{"id":null}' and got[9] is False
    wide = frame(b"I" + struct.pack(">I", REL) + b"N" + tuple_bytes(["1", "a", "b"]))
    for enc in (c_encode, pgfast.encode_change_py):
        with pytest.raises(ValueError, match="tuple has 3 columns, the relation 2"):
            enc(wide, False, {REL: spec})
    bad = pgfast.row_spec([("d", 1082, -1)], {"d"}, [], {}, EncodingModes())
    with pytest.raises(ValueError, match="column \"d\""):
        c_encode(frame(b"I" + struct.pack(">I", REL) + b"N" + tuple_bytes(["not a date"])), False, {REL: bad})


@needs_c
def test_wide_relation_uses_heap_scratch() -> None:
    cols = [(f"c{i}", 23, -1) for i in range(300)]
    spec = pgfast.row_spec(cols, {c for c, _, _ in cols}, ["c0"], {}, EncodingModes())
    buf = frame(b"I" + struct.pack(">I", REL) + b"N" + tuple_bytes([str(i) for i in range(300)]))
    got = c_encode(buf, False, {REL: spec})
    assert got == pgfast.encode_change_py(buf, False, {REL: spec})
    assert got is not None and orjson.loads(got[6] or b"{}")["c299"] == 299


def test_encode_part_decides_the_usual_change_and_leaves_the_rest_to_the_reader() -> None:
    cols = [("id", 23, -1), ("t", 25, -1)]
    route = ("erp.public.t", "public", "t", 256, "")
    specs = {REL: pgfast.row_spec(cols, {"id", "t"}, ["id"], {}, EncodingModes(), route)}
    ins = frame(b"I" + struct.pack(">I", REL) + b"N" + tuple_bytes(["1", "a"]), wal_start=77)
    upd = frame(b"U" + struct.pack(">I", REL) + b"O" + tuple_bytes(["1", "a"]) + b"N" + tuple_bytes(["1", "b"]),
                wal_start=78)
    new_key = frame(b"U" + struct.pack(">I", REL) + b"K" + tuple_bytes(["1", None]) + b"N" + tuple_bytes(["2", "b"]))
    dele = frame(b"D" + struct.pack(">I", REL) + b"K" + tuple_bytes(["1", None]), wal_start=79)
    streamed = frame(b"I" + struct.pack(">II", 9, REL) + b"N" + tuple_bytes(["3", "c"]), wal_start=80)
    long_value = frame(b"I" + struct.pack(">I", REL) + b"N" + tuple_bytes(["4", "x" * 256]))
    toast = frame(b"U" + struct.pack(">I", REL) + b"N" + tuple_bytes(["1", "\0UNCHANGED"]))
    encoders: list[tuple[Callable[..., object], Callable[..., object]]] = [
        (pgfast.encode_part_py, pgfast.encode_change_py)]
    if c_encode_part is not None:
        encoders.append((c_encode_part, c_encode))
    for encode, change in encoders:
        assert encode(ins, False, specs, 700, -1) == (
            700, "c", "erp.public.t", "public", "t", b'{"id":1}', None, b'{"id":1,"t":"a"}', 77)
        assert encode(upd, False, specs, 700, -1) == (
            700, "u", "erp.public.t", "public", "t", b'{"id":1}', b'{"id":1,"t":"a"}', b'{"id":1,"t":"b"}', 78)
        assert encode(dele, False, specs, 700, -1) == (
            700, "d", "erp.public.t", "public", "t", b'{"id":1}', b'{"id":1,"t":null}', None, 79)
        assert encode(streamed, True, specs, 700, -1) == (
            9, "c", "erp.public.t", "public", "t", b'{"id":3}', None, b'{"id":3,"t":"c"}', 80)
        # Left to the reader, as encode_change's tuple: a primary-key change, a value to remember for
        # unchanged TOAST, unchanged TOAST itself, the table of an open incremental-snapshot chunk, a
        # skipped operation, a relation without a spec; a frame that is no row change stays None.
        left = [(new_key, specs, -1), (long_value, specs, -1), (toast, specs, -1), (ins, specs, REL), (ins, {}, -1)]
        skipping = {REL: pgfast.row_spec(cols, {"id", "t"}, ["id"], {}, EncodingModes(), (*route[:4], "c"))}
        left.append((ins, skipping, -1))
        for buf, sp, chunk in left:
            assert encode(buf, False, sp, 700, chunk) == change(buf, False, sp), buf
        assert encode(frame(b"B" + struct.pack(">QqI", 1, 2, 3)), False, specs, 700, -1) is None
    # Without a route (the default) nothing is decided by the encoder.
    plain = {REL: pgfast.row_spec(cols, {"id", "t"}, ["id"], {}, EncodingModes())}
    for encode, change in encoders:
        assert encode(ins, False, plain, 700, -1) == change(ins, False, plain)


def test_extension_is_built_where_a_compiler_exists() -> None:
    # `pip install` builds the fast path with the machine's C compiler; without one the pure-Python
    # twins are used (their equality with C is what the tests above check).
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: the pure-Python twins are in use")
    assert c_encode is not None
