"""Debezium envelopes for MySQL/MariaDB rows: `EnvelopeMaker.events_json` (the binlog hot path, rows
already JSON; in C where the extension is built, else its Python twin) gives the same events, byte for
byte, as `events` (rows as dicts), and both keep Debezium's semantics: the envelope's fields and order,
primary-key changes as delete (+ tombstone) and create, tombstones after deletes, keyless tables.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, cast

import orjson
import pytest

from cdc.readers import binlogrows as br
from cdc.readers import mysqlevents
from cdc.readers.binlogrows import JsonPair, JsonRow, MyEncodingModes, RowDecoder
from cdc.readers.mysqlevents import EnvelopeMaker, Origin, Record
from cdc.readers.pgevents import key_function
from tests.unit.test_binlogrows import ORDERS, ORDERS_BIN, image, order

NOW_MS = 1_795_499_832_123
ORIGIN = Origin("erp", "orders", "srv.erp.orders", 1_795_499_832, 1, "0-1-42", "binlog.000003", 4242, 17)
NATIVE = [False, *([True] if br.NATIVE_AVAILABLE else [])]

ROWS: list[dict[str, Any]] = [
    {"id": 1, "name": "plain", "amount": "1.50", "at": 1_700_000_000_000},
    {"id": 2, "name": "quote \" back \\ nl \n ctl \x01 é 😀", "amount": None, "at": None},
    {"id": 3, "name": None, "amount": "-0.01", "at": 0, "geo": {"x": 1.5, "y": -2.0, "wkb": "AQ==", "srid": 0}},
]


Pairs = Sequence[tuple[dict[str, Any] | None, dict[str, Any] | None]]


def as_json(rows: Pairs, op: str,
            pk: list[str]) -> list[JsonRow] | list[JsonPair]:
    """The rows as RowDecoder's *_rows_json methods give them."""
    def key(r: dict[str, Any]) -> bytes | None:
        return orjson.dumps({c: r[c] for c in pk}) if pk else None

    if op == "u":
        out: list[JsonPair] = []
        for b, a in rows:
            assert b is not None and a is not None
            out.append((orjson.dumps(b), orjson.dumps(a), key(b), key(a)))
        return out
    images = [a if op in "cr" else b for b, a in rows]
    return [(orjson.dumps(r), key(r)) for r in images if r is not None]


def both(maker: EnvelopeMaker, o: Origin, op: str, rows: Pairs, pk: list[str], first_row: int = 0) -> list[Record]:
    """events_json's records (C and Python twin), after checking that events gives the same."""
    want = [(e.topic, e.key, e.value)
            for e in maker.events(o, key_function(pk), op, rows, NOW_MS, first_row)]
    js = as_json(rows, op, pk)
    for native in NATIVE:
        twin = EnvelopeMaker(maker.connector, maker.server_name, maker.tombstones, native=native)
        assert twin.events_json(o, op, js, NOW_MS, first_row) == want
        any_sequence = cast("Sequence[JsonRow] | Sequence[JsonPair]", tuple(js))
        assert twin.events_json(o, op, any_sequence, NOW_MS, first_row) == want
    return maker.events_json(o, op, js, NOW_MS, first_row)


@pytest.mark.parametrize("tombstones", [False, True])
@pytest.mark.parametrize("pk", [["id"], ["name", "id"], []], ids=["id", "name+id", "keyless"])
def test_events_json_is_events_byte_for_byte(tombstones: bool, pk: list[str]) -> None:
    maker = EnvelopeMaker("mariadb", "srv", tombstones)
    origins = [ORIGIN, Origin("d\u00e9b", 'ta"ble', "srv.x", 0, 0, None, "binlog.000001", 4, None),
               Origin("erp", "orders", "srv.erp.orders", 1, 2, None, "f", 0, None, snapshot="true")]
    for o, first_row in itertools.product(origins, (0, 7)):
        for op in "crd":
            pairs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = [
                (None, r) if op in "cr" else (r, None) for r in ROWS]
            both(maker, o, op, pairs, pk, first_row)
        # updates: the key unchanged, and changed (the key JSON differs)
        moved = [(r, {**r, "id": r["id"] + 100}) for r in ROWS]
        same = [(r, {**r, "amount": "9.99"}) for r in ROWS]
        both(maker, o, "u", same + moved + same, pk, first_row)
    both(maker, ORIGIN, "c", [], pk)


