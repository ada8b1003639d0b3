"""`source_lag` against real servers: PostgreSQL's slot lag and health, MariaDB's binlog bytes after a
position; unknown (never a made-up number) when the slot or the position does not exist."""

from __future__ import annotations

import asyncio

import psycopg

from cdc.config import BinlogSourceConfig, PostgresSourceConfig, validate_connector
from cdc.pipeline.sourcelag import UNKNOWN, source_lag
from tests.servers.mariadb import MariaDbServer
from tests.servers.postgres import PgServer


def pg_config(srv: PgServer, dsn: str, slot: str) -> PostgresSourceConfig:
    db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    cfg = validate_connector({"name": "lag", "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
                              "database.hostname": "127.0.0.1", "database.port": str(srv.port),
                              "database.user": "postgres", "database.dbname": str(db), "topic.prefix": "lag",
                              "slot.name": slot})
    assert isinstance(cfg, PostgresSourceConfig)
    return cfg


def test_postgres_lag_is_wal_not_confirmed_by_the_slot(pg_server: PgServer, pg_db: str) -> None:
    assert asyncio.run(source_lag(pg_config(pg_server, pg_db, "no_such_slot"), None)) == UNKNOWN
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute("SELECT pg_create_logical_replication_slot('lag_slot', 'pgoutput')")
        cfg = pg_config(pg_server, pg_db, "lag_slot")
        before = asyncio.run(source_lag(cfg, None))
        c.execute("CREATE TABLE filler AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 20000) g")
        after = asyncio.run(source_lag(cfg, None))
        c.execute("SELECT pg_drop_replication_slot('lag_slot')")
    assert before.lag_bytes is not None and after.lag_bytes is not None
    assert after.lag_bytes - before.lag_bytes > 2_000_000    # 20,000 rows of ~130 bytes, not confirmed
    assert after.wal_status == "reserved" and after.safe_wal_size is None   # no max_slot_wal_keep_size
    assert after.retained_bytes is not None and after.retained_bytes >= after.lag_bytes


def test_binlog_lag_is_bytes_after_the_stored_position(my_server: MariaDbServer, my_db: str) -> None:
    cfg = validate_connector({"name": "mylag", "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
                              "database.hostname": my_server.host, "database.port": str(my_server.port),
                              "database.user": my_server.user, "database.password": my_server.password,
                              "database.server.id": "184099", "topic.prefix": "mylag"})
    assert isinstance(cfg, BinlogSourceConfig)
    with my_server.root() as c, c.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        row = cur.fetchone()
        assert row is not None
    offset = {"file": str(row[0]), "pos": int(row[1])}
    assert asyncio.run(source_lag(cfg, offset)).lag_bytes == 0
    my_server.execute(my_db, "CREATE TABLE t (id INT PRIMARY KEY, pad TEXT)",
                      *(f"INSERT INTO t VALUES ({i}, REPEAT('x', 1000))" for i in range(50)))
    lag = asyncio.run(source_lag(cfg, offset)).lag_bytes
    assert lag is not None and lag > 50 * 1000
    assert asyncio.run(source_lag(cfg, {"file": "purged-bin.000001", "pos": 4})) == UNKNOWN
    assert asyncio.run(source_lag(cfg, None)) == UNKNOWN
