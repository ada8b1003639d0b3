"""pgoutput decoder: every message kind, built byte by byte from the PostgreSQL 15 protocol docs."""

from __future__ import annotations

import struct
import time

import pytest

from cdc.readers import pgoutput as po
from cdc.readers.pgoutput import UNCHANGED_TOAST

PG_EPOCH_US = 946_684_800_000_000
TS_PG = 817_000_000_123_456  # µs since 2000-01-01
TS_UNIX = TS_PG + PG_EPOCH_US


def cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def tuple_data(*values: object) -> bytes:
    out = struct.pack(">H", len(values))
    for v in values:
        if v is None:
            out += b"n"
        elif v is UNCHANGED_TOAST:
            out += b"u"
        elif isinstance(v, bytes):
            out += b"b" + struct.pack(">I", len(v)) + v
        else:
            b = str(v).encode()
            out += b"t" + struct.pack(">I", len(b)) + b
    return out


def xid_part(xid: int | None) -> bytes:
    return b"" if xid is None else struct.pack(">I", xid)


def test_begin_and_commit() -> None:
    begin = b"B" + struct.pack(">QqI", 0x16_B374D848, TS_PG, 747)
    assert po.decode_message(begin) == po.Begin(0x16_B374D848, TS_UNIX, 747)
    commit = b"C" + struct.pack(">BQQq", 0, 0x100, 0x180, TS_PG)
    assert po.decode_message(commit) == po.Commit(0, 0x100, 0x180, TS_UNIX)


def test_origin() -> None:
    msg = b"O" + struct.pack(">Q", 77) + cstr("node_a")
    assert po.decode_message(msg) == po.Origin(77, "node_a")


@pytest.mark.parametrize("xid", [None, 901])
def test_relation(xid: int | None) -> None:
    body = (struct.pack(">I", 16385) + cstr("erp") + cstr("orders") + b"d" + struct.pack(">H", 3)
            + b"\x01" + cstr("id") + struct.pack(">Ii", 20, -1)
            + b"\x00" + cstr("amount") + struct.pack(">Ii", 1700, (12 << 16 | 2) + 4)
            + b"\x00" + cstr("note é") + struct.pack(">Ii", 25, -1))
    msg = b"R" + xid_part(xid) + body
    rel = po.decode_message(msg, in_stream=xid is not None)
    assert rel == po.Relation(16385, "erp", "orders", "d", (
        po.Column(True, "id", 20, -1),
        po.Column(False, "amount", 1700, (12 << 16 | 2) + 4),
        po.Column(False, "note é", 25, -1)), xid)


def test_relation_pg_catalog_empty_namespace_and_identity_kinds() -> None:
    for ident in "dnfi":
        msg = b"R" + struct.pack(">I", 1) + cstr("") + cstr("t") + ident.encode() + struct.pack(">H", 0)
        rel = po.decode_message(msg)
        assert isinstance(rel, po.Relation)
        assert (rel.namespace, rel.replica_identity, rel.columns) == ("", ident, ())


@pytest.mark.parametrize("xid", [None, 5])
def test_type(xid: int | None) -> None:
    msg = b"Y" + xid_part(xid) + struct.pack(">I", 16400) + cstr("public") + cstr("mood")
    assert po.decode_message(msg, 0, xid is not None) == po.Type(16400, "public", "mood", xid)


@pytest.mark.parametrize("xid", [None, 77])
def test_insert_every_tuple_kind(xid: int | None) -> None:
    msg = b"I" + xid_part(xid) + struct.pack(">I", 16385) + b"N" + tuple_data(
        "42", None, UNCHANGED_TOAST, b"\x00\xff", "", "héllo 😀", None)
    ins = po.decode_message(msg, in_stream=xid is not None)
    assert ins == po.Insert(16385, ("42", None, UNCHANGED_TOAST, b"\x00\xff", "", "héllo 😀", None), xid)


