"""Reading the source catalog from a live server: the only part of `mappers` that does I/O.

Role: the compiler checks a mapping against the tables and column types the source database really
has (`mappers.sqltypes.Catalog`). `read_pg_catalog` reads them from PostgreSQL's system catalogs
(domains resolved to their base types, each column's collation, the primary key);
`read_mysql_catalog` from MySQL/MariaDB's information_schema. `source_catalog(cfg)` connects with a
source connector's own settings (read-only, one short query) and returns the catalog with the
connector's dialect and value encodings (`source_encoding`), which decide how event values are read.

Failure story: connection and query errors are classified once (`cdc.errors.classify`): an
unreachable server is `Transient`, a missing privilege `SourceError`. Nothing is retried here; the
caller (`cdc run`, `cdc mapper test`) decides.
"""

from __future__ import annotations

from typing import Any, Protocol

from cdc.errors import classify
from mappers.sqltypes import Catalog, Column, Dialect, Table, parse_type
from mappers.values import Encoding

__all__ = ["read_mysql_catalog", "read_pg_catalog", "source_catalog", "source_dialect", "source_encoding"]

PG_CATALOG_SQL = """
SELECT n.nspname::text, c.relname::text, a.attname::text,
       format_type(CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END,
                   CASE WHEN t.typtype = 'd' AND a.atttypmod < 0 THEN t.typtypmod ELSE a.atttypmod END),
       CASE WHEN a.attcollation = 0 THEN NULL
            WHEN co.collname = 'default' THEN (SELECT datcollate::text FROM pg_database
                                               WHERE datname = current_database())
            ELSE co.collname::text END,
       COALESCE(a.attnum = ANY (i.indkey), false)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY 1, 2, a.attnum
"""

MYSQL_CATALOG_SQL = """
SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, COLLATION_NAME, COLUMN_KEY
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION
"""


class _Cursor(Protocol):
    def execute(self, query: Any, *args: Any) -> Any: ...
    def fetchall(self) -> Any: ...


def _tables(rows: list[tuple[Any, ...]], dialect: Dialect) -> Catalog:
    grouped: dict[tuple[str, str], list[Column]] = {}
    for schema, table, column, type_text, collation, key in rows:
        is_key = bool(key) if dialect == "postgres" else key == "PRI"
        grouped.setdefault((str(schema), str(table)), []).append(
            Column(str(column), parse_type(str(type_text), dialect, collation), is_key))
    return Catalog.of(dialect, [Table(s, t, tuple(cols)) for (s, t), cols in grouped.items()])


def read_pg_catalog(conn: Any) -> Catalog:
    """Every user table's columns from an open psycopg connection."""
    rows = conn.execute(PG_CATALOG_SQL).fetchall()
    return _tables(list(rows), "postgres")


def read_mysql_catalog(conn: Any) -> Catalog:
    """Every user table's columns from an open PyMySQL connection."""
    with conn.cursor() as cur:
        cur.execute(MYSQL_CATALOG_SQL)
        rows = cur.fetchall()
    return _tables(list(rows), "mysql")


def source_dialect(cfg: Any) -> Dialect:
    """The SQL dialect of a source connector config (by its connector class)."""
    cls = str(getattr(cfg, "connector_class", "")).lower()
    return "mysql" if ("mysql" in cls or "mariadb" in cls) else "postgres"


def source_encoding(cfg: Any) -> Encoding:
    """How the connector encodes values: its decimal.handling.mode and time.precision.mode."""
    decimal: Any = getattr(cfg, "decimal_handling_mode", "string")
    time_mode: Any = getattr(cfg, "time_precision_mode", "adaptive")
    return Encoding(decimal=decimal, time_precision=time_mode)


def source_catalog(cfg: Any) -> Catalog:
    """Connect with the source connector's settings and read its catalog (blocking; run it in a thread)."""
    try:
        if source_dialect(cfg) == "mysql":
            import pymysql

            conn = pymysql.connect(**cfg.connect_kwargs())
            try:
                return read_mysql_catalog(conn)
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(cfg.conninfo(), autocommit=True, connect_timeout=10) as pg:
            return read_pg_catalog(pg)
    except Exception as e:  # driver errors of either kind: classified once, here
        raise classify(e) from e
