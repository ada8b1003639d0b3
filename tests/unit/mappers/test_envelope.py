"""`EnvelopeParser.parse` gives what `orjson.loads` gives as the mapper reads it (`before`, `after`, `op`,
and `source` reduced to SOURCE_FIELDS), and raises what it raises, over the encoders' events and events
made to mislead it."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from cdc.readers.mysqlevents import EnvelopeMaker, Origin
from cdc.readers.pgevents import TxInfo, assemble, change_parts, key_function
from mappers import envelope
from mappers.cloudevents import SOURCE_FIELDS
from mappers.envelope import EnvelopeParser, parser

needs_c = pytest.mark.skipif(envelope._match is None, reason="C extension not built: every event is parsed in full")

ROW = {"id": 1, "name": 'quote " and \\ é', "op": "d", "source": "x", "n": None}


def pg_events(rnd: random.Random, txs: int = 6) -> list[bytes]:
    """Several transactions of mixed operations (a key change too) from the PostgreSQL encoder."""
    out: list[bytes] = []
    key = key_function(["id"])
    lsn = 1000
    for x in range(txs):
        parts = []
        for i in range(rnd.randint(1, 6)):
            lsn += rnd.choice((1, 8, 991, 10 ** rnd.randint(1, 12)))
            row = {**ROW, "id": i, "name": rnd.choice(("a", ',"source":{"version":"x"}', "\\\"", "é"))}
            op = rnd.choice("cruud")
            before = dict(row, id=i + rnd.randint(0, 1)) if op in "ud" else None
            parts += change_parts(x, op, "t.s.t", "s", "t", key, before, None if op == "d" else row, lsn)
        tx = TxInfo("srv", "erp", x or None, 1706700000123456 + x, None if x % 2 else lsn - 7)
        out += [e.value for e in assemble(parts, tx, 1706700001000 + x) if e.value is not None]
    return out


def my_events() -> list[bytes]:
    maker = EnvelopeMaker("mysql", "srv", True)
    out: list[bytes] = []
    for origin in (Origin("erp", "orders", "srv.erp.orders", 1_795_499_832, 1, "0-1-42", "binlog.000003", 4242, 17),
                   Origin("erp", 'ta"ble', "srv.erp.orders", 1_795_499_833, 1, None, "binlog.000003", 5000, None)):
        rows = [(None, {**ROW, "id": i}) for i in range(12)]
        out += [e.value for e in maker.events(origin, key_function(["id"]), "c", rows, 1_795_499_900_000)
                if e.value is not None]
        updates = [({**ROW, "id": i}, {**ROW, "id": i, "n": 1}) for i in range(3)]
        out += [e.value for e in maker.events(origin, key_function(["id"]), "u", updates, 1_795_499_900_000)
                if e.value is not None]
    return out


def misleading(template: bytes) -> list[bytes]:
    """Events after a template event that match it nearly: other numbers, ops, layouts, nesting, bad JSON."""
    ev = orjson.loads(template)
    src = ev["source"]
    lsn = b"%d" % src.get("lsn", src.get("row"))
    head, _, rest = template.rpartition(b',"source":{')
    rest = b"{" + rest
    numbers = (b"0", b"7", b"07", b"0" * len(lsn), b"0" + lsn[1:], b"-" + lsn[1:], lsn[:-1] + b"x", lsn[:-1] + b".",
               b"-7", b"7.0", b"1e3", b"", b"x", b"99999999999999999999", b"18446744073709551615",
               b"1234567890123456789")
    out = [template.replace(lsn, new) for new in numbers]
    out += [template.replace(b'"op":"c"', b'"op":"%s"' % op) for op in (b"u", b"d", b"t", b"r", b"x", b"cc", b"")]
    out += [head + b',"op":"d","source":null,"source":' + rest,  # duplicate keys before the source block
            head + b',"source":' + rest[:-1] + b',"after":null,"op":"u"}',  # and after it
            head + b',"source":' + rest[:-1] + b',"after":null}',
            b'{"before":null,"source":' + rest[:-1] + b',"after":' + orjson.dumps(ev["after"]) + b"}",
            b'{"before":{"a":1},"source":' + rest[:-1] + b',"after":null}',
            b'{"after":{"a":1},"source":' + rest[:-1] + b',"before":null}',
            b'{"before":null,"after":{"source":{},"x":' + head[1:] + b',"source":' + rest[:-1] + b"}",
            b'{"after":{"a":"' + head.replace(b'"', b'\\"')[1:] + b'"},"before":null,"source":' + rest,
            b'{"before":null,"after":"' + head.replace(b'"', b'\\"') + b'","source":' + rest,
            b'{' + b',"source":' + rest, b'{ ' + b',"source":' + rest, b'[' + b',"source":' + rest,
            head + b' ,"source":' + rest, head + b',"source": ' + rest, head + b',"source":' + rest + b" ",
            head + b',"source":' + rest.replace(b',"ts_us":', b',"ts_us": '),
            head + b',"source":' + rest.replace(b',"db":', b',"ts_us":0,"db":'),
            head + b',"source":' + rest.replace(b'"transaction":null', b'"transaction":{"op":"u"}'),
            head + b',"source":' + rest.replace(b'"transaction":null', b'"transaction":{"source":{}}'),
            head + b',"source":' + rest.replace(b'"transaction":null', b'"source":{"lsn":5}'),
            head + b',"source":' + rest.replace(b',"db":', b',"lsn":5,"db":'),
            head + b',"source":' + rest.replace(b',"db":', b',"x\\"lsn":%s,"db":' % lsn),
            head + b',"source":' + rest.replace(b',"table":', b',"extra":{"lsn":5},"table":'),
            head.replace(b'"before":null', b'"before":{"op":"u","source":{"lsn":1}}') + b',"source":' + rest,
            head[:-1] + b',"source":' + rest, head + b',"source":' + rest[:-1], head + b"}",
            template[: len(template) // 2], b"", b"null", b"[]", b'{"op":"c"}']
    rnd = random.Random(len(template))
    for _ in range(60):  # one byte changed anywhere
        at = rnd.randrange(len(template))
        out.append(template[:at] + bytes([rnd.choice(b'0123456789",:{}[] \\xcu')]) + template[at + 1:])
    return out


def another(number: bytes) -> bytes:
    """Another number as wide."""
    return number[:-1] + (b"8" if number.endswith(b"9") else b"%d" % (number[-1] - 47))


def outcome(fn: Any, value: bytes) -> Any:
    try:
        return fn(value)
    except Exception as e:
        return type(e), str(e)


def check(parser: EnvelopeParser, value: bytes) -> bool:
    """One event through the parser equals orjson's parse; True when the shortcut was taken."""
    expected = outcome(orjson.loads, value)
    got = outcome(parser.parse, value)
    if isinstance(got, dict) and isinstance(expected, dict) and isinstance(expected.get("source"), dict):
        src = expected["source"]
        reduced = {k: src[k] for k in SOURCE_FIELDS if k in src}
        if got["source"] == reduced and reduced != src:
            read = ("before", "after", "op")
            assert {k: got[k] for k in read if k in got} == {k: expected[k] for k in read if k in expected}, value
            return True
    assert repr(got) == repr(expected), value
    return False


