"""Pre-flight checks of a PostgreSQL source for `cdc validate`: every problem at once, with the fix.

Connects with the connector's settings and reads server settings and catalogs only (never changes
anything). Connection failures are reported as one problem; no check raises.
"""

from __future__ import annotations

import psycopg

from cdc.config import PostgresSourceConfig
from cdc.readers.postgres import user_tables_sql


async def check_postgres(cfg: PostgresSourceConfig) -> tuple[list[str], list[str]]:
    """Return (problems, warnings) for one source connector."""
    name = cfg.name
    problems: list[str] = []
    warnings: list[str] = []
    try:
        conn = await psycopg.AsyncConnection.connect(cfg.conninfo(), autocommit=True, connect_timeout=10)
    except psycopg.Error as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return [f"connector '{name}': cannot connect to {cfg.database_hostname}:{cfg.database_port} "
                f"database '{cfg.database_dbname}' as '{cfg.database_user}': {msg}"], []
    async with conn:
        async def one(q: str, p: tuple[object, ...] = ()) -> object:
            row = await (await conn.execute(q, p)).fetchone()
            return None if row is None else row[0]

        if (v := await one("SHOW wal_level")) != "logical":
            problems.append(f"connector '{name}': wal_level is '{v}'; set wal_level=logical and restart "
                            "the server")
        if int(str(await one("SHOW server_version_num"))) < 100000:
            problems.append(f"connector '{name}': PostgreSQL 10 or newer is needed for pgoutput")
        if not await one("SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user"):
            problems.append(f"connector '{name}': user '{cfg.database_user}' needs the REPLICATION attribute "
                            f"(ALTER ROLE {cfg.database_user} WITH REPLICATION)")
        superuser = bool(await one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
        slots = await one("SELECT count(*) FROM pg_replication_slots")
        max_slots = await one("SHOW max_replication_slots")
        slot = await (await conn.execute(
            "SELECT plugin, database, active FROM pg_replication_slots WHERE slot_name = %s",
            (cfg.slot_name,))).fetchone()
        if slot is None and int(str(slots)) >= int(str(max_slots)):
            problems.append(f"connector '{name}': all {max_slots} replication slots are in use; raise "
                            "max_replication_slots or drop an unused slot")
        if slot is not None:
            plugin, database, active = slot
            if plugin != "pgoutput" or database != cfg.database_dbname:
                problems.append(f"connector '{name}': slot '{cfg.slot_name}' belongs to plugin {plugin} on "
                                f"database {database}; choose another slot.name")
            elif active:
                problems.append(f"connector '{name}': slot '{cfg.slot_name}' is in use by another process")
        pub = await one("SELECT count(*) FROM pg_publication WHERE pubname = %s", (cfg.publication_name,))
        mode = cfg.publication_autocreate_mode
        if not pub and mode == "disabled":
            problems.append(f"connector '{name}': publication '{cfg.publication_name}' does not exist and "
                            "publication.autocreate.mode=disabled; create it (CREATE PUBLICATION "
                            f"{cfg.publication_name} FOR TABLE ...) or set publication.autocreate.mode")
        if not pub and mode == "all_tables" and not superuser:
            problems.append(f"connector '{name}': publication '{cfg.publication_name}' does not exist and only "
                            f"a superuser can create it FOR ALL TABLES; create it as a superuser, or set "
                            "publication.autocreate.mode=filtered (needs ownership of the tables)")
        rows = await (await conn.execute(user_tables_sql(
            "n.nspname, c.relname, c.relreplident, "
            "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), "
            "has_table_privilege(c.oid, 'SELECT'), pg_has_role(c.relowner, 'USAGE')"))).fetchall()
        included = [r for r in rows if cfg.table_included(r[0], r[1])]
        if not included:
            problems.append(f"connector '{name}': no table matches table.include.list/schema.include.list")
        if cfg.snapshot_mode != "no_data":
            unreadable = [f"{s}.{t}" for s, t, _, _, can_select, _ in included if not can_select]
            if unreadable:
                problems.append(f"connector '{name}': user '{cfg.database_user}' cannot SELECT "
                                f"{', '.join(unreadable)}, which the snapshot reads (GRANT SELECT ON ... TO "
                                f"{cfg.database_user})")
        if mode == "filtered" and not superuser:
            not_owned = [f"{s}.{t}" for s, t, _, _, _, owner in included if not owner]
            if not_owned:
                problems.append(f"connector '{name}': publication.autocreate.mode=filtered puts the tables in "
                                f"the publication, which needs ownership of {', '.join(not_owned)}")
        for s, t, ri, pk, _, _ in included:
            if not pk and ri in ("d", "n"):
                warnings.append(f"connector '{name}': table {s}.{t} has no primary key and REPLICA IDENTITY "
                                f"{'NOTHING' if ri == 'n' else 'DEFAULT'}: its UPDATEs and DELETEs cannot be "
                                f"published; run ALTER TABLE {s}.{t} REPLICA IDENTITY FULL")
    return problems, warnings
