"""decode_change: a row-change frame as (tag, wal_start, xid, rel, old_kind, old, new, longest), errors too."""

from __future__ import annotations

import struct

import pytest

from cdc.readers import pgoutput as po


def frame(payload: bytes, wal_start: int = 0x1_0000_0002) -> bytes:
    return b"w" + struct.pack(">QQq", wal_start, wal_start + 10, 0) + payload


def tup(*values: bytes | str | None) -> bytes:
    out = struct.pack(">H", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif v == "u":
            out += b"u"
        elif isinstance(v, str):
            out += b"b" + struct.pack(">I", len(v.encode())) + v.encode()
        else:
            out += b"t" + struct.pack(">I", len(v)) + v
    return out


CASES = [
    frame(b"I" + struct.pack(">I", 16384) + b"N" + tup(b"1", "raw", None, "é 🙂".encode())),
    frame(b"I" + struct.pack(">II", 777, 16384) + b"N" + tup(b"1")),                  # in stream
    frame(b"U" + struct.pack(">I", 16384) + b"K" + tup(b"1", None) + b"N" + tup(b"2", "u")),
    frame(b"U" + struct.pack(">I", 16384) + b"O" + tup(b"1", b"x") + b"N" + tup(b"1", b"y")),
    frame(b"U" + struct.pack(">I", 16384) + b"N" + tup(b"1", "u")),
    frame(b"D" + struct.pack(">I", 16384) + b"K" + tup(b"1", None)),
    frame(b"D" + struct.pack(">I", 16384) + b"O" + tup(b"1", b"")),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_frames_and_memoryviews_decode_alike(case: int) -> None:
    buf = CASES[case]
    in_stream = case == 1
    expected = po.decode_change(buf, in_stream, po.UNCHANGED_TOAST)
    assert po.decode_change(memoryview(buf), in_stream, po.UNCHANGED_TOAST) == expected
    assert expected is not None and expected[1] == 0x1_0000_0002
    assert expected[2] == (777 if in_stream else None)


def test_decoded_values() -> None:
    got = po.decode_change(CASES[2], False, po.UNCHANGED_TOAST)
    assert got == (85, 0x1_0000_0002, None, 16384, "K", ("1", None), ("2", po.UNCHANGED_TOAST), 1)
    got = po.decode_change(CASES[0], False, po.UNCHANGED_TOAST)
    assert got is not None and got[6] == ("1", b"raw", None, "é 🙂")
    assert got[7] == len("é 🙂".encode()), "longest value in bytes"


def test_other_messages_are_not_changes() -> None:
    assert po.decode_change(frame(b"B" + struct.pack(">QqI", 1, 2, 3)), False, po.UNCHANGED_TOAST) is None
    assert po.decode_change(b"k" + struct.pack(">QqB", 1, 2, 0), False, po.UNCHANGED_TOAST) is None


@pytest.mark.parametrize("bad", [
    frame(b"I" + struct.pack(">I", 1) + b"N" + tup(b"12345")[:-2]),        # truncated value
    frame(b"I" + struct.pack(">I", 1) + b"X" + tup(b"1")),                 # not a new tuple
    frame(b"I" + struct.pack(">I", 1) + b"N" + b"\x00\x01" + b"q"),         # unknown column kind
    frame(b"I" + struct.pack(">I", 1) + b"N" + tup(b"\xff\xfe")),           # invalid UTF-8
    frame(b"D" + struct.pack(">I", 1) + b"N" + tup(b"1")),                 # delete without old tuple
])
def test_malformed_raise_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        po.decode_change(bad, False, po.UNCHANGED_TOAST)
