"""Pure assembly of Debezium change events for MySQL/MariaDB rows (binlog and snapshot).

Input is decoded rows (dicts of Debezium-encoded values, from `binlogrows` or the snapshot's value
converter) and where they came from; output is `ChangeEvent`s whose value is Debezium's envelope as
the JSON converter writes it with schemas disabled, fields in Debezium's order. `events_json` is the
binlog hot path: its rows are already JSON (the `RowDecoder.*_rows_json` images and keys, built in C)
and it gives plain (topic, key, value) tuples, the same bytes as `events` (the unit tests compare the
two), without a dict, an orjson call or a ChangeEvent per row:

    {"before", "after", "source": {"version", "connector" ("mysql"|"mariadb"), "name", "ts_ms",
     "snapshot", "db", "sequence", "ts_us", "ts_ns", "table", "server_id", "gtid", "file", "pos", "row",
     "thread", "query"}, "transaction", "op", "ts_ms", "ts_us", "ts_ns"}

`source.ts_ms` is the binlog event's timestamp (whole seconds, as the binlog records them); `file`/
`pos` are the binlog file and the start of the rows event holding the row and `row` its index there,
so (file, pos, row) identifies a change for consumers that deduplicate. Semantics kept from Debezium:
the key is the primary key (None without one); an update that changes the primary key becomes a
delete of the old key, a tombstone (if enabled) and a create of the new key; a delete is followed by a
tombstone when `tombstones.on.delete` is on. `events_json` tells a primary-key change by comparing the
keys' JSON, as Debezium compares key Structs (Java's Double.equals: a DOUBLE key going from 0.0 to -0.0
changes; `events` compares the dicts, where 0.0 == -0.0). No I/O.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

from cdc import __version__
from cdc.readers.binlogrows import JsonPair, JsonRow
from cdc.readers.pgevents import KeyFn
from cdc.types import ChangeEvent, make_change_event

_myspeed: Any
try:  # the optional C extension (binlog rows and envelopes); the same bytes, faster
    _myspeed = importlib.import_module("cdc.readers._myspeed")
except ImportError:
    _myspeed = None

Row = dict[str, Any]
Record = tuple[str, bytes | None, bytes | None]  # (topic, key, value): a ChangeEvent's fields
_VERSION = orjson.dumps(__version__)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a group of rows comes from: one rows event (or one snapshot chunk)."""

    db: str
    table: str
    topic: str
    ts_sec: int            # binlog event timestamp (snapshot: its start time)
    server_id: int
    gtid: str | None
    file: str
    pos: int
    thread: int | None
    snapshot: str = "false"