@needs_c
def test_encoder_events_parse_as_orjson_parses_them() -> None:
    rnd = random.Random(4)
    parser = EnvelopeParser()
    pg = pg_events(rnd, 40)
    my = my_events()
    fast = sum(check(parser, v) for v in pg + my)
    assert fast > (len(pg) + len(my)) / 2, "the later events of a transaction or rows event take the shortcut"


@needs_c
def test_misleading_events_parse_as_orjson_parses_them() -> None:
    templates = [v for v in pg_events(random.Random(5), 3) + my_events()[:1] if b'"op":"c"' in v]
    assert templates
    fast = 0
    for template in templates:
        parser = EnvelopeParser()
        src = orjson.loads(template)["source"]
        number = b"%d" % src.get("lsn", src.get("row"))
        other = another(number)
        for value in misleading(template):
            check(parser, template)
            fast += check(parser, value)  # and then as the template of its successors
            fast += check(parser, value.replace(number, other))
    assert fast > 0


@needs_c
def test_only_the_number_and_op_fields_themselves_are_cut_out() -> None:
    """A key ending in ``"lsn`` or ``"op`` (escaped) holding the same value is no place of the number or op."""
    (value,) = pg_events(random.Random(6), 1)[:1]
    lsn = b"%d" % orjson.loads(value)["source"]["lsn"]
    fake_lsn = value.replace(b',"db":', b',"x\\"lsn":%s,"db":' % lsn)
    follower = fake_lsn.replace(b'"x\\"lsn":%s,' % lsn, b'"x\\"lsn":%s,' % another(lsn)).replace(
        b'\\"%s\\"]' % lsn, b'\\"%s\\"]' % another(lsn))
    fake_op = value.replace(b'"op":"c",', b'"op":"c","x\\"op":"c",')
    for first, then in ((fake_lsn, follower), (fake_op, fake_op.replace(b'"x\\"op":"c"', b'"x\\"op":"u"'))):
        assert then != first
        parser = EnvelopeParser()
        check(parser, first)
        check(parser, then)


def test_without_the_c_matcher_events_are_parsed_by_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envelope, "_match", None)
    assert parser() is orjson.loads
    p = EnvelopeParser()  # used directly: still orjson's results
    for value in pg_events(random.Random(7), 2):
        assert not check(p, value)


@needs_c
def test_the_c_matcher_refuses_what_is_not_a_template() -> None:
    assert envelope._match is not None
    with pytest.raises(TypeError):
        envelope._match(b"{}", (1, 2))
    with pytest.raises(ValueError, match="not a template"):
        envelope._match(b"{}", (20, 12, 11, -1, -5, ()))
