"""Pure decoder of PostgreSQL's `pgoutput` logical replication protocol, versions 1 and 2, and its framing.

Follows PostgreSQL 15's "Logical Replication Message Formats" and "Streaming Replication Protocol":

- `parse_copy_data(buf)` splits one CopyData message of a `START_REPLICATION ... LOGICAL` stream into
  `XLogData` ('w': wal_start, wal_end, send time, then the pgoutput payload at offset 25) or `Keepalive`
  ('k': wal_end, send time, reply requested). `standby_status(...)` builds the client's 'r' reply.
- `decode_message(buf, offset, in_stream)` decodes one pgoutput message. With protocol version 2 a
  transaction may be streamed before it commits (Stream Start / Stop / Commit / Abort); between a
  Stream Start and a Stream Stop the data messages (Relation, Type, Insert, Update, Delete, Truncate,
  Message) carry the streamed transaction's xid first: pass `in_stream=True` there, and they come back
  with `xid` set (else `xid` is None).
- Tuple data decode to tuples whose items are None (SQL NULL), `UNCHANGED_TOAST` (an unchanged TOASTed
  value the server did not send), `str` (text format, UTF-8) or `bytes` (binary format).
- Timestamps are converted from PostgreSQL's epoch (2000-01-01) to Unix epoch microseconds (`*_us`).

No I/O happens here. This is the hot path: fixed fields are read with precompiled `struct.Struct`
unpackers straight from the caller's buffer (bytes or memoryview, no copy of the frame), and tuple data is
decoded in one tight loop.

Bad input: an unknown message type raises ValueError naming the type byte; a truncated or malformed
message raises ValueError (struct.error is a ValueError) naming what could not be read. Nothing is
silently skipped.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "PG_EPOCH_OFFSET_US",
    "UNCHANGED_TOAST",
    "XLOGDATA_HEADER_LEN",
    "Begin",
    "Column",
    "Commit",
    "Delete",
    "Insert",
    "Keepalive",
    "LogicalMessage",
    "Message",
    "Origin",
    "Relation",
    "StreamAbort",
    "StreamCommit",
    "StreamStart",
    "StreamStop",
    "Truncate",
    "TupleValue",
    "Type",
    "Update",
    "XLogData",
    "decode_message",
    "lsn_to_str",
    "parse_copy_data",
    "standby_status",
    "str_to_lsn",
]

# Microseconds between the Unix epoch (1970-01-01) and PostgreSQL's epoch (2000-01-01).
PG_EPOCH_OFFSET_US: Final = 946_684_800_000_000

# Length of the XLogData header in a CopyData message: 'w', wal_start, wal_end, send_time.
XLOGDATA_HEADER_LEN: Final = 25


class _UnchangedToast:
    """Type of the `UNCHANGED_TOAST` sentinel: a TOASTed value the server did not resend ('u')."""

    __slots__ = ()
    _instance: _UnchangedToast | None = None

    def __new__(cls) -> _UnchangedToast:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED_TOAST"

    def __reduce__(self) -> str:
        return "UNCHANGED_TOAST"


UNCHANGED_TOAST: Final = _UnchangedToast()

TupleValue = str | bytes | _UnchangedToast | None


# ---------------------------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int
    commit_time_us: int  # Unix epoch microseconds
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time_us: int


@dataclass(frozen=True, slots=True)
class Origin:
    commit_lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class Column:
    is_key: bool
    name: str
    type_oid: int
    type_modifier: int


@dataclass(frozen=True, slots=True)
class Relation:
    oid: int
    namespace: str  # "" for pg_catalog
    name: str
    replica_identity: str  # 'd' default, 'n' nothing, 'f' full, 'i' index
    columns: tuple[Column, ...]
    xid: int | None = None


@dataclass(frozen=True, slots=True)
class Type:
    oid: int
    namespace: str
    name: str
    xid: int | None = None


@dataclass(frozen=True, slots=True)
class Insert:
    rel_oid: int
    new: tuple[TupleValue, ...]
    xid: int | None = None


@dataclass(frozen=True, slots=True)
class Update:
    rel_oid: int
    old: tuple[TupleValue, ...] | None
    old_kind: str | None  # 'K' key columns only, 'O' full old row, None when not sent
    new: tuple[TupleValue, ...]
    xid: int | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    rel_oid: int
    old: tuple[TupleValue, ...]
    old_kind: str  # 'K' or 'O'
    xid: int | None = None


TRUNCATE_CASCADE: Final = 1
TRUNCATE_RESTART_IDENTITY: Final = 2


@dataclass(frozen=True, slots=True)
class Truncate:
    options: int  # bit 1: CASCADE, bit 2: RESTART IDENTITY
    rel_oids: tuple[int, ...]
    xid: int | None = None

    @property
    def cascade(self) -> bool:
        return bool(self.options & TRUNCATE_CASCADE)

    @property
    def restart_identity(self) -> bool:
        return bool(self.options & TRUNCATE_RESTART_IDENTITY)


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    transactional: bool
    lsn: int
    prefix: str
    content: bytes
    xid: int | None = None


@dataclass(frozen=True, slots=True)
class StreamStart:
    xid: int
    first_segment: bool


@dataclass(frozen=True, slots=True)
class StreamStop:
    pass


@dataclass(frozen=True, slots=True)
class StreamCommit:
    xid: int
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time_us: int


@dataclass(frozen=True, slots=True)
class StreamAbort:
    xid: int
    subxid: int  # equal to xid when the whole (top-level) transaction aborted


Message = (Begin | Commit | Origin | Relation | Type | Insert | Update | Delete | Truncate | LogicalMessage
           | StreamStart | StreamStop | StreamCommit | StreamAbort)


@dataclass(frozen=True, slots=True)
class XLogData:
    """'w': WAL data; `payload` is a zero-copy view of the pgoutput message (or decode at offset 25)."""

    wal_start: int
    wal_end: int
    send_time_us: int  # Unix epoch microseconds
    payload: memoryview


@dataclass(frozen=True, slots=True)
class Keepalive:
    """'k': the server's keepalive; answer with `standby_status(..., reply=True)` when asked."""

    wal_end: int
    send_time_us: int  # Unix epoch microseconds
    reply_requested: bool


