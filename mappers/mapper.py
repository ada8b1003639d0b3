"""The SQL mapper: change events of one source table -> CloudEvents of one business entity. Pure.

Role: `SqlMapper.map(record)` implements the `Mapper` protocol (design §9): a journal record holding a
Debezium change event becomes zero, one or two business events, each a `cdc.types.ChangeEvent` whose
`topic` is the entity (or the sink's name for a free-form mapping), `key` the business key (JSON
string) and `value` the CloudEvent JSON. Membership is the mapping's WHERE:

- create / snapshot read (c, r): ``<entity>.upserted`` when the row is a member;
- update (u): into the filter -> upserted; out of it -> ``<entity>.deleted``; a member before and
  after -> upserted only if a mapped field changed (fields reading ``old.*`` and ``_type`` aside) or
  the mapping's ``_type`` says so; a changed business key -> deleted (old key) then upserted (new);
- delete (d): deleted when the row was a member;
- truncate (t) and tombstones: nothing (a truncate names no rows; see the README).

Without a before image (PostgreSQL's default REPLICA IDENTITY sends none for updates and only the key
for deletes) membership before the change is unknown: an update of a non-member then emits deleted and
a delete always emits deleted -- harmless to a consumer (deleting what it never had) and never a lost
deletion. ``old.*`` columns are NULL then: set REPLICA IDENTITY FULL where transitions matter.

A custom event type: a select-list column named ``_type`` (text) that is not NULL replaces
``<entity>.upserted`` for that event (``CASE WHEN old.status = '20' AND status = '30' THEN
'order.approved' END AS _type``); the event still carries the whole entity. It never replaces deleted.

Speed (`bench/mapper_eval.py`): the event is parsed once with orjson, all but the first of a
transaction without its `source` block (`mappers.envelope`), the compiled function reads
only the columns the mapping references, each event (its key, data and CloudEvent) is made by a
function generated at load (decimals as plain strings, entity fields converted as pydantic would, no
per-event pydantic: `mappers.entities.field_converter`), the CloudEvent is the concatenation of
pre-serialised constant parts and the variable ones (`mappers.cloudevents.EventWriter.typed`), and the
output records are built without the frozen dataclass's `__init__` (`cdc.types.make_journal_record`).
`map_events` is `map_batch` for the delivery engine: the same generated functions make `SinkEvent`s from
the parts they hold (id, type, subject, data, time), never parsing the CloudEvent back. `map` (one
record) serves `cdc mapper test` and the tests.

Failure story: a row the mapping cannot evaluate (the source would raise too, e.g. an invalid legacy
date) or whose data is not a valid entity (a NULL in a required field) raises `MappingRuntimeError`,
naming the mapping position, the record's journal seq and topic, and its key. The sink stops there
(errors.tolerance=none): nothing is skipped silently. A member whose business key is NULL raises the
same way.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import orjson

from cdc.types import ChangeEvent, JournalRecord, SinkEvent, make_journal_record, make_sink_event
from mappers.cloudevents import EventWriter
from mappers.compiler import TYPE_FIELD, CompiledMapping
from mappers.entities import Entity, EntityError, field_converter
from mappers.envelope import parser
from mappers.errors import MappingRuntimeError
from mappers.values import encode_default

__all__ = ["SqlMapper"]

log = logging.getLogger(__name__)

T = TypeVar("T", JournalRecord, SinkEvent)
# (values, op, source block, journal seq) -> the event, as a JournalRecord (map_batch) or a SinkEvent (map_events)
EventFn = Callable[[tuple[Any, ...], str, dict[str, Any], int], T]
EventFns = tuple[EventFn[T], EventFn[T]]  # upserted, deleted


def _key_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(encode_default(v)) if not isinstance(v, int) else str(v)


def _dec_json(d: Decimal) -> Any:
    text = str(d)  # plain notation unless the exponent is large: NaN/Infinity print as themselves
    return text if "E" not in text else encode_default(d)


def _required(model: str, field: str) -> EntityError:
    return EntityError(f"not a valid {model}: {field}: is required, and NULL in this row")


def _data_code(fields: Sequence[tuple[str, int, Callable[[Any], Any] | None, bool]], model: str,
               ns: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The code writing an event's `data`: the NULL checks of required fields (statements), and the items
    of one dict literal reading the values tuple `v`, for one orjson call.

    `fields`: (name, index in the tuple, converter or None, required); converters see non-NULL values and
    are added to `ns`, which holds `_required` and `_dec`."""
    checks: list[str] = []
    items: list[str] = []
    for name, i, conv, required in fields:
        if required:
            checks.append(f"    if v[{i}] is None: raise _required({model!r}, {name!r})")
        if conv is None:
            items.append(f"{name!r}: v[{i}]")
        elif conv is _dec_json:  # inline: plain notation unless str() chose an exponent
            items.append(f"{name!r}: (None if (x := v[{i}]) is None else "
                         f"(t if 'E' not in (t := str(x)) else _dec(x)))")
        else:
            c = f"_c{len(ns)}"
            ns[c] = conv
            items.append(f"{name!r}: (None if (x := v[{i}]) is None else {c}(x))")
    return checks, items


