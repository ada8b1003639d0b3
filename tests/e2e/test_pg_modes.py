"""snapshot.mode, TRUNCATE, replica identity, filters, SIGTERM and start-up failures, end to end.

Real PostgreSQL 15 (tests/conftest.py) and real `cdc` processes writing a FileStreamSink file; where the
file can be compared with the source, it is replayed by key (harness.replay) and compared with what the
table holds (harness.table_state).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.harness import (
    Bridge,
    cdc_cmd,
    env,
    execute,
    journal_records,
    read_events,
    replay,
    run_cdc,
    run_to_end,
    slot_names,
    table_state,
    wait_until,
    write_connectors,
)
from tests.servers.postgres import PgServer

ITEM_COLS = ["id", "name", "qty"]


def dbname(dsn: str) -> str:
    return dsn.rsplit("dbname=", 1)[1]


def make_items(dsn: str, n: int = 5) -> None:
    execute(dsn, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int)",
            f"INSERT INTO items SELECT g, 'item ' || g, g * 10 FROM generate_series(1, {n}) g")


def change_items(dsn: str, base: int) -> None:
    """An insert, an update and a delete, each its own transaction."""
    execute(dsn, f"INSERT INTO items VALUES ({base}, 'new {base}', {base})",
            "UPDATE items SET qty = qty + 1, name = name || '+' WHERE id = (SELECT min(id) FROM items)",
            f"DELETE FROM items WHERE id = (SELECT max(id) FROM items WHERE id < {base})")


def items_replayed(events: list[dict[str, Any]]) -> dict[tuple[str, ...], dict[str, Any]]:
    got = replay(events, {"items": ["id"]}).get("items", {})
    return {tuple(str(k) for k in key): {c: None if v is None else str(v) for c, v in row.items()}
            for key, row in got.items()}


def items_in_db(dsn: str) -> Any:
    return table_state(dsn, "items", ["id"], ITEM_COLS)


def ops(events: list[dict[str, Any]]) -> list[str]:
    return [e["op"] for e in events]


# ---------------------------------------------------------------------------------- snapshot.mode


def test_initial_snapshots_once_then_streams(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    make_items(pg_db)
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "m_initial")
    out, data = tmp_path / "out" / "m_initial.jsonl", tmp_path / "data"
    run_to_end(files, data)
    first = read_events(out)
    assert ops(first) == ["r"] * 5
    assert all(e["source"]["snapshot"] in ("true", "last", "first") for e in first)
    assert items_replayed(first) == items_in_db(pg_db)
    change_items(pg_db, 100)
    run_to_end(files, data)
    events = read_events(out)
    assert ops(events[5:]) == ["c", "u", "d"], "streamed only: no second snapshot"
    assert items_replayed(events) == items_in_db(pg_db)
    run_to_end(files, data)
    assert len(read_events(out)) == len(events), "nothing new, nothing again"


@pytest.mark.parametrize("mode", ["no_data", "never"])
def test_no_data_streams_from_slot_creation(pg_server: PgServer, pg_db: str, tmp_path: Path, mode: str) -> None:
    make_items(pg_db)
    name = f"m_{mode}"
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), name, snapshot=mode)
    out, data = tmp_path / "out" / f"{name}.jsonl", tmp_path / "data"
    run_to_end(files, data)
    assert read_events(out) == [], "no snapshot"
    assert slot_names(pg_db) == [f"slot_{name}"]
    change_items(pg_db, 100)
    run_to_end(files, data)
    events = read_events(out)
    assert ops(events) == ["c", "u", "d"]
    assert events[0]["after"] == {"id": 100, "name": "new 100", "qty": 100}
    assert events[1]["after"] == {"id": 1, "name": "item 1+", "qty": 11}
    assert events[2]["before"]["id"] == 5
    # No snapshot: the replay holds exactly the rows changed since the slot was created.
    assert items_replayed(events) == {k: v for k, v in items_in_db(pg_db).items() if k in {("1",), ("100",)}}


def test_initial_only_with_stop_at_end(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    make_items(pg_db)
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "m_only", snapshot="initial_only")
    out, data = tmp_path / "out" / "m_only.jsonl", tmp_path / "data"
    run_to_end(files, data)
    events = read_events(out)
    assert ops(events) == ["r"] * 5
    assert items_replayed(events) == items_in_db(pg_db)
    assert slot_names(pg_db) == [], "a snapshot-only connector leaves no slot pinning WAL"
    change_items(pg_db, 100)
    run_to_end(files, data)
    assert read_events(out) == events, "initial_only never streams and never snapshots again"
    assert slot_names(pg_db) == []


def test_initial_only_without_stop_at_end_exits_0(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    make_items(pg_db, 40)
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "m_only2", snapshot="initial_only")
    out = tmp_path / "out" / "m_only2.jsonl"
    p = subprocess.run(cdc_cmd(files, tmp_path / "data"), env=env(), capture_output=True, text=True,
                       timeout=60, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    events = read_events(out)
    assert ops(events) == ["r"] * 40, "the snapshot is delivered in full before the process exits"
    assert items_replayed(events) == items_in_db(pg_db)


def test_when_needed_resnapshots_after_slot_loss(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    make_items(pg_db)
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "m_needed", snapshot="when_needed")
    out, data = tmp_path / "out" / "m_needed.jsonl", tmp_path / "data"
    run_to_end(files, data)
    assert ops(read_events(out)) == ["r"] * 5
    change_items(pg_db, 100)
    run_to_end(files, data)
    assert ops(read_events(out))[5:] == ["c", "u", "d"], "an offset and its slot: stream, no snapshot"
    # An operator drops the slot; changes made meanwhile are not in any slot.
    execute(pg_db, "SELECT pg_drop_replication_slot('slot_m_needed')")
    change_items(pg_db, 200)
    run_to_end(files, data)
    events = read_events(out)
    resnap = events[8:]
    assert ops(resnap) == ["r"] * len(resnap) and len(resnap) == 5, "snapshots again instead of failing"
    assert items_replayed(resnap) == items_in_db(pg_db)
    assert slot_names(pg_db) == ["slot_m_needed"]
    change_items(pg_db, 300)
    run_to_end(files, data)
    events = read_events(out)
    assert ops(events[13:]) == ["c", "u", "d"], "streams from the new slot afterwards"
    assert items_replayed(events[8:]) == items_in_db(pg_db)


def test_always_snapshots_on_every_start(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    make_items(pg_db)
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "m_always", snapshot="always")
    out, data = tmp_path / "out" / "m_always.jsonl", tmp_path / "data"
    run_to_end(files, data)
    assert ops(read_events(out)) == ["r"] * 5
    change_items(pg_db, 100)     # 5 rows again after: +1 -1
    # Second start, left running: a full snapshot again, then streaming.
    with Bridge(files, data, tmp_path / "always.log") as bridge:
        bridge.wait_lines(out, 10)
        events = read_events(out)
        assert ops(events[5:10]) == ["r"] * 5
        assert items_replayed(events[5:10]) == items_in_db(pg_db)
        change_items(pg_db, 200)
        bridge.wait_lines(out, 16)
        assert bridge.stop() == 0
    events = read_events(out)
    # Streaming resumes where the slot stood, before the snapshot: the changes made between the runs
    # come again after it (already in the snapshot, harmless to replay), then the new ones. Nothing,
    # not even a delete made while the bridge was down, can be missed that way.
    assert ops(events[10:]) == ["c", "u", "d"] * 2
    assert items_replayed(events[5:]) == items_in_db(pg_db)
    assert items_replayed(events) == items_in_db(pg_db)
    run_to_end(files, data)
    events = read_events(out)
    assert ops(events[16:21]) == ["r"] * 5
    assert items_replayed(events[16:]) == items_in_db(pg_db)
    assert slot_names(pg_db) == ["slot_m_always"]


# ---------------------------------------------------------------------------------- TRUNCATE


def test_truncate_event_only_when_not_skipped(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    make_items(pg_db, 3)
    db = dbname(pg_db)
    files = (write_connectors(tmp_path, pg_server, db, "t_none", snapshot="no_data")
             + write_connectors(tmp_path, pg_server, db, "t_dflt", snapshot="no_data",
                                omit=["skipped.operations"]))
    data = tmp_path / "data"
    run_to_end(files, data)
    execute(pg_db, "INSERT INTO items VALUES (10, 'x', 1)", "TRUNCATE items",
            "INSERT INTO items VALUES (11, 'y', 2)")
    run_to_end(files, data)
    with_t = read_events(tmp_path / "out" / "t_none.jsonl")
    assert ops(with_t) == ["c", "t", "c"]
    t = with_t[1]
    assert t["before"] is None and t["after"] is None
    assert t["source"]["table"] == "items" and t["source"]["schema"] == "public"
    records = [r for r in journal_records(data, "t_none\\..*") if r.value is not None]
    assert [json.loads(r.value or b"")["op"] for r in records] == ["c", "t", "c"]
    assert records[1].key is None, "a truncate has no key"
    assert items_replayed(with_t) == items_in_db(pg_db)
    default = read_events(tmp_path / "out" / "t_dflt.jsonl")
    assert ops(default) == ["c", "c"], "skipped.operations defaults to t: no truncate event"


# ---------------------------------------------------------------------------------- replica identity


def test_replica_identities(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    execute(pg_db,
            "CREATE TABLE ri_default (id int PRIMARY KEY, a text, b int)",
            "CREATE TABLE ri_full (id int PRIMARY KEY, a text, b int)",
            "ALTER TABLE ri_full REPLICA IDENTITY FULL",
            "CREATE TABLE ri_index (code text NOT NULL, a text, b int)",
            "CREATE UNIQUE INDEX ri_index_code ON ri_index (code)",
            "ALTER TABLE ri_index REPLICA IDENTITY USING INDEX ri_index_code",
            "CREATE TABLE ri_nothing (a text, b int)",
            "ALTER TABLE ri_nothing REPLICA IDENTITY NOTHING")
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "ri", snapshot="no_data")
    data = tmp_path / "data"
    run_to_end(files, data)
    for t in ("ri_default", "ri_full"):
        execute(pg_db, f"INSERT INTO {t} VALUES (1, 'one', 1)", f"UPDATE {t} SET b = 2 WHERE id = 1",
                f"DELETE FROM {t} WHERE id = 1")
    execute(pg_db, "INSERT INTO ri_index VALUES ('k1', 'one', 1)", "UPDATE ri_index SET b = 2",
            "UPDATE ri_index SET code = 'k2'", "DELETE FROM ri_index")
    execute(pg_db, "INSERT INTO ri_nothing VALUES ('one', 1)")
    with psycopg.connect(pg_db, autocommit=True) as conn, \
            pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("UPDATE ri_nothing SET b = 2")   # the server refuses: nothing identifies the old row
    run_to_end(files, data)
    events = read_events(tmp_path / "out" / "ri.jsonl")
    by_table: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_table.setdefault(e["source"]["table"], []).append(e)
    keys = {json.loads(r.value or b"")["source"]["table"]: r.key for r in journal_records(data)
            if r.value is not None}

    c, u, d = by_table["ri_default"]
    assert (c["op"], u["op"], d["op"]) == ("c", "u", "d")
    assert u["before"] is None and u["after"] == {"id": 1, "a": "one", "b": 2}
    assert d["before"] == {"id": 1, "a": None, "b": None} and d["after"] is None, "only the key is known"

    c, u, d = by_table["ri_full"]
    assert u["before"] == {"id": 1, "a": "one", "b": 1} and u["after"] == {"id": 1, "a": "one", "b": 2}
    assert d["before"] == {"id": 1, "a": "one", "b": 2}

    # USING INDEX (no primary key): `before` carries the index columns only, and only when they are
    # sent (an update that changes them, every delete); the event key is null as for any table
    # without a primary key (Debezium's key is the primary key).
    c, u1, u2, d = by_table["ri_index"]
    assert [e["op"] for e in (c, u1, u2, d)] == ["c", "u", "u", "d"]
    assert u1["before"] is None and u1["after"] == {"code": "k1", "a": "one", "b": 2}
    assert u2["before"] == {"code": "k1", "a": None, "b": None} and u2["after"]["code"] == "k2"
    assert d["before"] == {"code": "k2", "a": None, "b": None}
    assert keys["ri_index"] is None

    (ins,) = by_table["ri_nothing"]
    assert ins["op"] == "c" and ins["after"] == {"a": "one", "b": 1}
    assert keys["ri_nothing"] is None
    assert json.loads(keys["ri_full"] or b"") == {"id": 1}

    files_v = write_connectors(tmp_path, pg_server, dbname(pg_db), "ri_v", tables="public\\.ri_nothing")
    p = run_cdc(["validate", str(files_v[0])])
    assert p.returncode == 0, p.stderr
    assert "warning" in p.stderr and "public.ri_nothing" in p.stderr and "REPLICA IDENTITY" in p.stderr


# ---------------------------------------------------------------------------------- filters


def test_column_table_and_schema_filters(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    execute(pg_db, "CREATE SCHEMA erp", "CREATE SCHEMA other",
            "CREATE TABLE erp.cust (tenant int, id int, name text, secret text, PRIMARY KEY (tenant, id))",
            "CREATE TABLE erp.scratch (id int PRIMARY KEY)",
            "CREATE TABLE other.cust (id int PRIMARY KEY, name text)",
            "CREATE TABLE public.cust (id int PRIMARY KEY, name text)",
            "INSERT INTO erp.cust VALUES (1, 1, 'a', 's1')", "INSERT INTO erp.scratch VALUES (1)",
            "INSERT INTO other.cust VALUES (1, 'o')", "INSERT INTO public.cust VALUES (1, 'p')")
    db = dbname(pg_db)
    files = (write_connectors(tmp_path, pg_server, db, "f_cols", tables="erp\\.cust",
                              extra={"column.exclude.list": "erp\\.cust\\.secret,erp\\.cust\\.tenant"})
             + write_connectors(tmp_path, pg_server, db, "f_schema", omit=["table.include.list"],
                                extra={"schema.include.list": "erp", "table.exclude.list": "erp\\.scratch"}))
    data = tmp_path / "data"
    run_to_end(files, data)
    execute(pg_db, "UPDATE erp.cust SET name = 'b', secret = 's2'", "DELETE FROM erp.cust",
            "INSERT INTO erp.scratch VALUES (2)", "INSERT INTO other.cust VALUES (2, 'o')",
            "INSERT INTO public.cust VALUES (2, 'p')")
    run_to_end(files, data)
    cols = read_events(tmp_path / "out" / "f_cols.jsonl")
    assert ops(cols) == ["r", "u", "d"]
    for e in cols:
        for image in (e["before"], e["after"]):
            assert image is None or set(image) == {"id", "name"}
    assert cols[1]["after"] == {"id": 1, "name": "b"}
    f_cols_records = [r for r in journal_records(data, "f_cols\\..*") if r.value is not None]
    assert {json.loads(r.key or b"null") is not None and tuple(json.loads(r.key or b"")) for r in f_cols_records} \
        == {("id",)}, "an excluded primary-key column leaves the key too"
    schema = read_events(tmp_path / "out" / "f_schema.jsonl")
    assert {(e["source"]["schema"], e["source"]["table"]) for e in schema} == {("erp", "cust")}
    assert ops(schema) == ["r", "u", "d"]
    assert schema[1]["after"] == {"tenant": 1, "id": 1, "name": "b", "secret": "s2"}
    topics = {r.topic for r in journal_records(data)}
    assert topics == {"f_cols.erp.cust", "f_schema.erp.cust"}


# ---------------------------------------------------------------------------------- SIGTERM


def journaled_values(data: Path) -> list[dict[str, Any]]:
    """Event values in the journal (tombstones, which the file sink does not write, left out)."""
    return [json.loads(r.value) for r in journal_records(data) if r.value is not None]


def test_sigterm_drains_and_the_next_run_continues(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    make_items(pg_db, 20)
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "sig")
    out, data = tmp_path / "out" / "sig.jsonl", tmp_path / "data"
    with Bridge(files, data, tmp_path / "sig.log") as bridge:
        bridge.wait_lines(out, 20)
        for i in range(30):
            change_items(pg_db, 1000 + i)
        # Signal once the journal holds part of the load: what it holds then must reach the file.
        bridge.wait_for(lambda: len(journaled_values(data)) >= 40, "40 journaled events")
        journaled = len(journaled_values(data))
        assert bridge.stop(timeout=15) == 0, bridge.output()[-3000:]
    first = read_events(out)
    assert len(first) >= journaled, "everything journaled before the signal is delivered"
    assert journaled_values(data)[:len(first)] == first
    for i in range(5):
        change_items(pg_db, 2000 + i)
    run_to_end(files, data)
    events = read_events(out)
    assert events[:len(first)] == first
    assert ops(events[20:]).count("c") == 35 and ops(events[20:]).count("r") == 0
    streamed = [e for e in events if e["op"] != "r"]
    lsns = [int(e["source"]["lsn"]) for e in streamed]
    assert lsns == sorted(lsns), "commit order kept across the restart"
    assert items_replayed(events) == items_in_db(pg_db), "no gap"


# ---------------------------------------------------------------------------------- start-up failures


def test_slot_in_use_by_another_process(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    make_items(pg_db, 2)
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "busy", snapshot="no_data")
    run_to_end(files, tmp_path / "data")
    # Another process streams from the slot (a second bridge with its own data dir, say).
    other = psycopg.connect(pg_db + " replication=database", autocommit=True)
    try:
        other.pgconn.send_query(b"START_REPLICATION SLOT slot_busy LOGICAL 0/0 "
                                b"(proto_version '1', publication_names 'pub_busy')")
        wait_until(lambda: _slot_active(pg_db, "slot_busy"), "the slot to be active")
        p = run_cdc(["run", "--stop-at-end", "--data-dir", str(tmp_path / "data2"), *map(str, files)], timeout=60)
    finally:
        other.pgconn.finish()
    assert p.returncode == 1, p.stderr[-3000:]
    msg = " ".join(p.stderr.split())
    assert "slot_busy" in msg and "in use" in msg and "Traceback" not in p.stderr
    assert "slot.name" in msg, "says what to do"


def _slot_active(dsn: str, slot: str) -> bool:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
    return bool(row and row[0])


def test_missing_publication_when_autocreate_disabled(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    make_items(pg_db, 2)
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "nopub",
                             extra={"publication.autocreate.mode": "disabled"})
    p = run_cdc(["run", "--stop-at-end", "--data-dir", str(tmp_path / "data"), *map(str, files)], timeout=60)
    assert p.returncode == 1, p.stderr[-3000:]
    msg = " ".join(p.stderr.split())
    assert "publication 'pub_nopub' does not exist" in msg and "CREATE PUBLICATION" in msg
    assert "Traceback" not in p.stderr
    assert slot_names(pg_db) == [], "nothing created on the server"
    execute(pg_db, "CREATE PUBLICATION pub_nopub FOR TABLE items")
    run_to_end(files, tmp_path / "data")
    assert ops(read_events(tmp_path / "out" / "nopub.jsonl")) == ["r", "r"]


def test_when_needed_does_not_resnapshot_after_idle_confirms(pg_server: PgServer, pg_db: str,
                                                             tmp_path: Path) -> None:
    """WAL of other databases moves the slot on while nothing of ours is in flight (so the server can
    recycle it): the slot is then ahead of the stored offset, which is no reason to snapshot again."""
    make_items(pg_db)
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "m_idle", snapshot="when_needed")
    out, data = tmp_path / "out" / "m_idle.jsonl", tmp_path / "data"
    run_to_end(files, data)
    other = pg_server.create_database()
    try:
        execute(pg_server.dsn(other), "CREATE TABLE noise (v int)",
                "INSERT INTO noise SELECT generate_series(1, 1000)")
        run_to_end(files, data)
    finally:
        pg_server.drop_database(other)
    change_items(pg_db, 100)
    run_to_end(files, data)
    events = read_events(out)
    assert ops(events) == ["r"] * 5 + ["c", "u", "d"]
    assert items_replayed(events) == items_in_db(pg_db)