def _fast_init(cls: type) -> None:
    """Give a frozen slotted dataclass an __init__ that stores through the slot descriptors directly.

    Same signature and behaviour as the generated one (the class stays frozen), about twice as fast:
    these are built once per row change.
    """
    ns: dict[str, Any] = {}
    params: list[str] = []
    body: list[str] = []
    for i, f in enumerate(dataclasses.fields(cls)):
        ns[f"_set{i}"] = cls.__dict__[f.name].__set__
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            ns[f"_default{i}"] = f.default
            params.append(f"{f.name}=_default{i}")
        body.append(f"    _set{i}(self, {f.name})")
    src = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body) + "\n"
    exec(compile(src, f"<{cls.__name__}.__init__>", "exec"), ns)
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[misc]


for _cls in (Begin, Commit, Insert, Update, Delete, XLogData, Keepalive):
    _fast_init(_cls)


# ---------------------------------------------------------------------------------------------- decoding

_U16 = struct.Struct(">H").unpack_from
_I32 = struct.Struct(">i").unpack_from
_U32 = struct.Struct(">I").unpack_from
_BEGIN = struct.Struct(">QqI").unpack_from  # final_lsn, commit ts, xid
_COMMIT = struct.Struct(">BQQq").unpack_from  # flags, commit_lsn, end_lsn, commit ts
_STREAM_COMMIT = struct.Struct(">IBQQq").unpack_from
_STREAM_START = struct.Struct(">IB").unpack_from
_STREAM_ABORT = struct.Struct(">II").unpack_from
_U32_U8 = struct.Struct(">IB").unpack_from  # rel oid + tuple kind byte
_KIND_LEN = struct.Struct(">BI").unpack_from  # tuple column kind + length
_COL_TAIL = struct.Struct(">Ii").unpack_from  # type oid, typmod
_MSG_HEAD = struct.Struct(">BQ").unpack_from  # flags, lsn
_U64 = struct.Struct(">Q").unpack_from
_I32_U8 = struct.Struct(">IB").unpack_from
_XLOG = struct.Struct(">QQq").unpack_from
_KEEPALIVE = struct.Struct(">QqB").unpack_from
_STATUS = struct.Struct(">cQQQqB").pack

_N, _U, _T, _B = ord("n"), ord("u"), ord("t"), ord("b")


