"""The binlog reader's pure parts: positions, GTID state (both flavours, incl. MySQL-only paths), offsets,
the schema history's journal form, and the GTID-source filter. No server: fake stream objects only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdc.config import validate_connector
from cdc.config.mysql import BinlogSourceConfig
from cdc.readers.mysql import (
    BinlogPosition,
    BinlogStreamer,
    StreamState,
    history_entry,
    load_history,
    position_reached,
    stopped_entry,
)
from cdc.readers.mysqlschema import ColumnDef, TableSchema


def config(flavor: str, **extra: str) -> BinlogSourceConfig:
    cls = "io.debezium.connector.mariadb.MariaDbConnector" if flavor == "mariadb" else \
        "io.debezium.connector.mysql.MySqlConnector"
    cfg = validate_connector({
        "name": "src", "connector.class": cls, "database.hostname": "127.0.0.1", "database.user": "cdc",
        "database.server.id": "77", "topic.prefix": "erp", **extra})
    assert isinstance(cfg, BinlogSourceConfig)
    return cfg


@dataclass
class FakeStream:
    log_file: str
    log_pos: int


def streamer(flavor: str, state: StreamState, **extra: str) -> BinlogStreamer:
    return BinlogStreamer(config(flavor, **extra), state, 77, None, None, flavor, lambda d, t: None)


def test_positions_order_by_file_number_then_offset() -> None:
    a, b, c = BinlogPosition("binlog.000009", 900), BinlogPosition("binlog.000010", 4), \
        BinlogPosition("binlog.000010", 120)
    assert a.key() < b.key() < c.key()
    assert position_reached(c, b) and position_reached(b, b) and not position_reached(a, b)


def test_mariadb_gtid_state_keeps_the_last_gtid_of_each_domain() -> None:
    st = StreamState(BinlogPosition("binlog.000001", 4))
    s = streamer("mariadb", st)
    for i, gtid in enumerate(["0-1-5", "1-2-9", "0-1-6"]):
        s._end_tx(FakeStream("binlog.000001", 100 + i), gtid)
    assert st.position == BinlogPosition("binlog.000001", 102)
    assert st.gtid_text() == "0-1-6,1-2-9"
    assert st.offset(1700000000) == {"file": "binlog.000001", "pos": 102, "ts_sec": 1700000000,
                                     "gtids": "0-1-6,1-2-9"}
    assert st.offset(1, snapshot_completed=False)["snapshot_completed"] is False


def test_mysql_gtid_set_accumulates_intervals() -> None:
    uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    st = StreamState(BinlogPosition("mysql-bin.000003", 4), mysql_gtids=f"{uuid}:1-5")
    s = streamer("mysql", st)
    s._end_tx(FakeStream("mysql-bin.000003", 500), f"{uuid}:6")
    s._end_tx(FakeStream("mysql-bin.000003", 900), f"{uuid}:7")
    assert st.gtid_text() == f"{uuid}:1-7"


def test_gtid_source_filters_decide_what_counts() -> None:
    st = StreamState(BinlogPosition("binlog.000001", 4))
    s = streamer("mariadb", st, **{"gtid.source.includes": "0-1"})
    s._end_tx(FakeStream("binlog.000001", 10), "0-1-5")
    s._end_tx(FakeStream("binlog.000001", 20), "0-2-6")      # another server in domain 0: excluded
    assert st.gtid_text() == "0-1-5"
    assert s.wanted_gtid("0-1-7") and not s.wanted_gtid("0-2-8")
    mysql = streamer("mysql", StreamState(BinlogPosition("b.000001", 4)),
                     **{"gtid.source.excludes": "3e11fa47-.*"})
    assert not mysql.wanted_gtid("3e11fa47-71ca-11e1-9e33-c80aa9429562:9")
    assert mysql.wanted_gtid("aaaaaaaa-71ca-11e1-9e33-c80aa9429562:9")


def test_schema_history_round_trips_through_its_journal_form() -> None:
    schema = TableSchema("erp", "ocusma", (ColumnDef("okcono", "smallint", 6, nullable=False),
                                           ColumnDef("okcunm", "varchar", 36, charset="latin1"),
                                           ColumnDef("okstat", "enum", values=("10", "20"))),
                         primary_key=("okcono",), charset="latin1")
    entries: dict[tuple[str, str], Any] = {}
    for db, table, text, _ddl in (history_entry(schema, "snapshot"), stopped_entry("erp", "odd", "cannot parse")):
        entries[(db, table)] = text
    schemas, stopped = load_history(entries)
    assert schemas == {("erp", "ocusma"): schema}
    assert stopped == {("erp", "odd"): "cannot parse"}


class FakeCursor:
    """Answers SHOW MASTER STATUS like MySQL ≤ 8.3, or only SHOW BINARY LOG STATUS like MySQL 8.4."""

    def __init__(self, renamed: bool, row: tuple[Any, ...] | None) -> None:
        self.renamed, self.row = renamed, row
        self.queries: list[str] = []

    def execute(self, q: str) -> None:
        import pymysql

        self.queries.append(q)
        if self.renamed and q == "SHOW MASTER STATUS":
            raise pymysql.err.ProgrammingError(1064, "You have an error in your SQL syntax")

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.row


def test_binlog_status_on_mysql_before_and_after_8_4() -> None:
    from cdc.readers.mysql import binlog_status

    uuid_set = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77"
    for renamed in (False, True):
        cur = FakeCursor(renamed, ("binlog.000042", 1234, "", "", uuid_set))
        assert binlog_status(cur) == (BinlogPosition("binlog.000042", 1234), uuid_set)
        assert cur.queries[-1] == ("SHOW BINARY LOG STATUS" if renamed else "SHOW MASTER STATUS")
    assert binlog_status(FakeCursor(False, ("mariadb-bin.000001", 4, "", ""))) == (
        BinlogPosition("mariadb-bin.000001", 4), None)
    assert binlog_status(FakeCursor(False, None)) is None
