"""Pure assembly of Debezium change events from decoded PostgreSQL row images.

A change is first reduced to *parts* as soon as it is decoded: `(xid, op, topic, schema, table, key,
before, after, lsn)` with key/before/after as dicts of Debezium-encoded values. The envelope needs the
commit's timestamp, which a streamed transaction only reveals at its end, so the parts wait (in a
SpillBuffer) and `assemble` serialises them at commit, each row with one orjson call, the envelope by
concatenation. Rows stay dicts until then on purpose: orjson's small outputs each keep a ~4 KiB buffer,
so holding thousands of serialised rows costs far more memory than the dicts.

Debezium semantics kept here: the key is the primary key (None for a table without one); an update
that changes the primary key becomes a delete of the old key, a tombstone (if enabled) and a create
of the new key; a delete is followed by a tombstone when `tombstones.on.delete` is on; TRUNCATE is an
event with op "t" and no key. No I/O: unit-tested with plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cdc import __version__
from cdc.types import ChangeEvent

# {"before":B,"after":A,"source":HEAD\"LSN MID NAMES,"lsn":LSN END, by concatenation (C where built)
Envelope = Callable[[bytes | None, bytes | None, bytes, int, bytes, bytes, bytes], bytes]


def envelope_py(before: bytes | None, after: bytes | None, head: bytes, lsn: int, mid: bytes, names: bytes,
                end: bytes) -> bytes:
    return b"".join((b'{"before":', b"null" if before is None else before,
                     b',"after":', b"null" if after is None else after,
                     b',"source":', head, b'\\"%d' % lsn, mid, names, b',"lsn":%d' % lsn, end))


envelope: Envelope
try:
    from cdc.readers._pgspeed import envelope as _c_envelope

    envelope = _c_envelope
except ImportError:  # the optional C extension was not built
    envelope = envelope_py

Row = dict[str, Any]
# (xid, op, topic, schema, table, key, before, after, lsn); rows as dicts or as their JSON bytes
Parts = tuple[int, str, str, str, str, Row | bytes | None, Row | bytes | None, Row | bytes | None, int]

_VERSION = orjson.dumps(__version__)


@dataclass(frozen=True, slots=True)
class TxInfo:
    """What the envelope's `source` needs from the transaction and the connector."""

    server_name: str          # topic.prefix
    db: str
    xid: int | None
    commit_time_us: int
    last_commit_lsn: int | None  # the previous transaction's commit LSN (Debezium's sequence[0])
    snapshot: str = "false"
    tombstones: bool = True


KeyFn = Callable[[Row], Row]


def key_function(pk: Sequence[str]) -> KeyFn | None:
    """A compiled `row -> {pk columns}` (None for a table without a primary key)."""
    if not pk:
        return None
    src = "def key(r):\n    return {" + ", ".join(f"{c!r}: r[{c!r}]" for c in pk) + "}\n"
    ns: dict[str, Any] = {}
    exec(compile(src, "<key>", "exec"), ns)
    fn: KeyFn = ns["key"]
    return fn


def change_parts(xid: int, op: str, topic: str, schema: str, table: str, key: KeyFn | None,
                 before: Row | None, after: Row | None, lsn: int) -> list[Parts]:
    """Parts for one decoded change; a primary-key update yields a delete and a create."""
    if key is None:
        return [(xid, op, topic, schema, table, None, before, after, lsn)]
    if op == "u" and before is not None and after is not None:
        old_key, new_key = key(before), key(after)
        if None not in old_key.values() and old_key != new_key:
            return [(xid, "d", topic, schema, table, old_key, before, None, lsn),
                    (xid, "c", topic, schema, table, new_key, None, after, lsn)]
        return [(xid, op, topic, schema, table, new_key, before, after, lsn)]
    row = after if after is not None else before
    return [(xid, op, topic, schema, table, None if row is None else key(row), before, after, lsn)]


def assemble(parts: Iterator[Parts] | Sequence[Parts], tx: TxInfo, now_ms: int) -> Iterator[ChangeEvent]:
    """Turn parts into ChangeEvents with Debezium's envelope (JSON converter, schemas disabled)."""
    ts_ms = tx.commit_time_us // 1000
    last = b"null" if tx.last_commit_lsn is None else b'\\"%d\\"' % tx.last_commit_lsn
    xid = b"null" if tx.xid is None else b"%d" % tx.xid
    head = (b'{"version":' + _VERSION + b',"connector":"postgresql","name":' + orjson.dumps(tx.server_name)
            + b',"ts_ms":%d,"snapshot":"' % ts_ms + tx.snapshot.encode() + b'","db":' + orjson.dumps(tx.db)
            + b',"sequence":"[' + last + b',')
    mid = b'\\"]","ts_us":%d,"ts_ns":%d,"schema":' % (tx.commit_time_us, tx.commit_time_us * 1000)
    end = b'","ts_ms":%d,"ts_us":%d,"ts_ns":%d}' % (now_ms, now_ms * 1000, now_ms * 1_000_000)
    ends = {op: b',"xmin":null,"origin":null,"origin_lsn":null},"transaction":null,"op":"' + op.encode() + end
            for op in "crudt"}
    names: dict[tuple[str, str], bytes] = {}
    tombstones = tx.tombstones
    dumps = orjson.dumps
    for _xid, op, topic, schema, table, key_row, before_row, after_row, lsn in parts:
        # Rows come as dicts (snapshot, TOAST-filled updates) or as JSON from the C encoder. A key kept
        # in the event is copied to an exact-size object: orjson's own result keeps a ~4 KiB buffer.
        key = b"%b" % dumps(key_row) if isinstance(key_row, dict) else key_row
        before = dumps(before_row) if isinstance(before_row, dict) else before_row
        after = dumps(after_row) if isinstance(after_row, dict) else after_row
        st = names.get((schema, table))
        if st is None:
            st = names[(schema, table)] = (orjson.dumps(schema) + b',"table":' + orjson.dumps(table)
                                           + b',"txId":' + xid)
        yield ChangeEvent(topic, key, envelope(before, after, head, lsn, mid, st, ends[op]))
        if op == "d" and tombstones and key is not None:
            yield ChangeEvent(topic, key, None)