def _read_tuple(buf: bytes | memoryview, pos: int) -> tuple[tuple[TupleValue, ...], int]:
    """TupleData at `pos`: Int16 column count, then per column a kind byte and maybe Int32 len + bytes."""
    (n,) = _U16(buf, pos)
    pos += 2
    out: list[TupleValue] = []
    append = out.append
    kind_len = _KIND_LEN
    i = 0
    try:
        for i in range(n):  # noqa: B007 - i is read after an exception
            kind, ln = kind_len(buf, pos)  # reads 4 bytes past a 'n'/'u' byte: see the except
            if kind == 116:  # 't' text
                pos += 5
                end = pos + ln
                append(buf[pos:end].decode() if type(buf) is bytes else str(buf[pos:end], "utf-8"))
                pos = end
            elif kind == 110:  # 'n' null
                append(None)
                pos += 1
            else:
                pos = _read_value(buf, pos, kind, append)
    except struct.error:  # a 'n'/'u' in the last 4 bytes of the message: finish byte by byte
        for _ in range(n - i):
            kind = buf[pos]
            if kind == 110:
                append(None)
                pos += 1
            else:
                pos = _read_value(buf, pos, kind, append)
    if pos > len(buf):
        raise ValueError("pgoutput: tuple data runs past the end of the message")
    return tuple(out), pos


def _read_value(buf: bytes | memoryview, pos: int, kind: int, append: Callable[[TupleValue], None]) -> int:
    if kind == 117:  # 'u' unchanged TOAST
        append(UNCHANGED_TOAST)
        return pos + 1
    if kind == 110:
        append(None)
        return pos + 1
    if kind == 116 or kind == 98:  # 't' text, 'b' binary
        ln: int = _U32(buf, pos + 1)[0]
        pos += 5
        end = pos + ln
        if end > len(buf):
            raise ValueError("pgoutput: tuple value runs past the end of the message")
        append(str(buf[pos:end], "utf-8") if kind == 116 else bytes(buf[pos:end]))
        return end
    raise ValueError(f"pgoutput: unknown tuple column kind {bytes([kind])!r} at byte {pos}")


def _read_cstring(data: bytes, pos: int) -> tuple[str, int]:
    """A NUL-terminated UTF-8 String at `pos`; returns it and the position after the NUL."""
    end = data.find(b"\0", pos)
    if end < 0:
        raise ValueError(f"pgoutput: unterminated string at byte {pos}")
    return data[pos:end].decode("utf-8"), end + 1


def _insert(buf: bytes | memoryview, pos: int, xid: int | None) -> Insert:
    rel, kind = _U32_U8(buf, pos)
    if kind != 78:  # 'N'
        raise ValueError(f"pgoutput: Insert expects a new tuple 'N', got {bytes([kind])!r}")
    new, _ = _read_tuple(buf, pos + 5)
    return Insert(rel, new, xid)


def _update(buf: bytes | memoryview, pos: int, xid: int | None) -> Update:
    rel, kind = _U32_U8(buf, pos)
    pos += 5
    old: tuple[TupleValue, ...] | None = None
    old_kind: str | None = None
    if kind == 75 or kind == 79:  # 'K' / 'O'
        old_kind = "K" if kind == 75 else "O"
        old, pos = _read_tuple(buf, pos)
        kind = buf[pos]
        pos += 1
    if kind != 78:
        raise ValueError(f"pgoutput: Update expects a new tuple 'N', got {bytes([kind])!r}")
    new, _ = _read_tuple(buf, pos)
    return Update(rel, old, old_kind, new, xid)


def _delete(buf: bytes | memoryview, pos: int, xid: int | None) -> Delete:
    rel, kind = _U32_U8(buf, pos)
    if kind != 75 and kind != 79:
        raise ValueError(f"pgoutput: Delete expects an old tuple 'K' or 'O', got {bytes([kind])!r}")
    old, _ = _read_tuple(buf, pos + 5)
    return Delete(rel, old, "K" if kind == 75 else "O", xid)


def _relation(buf: bytes | memoryview, pos: int, xid: int | None) -> Relation:
    data = bytes(buf[pos:])  # rare message: one copy keeps string scanning simple
    (oid,) = _U32(data, 0)
    namespace, p = _read_cstring(data, 4)
    name, p = _read_cstring(data, p)
    ident = chr(data[p])
    (ncols,) = _U16(data, p + 1)
    p += 3
    cols: list[Column] = []
    for _ in range(ncols):
        flags = data[p]
        cname, p = _read_cstring(data, p + 1)
        toid, typmod = _COL_TAIL(data, p)
        p += 8
        cols.append(Column(bool(flags & 1), cname, toid, typmod))
    return Relation(oid, namespace, name, ident, tuple(cols), xid)


