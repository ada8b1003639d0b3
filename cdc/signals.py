"""Sending a Debezium signal to a PostgreSQL connector: one row INSERTed into its signal table.

Role: what `cdc snapshot` and the REST API (`POST /connectors/{name}/signals`) call. The signal travels
the way Debezium's "source" channel carries it: the row's insert reaches the running bridge through
the replication stream, and the reader acts on it when the inserting transaction commits. A bridge
that is not running picks it up at its next start (the slot holds the insert), so sending never needs
the bridge to be up.

Failure story: a signal the reader would refuse (unknown type, bad data) raises `InvalidSignal` before
anything is written; a connector without `signal.data.collection` raises `ConfigError`; a missing
signal table raises `SourceError` with the DDL to create it; other database errors are classified by
`cdc.errors.classify` (`Transient` for connection problems). Passwords never reach a message.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import psycopg
from psycopg import sql

from cdc.config import PostgresSourceConfig
from cdc.errors import ConfigError, SourceError, classify
from cdc.readers.incremental import SIGNAL_TABLE_DDL, parse_signal


async def send_signal(cfg: PostgresSourceConfig, signal_type: str, data: dict[str, Any]) -> str:
    """INSERT a signal (e.g. ``execute-snapshot`` with ``{"data-collections": [...], "type":
    "incremental"}``) into the connector's signal table; returns its id (a UUID)."""
    table = cfg.signal_table
    if table is None:
        raise ConfigError([f"connector '{cfg.name}': property 'signal.data.collection' is not set, so the "
                           "connector reads no signals; set it to the signal table (e.g. public.debezium_signal)"])
    sig_id = str(uuid.uuid4())
    text = orjson.dumps(data).decode()
    parse_signal(sig_id, signal_type, text)   # refuse now what the reader would only log and ignore
    stmt = sql.SQL("INSERT INTO {} (id, type, data) VALUES (%s, %s, %s)").format(sql.Identifier(*table))
    try:
        async with await psycopg.AsyncConnection.connect(cfg.conninfo(), autocommit=True) as conn:
            await conn.execute(stmt, (sig_id, signal_type, text))
    except psycopg.errors.UndefinedTable as e:
        name = cfg.signal_data_collection
        raise SourceError(f"connector '{cfg.name}': the signal table {name} does not exist; create it: "
                          f"{SIGNAL_TABLE_DDL.format(table=name)}") from e
    except psycopg.Error as e:
        raise classify(e) from e
    return sig_id
