"""Schema changes mid-stream: events before a change keep the old shape, events after it the new one.

pgoutput sends a Relation message (the table's columns as of the change being decoded) before the
first change of a table after its schema changed, and the reader rebuilds the table's codec from it.
So ADD/DROP/RENAME COLUMN and ALTER COLUMN TYPE need no restart, and changes written before a DDL but
decoded after it (the bridge was stopped meanwhile) still have the old shape.

New tables: with `publication.autocreate.mode=all_tables` (the default) the publication is FOR ALL
TABLES, so a table created after start that matches table.include.list is streamed at once. With
`filtered`, the publication lists the matching tables when the connector starts (ALTER PUBLICATION ...
SET TABLE, as Debezium does): a table created later is added at the next start, and its rows written
before that start are not captured (not streamed: the publication did not include the table when they
were written; not snapshotted: the snapshot was taken long ago). Changes after the restart are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.harness import Bridge, execute, read_events, replay, run_to_end, table_state, write_connectors
from tests.servers.postgres import PgServer


def dbname(dsn: str) -> str:
    return dsn.rsplit("dbname=", 1)[1]


def shape(e: dict[str, Any]) -> list[str]:
    return sorted(e["after"] if e["after"] is not None else e["before"])


def test_ddl_while_streaming(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    execute(pg_db, "CREATE TABLE prod (id int PRIMARY KEY, name text, price int)",
            "INSERT INTO prod VALUES (1, 'one', 10)")
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "ddl")
    out, data = tmp_path / "out" / "ddl.jsonl", tmp_path / "data"
    with Bridge(files, data, tmp_path / "ddl.log") as bridge:
        bridge.wait_lines(out, 1)
        execute(pg_db, "INSERT INTO prod VALUES (2, 'two', 20)")
        bridge.wait_lines(out, 2)   # the old shape is on its way before the DDL runs
        execute(pg_db,
                "ALTER TABLE prod ADD COLUMN color text DEFAULT 'red'",
                "INSERT INTO prod VALUES (3, 'three', 30, 'blue')",
                "UPDATE prod SET name = 'uno' WHERE id = 1",
                "ALTER TABLE prod ALTER COLUMN price TYPE numeric(8,2)",
                "UPDATE prod SET price = price + 0.5 WHERE id = 2",
                "ALTER TABLE prod RENAME COLUMN name TO title",
                "INSERT INTO prod VALUES (4, 'four', 40, 'green')",
                "ALTER TABLE prod DROP COLUMN color",
                "UPDATE prod SET title = 'vier' WHERE id = 4",
                "DELETE FROM prod WHERE id = 3",
                "CREATE TABLE prod_new (id int PRIMARY KEY, v text)",
                "INSERT INTO prod_new VALUES (1, 'new table')")
        bridge.wait_lines(out, 9)
        assert bridge.stop() == 0
    ev = read_events(out)
    assert [e["op"] for e in ev] == ["r", "c", "c", "u", "u", "c", "u", "d", "c"]
    assert ev[0]["after"] == {"id": 1, "name": "one", "price": 10}
    assert ev[1]["after"] == {"id": 2, "name": "two", "price": 20}
    assert ev[2]["after"] == {"id": 3, "name": "three", "price": 30, "color": "blue"}
    assert ev[3]["after"] == {"id": 1, "name": "uno", "price": 10, "color": "red"}
    assert ev[4]["after"] == {"id": 2, "name": "two", "price": "20.50", "color": "red"}, "numeric as string"
    assert ev[5]["after"] == {"id": 4, "title": "four", "price": "40.00", "color": "green"}
    assert ev[6]["after"] == {"id": 4, "title": "vier", "price": "40.00"}
    assert ev[7]["before"] == {"id": 3, "title": None, "price": None}, "key only, in the new shape"
    assert ev[8]["source"]["table"] == "prod_new" and ev[8]["after"] == {"id": 1, "v": "new table"}
    # The replayed keys equal the table's; rows last changed after the last DDL equal it too.
    got = replay(ev, {"prod": ["id"]})["prod"]
    want = table_state(pg_db, "prod", ["id"], ["id", "title", "price"])
    assert {(str(k[0]),) for k in got} == set(want)
    assert {k: str(v) for k, v in got[(4,)].items()} == want[("4",)]


def test_ddl_between_stop_at_end_runs(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    execute(pg_db, "CREATE TABLE acct (id int PRIMARY KEY, owner text, amount int)",
            "INSERT INTO acct VALUES (1, 'ann', 5)")
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "ddl2")
    out, data = tmp_path / "out" / "ddl2.jsonl", tmp_path / "data"
    run_to_end(files, data)
    # Written while the bridge is down, decoded after every DDL has run: each change keeps the
    # shape it was written with.
    execute(pg_db,
            "INSERT INTO acct VALUES (2, 'bob', 6)",
            "ALTER TABLE acct ADD COLUMN currency char(3) NOT NULL DEFAULT 'EUR'",
            "INSERT INTO acct VALUES (3, 'cy', 7, 'USD')",
            "ALTER TABLE acct ALTER COLUMN amount TYPE bigint",
            "ALTER TABLE acct RENAME COLUMN owner TO holder",
            "UPDATE acct SET amount = 9000000000 WHERE id = 1",
            "ALTER TABLE acct DROP COLUMN currency",
            "INSERT INTO acct VALUES (4, 'dee', 8)")
    run_to_end(files, data)
    ev = read_events(out)
    assert [e["op"] for e in ev] == ["r", "c", "c", "u", "c"]
    assert ev[1]["after"] == {"id": 2, "owner": "bob", "amount": 6}
    assert ev[2]["after"] == {"id": 3, "owner": "cy", "amount": 7, "currency": "USD"}
    assert ev[3]["after"] == {"id": 1, "holder": "ann", "amount": 9000000000, "currency": "EUR"}
    assert ev[4]["after"] == {"id": 4, "holder": "dee", "amount": 8}
    # And again once the bridge knows the new shape.
    execute(pg_db, "ALTER TABLE acct ADD COLUMN note text", "UPDATE acct SET note = 'x' WHERE id = 4")
    run_to_end(files, data)
    ev = read_events(out)
    assert ev[5]["after"] == {"id": 4, "holder": "dee", "amount": 8, "note": "x"}
    got = replay(ev, {"acct": ["id"]})["acct"]
    assert sorted(got) == [(1,), (2,), (3,), (4,)]


def test_new_table_with_filtered_publication(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    execute(pg_db, "CREATE TABLE orders (id int PRIMARY KEY)", "CREATE TABLE other (id int PRIMARY KEY)",
            "INSERT INTO orders VALUES (1)")
    files = write_connectors(tmp_path, pg_server, dbname(pg_db), "filt", tables="public\\.orders.*",
                             extra={"publication.autocreate.mode": "filtered"})
    out, data = tmp_path / "out" / "filt.jsonl", tmp_path / "data"
    run_to_end(files, data)
    execute(pg_db, "CREATE TABLE orders_2024 (id int PRIMARY KEY)", "INSERT INTO orders_2024 VALUES (1)",
            "INSERT INTO orders VALUES (2)", "INSERT INTO other VALUES (1)")
    run_to_end(files, data)
    ev = read_events(out)
    assert [(e["source"]["table"], e["op"]) for e in ev] == [("orders", "r"), ("orders", "c")], \
        "rows written to the new table before the restart that published it are not captured"
    tables = table_state(pg_db, "pg_publication_tables WHERE pubname = 'pub_filt'", [], ["tablename"])
    assert sorted(tables) == ['{"tablename": "orders"}', '{"tablename": "orders_2024"}']
    execute(pg_db, "INSERT INTO orders_2024 VALUES (2)", "INSERT INTO other VALUES (2)")
    run_to_end(files, data)
    ev = read_events(out)
    assert [(e["source"]["table"], e["op"]) for e in ev[2:]] == [("orders_2024", "c")]
    assert ev[2]["after"] == {"id": 2}