@pytest.mark.parametrize("xid", [None, 3])
def test_update_without_old_with_key_with_full_old(xid: int | None) -> None:
    new = tuple_data("1", "b")
    plain = b"U" + xid_part(xid) + struct.pack(">I", 9) + b"N" + new
    assert po.decode_message(plain, 0, xid is not None) == po.Update(9, None, None, ("1", "b"), xid)
    keyed = b"U" + xid_part(xid) + struct.pack(">I", 9) + b"K" + tuple_data("0", None) + b"N" + new
    assert po.decode_message(keyed, 0, xid is not None) == po.Update(9, ("0", None), "K", ("1", "b"), xid)
    full = b"U" + xid_part(xid) + struct.pack(">I", 9) + b"O" + tuple_data("1", "a") + b"N" + new
    assert po.decode_message(full, 0, xid is not None) == po.Update(9, ("1", "a"), "O", ("1", "b"), xid)


@pytest.mark.parametrize("xid", [None, 3])
def test_delete_key_and_full(xid: int | None) -> None:
    k = b"D" + xid_part(xid) + struct.pack(">I", 9) + b"K" + tuple_data("1", None)
    assert po.decode_message(k, 0, xid is not None) == po.Delete(9, ("1", None), "K", xid)
    o = b"D" + xid_part(xid) + struct.pack(">I", 9) + b"O" + tuple_data("1", "x")
    assert po.decode_message(o, 0, xid is not None) == po.Delete(9, ("1", "x"), "O", xid)


@pytest.mark.parametrize("xid", [None, 12])
def test_truncate(xid: int | None) -> None:
    msg = b"T" + xid_part(xid) + struct.pack(">iB", 2, 3) + struct.pack(">II", 16385, 16390)
    t = po.decode_message(msg, 0, xid is not None)
    assert t == po.Truncate(3, (16385, 16390), xid)
    assert isinstance(t, po.Truncate) and t.cascade and t.restart_identity


@pytest.mark.parametrize("xid", [None, 4])
def test_logical_message(xid: int | None) -> None:
    msg = (b"M" + xid_part(xid) + struct.pack(">BQ", 1, 0x5000) + cstr("cdc.signal")
           + struct.pack(">I", 3) + b"a\0b")
    want = po.LogicalMessage(True, 0x5000, "cdc.signal", b"a\0b", xid)
    assert po.decode_message(msg, 0, xid is not None) == want
    nontx = b"M" + struct.pack(">BQ", 0, 1) + cstr("p") + struct.pack(">I", 0)
    assert po.decode_message(nontx) == po.LogicalMessage(False, 1, "p", b"")


def test_stream_messages() -> None:
    assert po.decode_message(b"S" + struct.pack(">IB", 900, 1)) == po.StreamStart(900, True)
    assert po.decode_message(b"S" + struct.pack(">IB", 900, 0)) == po.StreamStart(900, False)
    assert po.decode_message(b"E") == po.StreamStop()
    commit = b"c" + struct.pack(">IBQQq", 900, 0, 0x200, 0x280, TS_PG)
    assert po.decode_message(commit) == po.StreamCommit(900, 0, 0x200, 0x280, TS_UNIX)
    assert po.decode_message(b"A" + struct.pack(">II", 900, 901)) == po.StreamAbort(900, 901)


def test_offset_skips_xlogdata_header_without_copy() -> None:
    payload = b"I" + struct.pack(">I", 1) + b"N" + tuple_data("x")
    frame = b"w" + struct.pack(">QQq", 10, 20, TS_PG) + payload
    assert po.decode_message(frame, 25) == po.Insert(1, ("x",))
    assert po.decode_message(memoryview(frame), 25) == po.Insert(1, ("x",))
    parsed = po.parse_copy_data(frame)
    assert isinstance(parsed, po.XLogData)
    assert (parsed.wal_start, parsed.wal_end, parsed.send_time_us) == (10, 20, TS_UNIX)
    assert bytes(parsed.payload) == payload
    assert po.decode_message(parsed.payload) == po.Insert(1, ("x",))