def _type(buf: bytes | memoryview, pos: int, xid: int | None) -> Type:
    data = bytes(buf[pos:])
    (oid,) = _U32(data, 0)
    namespace, p = _read_cstring(data, 4)
    name, _ = _read_cstring(data, p)
    return Type(oid, namespace, name, xid)


def _truncate(buf: bytes | memoryview, pos: int, xid: int | None) -> Truncate:
    n, options = _I32_U8(buf, pos)
    pos += 5
    oids = struct.unpack_from(f">{n}I", buf, pos)
    return Truncate(options, oids, xid)


def _message(buf: bytes | memoryview, pos: int, xid: int | None) -> LogicalMessage:
    flags, lsn = _MSG_HEAD(buf, pos)
    data = bytes(buf[pos + 9:])
    prefix, p = _read_cstring(data, 0)
    (ln,) = _U32(data, p)
    content = data[p + 4:p + 4 + ln]
    if len(content) != ln:
        raise ValueError("pgoutput: logical message content runs past the end of the message")
    return LogicalMessage(bool(flags & 1), lsn, prefix, content, xid)


def decode_message(buf: bytes | memoryview, offset: int = 0, in_stream: bool = False) -> Message:
    """Decode the pgoutput message starting at `buf[offset]` (offset 25 skips an XLogData header).

    `in_stream` must be True between a Stream Start and its Stream Stop (protocol version 2): the data
    messages then carry the streamed transaction's xid first. Raises ValueError on an unknown message
    type (naming the byte) or a malformed message.
    """
    try:
        tag = buf[offset]
        pos = offset + 1
        xid: int | None = None
        if tag == 73:  # 'I'
            if in_stream:
                (xid,) = _U32(buf, pos)
                pos += 4
            return _insert(buf, pos, xid)
        if tag == 85:  # 'U'
            if in_stream:
                (xid,) = _U32(buf, pos)
                pos += 4
            return _update(buf, pos, xid)
        if tag == 68:  # 'D'
            if in_stream:
                (xid,) = _U32(buf, pos)
                pos += 4
            return _delete(buf, pos, xid)
        if tag == 66:  # 'B'
            final_lsn, ts, bxid = _BEGIN(buf, pos)
            return Begin(final_lsn, ts + PG_EPOCH_OFFSET_US, bxid)
        if tag == 67:  # 'C'
            flags, commit_lsn, end_lsn, ts = _COMMIT(buf, pos)
            return Commit(flags, commit_lsn, end_lsn, ts + PG_EPOCH_OFFSET_US)
        if tag in _WITH_XID:
            if in_stream:
                (xid,) = _U32(buf, pos)
                pos += 4
            return _WITH_XID[tag](buf, pos, xid)
        if tag == 83:  # 'S' Stream Start
            sxid, first = _STREAM_START(buf, pos)
            return StreamStart(sxid, first == 1)
        if tag == 69:  # 'E' Stream Stop
            return StreamStop()
        if tag == 99:  # 'c' Stream Commit
            sxid, flags, commit_lsn, end_lsn, ts = _STREAM_COMMIT(buf, pos)
            return StreamCommit(sxid, flags, commit_lsn, end_lsn, ts + PG_EPOCH_OFFSET_US)
        if tag == 65:  # 'A' Stream Abort
            axid, subxid = _STREAM_ABORT(buf, pos)
            return StreamAbort(axid, subxid)
        if tag == 79:  # 'O' Origin
            (lsn,) = _U64(buf, pos)
            name, _ = _read_cstring(bytes(buf[pos + 8:]), 0)
            return Origin(lsn, name)
    except (struct.error, IndexError) as e:
        raise ValueError(f"pgoutput: truncated or malformed message at offset {offset}: {e}") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"pgoutput: text value is not valid UTF-8: {e}") from e
    if tag in _TWO_PHASE:
        raise ValueError(f"pgoutput: two-phase message {_TWO_PHASE[tag]} ({bytes([tag])!r}) is not "
                         "supported: create the slot without two_phase")
    raise ValueError(f"pgoutput: unknown message type {bytes([tag])!r} (0x{tag:02x}) at offset {offset}")


