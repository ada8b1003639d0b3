"""How far behind the change log a source connector is, in bytes, and its replication slot's health.

Role: the admin sampler (`cdc.pipeline.control.RunState.sample`) asks every few seconds, on a short
connection of its own, so that the measure does not depend on the reader being connected or idle:

- PostgreSQL: the server's current WAL LSN minus the slot's ``confirmed_flush_lsn`` -- WAL the bridge has
  not confirmed yet -- and the slot's ``wal_status``, ``safe_wal_size`` and retained WAL (current WAL LSN
  minus ``restart_lsn``) from pg_replication_slots.
- MySQL/MariaDB: the bytes of binlog after the journal's stored position (``SHOW BINARY LOGS`` sizes).

Failure story: a measure that cannot be taken (server down, slot missing, no privilege for SHOW BINARY
LOGS) is `UNKNOWN`: the metric is left out rather than made up, and the connector's own task reports
the failure.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import psycopg

from cdc.config import PostgresSourceConfig, SourceConfig
from cdc.types import SourceOffset

__all__ = ["UNKNOWN", "SourceLag", "source_lag"]

log = logging.getLogger(__name__)

_TIMEOUT_S = 5


@dataclass(frozen=True, slots=True)
class SourceLag:
    lag_bytes: int | None
    wal_status: str | None = None      # PostgreSQL slots only
    safe_wal_size: int | None = None   # None also when max_slot_wal_keep_size is -1 (no limit)
    retained_bytes: int | None = None  # WAL the slot keeps: current WAL LSN - restart_lsn


UNKNOWN = SourceLag(None)


async def source_lag(cfg: SourceConfig, offset: SourceOffset | None) -> SourceLag:
    """The source's lag in bytes (see the module docstring); `offset` is the journal's stored offset."""
    try:
        if isinstance(cfg, PostgresSourceConfig):
            return await _postgres(cfg)
        return await asyncio.to_thread(_binlog, cfg, offset)
    except Exception as e:   # any failure to measure is "unknown": see the module docstring
        log.debug("connector %s: lag not measured: %s", cfg.name, e)
        return UNKNOWN


async def _postgres(cfg: PostgresSourceConfig) -> SourceLag:
    async with await psycopg.AsyncConnection.connect(cfg.conninfo(), autocommit=True,
                                                     connect_timeout=_TIMEOUT_S) as conn:
        cur = await conn.execute(
            "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint, wal_status, safe_wal_size::bigint, "
            "(pg_current_wal_lsn() - restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = %s",
            (cfg.slot_name,))
        row = await cur.fetchone()
    if row is None:
        return UNKNOWN
    lag, status, safe, retained = row
    return SourceLag(None if lag is None else max(0, int(lag)), status, None if safe is None else int(safe),
                     None if retained is None else max(0, int(retained)))


def _binlog(cfg: SourceConfig, offset: SourceOffset | None) -> SourceLag:
    import pymysql

    assert not isinstance(cfg, PostgresSourceConfig)
    if not offset or "file" not in offset:
        return UNKNOWN
    conn = pymysql.connect(**cfg.connect_kwargs(), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW BINARY LOGS")
            logs = [(str(r[0]), int(r[1])) for r in cur.fetchall()]
    finally:
        conn.close()
    return SourceLag(binlog_lag(logs, str(offset["file"]), int(offset.get("pos", 0))))


def binlog_lag(logs: list[tuple[str, int]], file: str, pos: int) -> int | None:
    """Bytes of binlog after (file, pos), given ``SHOW BINARY LOGS`` (name, size) in order; None when
    the file is no longer listed (purged: the gap shows as the connector's error, not as a lag)."""
    names = [name for name, _ in logs]
    if file not in names:
        return None
    at = names.index(file)
    return max(0, logs[at][1] - pos) + sum(size for _, size in logs[at + 1:])
