"""CloudEvents 1.0 (JSON format) for mapped business events: attributes, deterministic ids. Pure.

Attributes written: ``specversion`` "1.0"; ``id``; ``source`` ``/<topic.prefix>/<schema or database>/<table>``
(a URI-reference naming the source table); ``type`` (``customer.upserted``, ``customer.deleted``, or
a mapping's own ``_type``); ``subject`` (the business key); ``time`` (the source transaction's
commit time, RFC 3339 in UTC with microseconds); ``datacontenttype`` ``application/json``;
``dataschema`` (entity mappings: ``urn:erp-cdc:entity:customer:v1``); ``data`` (the fields).

The id is the idempotency key targets dedupe on, so it depends only on what identifies the business
change: the source connector, the change's position in the source log (PostgreSQL LSN, MySQL binlog
file/position/row), the operation, the subject, the event type, and the mapping's fingerprint (its
normalized SQL): re-delivery after a crash or a replay from the journal gives the same ids, and a
corrected mapping replayed over history gives new ones, so targets do not drop the corrections as
duplicates. It is the first 128 bits of BLAKE2b over those parts, as 32 hex digits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson

from mappers.values import encode_default

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Every field of a Debezium `source` block read here (`mappers.envelope` passes on only these).
SOURCE_FIELDS = ("name", "schema", "db", "table", "ts_us", "ts_ms", "lsn", "file", "pos", "row")

Written = tuple[str, str, bytes]  # an event as written: (id, time, the CloudEvent)
# (source block, op, subject, subject as JSON, data as JSON) -> the event: `EventWriter.typed`
TypedWrite = Callable[[dict[str, Any], str, str, bytes, bytes], Written]

_typed_write: Callable[..., Written] | None
try:
    from mappers._mapspeed import typed_write as _c_typed_write

    _typed_write = _c_typed_write
except ImportError:  # the optional C extension was not built: the same events, slower
    _typed_write = None


def source_position(source: dict[str, Any]) -> str:
    """A change's position in the source log, from the Debezium `source` block."""
    lsn = source.get("lsn")
    if lsn is not None:
        return f"lsn:{lsn}"
    if "file" in source:
        return f"binlog:{source.get('file')}:{source.get('pos')}:{source.get('row', 0)}"
    return f"ts:{source.get('ts_us', source.get('ts_ms'))}"


def event_id(connector: str, position: str, op: str, subject: str, type_: str, fingerprint: str) -> str:
    raw = "\x1f".join((connector, position, op, subject, type_, fingerprint)).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def commit_time(source: dict[str, Any]) -> str:
    """RFC 3339 UTC time of the source commit (microseconds when the source gives them)."""
    us = source.get("ts_us")
    if us is None:
        us = int(source.get("ts_ms") or 0) * 1000
    t = _EPOCH + timedelta(microseconds=int(us))
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def source_uri(source: dict[str, Any]) -> str:
    name = source.get("name", "")
    container = source.get("schema") or source.get("db") or ""
    return f"/{name}/{container}/{source.get('table', '')}"


def cloudevent(id_: str, source: str, type_: str, subject: str, time: str, data: dict[str, Any],
               dataschema: str | None) -> bytes:
    """One CloudEvent as JSON bytes (structured mode): the reference `EventWriter` is tested against."""
    event: dict[str, Any] = {"specversion": "1.0", "id": id_, "source": source, "type": type_, "subject": subject,
                             "time": time, "datacontenttype": "application/json"}
    if dataschema is not None:
        event["dataschema"] = dataschema
    event["data"] = data
    return orjson.dumps(event, default=encode_default, option=orjson.OPT_UTC_Z)


