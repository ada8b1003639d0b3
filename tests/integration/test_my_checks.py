"""Pre-flight checks of MySQL/MariaDB sources (`check_mysql`): against real MariaDB 10.11 servers (the
session server, one started with every bad setting, users with too few privileges), and the MySQL-only
paths through the pure `judge` / `parse_grants` with what a MySQL server reports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cdc.config import BinlogSourceConfig, validate_connector
from cdc.readers.mysql_checks import (
    Grants,
    ServerFacts,
    check_mysql,
    judge,
    parse_grants,
    server_flavor,
    server_version,
)
from tests.servers.mariadb import MariaDbServer, running_mariadb
from tests.servers.postgres import free_port

MARIADB = "io.debezium.connector.mariadb.MariaDbConnector"
MYSQL = "io.debezium.connector.mysql.MySqlConnector"
USER_PASSWORD = "Sel-Only-Pa55w0rd"


def config(srv: MariaDbServer | None, name: str = "v", cls: str = MARIADB, **extra: Any) -> BinlogSourceConfig:
    props: dict[str, Any] = {
        "name": name, "connector.class": cls, "database.hostname": srv.host if srv else "127.0.0.1",
        "database.port": str(srv.port if srv else 3306), "database.user": srv.user if srv else "debezium",
        "database.password": srv.password if srv else "dbz-password", "database.server.id": "184054",
        "topic.prefix": name, **extra}
    cfg = validate_connector(props)
    assert isinstance(cfg, BinlogSourceConfig)
    return cfg


def prefixed(name: str, *messages: str) -> list[str]:
    return [f"connector '{name}': {m}" for m in messages]


@pytest.fixture
def user(my_server: MariaDbServer) -> Iterator[str]:
    """A login of its own on the session server (users are server-wide: a unique name, dropped after)."""
    name = f"u_{uuid.uuid4().hex[:8]}"
    with my_server.root() as c, c.cursor() as cur:
        cur.execute(f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{USER_PASSWORD}'")
    try:
        yield name
    finally:
        with my_server.root() as c, c.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{name}'@'127.0.0.1'")


def root_sql(srv: MariaDbServer, *statements: str) -> None:
    with srv.root() as c, c.cursor() as cur:
        for s in statements:
            cur.execute(s)


# --- against real MariaDB servers ------------------------------------------------------------------


async def test_session_server_passes_clean(my_server: MariaDbServer, my_db: str) -> None:
    my_server.execute(my_db, "CREATE TABLE orders (id int PRIMARY KEY, total decimal(12,2))")
    assert await check_mysql(config(my_server, **{"database.include.list": my_db})) == ([], [])


async def test_every_bad_setting_at_once() -> None:
    bad = {"binlog-format": "STATEMENT", "binlog-row-image": "MINIMAL", "binlog-row-metadata": "MINIMAL",
           "binlog-expire-logs-seconds": "3600", "skip-log-bin": "1"}
    with running_mariadb(bad) as srv:
        srv.execute(None, "CREATE DATABASE erp", "CREATE TABLE erp.orders (id int PRIMARY KEY)")
        problems, warnings = await check_mysql(config(srv, "v_bad", **{"database.include.list": "erp"}))
    assert problems == prefixed(
        "v_bad",
        "binary logging is off (log_bin=OFF); enable it in the server's configuration (log-bin, with server-id) "
        "and restart the server",
        "binlog_format is 'STATEMENT'; set binlog_format=ROW in the server's configuration (SET GLOBAL "
        "binlog_format=ROW reaches only sessions opened after it)",
        "binlog_row_image is 'MINIMAL'; set binlog_row_image=FULL: otherwise updates and deletes do not carry "
        "every column")
    assert warnings == prefixed(
        "v_bad",
        "binlog_row_metadata is 'MINIMAL', so the binlog does not name the columns and the bridge relies on its "
        "schema history, built from the DDL statements in the binlog (a statement it cannot parse stops the "
        "tables it touches); set binlog_row_metadata=FULL to avoid that",
        "binary logs are purged after 1 h (binlog_expire_logs_seconds=3600): a bridge stopped for longer cannot "
        "resume from its position and needs a new snapshot; keep them for days (e.g. "
        "binlog_expire_logs_seconds=604800)")


async def test_user_with_only_select(my_server: MariaDbServer, my_db: str, user: str) -> None:
    my_server.execute(my_db, "CREATE TABLE orders (id int PRIMARY KEY)")
    root_sql(my_server, f"GRANT SELECT ON `{my_db}`.* TO '{user}'@'127.0.0.1'")
    cfg = config(my_server, "v_sel", **{"database.user": user, "database.password": USER_PASSWORD,
                                        "database.include.list": my_db})
    problems, warnings = await check_mysql(cfg)
    assert problems == prefixed(
        "v_sel",
        f"user '{user}' lacks the REPLICATION SLAVE privilege, which reading the binlog needs (GRANT "
        f"REPLICATION SLAVE ON *.* TO '{user}'@'127.0.0.1')",
        f"user '{user}' lacks the BINLOG MONITOR privilege, which finding the binlog position (SHOW MASTER "
        f"STATUS) needs (GRANT BINLOG MONITOR ON *.* TO '{user}'@'127.0.0.1')")
    assert warnings == []
    assert USER_PASSWORD not in "\n".join(problems)


async def test_tables_the_snapshot_cannot_read(my_server: MariaDbServer, my_db: str, user: str) -> None:
    my_server.execute(my_db, "CREATE TABLE readable (id int PRIMARY KEY)", "CREATE TABLE hidden (id int PRIMARY KEY)",
                      "CREATE TABLE insert_only (id int PRIMARY KEY)")
    root_sql(my_server, f"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'127.0.0.1'",
             f"GRANT SELECT ON `{my_db}`.`readable` TO '{user}'@'127.0.0.1'",
             f"GRANT INSERT ON `{my_db}`.`insert_only` TO '{user}'@'127.0.0.1'")
    login = {"database.user": user, "database.password": USER_PASSWORD, "database.include.list": my_db}
    problems, warnings = await check_mysql(config(my_server, "v_tbl", **login))
    # `hidden` is invisible to the user (no privilege at all); `insert_only` is visible but unreadable.
    assert problems == prefixed("v_tbl", f"user '{user}' cannot SELECT {my_db}.insert_only, which the snapshot "
                                         f"reads (GRANT SELECT ON `{my_db}`.* TO '{user}'@'127.0.0.1')")
    assert warnings == []
    # Without a data snapshot nothing needs SELECT.
    assert await check_mysql(config(my_server, "v_tbl", **login, **{"snapshot.mode": "no_data"})) == ([], [])


async def test_privileges_through_a_default_role(my_server: MariaDbServer, my_db: str, user: str) -> None:
    my_server.execute(my_db, "CREATE TABLE orders (id int PRIMARY KEY)")
    role = f"r_{user}"
    root_sql(my_server, f"CREATE ROLE {role}",
             f"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO {role}",
             f"GRANT SELECT ON `{my_db}`.* TO {role}",
             f"GRANT {role} TO '{user}'@'127.0.0.1'",
             f"SET DEFAULT ROLE {role} FOR '{user}'@'127.0.0.1'")
    try:
        cfg = config(my_server, "v_role", **{"database.user": user, "database.password": USER_PASSWORD,
                                             "database.include.list": my_db})
        assert await check_mysql(cfg) == ([], [])
    finally:
        root_sql(my_server, f"DROP ROLE {role}")


async def test_mysql_connector_against_mariadb(my_server: MariaDbServer, my_db: str) -> None:
    my_server.execute(my_db, "CREATE TABLE orders (id int PRIMARY KEY)")
    with my_server.connect() as c, c.cursor() as cur:
        cur.execute("SELECT VERSION()")
        row = cur.fetchone()
        assert row is not None
    version = ".".join(map(str, server_version(str(row[0]))))
    problems, warnings = await check_mysql(config(my_server, "v_flavor", MYSQL, **{"database.include.list": my_db}))
    assert problems == prefixed("v_flavor", f"the server at 127.0.0.1:{my_server.port} is MariaDB {version}, but "
                                            f"connector.class is {MYSQL}; set connector.class={MARIADB}")
    assert warnings == []


async def test_server_id_of_the_server_itself(my_server: MariaDbServer, my_db: str) -> None:
    my_server.execute(my_db, "CREATE TABLE orders (id int PRIMARY KEY)")
    problems, _ = await check_mysql(config(my_server, "v_id", **{"database.include.list": my_db,
                                                                 "database.server.id": "1"}))
    assert problems == prefixed("v_id", "database.server.id=1 is the server_id of the server itself; every "
                                        "replica and binlog reader needs its own: choose another database.server.id")


async def test_filters_tables_without_key_and_unknown_databases(my_server: MariaDbServer, my_db: str) -> None:
    my_server.execute(my_db, "CREATE TABLE orders (id int PRIMARY KEY)", "CREATE TABLE log_a (msg text)",
                      "CREATE TABLE log_b (msg text)", "CREATE TABLE tmp_x (msg text)")
    cfg = config(my_server, "v_tab", **{"database.include.list": f"{my_db},nope_{my_db}",
                                        "table.exclude.list": f"{my_db}\\.tmp_.*"})
    problems, warnings = await check_mysql(cfg)
    assert problems == []
    assert warnings == prefixed(
        "v_tab",
        f"database.include.list entry 'nope_{my_db}' matches no database that user 'cdc' can see (it does not "
        "exist, or the user has no privilege on it)",
        f"tables {my_db}.log_a, {my_db}.log_b have no primary key: change events of such a table have a null "
        "key, so consumers can neither order nor deduplicate them by key; add a PRIMARY KEY where a column set "
        "is unique")


async def test_no_table_captured_is_a_warning(my_server: MariaDbServer, my_db: str) -> None:
    cfg = config(my_server, "v_none", **{"database.include.list": my_db, "table.include.list": ".*\\.orders"})
    assert await check_mysql(cfg) == ([], prefixed(
        "v_none", "no table that user 'cdc' can see matches database.include.list and table.include.list: "
                  "nothing is captured until a matching table is created"))


@pytest.mark.parametrize("wrong", ["port", "password"])
async def test_connection_failure_is_one_problem_without_the_password(
        my_server: MariaDbServer, user: str, wrong: str) -> None:
    port = free_port() if wrong == "port" else my_server.port
    password = USER_PASSWORD + ("-wrong" if wrong == "password" else "")
    cfg = config(my_server, "v_conn", **{"database.user": user, "database.password": password,
                                         "database.port": str(port), "connect.timeout.ms": "5000"})
    problems, warnings = await check_mysql(cfg)
    assert len(problems) == 1 and warnings == []
    assert problems[0].startswith(f"connector 'v_conn': cannot connect to 127.0.0.1:{port} as '{user}': ")
    assert ("Connection refused" if wrong == "port" else "Access denied") in problems[0]
    assert USER_PASSWORD not in problems[0]


# --- the MySQL-only paths, from what a MySQL server reports -----------------------------------------


def test_server_flavor_and_version() -> None:
    assert server_flavor("8.0.36") == "mysql" and server_version("8.0.36") == (8, 0, 36)
    assert server_flavor("8.0.36-0ubuntu0.22.04.1-log") == "mysql"
    assert server_flavor("10.11.6-MariaDB-0+deb12u1-log") == "mariadb"
    assert server_version("10.11.6-MariaDB-0+deb12u1-log") == (10, 11, 6)
    assert server_version("5.5.5-10.4.32-MariaDB") == (10, 4, 32)  # the replication handshake's prefix


def test_parse_grants_mysql_and_mariadb_lines() -> None:
    grants = parse_grants([
        "GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `dbz`@`%`",
        "GRANT BACKUP_ADMIN,XA_RECOVER_ADMIN ON *.* TO `dbz`@`%`",
        "GRANT SELECT ON `erp\\_%`.* TO `dbz`@`%`",
        "GRANT ALL PRIVILEGES ON `crm`.* TO `dbz`@`%`",
        "GRANT SELECT, INSERT ON `shop`.`orders` TO `dbz`@`%`",
        "GRANT SELECT (`id`, `name`), UPDATE ON `shop`.`customers` TO `dbz`@`%`",
        "GRANT EXECUTE ON PROCEDURE `erp`.`p` TO `dbz`@`%`",
        "GRANT PROXY ON ''@'' TO 'root'@'localhost' WITH GRANT OPTION",
        "GRANT `cdc_role`@`%`,`reader`@`%` TO `dbz`@`%`",
        "GRANT `maria_role` TO `dbz`@`localhost`",
    ])
    assert grants.on_all == {"SELECT", "RELOAD", "SHOW DATABASES", "REPLICATION SLAVE", "REPLICATION CLIENT",
                             "BACKUP_ADMIN", "XA_RECOVER_ADMIN"}
    assert grants.roles == ("`cdc_role`@`%`", "`reader`@`%`", "`maria_role`")
    no_global = Grants(on_databases=grants.on_databases, on_tables=grants.on_tables)
    assert no_global.can_select("erp_2024", "t") and not no_global.can_select("erpx2024", "t")  # \_ is literal
    assert no_global.can_select("crm", "leads")  # ALL PRIVILEGES
    assert no_global.can_select("shop", "orders")
    assert not no_global.can_select("shop", "customers")  # only some columns
    assert not no_global.can_select("other", "t")


MYSQL_GOOD = {"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL",
              "binlog_row_value_options": "", "binlog_expire_logs_seconds": "2592000",
              "binlog_expire_logs_auto_purge": "ON", "expire_logs_days": "0", "server_id": "1", "gtid_mode": "OFF"}
DEBEZIUM_GRANTS = ["GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO "
                   "`debezium`@`%`"]
TABLES = (("erp", "orders", True),)


def mysql_facts(**kw: Any) -> ServerFacts:
    base: dict[str, Any] = {"version": "8.0.36", "account": "debezium@%", "variables": MYSQL_GOOD,
                            "grants": parse_grants(DEBEZIUM_GRANTS), "databases": ("erp",), "tables": TABLES}
    base.update(kw)
    return ServerFacts(**base)


def test_a_well_set_up_mysql_server_passes() -> None:
    assert judge(config(None, cls=MYSQL), mysql_facts()) == ([], [])


def test_mysql_settings() -> None:
    variables = {**MYSQL_GOOD, "binlog_row_metadata": "MINIMAL", "binlog_row_value_options": "PARTIAL_JSON",
                 "binlog_expire_logs_seconds": "43200", "binlog_row_image": "NOBLOB", "binlog_format": "MIXED"}
    problems, warnings = judge(config(None, cls=MYSQL, **{"gtid.source.includes": "3e11fa47-.*"}),
                               mysql_facts(variables=variables))
    assert problems == [
        "binlog_format is 'MIXED'; set binlog_format=ROW in the server's configuration (SET GLOBAL "
        "binlog_format=ROW reaches only sessions opened after it)",
        "binlog_row_image is 'NOBLOB'; set binlog_row_image=FULL: otherwise updates and deletes do not carry "
        "every column",
        "binlog_row_value_options is 'PARTIAL_JSON'; set binlog_row_value_options='' : otherwise JSON updates "
        "are logged as diffs without the whole document"]
    assert warnings == [
        "binlog_row_metadata is 'MINIMAL', so the binlog does not name the columns and the bridge relies on its "
        "schema history, built from the DDL statements in the binlog (a statement it cannot parse stops the "
        "tables it touches); set binlog_row_metadata=FULL to avoid that",
        "binary logs are purged after 12 h (binlog_expire_logs_seconds=43200): a bridge stopped for longer cannot "
        "resume from its position and needs a new snapshot; keep them for days (e.g. "
        "binlog_expire_logs_seconds=604800)",
        "gtid.source.includes is set but gtid_mode is 'OFF': the server writes no GTIDs, so the filter has nothing "
        "to match; set gtid_mode=ON and enforce_gtid_consistency=ON, or remove it"]


def test_mysql_57_has_no_row_metadata_and_purges_by_days() -> None:
    variables = {k: v for k, v in MYSQL_GOOD.items()
                 if k not in ("binlog_row_metadata", "binlog_row_value_options", "binlog_expire_logs_seconds",
                              "binlog_expire_logs_auto_purge")}
    _, warnings = judge(config(None, cls=MYSQL), mysql_facts(version="5.7.44-log", variables={
        **variables, "expire_logs_days": "0"}))
    assert warnings == [
        "MySQL 5.7.44 writes no column names into the binlog (binlog_row_metadata needs MySQL 8.0.1 or MariaDB "
        "10.5), so the bridge relies on its schema history, built from the DDL statements in the binlog (a "
        "statement it cannot parse stops the tables it touches)"]
    _, warnings = judge(config(None, cls=MYSQL), mysql_facts(variables={
        **MYSQL_GOOD, "binlog_expire_logs_seconds": "0", "expire_logs_days": "0.5"}))
    assert [w.split(":")[0] for w in warnings] == ["binary logs are purged after 12 h (expire_logs_days=0.5)"]


def test_retention_never_purged_or_long_is_fine() -> None:
    for variables in ({**MYSQL_GOOD, "binlog_expire_logs_seconds": "0"},
                      {**MYSQL_GOOD, "binlog_expire_logs_seconds": "600", "binlog_expire_logs_auto_purge": "OFF"},
                      {**MYSQL_GOOD, "binlog_expire_logs_seconds": "86400"}):
        assert judge(config(None, cls=MYSQL), mysql_facts(variables=variables)) == ([], [])


def test_mariadb_connector_against_mysql_and_gtids_on() -> None:
    problems, warnings = judge(config(None, cls=MARIADB, **{"gtid.source.includes": "0-1"}),
                               mysql_facts(variables={**MYSQL_GOOD, "gtid_mode": "ON"}))
    assert problems == [f"the server at 127.0.0.1:3306 is MySQL 8.0.36, but connector.class is {MARIADB}; set "
                        f"connector.class={MYSQL}"]
    assert warnings == []


@pytest.mark.parametrize(("version", "grant", "missing"), [
    ("8.0.36", "GRANT SUPER, REPLICATION SLAVE ON *.* TO `debezium`@`%`", None),  # SUPER covers it on MySQL
    ("10.4.32-MariaDB", "GRANT SUPER, REPLICATION SLAVE ON *.* TO `debezium`@`%`", None),
    ("10.11.6-MariaDB", "GRANT SUPER, REPLICATION SLAVE ON *.* TO `debezium`@`%`", "BINLOG MONITOR"),
    ("10.4.32-MariaDB", "GRANT REPLICATION SLAVE ON *.* TO `debezium`@`%`", "REPLICATION CLIENT"),
    ("8.0.36", "GRANT ALL PRIVILEGES ON *.* TO `debezium`@`%`", None),
    ("8.0.36", "GRANT REPLICATION CLIENT ON *.* TO `debezium`@`%`", "REPLICATION SLAVE"),
])
def test_replication_privileges_by_server(version: str, grant: str, missing: str | None) -> None:
    cls = MARIADB if "MariaDB" in version else MYSQL
    grants = parse_grants([grant, "GRANT SELECT ON `erp`.* TO `debezium`@`%`"])
    problems, _ = judge(config(None, cls=cls), mysql_facts(version=version, grants=grants))
    if missing is None:
        assert problems == []
    else:
        [problem] = problems
        assert problem.startswith(f"user 'debezium' lacks the {missing} privilege, which ")
        assert problem.endswith(f"(GRANT {missing} ON *.* TO 'debezium'@'%')")


def test_unreadable_roles_turn_missing_privileges_into_warnings() -> None:
    grants = parse_grants(["GRANT USAGE ON *.* TO `debezium`@`%`", "GRANT `cdc_role`@`%` TO `debezium`@`%`"])
    problems, warnings = judge(config(None, cls=MYSQL), mysql_facts(grants=grants, roles_resolved=False))
    assert problems == []
    assert [w.split(",")[0] for w in warnings] == [
        "user 'debezium' may lack the REPLICATION SLAVE privilege",
        "user 'debezium' may lack the REPLICATION CLIENT privilege",
        "user 'debezium' cannot SELECT erp.orders"]
    assert warnings[2].endswith(", unless one of the user's roles allows it")


def test_server_id_of_a_replica() -> None:
    problems, _ = judge(config(None, cls=MYSQL, **{"database.server.id": "2"}), mysql_facts(replica_ids=(2, 3)))
    assert problems == ["database.server.id=2 is the server_id of a replica of this server; every replica and "
                        "binlog reader needs its own: choose another database.server.id"]


def test_long_lists_are_cut() -> None:
    tables = tuple(("erp", f"t{i:02}", False) for i in range(12))
    _, warnings = judge(config(None, cls=MYSQL), mysql_facts(tables=tables))
    assert warnings[0].startswith("tables erp.t00, erp.t01, erp.t02, erp.t03, erp.t04, erp.t05, erp.t06, erp.t07, "
                                  "erp.t08, erp.t09 and 2 more have no primary key")