def _differs_function(index: Sequence[int],
                      type_index: int | None) -> Callable[[tuple[Any, ...], tuple[Any, ...]], bool]:
    """Whether two values tuples differ at `index` (or `type_index` is set in the first): generated,
    since an update of a member runs it, and `any()` over a generator cost more than the comparisons."""
    terms = [f"a[{i}] != b[{i}]" for i in index] + ([f"a[{type_index}] is not None"] if type_index is not None else [])
    ns: dict[str, Any] = {}
    exec(f"def differs(a, b):\n    return bool({' or '.join(terms) or 'False'})\n", ns)
    fn: Callable[[tuple[Any, ...], tuple[Any, ...]], bool] = ns["differs"]
    return fn


class SqlMapper:
    """A compiled mapping bound to its source topic, business key and event naming."""

    def __init__(self, compiled: CompiledMapping, *, topic: str, name: str, entity: type[Entity] | None = None,
                 key: Sequence[str] | None = None, connector: str = "") -> None:
        self.compiled = compiled
        self.topic = topic
        self.topics = frozenset((topic,))
        self.entity = entity
        self.name = entity.entity_name() if entity is not None else name
        self.connector = connector
        names = compiled.names
        self._names = names
        self._type_index = names.index(TYPE_FIELD) if TYPE_FIELD in names else None
        key_names = tuple(key) if key else (next(n for n in names if n != TYPE_FIELD),)
        self.key_names = key_names
        self._key_index = tuple(names.index(k) for k in key_names)
        self._data_index = tuple(i for i, n in enumerate(names) if n != TYPE_FIELD)
        # fields compared to decide whether an update changed the entity
        self._compare_index = tuple(i for i in self._data_index if not compiled.columns[i].reads_old)
        table = compiled.table
        refs = set(compiled.source_columns)
        self._nonkey_refs = tuple(sorted(refs - set(table.key)))
        # An update leaving every column the mapping reads as it was changes nothing: skip evaluating
        # both images (not when old.* or _type could make an event of an unchanged row).
        reads_old = any(c.reads_old for c in compiled.columns)
        cols = compiled.source_columns
        self._unchanged: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None
        if cols and not reads_old and self._type_index is None:
            get = operator.itemgetter(*cols)
            self._unchanged = lambda a, b: bool(get(a) == get(b))
        self._upserted = f"{self.name}.upserted"
        self._deleted = f"{self.name}.deleted"
        self._writer = EventWriter(connector, compiled.fingerprint,
                                   entity.dataschema() if entity is not None else None)
        label = f"{entity.__name__} v{entity.SCHEMA_VERSION}" if entity is not None else ""
        data_index = self._data_index
        if entity is not None:  # the entity's field order, as pydantic writes it
            order = {n: k for k, n in enumerate(entity.model_fields)}
            data_index = tuple(sorted(data_index, key=lambda i: order.get(names[i], len(order))))
        self._records, self._sink_events = self._event_functions(data_index, label)
        self._parse = parser()
        self._differs = _differs_function(self._compare_index, self._type_index)
        self._key_differs = _differs_function(self._key_index, None)

    def _field(self, i: int) -> tuple[str, int, Callable[[Any], Any] | None, bool]:
        name, t = self._names[i], self.compiled.columns[i].type
        if self.entity is not None:
            conv, required = field_converter(self.entity, name, t)
            return name, i, conv, required
        return name, i, (_dec_json if t.kind == "dec" else None), False

    def _event_functions(self, data_index: Sequence[int],
                         label: str) -> tuple[EventFns[JournalRecord], EventFns[SinkEvent]]:
        """The upserted and deleted event of a values tuple: generated functions, made into journal
        records (key: the subject as JSON, value: the CloudEvent) and into `SinkEvent`s.

        Written out for this mapping: the business key (NULL: `MappingRuntimeError`), the NULL checks of
        required entity fields (`EntityError`), the data dict literal, the key as JSON, and the CloudEvent
        by the writer of the event's type (`EventWriter.typed`; a `_type` column goes through `event`).
        Checked in this order, so a row failing two checks always fails the same one. The two kinds
        differ only in the constructor of the result."""
        w = self._writer
        ns: dict[str, Any] = {"_dumps": orjson.dumps, "_opt": orjson.OPT_UTC_Z, "_required": _required,
                              "_dec": _dec_json, "_subject": self._subject, "_event": w.event,
                              "_upserted": self._upserted, "_write_upserted": w.typed(self._upserted, False),
                              "_deleted": self._deleted, "_write_deleted": w.typed(self._deleted, True),
                              "_record": make_journal_record, "_name": self.name, "_sink_event": make_sink_event}
        ki = self._key_index
        if len(ki) == 1:  # the common case: one key field, text or an integer
            subject = (f"    s = v[{ki[0]}]\n    if s.__class__ is not str:\n"
                       "        s = str(s) if s.__class__ is int else _subject(v)\n")
        else:
            subject = "    s = _subject(v)\n"

        def data(fields: Sequence[int]) -> str:
            checks, items = _data_code([self._field(i) for i in fields], label, ns)
            return "".join(c + "\n" for c in checks) + "    data = _dumps({" + ", ".join(items) + "}, option=_opt)\n"

        ti = self._type_index
        up_type, write_up = "_upserted", "_write_upserted(source, op, s, j, data)"
        if ti is not None:  # the row's _type names the event, else it is upserted
            up_type = "t"
            write_up = f"_event(source, op, s, j, (t := _upserted if v[{ti}] is None else v[{ti}]), False, data)"
        bodies = (("upserted", data(data_index), write_up, up_type),
                  ("deleted", data(ki), "_write_deleted(source, op, s, j, data)", "_deleted"))
        # the frozen dataclasses' own __init__ cost a tenth of an event: their fast constructors
        made = (("record", "_record(seq, _name, j, raw)"), ("sink", "_sink_event(seq, i, {type}, s, data, raw, tm)"))
        src = "".join(f"def {kind}_{event}(v, op, source, seq):\n{subject}{body}    j = _dumps(s)\n"
                      f"    i, tm, raw = {write}\n    return {make.format(type=type_)}\n\n"
                      for kind, make in made for event, body, write, type_ in bodies)
        exec(compile(src, f"<events {self.compiled.file}>", "exec"), ns)
        return (ns["record_upserted"], ns["record_deleted"]), (ns["sink_upserted"], ns["sink_deleted"])

    def map(self, record: JournalRecord) -> list[ChangeEvent]:
        """The business events of one journal record (see the module docstring); pure and synchronous."""
        return [ChangeEvent(self.name, r.key, r.value) for r in self.map_batch((record,))]

    def map_batch(self, records: Sequence[JournalRecord]) -> list[JournalRecord]:
        """The business events of a batch, each with the seq of its change (the delivery loop's call)."""
        return self._run(records, self._records)

    def map_events(self, records: Sequence[JournalRecord]) -> list[SinkEvent]:
        """`map_batch` as the delivery engine takes it: each event as a `SinkEvent`, built from its parts."""
        return self._run(records, self._sink_events)

    def close(self) -> None:
        """Nothing to release: a single-table mapping never reads the source."""

    def _run(self, records: Sequence[JournalRecord], fns: EventFns[T]) -> list[T]:
        out: list[T] = []
        append = out.append
        topic = self.topic
        parse = self._parse
        evaluate = self.compiled.evaluate
        upserted = fns[0]
        for r in records:
            value = r.value
            if value is None or r.topic != topic:
                continue
            ev = parse(value)
            op = ev["op"]
            if op == "c" or op == "r":  # the common case inline: inserts and snapshot rows
                after = ev["after"]
                try:
                    vals = None if after is None else evaluate(after, None)
                    if vals is not None:
                        append(upserted(vals, op, ev["source"], r.seq))
                except MappingRuntimeError:
                    raise
                except (ValueError, ArithmeticError, KeyError, TypeError, EntityError) as e:
                    raise self._runtime_error(r, e, None, after) from e
                continue
            out += self._events(r, ev, fns)
        return out

    def _events(self, record: JournalRecord, ev: dict[str, Any], fns: EventFns[T]) -> list[T]:
        before = ev.get("before")
        after = ev.get("after")
        try:
            return self._map(ev["op"], before, after, ev["source"], record.seq, fns)
        except MappingRuntimeError:
            raise
        except (ValueError, ArithmeticError, KeyError, TypeError, EntityError) as e:
            raise self._runtime_error(record, e, before, after) from e

    def _runtime_error(self, record: JournalRecord, e: Exception, before: dict[str, Any] | None,
                       after: dict[str, Any] | None) -> MappingRuntimeError:
        where = self.compiled.explain(after or before or {}, before if after is not None else None) or \
            f"{self.compiled.file}: {e}"
        key = record.key.decode(errors="replace") if record.key else "null"
        return MappingRuntimeError(f"mapping {where} (journal seq {record.seq}, topic {record.topic}, key {key}): "
                                   f"{type(e).__name__}: {e}")

    def _map(self, op: str, before: dict[str, Any] | None, after: dict[str, Any] | None, source: dict[str, Any],
             seq: int, fns: EventFns[T]) -> list[T]:
        evaluate = self.compiled.evaluate
        upserted, deleted = fns
        if op in ("c", "r"):
            if after is None:
                return []
            vals = evaluate(after, None)
            return [] if vals is None else [upserted(vals, op, source, seq)]
        if op == "d":
            if before is None:
                return []
            vals = evaluate(before, None)
            if vals is None:
                if not self._partial(before):
                    return []
                vals = self.compiled.project(before, None)
            return [deleted(vals, op, source, seq)]
        if op != "u" or after is None:
            return []  # truncate: no rows named
        if before is not None and self._unchanged is not None and self._unchanged(after, before):
            return []
        now = evaluate(after, before)
        if before is None:
            if now is not None:
                return [upserted(now, op, source, seq)]
            return [deleted(self.compiled.project(after, None), op, source, seq)]
        was = evaluate(before, None)
        if now is None:
            return [] if was is None else [deleted(was, op, source, seq)]
        if was is None:
            return [upserted(now, op, source, seq)]
        if self._key_differs(now, was):
            return [deleted(was, op, source, seq), upserted(now, op, source, seq)]
        if self._differs(now, was):  # a mapped field changed, or the mapping's _type names the event
            return [upserted(now, op, source, seq)]
        return []

    def _partial(self, before: dict[str, Any]) -> bool:
        """A before image holding only the key (REPLICA IDENTITY DEFAULT): membership is unknown."""
        refs = self._nonkey_refs
        return bool(refs) and all(before.get(c) is None for c in refs)

    def _subject(self, vals: tuple[Any, ...]) -> str:
        parts = [vals[i] for i in self._key_index]
        if any(p is None for p in parts):
            raise MappingRuntimeError(f"mapping {self.compiled.file}: the business key "
                                      f"({', '.join(self.key_names)}) is NULL in this row")
        if len(parts) == 1:
            return _key_text(parts[0])
        return "/".join(_key_text(p) for p in parts)
