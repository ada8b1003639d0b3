"""Debezium change events parsed for the mapper, most of the `source` block left unparsed. Pure.

Role: `EnvelopeParser.parse(value)` gives `orjson.loads(value)` as the mapper reads it: `before`, `after`
and `op`, and `source` -- reduced, when not parsed, to the fields `mappers.cloudevents` reads
(`SOURCE_FIELDS`). The 15-to-17-field `source` block is more than half of an event's bytes, and the
events of one PostgreSQL transaction (of one MySQL rows event) differ after `"source":` only in one
number -- the LSN, written twice (`lsn`, and at the end of `sequence`), or the row index (`row`) -- and
the op letter.

So a fully parsed event whose `source` and later top-level fields are flat (no objects or arrays)
becomes a template: orjson's own serialisation of those fields from ``,"source":{`` on (one text for
every op letter), with the places of the number cut out. A later event that ends with a template text
joined by a number as wide (digits, no leading zero) is that text's event with that number, since the
text is an object's last keys, each there once (a key also before it takes the text's value, as in
orjson's parse): only the bytes before, closed with ``}``, are parsed -- which also proves the text
top-level (within `after` they would not close). The comparison is the C fast path's
(`mappers/_mapspeed.c`): in Python it cost what it saved (measured), so without the extension every
event is parsed in full.

Failure story: none of its own. Any other event -- the first of a transaction, another layout, key
order or spacing, a nested value, different bytes anywhere -- is parsed in full (and gives the next
template), so results and errors are `orjson.loads`'s (tests/unit/mappers/test_envelope.py compares
them over the encoders' events and events made to mislead).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from mappers.cloudevents import SOURCE_FIELDS

_match: Callable[[bytes, Any], tuple[int, int, str] | None] | None
try:
    from mappers._mapspeed import match as _c_match

    _match = _c_match
except ImportError:  # the optional C extension was not built: every event parsed in full
    _match = None

__all__ = ["EnvelopeParser", "parser"]

_SOURCE = b',"source":{'
_OPS = {op.encode(): op for op in "crudt"}
_SCALARS = (str, int, float, bool, type(None))

Texts = tuple[str, tuple[bytes, ...]]  # an op, and the template's text for it, to be joined by the number


@dataclass(frozen=True, slots=True)
class _Template:
    # For the C matcher: (size, at, end, zero, op_at, ops) -- the text's length, where the number
    # starts and ends in it, the first digit not allowed ("0" unless it is the only one, else -1), where
    # the op letter is (from the end), and by op letter (its byte value) the op and the text's parts.
    spec: tuple[int, int, int, int, int, tuple[Texts | None, ...]]
    field: str                # the source field holding the number: "lsn" or "row"
    source: dict[str, Any]    # the template event's source, SOURCE_FIELDS only


def _template(value: bytes, ev: Any) -> _Template | None:
    """`value`'s template (see the module docstring), or None when it has none. `ev` is its full parse."""
    source = ev.get("source") if isinstance(ev, dict) else None
    if not isinstance(source, dict):
        return None
    field = "lsn" if "lsn" in source else "row"
    n = source.get(field)
    keys = list(ev)
    tail = {k: ev[k] for k in keys[keys.index("source") + 1:]}  # before and after here would not be parsed
    if n.__class__ is not int or not 0 <= n < 10 ** 19 or tail.get("op") not in _OPS.values() or "before" in tail \
            or "after" in tail or not all(isinstance(x, _SCALARS) for x in (*source.values(), *tail.values())):
        return None
    rest = _SOURCE + orjson.dumps(source)[1:] + b"," + orjson.dumps(tail)[1:]
    if not value.endswith(rest):  # another layout: it would match no event (a matter of speed only)
        return None
    number = b"%d" % n
    # The number's places: the field's value (a flat object of orjson's: `"lsn":` is that key, there once)
    # and, in PostgreSQL, the end of `sequence` (["<last commit LSN>","<LSN>"]), inside the string.
    at = rest.find(b'"%s":%s' % (field.encode(), number))
    if rest[at - 1:at] != b"," or rest[at + len(field) + 3 + len(number):][:1] not in (b",", b"}"):
        return None
    cuts = [at + len(field) + 3]
    sequence = source.get("sequence")
    seq_json = b'"sequence":' + orjson.dumps(sequence)
    if isinstance(sequence, str) and seq_json.endswith(b'\\"%s\\"]"' % number):
        cuts.append(rest.find(seq_json) + len(seq_json) - len(number) - 4)
    op_at = rest.rfind(b'"op":"') + 6  # the op letter (the same reasoning as for "lsn")
    if rest[op_at - 7:op_at - 6] != b",":
        return None
    cuts.sort()
    parts: list[bytes] = []
    start = 0
    for cut in cuts:
        parts.append(rest[start:cut])
        start = cut + len(number)
    last, suffix = rest[start:op_at], rest[op_at + 1:]
    ops = tuple((chr(b), (*parts, last + bytes((b,)) + suffix)) if bytes((b,)) in _OPS else None for b in range(256))
    return _Template((len(rest), cuts[0], cuts[0] + len(number), 48 if len(number) > 1 else -1, op_at - len(rest), ops),
                     field, {k: source[k] for k in SOURCE_FIELDS if k in source})


class EnvelopeParser:
    """Parses the change events of one source table, remembering the last template."""

    __slots__ = ("_template",)

    def __init__(self) -> None:
        self._template: _Template | None = None

    def parse(self, value: bytes) -> Any:
        """`orjson.loads(value)`, or its `before`, `after`, `op` and reduced `source` when a template matched."""
        t = self._template
        if t is not None and _match is not None and (m := _match(value, t.spec)) is not None:
            cut, number, op = m
            try:
                ev = orjson.loads(value[:cut] + b"}")
            except orjson.JSONDecodeError:
                ev = None  # not top-level (or no JSON): the full parse tells
            if ev:  # not {}: `{,"source":` is no JSON
                source = t.source.copy()
                source[t.field] = number
                ev["source"] = source
                ev["op"] = op
                return ev
        ev = orjson.loads(value)
        self._template = _template(value, ev)
        return ev


def parser() -> Callable[[bytes], Any]:
    """A parse function for the change events of one source table: `EnvelopeParser(...).parse` where the C
    matcher is built, else `orjson.loads`."""
    return orjson.loads if _match is None else EnvelopeParser().parse
