"""The incremental snapshot's pure core: signals, the chunk window's DBLog rule, the resumable context,
progress; and the properties that configure it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cdc.config import BinlogSourceConfig, PostgresSourceConfig, load_connectors
from cdc.errors import ConfigError
from cdc.readers.incremental import (
    ALL_KEYS,
    EXECUTE,
    STOP,
    WINDOW_CLOSE,
    WINDOW_OPEN,
    ChunkWindow,
    IncrementalState,
    InvalidSignal,
    Progress,
    SnapshotContext,
    parse_signal,
    parse_snapshot,
    parse_watermark,
    parse_window_signal,
    select_tables,
    watermark,
    window_signal,
)
from cdc.readers.mysqlschema import ColumnDef
from cdc.readers.mysqlsnapshot import key_condition, key_parameter, key_text

# --- signals ---------------------------------------------------------------------------------------


def test_execute_snapshot_signal_in_debezium_shape() -> None:
    sig = parse_signal("ad-hoc-1", EXECUTE, '{"data-collections": ["public.customers", "public.ord.*"], '
                                            '"type": "incremental"}')
    assert (sig.id, sig.type, sig.collections) == ("ad-hoc-1", EXECUTE, ("public.customers", "public.ord.*"))


@pytest.mark.parametrize("kind", ['"type": "INCREMENTAL", ', ""])
def test_incremental_type_is_case_insensitive_and_the_default(kind: str) -> None:
    assert parse_signal("1", EXECUTE, '{' + kind + '"data-collections": ["a.b"]}').collections == ("a.b",)


@pytest.mark.parametrize("data", [None, "", '{"type": "incremental"}', '{"data-collections": ["public.x"]}'])
def test_stop_snapshot_collections_are_optional(data: str | None) -> None:
    sig = parse_signal("s", STOP, data)
    assert sig.type == STOP and sig.collections in ((), ("public.x",))


@pytest.mark.parametrize(("kind", "data", "message"), [
    ("log", '{"message": "hi"}', "type 'log' is not supported (only execute-snapshot, stop-snapshot)"),
    (EXECUTE, "{not json", "data is not JSON"),
    (EXECUTE, '["public.x"]', "data must be a JSON object"),
    (EXECUTE, '{"data-collections": ["public.x"], "type": "blocking"}', "snapshot type 'blocking' is not supported"),
    (EXECUTE, '{"data-collections": ["public.x"], "additional-conditions": [{"data-collection": "public.x", '
              '"filter": "id > 1"}]}', '"additional-conditions" is not supported'),
    (EXECUTE, '{"type": "incremental"}', 'execute-snapshot needs "data-collections"'),
    (EXECUTE, '{"data-collections": "public.x"}', '"data-collections" must be a list'),
    (EXECUTE, '{"data-collections": [""]}', '"data-collections" must be a list'),
    (EXECUTE, '{"data-collections": ["public.(x"]}', "is not a valid regular expression"),
])
def test_invalid_signals_say_why(kind: str, data: str, message: str) -> None:
    with pytest.raises(InvalidSignal) as info:
        parse_signal("sig-9", kind, data)
    assert str(info.value).startswith("signal 'sig-9': ") and message in str(info.value), str(info.value)


def test_collections_are_names_or_regexes_matched_whole_and_case_insensitively() -> None:
    tables = ["public.customers", "public.orders", "public.order_lines", "sales.orders"]
    assert select_tables(["public.orders"], tables) == (["public.orders"], [])
    assert select_tables(["public\\.order.*", "PUBLIC.CUSTOMERS"], tables) == (
        ["public.orders", "public.order_lines", "public.customers"], [])
    # full match only; each table once, in the signal's order; the patterns naming nothing are reported
    assert select_tables(["orders", ".*\\.orders", "public.orders", "x\\.y"], tables) == (
        ["public.orders", "sales.orders"], ["orders", "x\\.y"])


# --- watermarks and the read snapshot --------------------------------------------------------------


def test_watermarks_round_trip_and_other_messages_are_not_ones() -> None:
    assert parse_watermark(watermark("low", "c1").encode()) == ("low", "c1")
    assert parse_watermark(b"high:abc") == ("high", "abc")
    for other in (b"", b"low:", b"mid:abc", b"abc", b"\xff\xfe"):
        assert parse_watermark(other) is None


def test_snapshot_text_to_stream_xids() -> None:
    assert parse_snapshot("100:105:100,102") == (105, frozenset({100, 102}))
    assert parse_snapshot("7:7:") == (7, frozenset())
    # pg_current_snapshot() counts epochs; the stream's xids are 32-bit
    assert parse_snapshot(f"{(1 << 32) + 5}:{(1 << 32) + 9}:{(1 << 32) + 6}") == (9, frozenset({6}))
    with pytest.raises(ValueError, match="not a pg_snapshot"):
        parse_snapshot("garbage")


# --- the chunk window ------------------------------------------------------------------------------


def window(xmax: int = 105, in_progress: frozenset[int] = frozenset({100, 102})) -> ChunkWindow:
    rows: dict[bytes, Any] = {b'{"id":%d}' % i: {"id": i} for i in range(1, 6)}
    return ChunkWindow("c1", "public.t", rows, ("5",), 5, False, xmax, in_progress)


def test_visibility_follows_the_read_snapshot() -> None:
    w = window()
    assert w.visible(99) and w.visible(101) and w.visible(104)
    assert not w.visible(100) and not w.visible(102) and not w.visible(105) and not w.visible(4000)
    # across xid wraparound: 2^32 - 10 precedes xmax 5
    wrapped = window(xmax=5, in_progress=frozenset())
    assert wrapped.visible((1 << 32) - 10) and not wrapped.visible(6)


def test_before_the_low_watermark_only_changes_the_read_missed_remove_keys() -> None:
    w = window()
    assert w.on_commit(101, [b'{"id":1}']) == 0          # the read saw it: its row is current
    assert w.on_commit(102, [b'{"id":2}']) == 1          # still committing when the read ran
    assert w.on_commit(110, [b'{"id":3}', b'{"id":99}']) == 1   # committed after the read
    assert list(w.rows) == [b'{"id":1}', b'{"id":4}', b'{"id":5}']


def test_after_the_low_watermark_every_change_removes_its_key() -> None:
    w = window()
    w.low_seen = True
    assert w.on_commit(101, [b'{"id":1}', b'{"id":1}']) == 1
    assert w.on_commit(120, [b'{"id":4}']) == 1
    assert list(w.rows) == [b'{"id":2}', b'{"id":3}', b'{"id":5}']
    assert w.last_key == ("5",)   # the next chunk still starts after the last row read


def test_a_truncate_empties_the_chunk() -> None:
    w = window()
    assert w.on_commit(101, [ALL_KEYS]) == 0     # before the low watermark, seen by the read
    assert w.on_commit(200, [b'{"id":1}', ALL_KEYS]) == 5
    assert not w.rows


def test_watermark_rows_of_the_signal_table_round_trip_and_signals_are_not_ones() -> None:
    assert window_signal("low", "c1") == ("c1-open", WINDOW_OPEN)
    assert window_signal("high", "c1") == ("c1-close", WINDOW_CLOSE)
    assert parse_window_signal(*window_signal("low", "c1")) == ("low", "c1")
    assert parse_window_signal(*window_signal("high", "ab-cd")) == ("high", "ab-cd")
    for sig_id, sig_type in (("c1-close", WINDOW_OPEN), ("-open", WINDOW_OPEN), ("c1-open", EXECUTE),
                             ("sig-1", "snapshot-window-closed"), ("", "")):
        assert parse_window_signal(sig_id, sig_type) is None


def test_without_a_read_snapshot_only_changes_after_the_low_watermark_remove_keys() -> None:
    # MySQL/MariaDB commit in binlog order: the read saw every transaction before its open row
    rows: dict[bytes, Any] = {b'{"id":%d}' % i: {"id": i} for i in range(1, 4)}
    w = ChunkWindow("c1", "erp.t", rows, ("3",), 3, True)
    assert w.visible(0) and w.visible(123456)
    assert w.on_commit(0, [b'{"id":1}', ALL_KEYS]) == 0
    w.low_seen = True
    assert w.on_commit(0, [b'{"id":1}', b'{"id":9}']) == 1
    assert list(w.rows) == [b'{"id":2}', b'{"id":3}']


# --- the resumable context -------------------------------------------------------------------------


def test_context_round_trips_through_a_json_offset() -> None:
    ctx = SnapshotContext(("public.a", "public.b")).begin(("10", "x")).advance(("3", "b"), 100)
    offset = json.loads(json.dumps({"lsn": 42, **ctx.to_offset()}))
    assert SnapshotContext.from_offset(offset) == ctx
    assert (ctx.current, ctx.started, ctx.rows, ctx.chunks) == ("public.a", True, 100, 1)


def test_offsets_without_a_snapshot_and_malformed_ones() -> None:
    assert SnapshotContext.from_offset(None) is None
    assert SnapshotContext.from_offset({"lsn": 1, "txId": 2}) is None
    assert SnapshotContext.from_offset({"incremental_snapshot_collections": []}) is None
    with pytest.raises(ValueError, match="incremental_snapshot_primary_key"):
        SnapshotContext.from_offset({"incremental_snapshot_collections": ["a.b"],
                                     "incremental_snapshot_primary_key": [1]})
    with pytest.raises(ValueError, match="incremental_snapshot_collections"):
        SnapshotContext.from_offset({"incremental_snapshot_collections": "a.b"})


def test_a_table_runs_chunk_by_chunk_then_the_next_one() -> None:
    ctx = SnapshotContext(("public.a",)).add(["public.b", "public.a", "public.c", "public.b"])
    assert ctx.tables == ("public.a", "public.b", "public.c") and not ctx.started
    ctx = ctx.begin(("500",)).advance(("100",), 100).advance(None, 0)
    assert (ctx.last_key, ctx.max_key, ctx.rows, ctx.chunks) == (("100",), ("500",), 100, 2)
    nxt = ctx.next_table()
    assert nxt == SnapshotContext(("public.b", "public.c"))
    assert SnapshotContext(("public.c",)).next_table() is None


def test_stopping_tables() -> None:
    ctx = SnapshotContext(("public.a", "public.b", "public.c")).begin(("9",)).advance(("4",), 4)
    kept = ctx.remove(["public.b"])
    assert kept is not None and kept.tables == ("public.a", "public.c") and kept.last_key == ("4",)
    moved = ctx.remove(["public.a"])   # the current table: the next one starts from its beginning
    assert moved == SnapshotContext(("public.b", "public.c"))
    assert ctx.remove(["public.a", "public.b", "public.c"]) is None


def test_progress_per_table() -> None:
    p = Progress()
    p.begin("public.a", 5000)
    p.begin("public.b", 0)            # never analysed: no estimate
    p.add("public.a", 100)
    p.add("public.a", 50)
    assert p.snapshot() == {"public.a": (150, 5000), "public.b": (0, None)}
    p.begin("public.a", 4000, rows=20)  # resumed, or taken again
    assert p.snapshot()["public.a"] == (20, 4000)


# --- the running snapshot --------------------------------------------------------------------------


def captured() -> list[str]:
    return ["erp.a", "erp.b", "erp.nokey"]


def test_state_queues_reads_chunks_and_ends_table_by_table() -> None:
    st = IncrementalState("c", 2)
    st.on_signals([("s1", EXECUTE, '{"data-collections": ["erp[.][ab]", "erp.none"]}'),
                   ("bad", "log", None)], captured)
    assert st.pending == ("erp.a", "erp.b") and st.offset()["incremental_snapshot_collections"] == ["erp.a", "erp.b"]
    st.begin(("3",), 3)
    st.window = ChunkWindow("k1", "erp.a", {b"1": 1, b"2": 2}, ("2",), 2, False)
    assert st.on_watermark("low", "other") is None and not st.window.low_seen   # an earlier run's
    assert st.on_watermark("low", "k1") is None and st.window.low_seen
    closed = st.on_watermark("high", "k1")
    assert closed is not None and st.window is None
    st.emitted(closed, 2)
    assert st.ctx == SnapshotContext(("erp.a", "erp.b"), ("2",), ("3",), 2, 1)
    st.window = ChunkWindow("k2", "erp.a", {b"3": 3}, ("3",), 1, True)
    closed = st.on_watermark("high", "k2")
    assert closed is not None
    st.emitted(closed, 1)
    assert st.pending == ("erp.b",) and not st.ctx.started
    st.empty(0)
    assert st.ctx is None and st.offset() == {}
    assert st.progress.snapshot() == {"erp.a": (3, 3), "erp.b": (0, None)}


def test_state_stop_skip_resume_and_abandon() -> None:
    st = IncrementalState("c", 10)
    st.on_signals([("s1", EXECUTE, '{"data-collections": ["erp.a", "erp.b", "erp.nokey"]}')], captured)
    st.skip("no primary key")
    assert st.pending == ("erp.b", "erp.nokey")
    st.begin(("9",), None)
    st.window = ChunkWindow("k", "erp.b", {}, ("1",), 1, False)
    st.on_signals([("s2", STOP, '{"data-collections": ["erp.b"]}')], captured)
    assert st.window is None and st.pending == ("erp.nokey",)
    st.on_signals([("s3", STOP, None)], captured)
    assert st.ctx is None
    stored = SnapshotContext(("erp.a",)).begin(("9",)).advance(("4",), 4).to_offset()
    again = IncrementalState("c", 10)
    again.resume({"file": "b.000001", "pos": 4, **stored})
    assert again.ctx is not None and again.ctx.last_key == ("4",) and again.progress.snapshot() == {"erp.a": (4, None)}
    again.abandon("signal.data.collection is no longer set")
    assert again.ctx is None
    again.resume({"incremental_snapshot_collections": "erp.a"})   # unreadable: abandoned, not fatal
    assert again.ctx is None


# --- the MySQL/MariaDB chunk query -----------------------------------------------------------------


def test_key_conditions_compare_composite_keys_in_key_order() -> None:
    assert key_condition(["`id`"], ">", [5]) == ("((`id` > %s))", [5])
    where, params = key_condition(["`a`", "`b`", "`c`"], "<=", [1, "x", 2])
    assert where == "((`a` < %s) OR (`a` = %s AND `b` < %s) OR (`a` = %s AND `b` = %s AND `c` <= %s))"
    assert params == [1, 1, "x", 1, "x", 2]


def test_key_values_are_stored_as_text_and_queried_as_the_column_type() -> None:
    from decimal import Decimal

    assert key_text(b"\x00\xff") == "00ff" and key_text("a b") == "a b" and key_text(7) == "7"
    assert key_parameter(ColumnDef("id", "bigint", unsigned=True), "18446744073709551615") == 2**64 - 1
    assert key_parameter(ColumnDef("d", "decimal", 10, 2), "1.50") == Decimal("1.50")
    assert key_parameter(ColumnDef("b", "varbinary", 8), "00ff") == b"\x00\xff"
    assert key_parameter(ColumnDef("s", "varchar", 8), "00ff") == "00ff"


# --- configuration ---------------------------------------------------------------------------------


def load(tmp_path: Path, config: dict[str, Any]) -> list[Any]:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"name": "c", "config": config}))
    return load_connectors([path])


def pg(**extra: str) -> dict[str, Any]:
    return {"connector.class": "io.debezium.connector.postgresql.PostgresConnector", "database.hostname": "h",
            "database.user": "u", "database.dbname": "erp", "topic.prefix": "erp", **extra}


def problems(tmp_path: Path, config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, config)
    return info.value.problems


def test_postgres_takes_the_signal_table_and_the_chunk_size(tmp_path: Path) -> None:
    [cfg] = load(tmp_path, pg(**{"signal.data.collection": "public.debezium_signal",
                                 "incremental.snapshot.chunk.size": "100"}))
    assert isinstance(cfg, PostgresSourceConfig)
    assert cfg.signal_table == ("public", "debezium_signal") and cfg.incremental_snapshot_chunk_size == 100
    [default] = load(tmp_path, pg())
    assert isinstance(default, PostgresSourceConfig)
    assert default.signal_table is None and default.incremental_snapshot_chunk_size == 1024


@pytest.mark.parametrize(("prop", "value", "message"), [
    ("signal.data.collection", "debezium_signal", "is not a schema.table name"),
    ("signal.data.collection", "erp.public.signal", "is not a schema.table name"),
    ("incremental.snapshot.chunk.size", "0", "must be at least 1"),
    ("incremental.snapshot.watermarking.strategy", "insert_delete", "watermarks are logical decoding messages"),
])
def test_postgres_problems_name_the_property(tmp_path: Path, prop: str, value: str, message: str) -> None:
    [problem] = problems(tmp_path, pg(**{prop: value}))
    assert f"property '{prop}'" in problem and message in problem, problem


def test_mysql_takes_the_signal_table_and_the_chunk_size(tmp_path: Path) -> None:
    config = {"connector.class": "io.debezium.connector.mysql.MySqlConnector", "database.hostname": "h",
              "database.user": "u", "database.server.id": "5", "topic.prefix": "erp"}
    [cfg] = load(tmp_path, {**config, "signal.data.collection": "erp.debezium_signal",
                            "incremental.snapshot.chunk.size": "10"})
    assert isinstance(cfg, BinlogSourceConfig)
    assert cfg.signal_table == ("erp", "debezium_signal") and cfg.incremental_snapshot_chunk_size == 10
    [problem] = problems(tmp_path, {**config, "incremental.snapshot.watermarking.strategy": "insert_delete"})
    assert "property 'incremental.snapshot.watermarking.strategy'" in problem and "insert_insert" in problem