class EventWriter:
    """A mapper's CloudEvents by concatenation: every constant part is serialised once.

    Per event only the id, type, subject, time and data (already JSON) are joined into the constant
    frame; the bytes equal `cloudevent()`'s for the same values (attribute order included).
    """

    __slots__ = ("_connector", "_fingerprint", "_hash", "_schema_part", "_source_part", "_tail", "_time",
                 "_time_text", "_ts", "_types")

    def __init__(self, connector: str, fingerprint: str, dataschema: str | None) -> None:
        self._connector = connector
        self._fingerprint = fingerprint
        self._tail = "\x1f" + fingerprint
        self._schema_part = b'","datacontenttype":"application/json"' + (
            b"" if dataschema is None else b',"dataschema":' + orjson.dumps(dataschema))
        self._source_part = b""  # bound by the first event (or `bind_source`)
        self._hash: Any = None  # BLAKE2b having read the connector's part of every id: copied per event
        self._ts: Any = None
        self._time = b""
        self._time_text = ""
        self._types: dict[str, bytes] = {}

    def bind_source(self, uri: str) -> None:
        """The `source` attribute: the same for every event of a mapper (its table or root table)."""
        self._source_part = b'","source":' + orjson.dumps(uri) + b',"type":'

    @property
    def bound(self) -> bool:
        return bool(self._source_part)

    def type_json(self, type_: str) -> bytes:
        """An event type as JSON (cached: a mapping has a handful of types)."""
        out = self._types.get(type_)
        if out is None:
            out = orjson.dumps(type_)
            if len(self._types) < 256:
                self._types[type_] = out
        return out

    def typed(self, type_: str, deleted: bool) -> TypedWrite:
        """`event` for the events of one type: ``typed(t, d)(source, op, s, sj, data)`` equals
        ``event(source, op, s, sj, t, d, data)``, with what depends only on the type joined beforehand.

        A mapper writes most of its events through two of these (upserted, deleted): the attributes
        between the id and the subject, and between the subject and the data, become one part each
        (the latter once per commit time). Events `write` itself must handle -- the first one, which
        binds the source, and the first of each commit time -- go through `event`. Where the C fast path
        is built (`mappers/_mapspeed.c`: 6-11 % more records/s), it writes the usual event and hands
        the others to `write`, which keeps in `state` the parts it reads."""
        type_tail = f"\x1f{type_}{self._tail}"
        type_part = self.type_json(type_)
        data_head = (b'","datacontenttype":"application/json"' if deleted else self._schema_part) + b',"data":'
        mid = b""  # source .. subject, known once the source is bound
        time_part = b""  # time .. data, for the commit time `time`
        time: bytes | None = None
        state: list[Any] = [b"", type_tail.encode(), None, "", b"", b""]  # as _mapspeed.c reads it

        def write(source: dict[str, Any], op: str, subject: str, subject_json: bytes, data_json: bytes) -> Written:
            nonlocal mid, time_part, time
            h = self._hash
            ts = source.get("ts_us")
            if h is None or ts is None or ts != self._ts:
                return self.event(source, op, subject, subject_json, type_, deleted, data_json)
            if self._time is not time:  # a new commit time (the first fast event included)
                if not mid:
                    mid = self._source_part + type_part + b',"subject":'
                time = self._time
                time_part = b',"time":"' + time + data_head
                state[0], state[2:] = f"{self._connector}\x1f".encode(), [ts, self._time_text, mid, time_part]
            lsn = source.get("lsn")
            h = h.copy()
            h.update((f"lsn:{lsn}\x1f{op}\x1f{subject}{type_tail}" if lsn is not None else
                      f"{source_position(source)}\x1f{op}\x1f{subject}{type_tail}").encode())
            id_ = h.hexdigest()
            return id_, self._time_text, b"".join((b'{"specversion":"1.0","id":"', id_.encode(), mid, subject_json,
                                                  time_part, data_json, b"}"))
        return write if _typed_write is None else partial(_typed_write, state, write)

    def write(self, source: dict[str, Any], op: str, subject: str, subject_json: bytes, type_: str,
              deleted: bool, data_json: bytes, change: str = "") -> bytes:
        """The CloudEvent of `event`."""
        return self.event(source, op, subject, subject_json, type_, deleted, data_json, change)[2]

    def event(self, source: dict[str, Any], op: str, subject: str, subject_json: bytes, type_: str,
              deleted: bool, data_json: bytes, change: str = "") -> Written:
        """One event for a change at `source` (the Debezium source block of the change).

        `change` tells apart changes sharing a source position (the rows of one snapshot): a multi-table
        mapping's event comes from a change of any of its tables, so it gives the change's topic and key."""
        ts = source.get("ts_us")
        if ts is None or ts != self._ts:  # the events of one transaction share their commit time
            self._time_text = commit_time(source)
            self._time = self._time_text.encode()
            self._ts = ts
        h = self._hash
        if h is None:  # the first event binds what the source block tells once
            if not self._source_part:
                self.bind_source(source_uri(source))
                self._connector = self._connector or str(source.get("name", ""))
            h = self._hash = hashlib.blake2b(f"{self._connector}\x1f".encode(), digest_size=16)
        lsn = source.get("lsn")
        position = f"lsn:{lsn}" if lsn is not None else source_position(source)
        if change:
            position += "\x1e" + change
        # = event_id(...), inline: this runs once per event; the connector's part is hashed once
        h = h.copy()
        h.update(f"{position}\x1f{op}\x1f{subject}\x1f{type_}{self._tail}".encode())
        id_ = h.hexdigest()
        raw = b"".join((b'{"specversion":"1.0","id":"', id_.encode(), self._source_part,
                        self._types.get(type_) or self.type_json(type_), b',"subject":', subject_json,
                        b',"time":"', self._time,
                        b'","datacontenttype":"application/json"' if deleted else self._schema_part,
                        b',"data":', data_json, b"}"))
        return id_, self._time_text, raw