class EnvelopeMaker:
    """Serialises rows into Debezium envelopes for one connector (`connector` is mysql or mariadb).

    `native`: None assembles `events_json`'s envelopes with the C extension where it is built, False
    with the pure-Python twin, True requires the extension.
    """

    def __init__(self, connector: str, server_name: str, tombstones: bool, *, native: bool | None = None) -> None:
        self.connector, self.server_name, self.tombstones = connector, server_name, tombstones
        self._lead = (b'{"version":' + _VERSION + b',"connector":' + orjson.dumps(connector) + b',"name":'
                      + orjson.dumps(server_name))
        if native and _myspeed is None:
            raise ValueError("the C extension cdc.readers._myspeed is not built")
        # events_json's loop: the C extension where built (None), or its pure-Python twin (False)
        self._native = _myspeed is not None if native is None else native
        self._heads: dict[Origin, tuple[bytes, bytes]] = {}

    def _head(self, o: Origin) -> tuple[bytes, bytes]:
        # An origin repeats for every row of a rows event: build its constant parts once.
        cached = self._heads.get(o)
        if cached is not None:
            return cached
        if len(self._heads) > 64:
            self._heads.clear()
        ts_ms = o.ts_sec * 1000
        head = (self._lead + b',"ts_ms":%d,"snapshot":"' % ts_ms + o.snapshot.encode() + b'","db":'
                + orjson.dumps(o.db) + b',"sequence":null,"ts_us":%d,"ts_ns":%d,"table":' % (
                    ts_ms * 1000, ts_ms * 1_000_000) + orjson.dumps(o.table)
                + b',"server_id":%d,"gtid":' % o.server_id + orjson.dumps(o.gtid) + b',"file":'
                + orjson.dumps(o.file) + b',"pos":%d,"row":' % o.pos)
        tail = b',"thread":' + (b"null" if o.thread is None else b"%d" % o.thread) + b',"query":null}'
        self._heads[o] = (head, tail)
        return head, tail

    def events(self, o: Origin, key: KeyFn | None, op: str, rows: Sequence[tuple[Row | None, Row | None]],
               now_ms: int, first_row: int = 0) -> Iterator[ChangeEvent]:
        """Events for `rows` ((before, after) pairs) of one origin, in order."""
        head, tail = self._head(o)
        end = b',"transaction":null,"op":"%b","ts_ms":%d,"ts_us":%d,"ts_ns":%d}'
        ends = {x: end % (x.encode(), now_ms, now_ms * 1000, now_ms * 1_000_000) for x in "crud"}
        dumps = orjson.dumps

        def exact(obj: Row) -> bytes:
            # A key is kept with its event; orjson's own result would keep a ~4 KiB buffer.
            return b"%b" % dumps(obj)
        topic = o.topic
        tombstones = self.tombstones
        for i, (before, after) in enumerate(rows, first_row):
            source = head + b"%d" % i + tail
            if key is None:
                yield make_change_event(topic, None, _value(before, after, source, ends[op], dumps))
                continue
            if op == "u":
                assert before is not None and after is not None
                old_key, new_key = key(before), key(after)
                if old_key != new_key:
                    old = exact(old_key)
                    yield make_change_event(topic, old, _value(before, None, source, ends["d"], dumps))
                    if tombstones:
                        yield make_change_event(topic, old, None)
                    yield make_change_event(topic, exact(new_key), _value(None, after, source, ends["c"], dumps))
                    continue
                yield make_change_event(topic, exact(new_key), _value(before, after, source, ends[op], dumps))
                continue
            row = after if after is not None else before
            assert row is not None
            k = exact(key(row))
            yield make_change_event(topic, k, _value(before, after, source, ends[op], dumps))
            if op == "d" and tombstones:
                yield make_change_event(topic, k, None)


    def events_json(self, o: Origin, op: str, rows: Sequence[JsonRow] | Sequence[JsonPair], now_ms: int,
                    first_row: int = 0) -> list[Record]:
        """(topic, key, value) of each event for `rows` of one origin, in order: the same bytes as `events`.

        `rows` are `JsonPair`s for op 'u' ((before, after, old key, new key) JSON), else `JsonRow`s
        ((image, key) JSON: the after image for 'c' and 'r', the before image for 'd'). Keys are None for
        a table without a primary key.
        """
        head, tail = self._head(o)
        end = b',"transaction":null,"op":"%b","ts_ms":%d,"ts_us":%d,"ts_ns":%d}'
        # each value: {"before":B,"after":A, then ',"source":' + the origin's constant head, the row
        # index, and the constant rest (the source's tail and the envelope's end) of the op it is
        # written as (a key change writes a 'u' row as a 'd' and a 'c')
        src = b',"source":' + head
        post, post_d, post_c = (tail + end % (x.encode(), now_ms, now_ms * 1000, now_ms * 1_000_000)
                                for x in (op, "d", "c"))
        if self._native:
            records: list[Record] = _myspeed.envelopes(op, rows if isinstance(rows, list) else list(rows), o.topic,
                                                       src, post, post_d, post_c, first_row, self.tombstones)
            return records
        return _events_json_py(op, rows, o.topic, src, post, post_d, post_c, first_row, self.tombstones)


def _events_json_py(op: str, rows: Sequence[JsonRow] | Sequence[JsonPair], topic: str, src: bytes, post: bytes,
                    post_d: bytes, post_c: bytes, first_row: int, tombstones: bool) -> list[Record]:
    """The pure-Python twin of `_myspeed.envelopes` (where the extension is not built)."""
    out: list[Record] = []
    append = out.append
    if op == "u":
        for i, (before, after, old, new) in enumerate(cast("Sequence[JsonPair]", rows), first_row):
            if old is not None and old != new:  # a primary-key change: delete the old row, create the new
                append((topic, old, b'{"before":%b,"after":null%b%d%b' % (before, src, i, post_d)))
                if tombstones:
                    append((topic, old, None))
                append((topic, new, b'{"before":null,"after":%b%b%d%b' % (after, src, i, post_c)))
                continue
            append((topic, new, b'{"before":%b,"after":%b%b%d%b' % (before, after, src, i, post)))
        return out
    images = cast("Sequence[JsonRow]", rows)
    if op == "d":
        for i, (row, key) in enumerate(images, first_row):
            append((topic, key, b'{"before":%b,"after":null%b%d%b' % (row, src, i, post)))
            if tombstones and key is not None:
                append((topic, key, None))
        return out
    for i, (row, key) in enumerate(images, first_row):
        append((topic, key, b'{"before":null,"after":%b%b%d%b' % (row, src, i, post)))
    return out


def _value(before: Row | None, after: Row | None, source: bytes, end: bytes,
           dumps: Callable[[Any], bytes]) -> bytes:
    return b"".join((b'{"before":', b"null" if before is None else dumps(before),
                     b',"after":', b"null" if after is None else dumps(after),
                     b',"source":', source, end))