def test_semantics() -> None:
    """The events themselves: Debezium's envelope; a key change is a delete (+ tombstone) and a create of
    the same row index; a delete is followed by a tombstone; keyless tables have key None and no
    tombstones."""
    maker = EnvelopeMaker("mariadb", "srv", True)
    r1, r2 = ROWS[0], {**ROWS[0], "id": 9}
    (topic, key, value), = both(maker, ORIGIN, "c", [(None, r1)], ["id"])
    assert (topic, key) == ("srv.erp.orders", b'{"id":1}')
    assert value is not None
    env = orjson.loads(value)
    assert list(env) == ["before", "after", "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"]
    assert (env["before"], env["after"], env["op"], env["ts_ms"], env["ts_ns"]) == (
        None, r1, "c", NOW_MS, NOW_MS * 1_000_000)
    assert env["source"] == {"version": env["source"]["version"], "connector": "mariadb", "name": "srv",
                             "ts_ms": 1_795_499_832_000, "snapshot": "false", "db": "erp", "sequence": None,
                             "ts_us": 1_795_499_832_000_000, "ts_ns": 1_795_499_832_000_000_000, "table": "orders",
                             "server_id": 1, "gtid": "0-1-42", "file": "binlog.000003", "pos": 4242, "row": 0,
                             "thread": 17, "query": None}
    moved = both(maker, ORIGIN, "u", [(r1, r1), (r1, r2)], ["id"], first_row=3)
    assert [(k, v and orjson.loads(v)["op"], v and orjson.loads(v)["source"]["row"]) for _, k, v in moved] == [
        (b'{"id":1}', "u", 3), (b'{"id":1}', "d", 4), (b'{"id":1}', None, None), (b'{"id":9}', "c", 4)]
    deleted = both(maker, ORIGIN, "d", [(r1, None)], ["id"])
    assert [(k, v is None) for _, k, v in deleted] == [(b'{"id":1}', False), (b'{"id":1}', True)]
    keyless = both(maker, ORIGIN, "d", [(r1, None)], []) + both(maker, ORIGIN, "u", [(r1, r2)], [])
    assert [(k, v and orjson.loads(v)["op"]) for _, k, v in keyless] == [(None, "d"), (None, "u")]
    quiet = EnvelopeMaker("mysql", "srv", False)
    assert len(both(quiet, ORIGIN, "u", [(r1, r2)], ["id"])) == 2
    assert len(both(quiet, ORIGIN, "d", [(r1, None)], ["id"])) == 1


@pytest.mark.parametrize("native", NATIVE, ids=lambda n: "c" if n else "python")
def test_decoder_json_to_envelopes_matches_the_dict_path(native: bool) -> None:
    """The binlog path end to end: RowDecoder.*_rows_json + events_json against the dict methods + events."""
    maker = EnvelopeMaker("mariadb", "srv", True)
    dec = RowDecoder(ORDERS, ORDERS_BIN, MyEncodingModes(), key=("id",), native=native)
    key = key_function(["id"])
    rows = b"".join(image(order(i, note="ü\"\n" * i)) for i in range(1, 30))
    pairs = b"".join(image(order(i)) + image(order(i + (i % 3 == 0) * 1000, "shipped", None, "x", 5))
                     for i in range(1, 30))
    for op, data in (("c", rows), ("d", rows), ("u", pairs)):
        if op == "u":
            dicts: list[tuple[Any, Any]] = dec.update_rows(data, 0, len(data))
            js: list[JsonRow] | list[JsonPair] = dec.update_rows_json(data, 0, len(data))
        elif op == "c":
            dicts = [(None, r) for r in dec.write_rows(data, 0, len(data))]
            js = dec.write_rows_json(data, 0, len(data))
        else:
            dicts = [(r, None) for r in dec.delete_rows(data, 0, len(data))]
            js = dec.delete_rows_json(data, 0, len(data))
        want = [(e.topic, e.key, e.value) for e in maker.events(ORIGIN, key, op, dicts, NOW_MS)]
        got = maker.events_json(ORIGIN, op, js, NOW_MS)
        assert got == want and len(got) >= len(dicts)



def test_native_envelopes_check_their_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    if br.NATIVE_AVAILABLE:
        maker = EnvelopeMaker("mysql", "srv", False, native=True)
        with pytest.raises(TypeError, match=r"rows of op 'u' are \(bytes, bytes, bytes \| None, bytes \| None\)"):
            maker.events_json(ORIGIN, "u", [(b"{}", b"{}")], NOW_MS)
        with pytest.raises(TypeError, match=r"others \(bytes, bytes \| None\)"):
            maker.events_json(ORIGIN, "c", [(b"{}", "key")], NOW_MS)  # type: ignore[arg-type]
    monkeypatch.setattr(mysqlevents, "_myspeed", None)
    with pytest.raises(ValueError, match=r"the C extension cdc\.readers\._myspeed is not built"):
        EnvelopeMaker("mysql", "srv", False, native=True)
    assert EnvelopeMaker("mysql", "srv", False).events_json(ORIGIN, "c", [(b"{}", None)], NOW_MS)[0][1] is None
