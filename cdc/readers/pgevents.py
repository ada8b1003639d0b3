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

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any

import orjson

from cdc import __version__
from cdc.types import ChangeEvent, make_change_event


def envelope(before: bytes | None, after: bytes | None, head: bytes, lsn: int, mid: bytes, names: bytes,
             end: bytes) -> bytes:
    """{"before":B,"after":A,"source":HEAD\\"LSN MID NAMES,"lsn":LSN END, by concatenation."""
    return b"".join((b'{"before":', b"null" if before is None else before,
                     b',"after":', b"null" if after is None else after,
                     b',"source":', head, b'\\"%d' % lsn, mid, names, b',"lsn":%d' % lsn, end))


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


# (head, mid, ends by op, names cache, names_of, dumps, tombstones, event, counts) -- see assemble_batch_py
AssembleCtx = tuple[bytes, bytes, dict[str, bytes], dict[tuple[str, str], bytes], Callable[[str, str], bytes],
                    Callable[[Any], bytes], bool, tuple[Any, ...], dict[tuple[str, str], int] | None]
# What the C assembler makes each event through: the class and its fields' slot descriptors.
_EVENT = (ChangeEvent, *(vars(ChangeEvent)[f] for f in ("topic", "key", "value")))
_BATCH = 1024


def assemble_batch_py(parts: Sequence[Parts], ctx: AssembleCtx) -> list[ChangeEvent]:
    """`assemble`'s loop over a batch of parts (the twin of `_pgspeed.assemble_batch`). `counts`, if not
    None, gets each event but tombstones counted by (topic, op)."""
    head, mid, ends, names, names_of, dumps, tombstones, _, counts = ctx
    out: list[ChangeEvent] = []
    for _xid, op, topic, schema, table, key_row, before_row, after_row, lsn in parts:
        # Rows come as dicts (snapshot, TOAST-filled updates) or as JSON from the C encoder. A key kept
        # in the event is copied to an exact-size object: orjson's own result keeps a ~4 KiB buffer.
        key = b"%b" % dumps(key_row) if isinstance(key_row, dict) else key_row
        before = dumps(before_row) if isinstance(before_row, dict) else before_row
        after = dumps(after_row) if isinstance(after_row, dict) else after_row
        st = names.get((schema, table))
        if st is None:
            st = names[(schema, table)] = names_of(schema, table)
        out.append(make_change_event(topic, key, envelope(before, after, head, lsn, mid, st, ends[op])))
        if counts is not None:
            counts[topic, op] = counts.get((topic, op), 0) + 1
        if op == "d" and tombstones and key is not None:
            out.append(make_change_event(topic, key, None))
    return out


assemble_batch: Callable[[list[Parts], AssembleCtx], list[ChangeEvent]]
try:
    from cdc.readers._pgspeed import assemble_batch as _c_assemble_batch

    assemble_batch = _c_assemble_batch
except ImportError:  # the optional C extension was not built
    assemble_batch = assemble_batch_py


def assemble(parts: Iterable[Parts], tx: TxInfo, now_ms: int,
             counts: dict[tuple[str, str], int] | None = None) -> Iterator[ChangeEvent]:
    """Turn parts into ChangeEvents with Debezium's envelope (JSON converter, schemas disabled), lazily,
    a batch of parts at a time (C where built); `counts`, if given, gets the events counted by (topic, op)
    as they are made (tombstones are not counted)."""
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

    def names_of(schema: str, table: str) -> bytes:
        return orjson.dumps(schema) + b',"table":' + orjson.dumps(table) + b',"txId":' + xid

    ctx: AssembleCtx = (head, mid, ends, {}, names_of, orjson.dumps, tx.tombstones, _EVENT, counts)
    it = iter(parts)
    batches = iter(lambda: list(islice(it, _BATCH)), [])
    return chain.from_iterable(assemble_batch(batch, ctx) for batch in batches)
