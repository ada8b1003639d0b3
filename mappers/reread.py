"""Re-reading multi-table business objects from the source: read-only queries with a connector's settings.

Role: a multi-table mapping (`mappers.joined`) is evaluated by the source itself. `source_reader(cfg)`
gives the `RowReader` that runs its queries: one connection per mapper, opened on first use in the
delivery worker thread, every batch in one read-only transaction -- PostgreSQL ``REPEATABLE READ,
READ ONLY`` so that all of a batch's queries see one snapshot; MySQL/MariaDB ``START TRANSACTION WITH
CONSISTENT SNAPSHOT, READ ONLY`` -- in a UTC session. JSON results keep their decimals exact
(parsed as Decimal, never through a float).

`check(mapping)` is the load-time half: the source compiles the mapping as written (wrapped as
``SELECT * FROM (<mapping>) q LIMIT 0``, so a server error's position maps back to the mapping's
line and column) and then the re-read query the bridge derives from it; it returns the problems and
the select list's types, which the loader checks against the canonical entity.

Failure story: driver errors are classified once (`cdc.errors.classify`): a lost connection is
`Transient` -- the connection is dropped, the delivery loop retries the batch and the next call
reconnects -- and an SQL error `Permanent`. At load an SQL error is a mapping `Problem`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from cdc.errors import classify
from mappers.catalog import source_dialect
from mappers.errors import Problem, position
from mappers.joined import JoinedMapping
from mappers.sqltypes import BOOL, DATE, DEC, FLOAT, INT, TEXT, TIME, TS, TSTZ, SqlType

__all__ = ["MyReader", "PgReader", "source_reader"]

_WRAP = "SELECT * FROM (\n"
_WRAP_END = "\n) AS q LIMIT 0"

# Result column types as the drivers report them (PostgreSQL type OIDs, MySQL field types).
_PG_TYPES: dict[int, SqlType] = {16: BOOL, 20: INT, 21: INT, 23: INT, 700: FLOAT, 701: FLOAT, 1700: DEC, 25: TEXT,
                                 1042: SqlType("char", name="bpchar"), 1043: TEXT, 19: TEXT, 1082: DATE, 1114: TS,
                                 1184: TSTZ, 1083: TIME}
_MY_TYPES: dict[int, SqlType] = {0: DEC, 246: DEC, 1: INT, 2: INT, 3: INT, 8: INT, 9: INT, 13: INT, 4: FLOAT,
                                 5: FLOAT, 10: DATE, 14: DATE, 12: TS, 7: TS, 11: TIME, 15: TEXT, 253: TEXT,
                                 254: TEXT}
_LOADS = functools.partial(json.loads, parse_float=Decimal)


class PgReader:
    """Re-read queries on PostgreSQL (psycopg), read-only, one snapshot per batch."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: Any = None

    def _connect(self) -> Any:
        if self._conn is None:
            import psycopg
            from psycopg.types.json import set_json_loads

            conn = psycopg.connect(self._conninfo, autocommit=False, connect_timeout=10,
                                   options="-c TimeZone=UTC -c DateStyle=ISO")
            conn.read_only = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            set_json_loads(_LOADS, conn)
            self._conn = conn
        return self._conn

    def rows(self, queries: Sequence[tuple[str, list[Any]]]) -> list[list[tuple[Any, ...]]]:
        try:
            conn = self._connect()
            with conn.transaction():
                return [list(conn.execute(q, p).fetchall()) for q, p in queries]
        except Exception as e:  # driver errors: classified once, here
            self.close()
            raise classify(e) from e

    def check(self, mapping: JoinedMapping) -> tuple[list[Problem], list[SqlType | None]]:
        import psycopg

        try:
            conn = self._connect()
            with conn.transaction():
                try:
                    cur = conn.execute(_WRAP + mapping.text + _WRAP_END)
                except psycopg.errors.Error as e:
                    if isinstance(e, psycopg.OperationalError):
                        raise
                    return [_pg_problem(mapping, e)], []
                types = [_PG_TYPES.get(d.type_code) for d in cur.description or ()]
            with conn.transaction():
                try:
                    conn.execute(*mapping.query([tuple(None for _ in mapping.root_key)]))
                except psycopg.errors.Error as e:
                    if isinstance(e, psycopg.OperationalError):
                        raise
                    return [Problem(mapping.file, 1, 1, f"the source rejects the re-read query derived from the "
                                                        f"mapping: {e.diag.message_primary or e}")], []
            return [], types
        except Exception as e:
            self.close()
            raise classify(e) from e

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _pg_problem(mapping: JoinedMapping, e: Any) -> Problem:
    message = e.diag.message_primary or str(e)
    pos = e.diag.statement_position
    if pos:
        offset = int(pos) - 1 - len(_WRAP)
        if 0 <= offset < len(mapping.text):
            line, col = position(mapping.text, offset)
            return Problem(mapping.file, line, col, f"the source rejects the mapping: {message}")
    return Problem(mapping.file, 1, 1, f"the source rejects the mapping: {message}")


class MyReader:
    """Re-read queries on MySQL/MariaDB (PyMySQL), read-only, one consistent snapshot per batch."""

    def __init__(self, connect_kwargs: dict[str, Any]) -> None:
        self._kwargs = connect_kwargs
        self._conn: Any = None

    def _connect(self) -> Any:
        if self._conn is None:
            import pymysql

            conn = pymysql.connect(**self._kwargs)
            with conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")
            self._conn = conn
        return self._conn

    def rows(self, queries: Sequence[tuple[str, list[Any]]]) -> list[list[tuple[Any, ...]]]:
        try:
            conn = self._connect()
            out: list[list[tuple[Any, ...]]] = []
            with conn.cursor() as cur:
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                for q, p in queries:
                    cur.execute(q, p)
                    out.append(list(cur.fetchall()))
                cur.execute("COMMIT")
            return out
        except Exception as e:  # driver errors: classified once, here
            self.close()
            raise classify(e) from e

    def check(self, mapping: JoinedMapping) -> tuple[list[Problem], list[SqlType | None]]:
        import pymysql

        try:
            conn = self._connect()
            with conn.cursor() as cur:
                try:
                    cur.execute(_WRAP + mapping.text + _WRAP_END)
                except pymysql.err.ProgrammingError as e:
                    return [_my_problem(mapping, e)], []
                except pymysql.err.OperationalError as e:
                    if e.args and e.args[0] in (2003, 2006, 2013):
                        raise
                    return [_my_problem(mapping, e)], []
                types = [_MY_TYPES.get(d[1]) for d in cur.description or ()]
                query, params = mapping.query([tuple(None for _ in mapping.root_key)])
                try:
                    cur.execute(query, params)
                except (pymysql.err.ProgrammingError, pymysql.err.OperationalError) as e:
                    return [Problem(mapping.file, 1, 1, f"the source rejects the re-read query derived from the "
                                                        f"mapping: {e.args[-1]}")], []
            conn.rollback()
            return [], types
        except Exception as e:
            self.close()
            raise classify(e) from e

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _my_problem(mapping: JoinedMapping, e: Any) -> Problem:
    message = str(e.args[-1]) if e.args else str(e)
    m = re.search(r"at line (\d+)\s*$", message)
    line = max(1, int(m.group(1)) - 1) if m else 1
    return Problem(mapping.file, line, 1, f"the source rejects the mapping: {message}")


def source_reader(cfg: Any) -> PgReader | MyReader:
    """The reader for a source connector config (connects on first use)."""
    if source_dialect(cfg) == "mysql":
        return MyReader(cfg.connect_kwargs())
    return PgReader(cfg.conninfo())