_WITH_XID: dict[int, Callable[[bytes | memoryview, int, int | None], Message]] = {
    82: _relation, 89: _type, 84: _truncate, 77: _message}  # 'R', 'Y', 'T', 'M'
_TWO_PHASE = {98: "Begin Prepare", 80: "Prepare", 75: "Commit Prepared", 114: "Rollback Prepared",
              112: "Stream Prepare"}


# ---------------------------------------------------------------------------------------------- framing


def parse_copy_data(buf: bytes | memoryview) -> XLogData | Keepalive:
    """Parse one CopyData message of the replication stream: XLogData ('w') or Primary keepalive ('k')."""
    try:
        tag = buf[0]
        if tag == 119:  # 'w'
            start, end, ts = _XLOG(buf, 1)
            return XLogData(start, end, ts + PG_EPOCH_OFFSET_US, memoryview(buf)[XLOGDATA_HEADER_LEN:])
        if tag == 107:  # 'k'
            end, ts, reply = _KEEPALIVE(buf, 1)
            return Keepalive(end, ts + PG_EPOCH_OFFSET_US, reply == 1)
    except (struct.error, IndexError) as e:
        raise ValueError(f"replication stream: truncated CopyData message: {e}") from e
    raise ValueError(f"replication stream: unknown CopyData message type {bytes([tag])!r}")


def standby_status(write_lsn: int, flush_lsn: int, apply_lsn: int, reply: bool = False,
                   now_us: int | None = None) -> bytes:
    """The Standby status update ('r') the client sends: LSNs received/flushed/applied, clock, reply flag.

    `now_us` is the client's clock in Unix epoch microseconds (default: now).
    """
    if now_us is None:
        now_us = time.time_ns() // 1000
    return _STATUS(b"r", write_lsn, flush_lsn, apply_lsn, now_us - PG_EPOCH_OFFSET_US, 1 if reply else 0)


def lsn_to_str(lsn: int) -> str:
    """64-bit LSN to PostgreSQL's text form 'X/Y' (upper-case hex halves)."""
    if not 0 <= lsn < 1 << 64:
        raise ValueError(f"LSN out of range: {lsn}")
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def str_to_lsn(text: str) -> int:
    """PostgreSQL's 'X/Y' LSN text to its 64-bit integer; ValueError naming the text if malformed."""
    m = _LSN_RE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not an LSN (expected 'X/Y' in hex): {text!r}")
    return (int(m[1], 16) << 32) | int(m[2], 16)


_LSN_RE = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


# A row change as the capture loop consumes it, without message objects: (tag 'I'/'U'/'D' as int,
# wal_start, xid (in a stream) or None, rel_oid, old_kind, old, new, byte length of new's longest value)
Change = tuple[int, int, int | None, int, str | None, tuple[TupleValue, ...] | None,
               tuple[TupleValue, ...] | None, int]


def _longest(values: tuple[TupleValue, ...]) -> int:
    return max((len(v.encode()) if isinstance(v, str) else len(v) for v in values
                if isinstance(v, str | bytes)), default=0)


def decode_change(buf: bytes | memoryview, in_stream: bool, unchanged: object) -> Change | None:
    """The XLogData frame `buf` as a Change if it carries an Insert, Update or Delete, else None.

    `unchanged` is the marker for unchanged TOAST values (UNCHANGED_TOAST). The capture hot path uses
    the C encoder of pgfast instead; this serves its Python twin and tuples with unchanged TOAST."""
    if len(buf) < 26 or buf[0] != 0x77 or buf[25] not in (73, 85, 68):
        return None
    (wal_start,) = _U64(buf, 1)
    msg = decode_message(buf, 25, in_stream)
    if isinstance(msg, Insert):
        return (73, wal_start, msg.xid, msg.rel_oid, None, None, msg.new, _longest(msg.new))
    if isinstance(msg, Update):
        return (85, wal_start, msg.xid, msg.rel_oid, msg.old_kind, msg.old, msg.new, _longest(msg.new))
    assert isinstance(msg, Delete)
    return (68, wal_start, msg.xid, msg.rel_oid, msg.old_kind, msg.old, None, 0)
