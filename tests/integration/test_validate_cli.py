"""`cdc validate` and failing `cdc run` as an operator sees them: exit codes, every problem at once,
and a password that never shows up, against a real PostgreSQL 15 and MariaDB 10.11 (tests/conftest.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import execute, run_cdc, slot_names, write_connectors
from tests.servers.mariadb import MariaDbServer
from tests.servers.postgres import PgServer, free_port

PASSWORD = "S3cr3t-Pa55"
SECRET_ENV = {"E2E_PG_PASSWORD": PASSWORD}


def dbname(dsn: str) -> str:
    return dsn.rsplit("dbname=", 1)[1]


def one_line(text: str) -> str:
    return " ".join(text.split())


def no_secret(*outputs: str) -> None:
    for out in outputs:
        assert PASSWORD not in out


@pytest.fixture
def nouser(pg_server: PgServer) -> Iterator[str]:
    """A login role without REPLICATION (roles are cluster-wide: a unique name, dropped afterwards)."""
    name = f"nouser_{uuid.uuid4().hex[:8]}"
    execute(pg_server.dsn(), f"CREATE ROLE {name} LOGIN")
    try:
        yield name
    finally:
        execute(pg_server.dsn(), f"DROP ROLE {name}")


def test_validate_good_config_and_warning(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    execute(pg_db, "CREATE TABLE items (id int PRIMARY KEY, v text)", "CREATE TABLE loose (a int, b text)")
    good = write_connectors(tmp_path, pg_server, dbname(pg_db), "v_good", tables="public\\.items")
    p = run_cdc(["validate", *map(str, good)], extra_env=SECRET_ENV)
    assert p.returncode == 0, p.stderr
    assert "OK" in p.stdout and "2 connector(s) valid" in one_line(p.stdout)
    assert p.stderr == ""
    # A table without a primary key and with REPLICA IDENTITY DEFAULT: its updates and deletes cannot
    # be published. A warning, not a failure.
    loose = write_connectors(tmp_path, pg_server, dbname(pg_db), "v_loose")
    p2 = run_cdc(["validate", str(loose[0])], extra_env=SECRET_ENV)
    assert p2.returncode == 0, p2.stderr
    err = one_line(p2.stderr)
    assert "warning: connector 'v_loose': table public.loose has no primary key and REPLICA IDENTITY DEFAULT" \
        in err and "REPLICA IDENTITY FULL" in err
    assert "public.items" not in err
    assert slot_names(pg_db) == [], "validate changes nothing on the server"
    no_secret(p.stdout, p.stderr, p2.stdout, p2.stderr)


def test_validate_lists_every_config_error(pg_server: PgServer, tmp_path: Path) -> None:
    cfg = {"name": "v_bad", "config": {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": str(pg_server.port), "database.user": "postgres",
        "database.password": "${env:E2E_PG_PASSWORD}", "topic.prefix": "v_bad",
        "snapshot.mode": "sometimes", "tabel.include.list": "public\\..*"}}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    p = run_cdc(["validate", str(path)], extra_env=SECRET_ENV)
    assert p.returncode == 2, p.stderr
    lines = [line for line in p.stderr.splitlines() if line.startswith("  - ")]
    assert len(lines) == 3, p.stderr
    err = one_line(p.stderr)
    assert "'snapshot.mode' = 'sometimes'" in err and "initial" in err
    assert "unknown property 'tabel.include.list'" in err and "did you mean 'table.include.list'" in err
    assert "database.dbname" in err
    assert "Traceback" not in p.stderr
    no_secret(p.stdout, p.stderr)


def test_validate_server_problems(pg_server: PgServer, pg_db: str, tmp_path: Path, nouser: str) -> None:
    execute(pg_db, "CREATE TABLE items (id int PRIMARY KEY, v text)")
    db = dbname(pg_db)
    wrong_port = write_connectors(tmp_path, pg_server, db, "v_port", extra={"database.port": str(free_port())})
    no_repl = write_connectors(tmp_path, pg_server, db, "v_user", extra={"database.user": nouser})
    p = run_cdc(["validate", str(wrong_port[0]), str(no_repl[0])], extra_env=SECRET_ENV)
    assert p.returncode == 1, p.stderr
    err = one_line(p.stderr)
    assert "connector 'v_port': cannot connect to 127.0.0.1:" in err
    assert f"connector 'v_user': user '{nouser}' needs the REPLICATION attribute" in err
    assert f"ALTER ROLE {nouser} WITH REPLICATION" in err
    assert f"user '{nouser}' cannot SELECT public.items" in err
    assert "only a superuser can create it FOR ALL TABLES" in err
    assert "Traceback" not in p.stderr
    no_secret(p.stdout, p.stderr)


def test_failing_run_reports_without_the_password(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    db = dbname(pg_db)
    files = write_connectors(tmp_path, pg_server, db, "r_port",
                             extra={"database.port": str(free_port()), "errors.max.retries": "1"})
    p = run_cdc(["run", "--stop-at-end", "--data-dir", str(tmp_path / "data"), *map(str, files)],
                extra_env=SECRET_ENV, timeout=60)
    assert p.returncode == 1, p.stderr
    err = one_line(p.stderr)
    assert "reconnecting" in err, "one retry (errors.max.retries=1) before giving up"
    assert "error:" in err and "Connection refused" in err
    assert "Traceback" not in p.stderr
    no_secret(p.stdout, p.stderr)
    # With --debug the traceback is shown: still no password in it.
    p2 = run_cdc(["run", "--stop-at-end", "--debug", "--data-dir", str(tmp_path / "data"), *map(str, files)],
                 extra_env=SECRET_ENV, timeout=60)
    assert p2.returncode != 0
    no_secret(p2.stdout, p2.stderr)


# --- MySQL / MariaDB sources ----------------------------------------------------------------------

MY_PASSWORD = "My-V4lidate-S3cret"
MY_SECRET_ENV = {"E2E_MY_PASSWORD": MY_PASSWORD}


@pytest.fixture
def my_user(my_server: MariaDbServer) -> Iterator[str]:
    """A MariaDB login with every privilege and a password long enough to be redacted everywhere."""
    name = f"v_{uuid.uuid4().hex[:8]}"
    with my_server.root() as c, c.cursor() as cur:
        cur.execute(f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{MY_PASSWORD}'")
        cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{name}'@'127.0.0.1'")
    try:
        yield name
    finally:
        with my_server.root() as c, c.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{name}'@'127.0.0.1'")


def write_my_connector(tmp: Path, srv: MariaDbServer, user: str, db: str, name: str, **extra: str) -> Path:
    cfg = {"name": name, "config": {
        "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
        "database.hostname": "127.0.0.1", "database.port": str(srv.port), "database.user": user,
        "database.password": "${env:E2E_MY_PASSWORD}", "database.server.id": "184054", "topic.prefix": name,
        "database.include.list": db, **extra}}
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return path


def test_validate_mariadb_source(my_server: MariaDbServer, my_db: str, my_user: str, tmp_path: Path) -> None:
    my_server.execute(my_db, "CREATE TABLE items (id int PRIMARY KEY, v text)", "CREATE TABLE loose (a int)")
    good = write_my_connector(tmp_path, my_server, my_user, my_db, "v_my", **{"table.include.list": ".*\\.items"})
    p = run_cdc(["validate", str(good)], extra_env=MY_SECRET_ENV)
    assert p.returncode == 0, p.stderr
    assert "1 connector(s) valid" in one_line(p.stdout) and p.stderr == ""
    # A table without a primary key is a warning, not a failure.
    loose = write_my_connector(tmp_path, my_server, my_user, my_db, "v_my_loose")
    p2 = run_cdc(["validate", str(loose)], extra_env=MY_SECRET_ENV)
    assert p2.returncode == 0, p2.stderr
    assert f"warning: connector 'v_my_loose': table {my_db}.loose has no primary key" in one_line(p2.stderr)
    for out in (p.stdout, p.stderr, p2.stdout, p2.stderr):
        assert MY_PASSWORD not in out


def test_validate_mariadb_server_problems(my_server: MariaDbServer, my_db: str, my_user: str,
                                          tmp_path: Path) -> None:
    my_server.execute(my_db, "CREATE TABLE items (id int PRIMARY KEY)")
    wrong_port = write_my_connector(tmp_path, my_server, my_user, my_db, "v_my_port",
                                    **{"database.port": str(free_port()), "connect.timeout.ms": "5000"})
    wrong_class = write_my_connector(tmp_path, my_server, my_user, my_db, "v_my_class",
                                     **{"connector.class": "MySqlConnector", "database.server.id": "1"})
    p = run_cdc(["validate", str(wrong_port), str(wrong_class)], extra_env=MY_SECRET_ENV)
    assert p.returncode == 1, p.stderr
    err = one_line(p.stderr)
    assert "3 problems:" in err
    assert "connector 'v_my_port': cannot connect to 127.0.0.1:" in err and f"as '{my_user}'" in err
    assert "connector 'v_my_class': the server at 127.0.0.1:" in err
    assert "set connector.class=io.debezium.connector.mariadb.MariaDbConnector" in err
    assert "connector 'v_my_class': database.server.id=1 is the server_id of the server itself" in err
    assert "Traceback" not in p.stderr
    for out in (p.stdout, p.stderr):
        assert MY_PASSWORD not in out


# --- mappings ---------------------------------------------------------------------------------------

BAD_MAPPING = """SELECT TRIM(cuno) AS id,
       nmae AS name,
       credit + 'x' AS credit_limit