def test_keepalive() -> None:
    k = po.parse_copy_data(b"k" + struct.pack(">QqB", 0xABC, TS_PG, 1))
    assert k == po.Keepalive(0xABC, TS_UNIX, True)
    assert po.parse_copy_data(b"k" + struct.pack(">QqB", 1, 0, 0)) == po.Keepalive(1, PG_EPOCH_US, False)


def test_standby_status() -> None:
    now = TS_UNIX
    msg = po.standby_status(0x300, 0x200, 0x100, reply=True, now_us=now)
    assert msg == b"r" + struct.pack(">QQQqB", 0x300, 0x200, 0x100, TS_PG, 1)
    msg = po.standby_status(1, 1, 1)
    tag, w, f, a, ts, reply = struct.unpack(">cQQQqB", msg)
    assert (tag, w, f, a, reply) == (b"r", 1, 1, 1, 0)
    assert abs(ts + PG_EPOCH_US - time.time() * 1e6) < 5e6


def test_lsn_text() -> None:
    assert po.lsn_to_str(0x16_B374D848) == "16/B374D848"
    assert po.lsn_to_str(0) == "0/0"
    assert po.str_to_lsn("16/B374D848") == 0x16_B374D848
    assert po.str_to_lsn("0/1a") == 0x1A
    for bad in ("", "16", "/1", "g/1", "1/2/3", "123456789/0", "-1/0"):
        with pytest.raises(ValueError, match="LSN"):
            po.str_to_lsn(bad)
    with pytest.raises(ValueError):
        po.lsn_to_str(-1)


def test_unknown_and_malformed_messages_raise_clearly() -> None:
    one_text_column = b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">H", 1) + b"t"
    with pytest.raises(ValueError, match=r"unknown message type b'Z' \(0x5a\)"):
        po.decode_message(b"Z\0\0")
    with pytest.raises(ValueError, match="two-phase"):
        po.decode_message(b"P" + b"\0" * 40)
    with pytest.raises(ValueError, match="truncated"):
        po.decode_message(b"B\0\0")
    with pytest.raises(ValueError, match="tuple column kind b'x'"):
        po.decode_message(b"I" + struct.pack(">I", 1) + b"N" + struct.pack(">H", 1) + b"x")
    with pytest.raises(ValueError, match="past the end"):
        po.decode_message(one_text_column + struct.pack(">I", 9) + b"ab")
    with pytest.raises(ValueError, match="UTF-8"):
        po.decode_message(one_text_column + struct.pack(">I", 1) + b"\xff")
    with pytest.raises(ValueError, match="Insert expects"):
        po.decode_message(b"I" + struct.pack(">I", 1) + b"K" + tuple_data("1"))
    with pytest.raises(ValueError, match="unknown CopyData"):
        po.parse_copy_data(b"x123")
    with pytest.raises(ValueError, match="truncated"):
        po.parse_copy_data(b"w\0")


def test_messages_are_frozen() -> None:
    ins = po.Insert(1, ("a",))
    with pytest.raises(AttributeError):
        ins.rel_oid = 2  # type: ignore[misc]
    assert repr(UNCHANGED_TOAST) == "UNCHANGED_TOAST"
    assert UNCHANGED_TOAST in ("x", UNCHANGED_TOAST)


def test_trailing_nulls_and_toast_at_end_of_buffer() -> None:
    for values in ((None,), ("a", None), ("a", UNCHANGED_TOAST), (None, None, None), (UNCHANGED_TOAST,)):
        msg = b"I" + struct.pack(">I", 1) + b"N" + tuple_data(*values)
        assert po.decode_message(msg) == po.Insert(1, values)
        assert po.decode_message(memoryview(b"pad" + msg), 3) == po.Insert(1, values)
