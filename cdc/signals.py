"""Sending a Debezium signal to a source connector: one row INSERTed into its signal table.

Role: what `cdc snapshot` and the REST API (`POST /connectors/{name}/signals`) call, for PostgreSQL and
MySQL/MariaDB sources alike. The signal travels the way Debezium's "source" channel carries it: the
row's insert reaches the running bridge through the change log (the replication slot, the binlog), and
the reader acts on it when the inserting transaction commits. A bridge that is not running picks it up
at its next start (the slot, or the binlog from the stored position, still holds the insert), so
sending never needs the bridge to be up.

Failure story: a signal the reader would refuse (unknown type, bad data) raises `InvalidSignal` before
anything is written; a connector without `signal.data.collection` raises `ConfigError`; a missing
signal table raises `SourceError` with the DDL to create it; other database errors are classified by
`cdc.errors.classify` (`Transient` for connection problems). Passwords never reach a message.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson

from cdc.config import BinlogSourceConfig, PostgresSourceConfig
from cdc.errors import ConfigError, SourceError, classify
from cdc.readers.incremental import SIGNAL_TABLE_DDL, parse_signal

_NO_SUCH_TABLE = 1146   # MySQL/MariaDB ER_NO_SUCH_TABLE


async def send_signal(cfg: PostgresSourceConfig | BinlogSourceConfig, signal_type: str, data: dict[str, Any]) -> str:
    """INSERT a signal (e.g. ``execute-snapshot`` with ``{"data-collections": [...], "type":
    "incremental"}``) into the connector's signal table; returns its id (a UUID)."""
    table = cfg.signal_table
    if table is None:
        example = "erp.debezium_signal" if isinstance(cfg, BinlogSourceConfig) else "public.debezium_signal"
        raise ConfigError([f"connector '{cfg.name}': property 'signal.data.collection' is not set, so the "
                           f"connector reads no signals; set it to the signal table (e.g. {example})"])
    sig_id = str(uuid.uuid4())
    text = orjson.dumps(data).decode()
    parse_signal(sig_id, signal_type, text)   # refuse now what the reader would only log and ignore
    if isinstance(cfg, BinlogSourceConfig):
        await asyncio.to_thread(_insert_binlog, cfg, table, (sig_id, signal_type, text))
    else:
        await _insert_postgres(cfg, table, (sig_id, signal_type, text))
    return sig_id


def _missing(cfg: PostgresSourceConfig | BinlogSourceConfig) -> str:
    name = cfg.signal_data_collection
    return (f"connector '{cfg.name}': the signal table {name} does not exist; create it: "
            f"{SIGNAL_TABLE_DDL.format(table=name)}")


async def _insert_postgres(cfg: PostgresSourceConfig, table: tuple[str, str], row: tuple[str, str, str]) -> None:
    import psycopg
    from psycopg import sql

    stmt = sql.SQL("INSERT INTO {} (id, type, data) VALUES (%s, %s, %s)").format(sql.Identifier(*table))
    try:
        async with await psycopg.AsyncConnection.connect(cfg.conninfo(), autocommit=True) as conn:
            await conn.execute(stmt, row)
    except psycopg.errors.UndefinedTable as e:
        raise SourceError(_missing(cfg)) from e
    except psycopg.Error as e:
        raise classify(e) from e


def _insert_binlog(cfg: BinlogSourceConfig, table: tuple[str, str], row: tuple[str, str, str]) -> None:
    import pymysql

    from cdc.readers.mysqlsnapshot import signal_insert_sql

    try:
        with pymysql.connect(**cfg.connect_kwargs(), autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(signal_insert_sql(*table), row)
    except pymysql.MySQLError as e:
        if e.args and e.args[0] == _NO_SUCH_TABLE:
            raise SourceError(_missing(cfg)) from e
        raise classify(e) from e
