"""Envelope assembly: Debezium's shape, PK changes, tombstones, source block."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cdc.readers.pgevents import TxInfo, assemble, change_parts, key_function

ID = key_function(["id"])

TX = TxInfo(server_name="erp", db="erpdb", xid=2337, commit_time_us=1_795_499_801_193_934,
            last_commit_lsn=401888000, tombstones=True)


def test_insert_envelope_matches_debezium_shape() -> None:
    parts = change_parts(2337, "c", "erp.public.orders", "public", "orders", ID, None,
                         {"id": 1, "note": 'a "q"'}, 401888952)
    [ev] = list(assemble(parts, TX, now_ms=1_795_499_807_758))
    assert ev.topic == "erp.public.orders"
    assert ev.key is not None and orjson.loads(ev.key) == {"id": 1}
    assert ev.value is not None
    v = orjson.loads(ev.value)
    assert list(v) == ["before", "after", "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"]
    assert v["before"] is None and v["after"] == {"id": 1, "note": 'a "q"'} and v["op"] == "c"
    assert v["ts_ms"] == 1_795_499_807_758
    src = v["source"]
    assert src["connector"] == "postgresql" and src["name"] == "erp" and src["db"] == "erpdb"
    assert src["ts_ms"] == 1_795_499_801_193 and src["ts_us"] == 1_795_499_801_193_934
    assert src["snapshot"] == "false" and src["schema"] == "public" and src["table"] == "orders"
    assert src["txId"] == 2337 and src["lsn"] == 401888952
    assert src["sequence"] == '["401888000","401888952"]'
    assert orjson.loads(src["sequence"]) == ["401888000", "401888952"]


def test_first_sequence_is_null_and_snapshot_has_no_xid() -> None:
    tx = TxInfo(server_name="erp", db="d", xid=None, commit_time_us=0, last_commit_lsn=None, snapshot="true")
    [ev] = list(assemble(change_parts(0, "r", "t", "s", "x", None, None, {"a": 1}, 5), tx, 0))
    assert ev.key is None and ev.value is not None
    src = orjson.loads(ev.value)["source"]
    assert src["sequence"] == '[null,"5"]' and src["txId"] is None and src["snapshot"] == "true"


def test_primary_key_change_is_delete_tombstone_create() -> None:
    parts = change_parts(1, "u", "t", "s", "x", ID, {"id": 1, "a": "x"}, {"id": 2, "a": "x"}, 9)
    evs = list(assemble(parts, TX, 0))
    assert [(orjson.loads(e.key or b"null"), e.value and orjson.loads(e.value)["op"]) for e in evs] == [
        ({"id": 1}, "d"), ({"id": 1}, None), ({"id": 2}, "c")]


def test_update_without_pk_change_and_delete_tombstone_off() -> None:
    tx = TxInfo(server_name="erp", db="d", xid=1, commit_time_us=0, last_commit_lsn=None, tombstones=False)
    parts = change_parts(1, "u", "t", "s", "x", ID, {"id": 1, "a": "x"}, {"id": 1, "a": "y"}, 9)
    parts += change_parts(1, "d", "t", "s", "x", ID, {"id": 1, "a": None}, None, 10)
    evs = list(assemble(parts, tx, 0))
    assert [orjson.loads(e.value or b"null")["op"] for e in evs] == ["u", "d"]
    assert orjson.loads(evs[1].value or b"null")["before"] == {"id": 1, "a": None}


def test_replication_options_by_server_version() -> None:
    from cdc.readers.postgres import replication_options

    assert replication_options('my"pub', 150004) == (
        "proto_version '2', streaming 'on', publication_names '\"my\"\"pub\"', messages 'true'")
    assert replication_options("p", 130010) == "proto_version '1', publication_names '\"p\"'"


def test_assemble_batch_c_and_python_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    from cdc.readers import pgevents

    try:
        from cdc.readers._pgspeed import assemble_batch as c_assemble
    except ImportError:  # pragma: no cover - the extension is optional
        pytest.skip("C extension not built: the Python twin is in use")
    rows: list[pgevents.Parts] = []
    cases: list[tuple[Any, Any, Any]] = [
        ({"id": 1}, None, {"id": 1, "note": 'a "q" \u00e9'}),       # dict rows (snapshot, TOAST-filled)
        (b'{"id":2}', None, b'{"id":2,"note":"x"}'),                  # the encoder's JSON rows
        (b'{"id":3}', b'{"id":3}', b'{"id":3,"n":1}'),
        (None, {"a": None}, None),                                   # no primary key
    ]
    for i, (key, before, after) in enumerate(cases):
        for op in ("c", "u", "d", "r", "t"):
            table = "orders" if i % 2 else "lines"
            rows.append((7, op, f"erp.public.{table}", "public", table, key, before, after, 2**40 + i))
    for tombstones in (True, False):
        for tx in (TX, TxInfo(server_name="e", db="d", xid=None, commit_time_us=0, last_commit_lsn=None,
                              snapshot="true", tombstones=tombstones)):
            made = list(assemble(rows, tx, 1))  # C
            with monkeypatch.context() as m:
                m.setattr(pgevents, "assemble_batch", pgevents.assemble_batch_py)
                assert list(assemble(rows, tx, 1)) == made
            names: dict[tuple[str, str], bytes] = {}
            counts: dict[tuple[str, str], int] = {("erp.public.lines", "c"): 5}
            py_counts = dict(counts)
            ctx: pgevents.AssembleCtx = (
                b'{"h":"', b'\\"]"', {op: b',"op":"%b"}' % op.encode() for op in "crudt"}, names,
                lambda s, t: b'"%b","table":"%b"' % (s.encode(), t.encode()), orjson.dumps, tombstones,
                pgevents._EVENT, counts)
            got = c_assemble(rows, ctx)
            assert got == pgevents.assemble_batch_py(rows, (*ctx[:8], py_counts))
            assert names.keys() == {("public", "orders"), ("public", "lines")}
            assert counts == py_counts and counts[("erp.public.lines", "c")] == 5 + 2
            assert sum(counts.values()) == 5 + len(rows)  # tombstones are not counted
            assert all(type(e) is type(made[0]) for e in got)
            assert len(got) == len(rows) + (sum(1 for r in rows if r[1] == "d" and r[5] is not None)
                                            if tombstones else 0)
    bad: list[pgevents.Parts] = [(7, "x", "t", "s", "x", None, None, None, 1)]
    with pytest.raises(ValueError, match="unknown op"):
        c_assemble(bad, ctx)
    with pytest.raises(TypeError):
        c_assemble([(1, 2)], ctx)  # type: ignore[list-item]


def test_same_shape_as_events_debezium_emitted() -> None:
    """Contract: our value and key carry exactly the fields, in the order, of real Debezium 3.6 events
    (fixtures captured by ../shared/bench/debezium from the same workload, schemas enabled)."""
    import json
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures"
    sample = json.loads((fixtures / "debezium-sample-pg.json").read_text())
    keys = json.loads((fixtures / "debezium-sample-pg-keys.json").read_text())
    id_key = key_function(["id"])
    tx = TxInfo(server_name="bench", db="bench", xid=2337, commit_time_us=1_795_499_801_193_934,
                last_commit_lsn=None)
    ours = {
        "insert": change_parts(2337, "c", "bench.public.orders", "public", "orders", id_key, None,
                               {"id": 1, "note": "x"}, 401888952),
        "update": change_parts(2337, "u", "bench.public.orders", "public", "orders", id_key, None,
                               {"id": 4, "note": "y"}, 401888960),
        "delete": change_parts(2337, "d", "bench.public.orders", "public", "orders", id_key,
                               {"id": 1, "note": None}, None, 401888970),
    }
    for kind, parts in ours.items():
        theirs = json.loads(sample[kind])["payload"] if isinstance(sample[kind], str) else sample[kind]["payload"]
        their_key = json.loads(keys[kind])["payload"] if isinstance(keys[kind], str) else keys[kind]["payload"]
        event = next(iter(assemble(parts, tx, 1_795_499_807_758)))
        value = orjson.loads(event.value or b"null")
        assert list(value) == list(theirs), kind
        assert list(value["source"]) == list(theirs["source"]), kind
        assert value["op"] == theirs["op"] and value["source"]["connector"] == theirs["source"]["connector"]
        assert type(value["source"]["sequence"]) is str and type(value["source"]["lsn"]) is int
        assert orjson.loads(event.key or b"null").keys() == their_key.keys()
