"""Snapshot and streaming agree value for value (real MariaDB 10.11).

The snapshot reads rows through the text protocol (`mysqlvalues.SnapshotRowCodec`), streaming decodes
the binlog's bytes (`binlogrows.RowDecoder`); a consumer must not be able to tell a snapshot read from a
streamed insert of the same row. Every type of `test_my_types` is checked, under its three mode sets.
"""

from __future__ import annotations

from typing import Any

import pymysql
import pytest

from cdc.readers.binlogrows import MyEncodingModes, RowDecoder
from cdc.readers.mysqlschema import TableSchema
from cdc.readers.mysqlsnapshot import TEXT_ONLY
from cdc.readers.mysqlvalues import SnapshotRowCodec, select_expression
from tests.integration.test_my_types import COLUMNS, DDL, MODES, ROW_1, ROW_2, ROW_3, ROW_4, insert_sql, read_events
from tests.servers.mariadb import MariaDbServer


@pytest.mark.parametrize("mode_name", list(MODES))
def test_snapshot_reads_equal_streamed_inserts(my_server: MariaDbServer, my_db: str, mode_name: str) -> None:
    mode: MyEncodingModes = MODES[mode_name]
    schema = TableSchema(my_db, "t", COLUMNS, primary_key=("id",), charset="utf8mb4")
    my_server.execute(my_db, DDL)
    file, pos = my_server.binlog_position()
    with my_server.connect(my_db) as c, c.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        for row in (ROW_1, ROW_2, ROW_3, ROW_4):
            cur.execute(*insert_sql(row))
    streamed: list[dict[str, Any]] = []
    for _kind, data, p, end, present, _p2, columns in read_events(my_server, my_db, f"{file}:{pos}"):
        streamed += RowDecoder(schema, columns, mode).write_rows(data, p, end, present)
    codec = SnapshotRowCodec(schema, mode)
    with pymysql.connect(host=my_server.host, port=my_server.port, user=my_server.user,
                         password=my_server.password, database=my_db, conv=TEXT_ONLY, charset="utf8mb4") as c, \
            c.cursor() as cur:
        cur.execute("SET SESSION time_zone = '+00:00'")
        cur.execute(f"SELECT {', '.join(select_expression(col) for col in COLUMNS)} FROM t ORDER BY id")
        snapshot = [codec.decode(r) for r in cur.fetchall()]
    assert len(snapshot) == len(streamed) == 4
    for snap, stream in zip(snapshot, streamed, strict=True):
        for col in COLUMNS:
            assert snap[col.name] == stream[col.name], (snap["id"], col.name, snap[col.name], stream[col.name])
            assert type(snap[col.name]) is type(stream[col.name]), (snap["id"], col.name)