FROM erp.customers
"""

ORDER_MAPPING = """SELECT TRIM(h.orno) AS id,
       COALESCE((SELECT json_agg(json_build_object('line_number', l.n, 'quantity', l.qty) ORDER BY l.n)
                 FROM erp.lines l WHERE l.orno = h.orno), '[]') AS lines
FROM erp.orders h
"""


def _with_mapping(files: list[Path], mapping: str, name: str, entity: str | None = None) -> list[Path]:
    (files[1].parent / name).write_text(mapping)
    sink = json.loads(files[1].read_text())
    sink["config"]["mapper.sql"] = name
    if entity:
        sink["config"]["mapper.entity"] = entity
    files[1].write_text(json.dumps(sink))
    return files


def test_validate_compiles_mappings_against_the_live_catalog(pg_server: PgServer, pg_db: str,
                                                             tmp_path: Path) -> None:
    execute(pg_db, "CREATE SCHEMA erp",
            "CREATE TABLE erp.customers (cuno char(10) PRIMARY KEY, name varchar(36), credit numeric(15,2))",
            "CREATE TABLE erp.orders (orno char(10) PRIMARY KEY, status char(2))",
            "CREATE TABLE erp.lines (orno char(10), n int, qty numeric(12,3), PRIMARY KEY (orno, n))")
    db = dbname(pg_db)
    bad = _with_mapping(write_connectors(tmp_path, pg_server, db, "v_map", tables="erp\\..*"), BAD_MAPPING,
                        "customer.sql", "Customer")
    p = run_cdc(["validate", *map(str, bad)], extra_env=SECRET_ENV)
    assert p.returncode == 2, p.stderr
    err = one_line(p.stderr)
    path = tmp_path / "customer.sql"
    assert "2 problems:" in err
    assert f"{path}:2:8: unknown column 'nmae' in erp.customers (did you mean 'name'?)" in err
    assert f'{path}:3:8: invalid input syntax for type numeric: "x"' in err
    assert "nmae AS name" in p.stderr and "       ^" in p.stderr, "the mapping line with a caret under the column"
    # offline: the mapping needs the live catalog, so it is skipped with a note
    p_off = run_cdc(["validate", "--offline", *map(str, bad)], extra_env=SECRET_ENV)
    assert p_off.returncode == 0, p_off.stderr
    assert f"note: sink 'v_map-file': mapping {path} not compiled (--offline" in one_line(p_off.stderr)

    good = _with_mapping(write_connectors(tmp_path, pg_server, db, "v_ord", tables="erp\\..*"), ORDER_MAPPING,
                         "order.sql", "Order")
    p2 = run_cdc(["validate", *map(str, good)], extra_env=SECRET_ENV)
    assert p2.returncode == 0, p2.stderr
    assert "2 connector(s) valid" in one_line(p2.stdout)
    # a multi-table mapping is also compiled by the source itself: its errors keep line and column
    server = _with_mapping(write_connectors(tmp_path, pg_server, db, "v_srv", tables="erp\\..*"),
                           ORDER_MAPPING.replace("l.qty)", "l.qty, 'x', no_such_fn(l.n))"), "order2.sql")
    p3 = run_cdc(["validate", *map(str, server)], extra_env=SECRET_ENV)
    assert p3.returncode == 2, p3.stderr
    assert f"{tmp_path / 'order2.sql'}:2:" in p3.stderr and "function no_such_fn(integer) does not exist" in p3.stderr
    # tables the sink's topics or the source's include list leave out
    narrow = _with_mapping(write_connectors(tmp_path, pg_server, db, "v_nar", tables="erp\\.orders"),
                           ORDER_MAPPING, "order3.sql")
    p4 = run_cdc(["validate", *map(str, narrow)], extra_env=SECRET_ENV)
    assert p4.returncode == 2, p4.stderr
    assert "source 'v_nar' does not capture erp.lines" in one_line(p4.stderr)
    no_secret(p.stdout, p.stderr, p2.stdout, p2.stderr, p3.stderr, p4.stderr)
