"""Pure assembly of Debezium change events for MySQL/MariaDB rows (binlog and snapshot).

Input is decoded rows (dicts of Debezium-encoded values, from `binlogrows` or the snapshot's value
converter) and where they came from; output is `ChangeEvent`s whose value is Debezium's envelope as
the JSON converter writes it with schemas disabled, fields in Debezium's order:

    {"before", "after", "source": {"version", "connector" ("mysql"|"mariadb"), "name", "ts_ms",
     "snapshot", "db", "sequence", "ts_us", "ts_ns", "table", "server_id", "gtid", "file", "pos", "row",
     "thread", "query"}, "transaction", "op", "ts_ms", "ts_us", "ts_ns"}

`source.ts_ms` is the binlog event's timestamp (whole seconds, as the binlog records them); `file`/
`pos` are the binlog file and the start of the rows event holding the row and `row` its index there,
so (file, pos, row) identifies a change for consumers that deduplicate. Semantics kept from Debezium:
the key is the primary key (None without one); an update that changes the primary key becomes a
delete of the old key, a tombstone (if enabled) and a create of the new key; a delete is followed by a
tombstone when `tombstones.on.delete` is on. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cdc import __version__
from cdc.readers.pgevents import KeyFn
from cdc.types import ChangeEvent

Row = dict[str, Any]
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
    """Serialises rows into Debezium envelopes for one connector (`connector` is mysql or mariadb)."""

    def __init__(self, connector: str, server_name: str, tombstones: bool) -> None:
        self._lead = (b'{"version":' + _VERSION + b',"connector":' + orjson.dumps(connector) + b',"name":'
                      + orjson.dumps(server_name))
        self.tombstones = tombstones
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
                yield ChangeEvent(topic, None, _value(before, after, source, ends[op], dumps))
                continue
            if op == "u":
                assert before is not None and after is not None
                old_key, new_key = key(before), key(after)
                if old_key != new_key:
                    old = exact(old_key)
                    yield ChangeEvent(topic, old, _value(before, None, source, ends["d"], dumps))
                    if tombstones:
                        yield ChangeEvent(topic, old, None)
                    yield ChangeEvent(topic, exact(new_key), _value(None, after, source, ends["c"], dumps))
                    continue
                yield ChangeEvent(topic, exact(new_key), _value(before, after, source, ends[op], dumps))
                continue
            row = after if after is not None else before
            assert row is not None
            k = exact(key(row))
            yield ChangeEvent(topic, k, _value(before, after, source, ends[op], dumps))
            if op == "d" and tombstones:
                yield ChangeEvent(topic, k, None)


def _value(before: Row | None, after: Row | None, source: bytes, end: bytes,
           dumps: Callable[[Any], bytes]) -> bytes:
    return b"".join((b'{"before":', b"null" if before is None else dumps(before),
                     b',"after":', b"null" if after is None else dumps(after),
                     b',"source":', source, end))
