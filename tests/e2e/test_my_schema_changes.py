"""Schema changes mid-stream on MariaDB (issue #3): every row is read with the definition it was written
under, because the reader replays the binlog's DDL into its schema history.

Covered: ADD / DROP / RENAME COLUMN, a type change, a new table matching the include list, a dropped
table, a server without row metadata (binlog_row_metadata=MINIMAL: column names come only from the
history), and an unparseable DDL statement, which stops only the table it touches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import read_events, run_to_end
from tests.e2e.myharness import write_my_connectors
from tests.servers.mariadb import MariaDbServer


def _after_images(out: Path, table: str) -> list[dict[str, Any]]:
    return [e["after"] for e in read_events(out) if e["source"]["table"] == table and e["after"] is not None]


def _schema_changes(srv: MariaDbServer, db: str, tmp: Path, name: str) -> list[dict[str, Any]]:
    srv.execute(db, "CREATE TABLE items (id INT PRIMARY KEY, a VARCHAR(10), b INT)",
                "INSERT INTO items VALUES (1, 'one', 10)")
    files = write_my_connectors(tmp, srv, db, name)
    out = tmp / "out" / f"{name}.jsonl"
    run_to_end(files, tmp / "data")
    srv.execute(db,
                "INSERT INTO items VALUES (2, 'two', 20)",
                "ALTER TABLE items ADD COLUMN c DECIMAL(8,3) NOT NULL DEFAULT 1.5 AFTER a",
                "INSERT INTO items VALUES (3, 'three', 2.25, 30)",
                "ALTER TABLE items DROP COLUMN b",
                "INSERT INTO items VALUES (4, 'four', 4.125)",
                "ALTER TABLE items RENAME COLUMN a TO label",
                "UPDATE items SET label = 'FOUR' WHERE id = 4",
                "ALTER TABLE items MODIFY COLUMN c VARCHAR(20)",
                "INSERT INTO items VALUES (5, 'five', 'not a number')",
                "CREATE TABLE fresh (k BIGINT UNSIGNED PRIMARY KEY, v TEXT)",
                "INSERT INTO fresh VALUES (18446744073709551615, 'max')",
                "DROP TABLE fresh",
                "CREATE TABLE fresh (k INT PRIMARY KEY, w DATE)",
                "INSERT INTO fresh VALUES (7, '2024-02-29')")
    run_to_end(files, tmp / "data")
    return _after_images(out, "items") + _after_images(out, "fresh")


EXPECTED = [
    {"id": 1, "a": "one", "b": 10},                                   # snapshot
    {"id": 2, "a": "two", "b": 20},
    {"id": 3, "a": "three", "c": "2.250", "b": 30},
    {"id": 4, "a": "four", "c": "4.125"},
    {"id": 4, "label": "FOUR", "c": "4.125"},
    {"id": 5, "label": "five", "c": "not a number"},
    {"k": 18446744073709551615, "v": "max"},
    {"k": 7, "w": 19782},
]


def test_rows_follow_the_schema_they_were_written_under(tmp_path: Path, my_server: MariaDbServer,
                                                        my_db: str) -> None:
    assert _schema_changes(my_server, my_db, tmp_path, "mysch") == EXPECTED


@pytest.fixture(scope="module")
def minimal_metadata_server() -> Iterator[MariaDbServer]:
    srv = MariaDbServer.start(settings={"binlog-row-metadata": "MINIMAL"})
    try:
        yield srv
    finally:
        srv.destroy()


def test_without_row_metadata_the_history_names_the_columns(tmp_path: Path,
                                                            minimal_metadata_server: MariaDbServer) -> None:
    srv = minimal_metadata_server
    db = srv.create_database()
    assert _schema_changes(srv, db, tmp_path, "mymin") == EXPECTED


def test_unparseable_ddl_stops_only_the_tables_it_touches(tmp_path: Path, my_server: MariaDbServer,
                                                          my_db: str) -> None:
    srv, db = my_server, my_db
    srv.execute(db, "CREATE TABLE good (id INT PRIMARY KEY, v INT)",
                "CREATE TABLE odd (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING")
    files = write_my_connectors(tmp_path, srv, db, "myodd", snapshot="no_data")
    out = tmp_path / "out" / "myodd.jsonl"
    run_to_end(files, tmp_path / "data")
    # A system-versioned table's hidden columns are not modelled: its history stops at this ALTER.
    srv.execute(db, "SET SESSION system_versioning_alter_history = KEEP", "ALTER TABLE odd ADD COLUMN w INT",
                "INSERT INTO odd VALUES (1, 1, 1)",
                "INSERT INTO good VALUES (1, 1)")
    p = run_to_end(files, tmp_path / "data")
    assert [e["after"] for e in read_events(out)] == [{"id": 1, "v": 1}]
    assert f"{db}.odd" in p.stderr and "stops" in p.stderr
    # ...and stays stopped after a restart (the stop is part of the stored history).
    srv.execute(db, "INSERT INTO odd VALUES (2, 2, 2)", "INSERT INTO good VALUES (2, 2)")
    run_to_end(files, tmp_path / "data")
    assert [e["after"] for e in read_events(out)] == [{"id": 1, "v": 1}, {"id": 2, "v": 2}]
