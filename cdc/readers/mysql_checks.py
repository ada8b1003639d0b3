"""Pre-flight checks of a MySQL or MariaDB source for `cdc validate`: every problem at once, with the fix.

Role: `check_mysql` connects with the connector's own settings (PyMySQL, in a worker thread so the
event loop never blocks), reads server variables, the user's grants and the catalog, and never
changes anything. What it found is judged by pure functions (`judge`, `parse_grants`,
`server_flavor`), so the MySQL-only paths are tested without a MySQL server.

Problems (the connector cannot work as configured): the server flavor does not match
``connector.class``; binary logging off; ``binlog_format`` not ROW; ``binlog_row_image`` not FULL;
MySQL's ``binlog_row_value_options=PARTIAL_JSON``; ``database.server.id`` already used by the server
or a registered replica; the REPLICATION SLAVE or REPLICATION CLIENT (MariaDB 10.5.2+: BINLOG
MONITOR) privilege missing; included tables the snapshot cannot SELECT. Warnings (it works, with a
cost the operator should know): no full row metadata (the bridge then relies on its schema history
built from DDL), binlogs purged after less than a day, GTID filters on a MySQL server without GTIDs,
include-list entries matching no database, no table captured at all, tables without a primary key.
Privileges that come from roles the user cannot read are warned about, not reported as missing.

Failure story: `check_mysql` never raises. A failed connection is one problem naming host, port and
user (never the password); any other failure while checking is one problem naming the server. Grant
lines are parsed only for privilege names and targets; they are never quoted (MariaDB prints password
hashes in them).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pymysql

from cdc.config import BinlogSourceConfig, SecretsFilter
from cdc.config.mysql import BUILT_IN_DATABASES, MARIADB_CONNECTOR, MYSQL_CONNECTOR

Flavor = Literal["mysql", "mariadb"]

# Shorter than this, a bridge stopped over a night or a weekend finds its binlog position purged.
MIN_BINLOG_RETENTION_S = 86400

# Modes whose snapshot reads table rows (and so needs SELECT on every captured table).
_SNAPSHOT_READS_ROWS = ("initial", "initial_only", "when_needed", "always")

_VARIABLES = ("log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata", "binlog_row_value_options",
              "binlog_expire_logs_seconds", "binlog_expire_logs_auto_purge", "expire_logs_days", "server_id",
              "gtid_mode")

_ALL = frozenset({"ALL", "ALL PRIVILEGES"})
_REPLICATION_SLAVE = frozenset({"REPLICATION SLAVE", "REPLICATION REPLICA"})
_REPLICATION_CLIENT = frozenset({"REPLICATION CLIENT", "BINLOG MONITOR"})

_NAME = r"(?:\*|`(?:[^`]|``)*`|[\w$]+)"
_GRANT_ON = re.compile(rf"GRANT (?P<privs>.+?) ON (?P<db>{_NAME})\.(?P<table>{_NAME}) TO ", re.IGNORECASE)
_GRANT_ROLES = re.compile(r"GRANT (?P<roles>`[^`]*`(?:@`[^`]*`)?(?:\s*,\s*`[^`]*`(?:@`[^`]*`)?)*) TO ",
                          re.IGNORECASE)
_ROLE = re.compile(r"`[^`]*`(?:@`[^`]*`)?")


# --- what the server said, as plain data ---------------------------------------------------------


def server_flavor(version: str) -> Flavor:
    """``mariadb`` or ``mysql`` from ``SELECT VERSION()`` (MariaDB always names itself there)."""
    return "mariadb" if "mariadb" in version.lower() else "mysql"


def server_version(version: str) -> tuple[int, int, int]:
    """The numeric version from ``SELECT VERSION()``: ``10.11.6-MariaDB-log`` -> (10, 11, 6)."""
    # MariaDB's replication handshake prefixes "5.5.5-"; the real version is the one before "-MariaDB".
    m = re.search(r"(\d+)\.(\d+)\.(\d+)-mariadb", version, re.IGNORECASE) or re.search(
        r"(\d+)\.(\d+)\.(\d+)", version)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else (0, 0, 0)


@dataclass(frozen=True, slots=True)
class Grants:
    """Privileges from ``SHOW GRANTS`` lines, upper-cased: on ``*.*``, per database (grant names are
    LIKE patterns there), per table. Column-level privileges are left out: they do not let the snapshot
    read a whole row. `roles` are the roles granted to the user, as SHOW GRANTS prints them."""

    on_all: frozenset[str] = frozenset()
    on_databases: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = ()
    on_tables: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    roles: tuple[str, ...] = ()

    def has_global(self, names: frozenset[str]) -> bool:
        return bool(self.on_all & (names | _ALL))

    def can_select(self, database: str, table: str) -> bool:
        wanted = _ALL | {"SELECT"}
        if self.on_all & wanted:
            return True
        if any(p.fullmatch(database) and privs & wanted for p, privs in self.on_databases):
            return True
        return bool(self.on_tables.get((database, table), frozenset()) & wanted)


def parse_grants(lines: Iterable[str]) -> Grants:
    """`Grants` from the lines ``SHOW GRANTS`` prints (MySQL's and MariaDB's spellings)."""
    on_all: set[str] = set()
    on_databases: list[tuple[re.Pattern[str], frozenset[str]]] = []
    on_tables: dict[tuple[str, str], set[str]] = {}
    roles: list[str] = []
    for line in lines:
        m = _GRANT_ON.match(line)
        if m is None:
            r = _GRANT_ROLES.match(line)
            if r is not None:
                roles.extend(role for role in _ROLE.findall(r.group("roles")) if role not in roles)
            continue
        privs = _privileges(m.group("privs"))
        db, table = m.group("db"), m.group("table")
        if db == "*" and table == "*":
            on_all |= privs
        elif table == "*":
            on_databases.append((_like(_unquote(db)), frozenset(privs)))
        elif db != "*":
            on_tables.setdefault((_unquote(db), _unquote(table)), set()).update(privs)
    return Grants(frozenset(on_all), tuple(on_databases), {k: frozenset(s) for k, s in on_tables.items()},
                  tuple(roles))


def _privileges(text: str) -> set[str]:
    out: set[str] = set()
    depth, start = 0, 0
    for i, c in enumerate(text + ","):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            item = " ".join(text[start:i].split()).upper()
            if item and "(" not in item:
                out.add(item)
            start = i + 1
    return out


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _like(pattern: str) -> re.Pattern[str]:
    """A database-level grant name as the server matches it: ``%`` and ``_`` are wildcards, ``\\``
    escapes them."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


@dataclass(frozen=True, slots=True)
class ServerFacts:
    """Everything `judge` needs, read from the server by `check_mysql` (or made up by a test).

    `roles_resolved` is false when the user has roles whose grants could not be read; `replica_ids`
    are the server ids of registered replicas (empty when the user may not list them); `tables` are
    (database, table, has primary key) for the base tables the user can see, built-ins excluded.
    """

    version: str
    account: str  # CURRENT_USER(): user@host
    variables: Mapping[str, str]
    grants: Grants
    roles_resolved: bool = True
    replica_ids: tuple[int, ...] = ()
    databases: tuple[str, ...] = ()
    tables: tuple[tuple[str, str, bool], ...] = ()


# --- judging ------------------------------------------------------------------------------------


def judge(cfg: BinlogSourceConfig, facts: ServerFacts) -> tuple[list[str], list[str]]:
    """(problems, warnings) for one connector against what its server reported, without prefixes."""
    problems: list[str] = []
    warnings: list[str] = []
    flavor = server_flavor(facts.version)
    version = server_version(facts.version)
    _judge_flavor(cfg, flavor, version, problems)
    _judge_binlog(cfg, flavor, version, facts.variables, problems, warnings)
    _judge_server_id(cfg, facts, problems)
    _judge_replication_privileges(cfg, flavor, version, facts, problems, warnings)
    _judge_tables(cfg, facts, problems, warnings)
    return problems, warnings


def _show_version(flavor: Flavor, version: tuple[int, int, int]) -> str:
    return f"{'MariaDB' if flavor == 'mariadb' else 'MySQL'} {'.'.join(map(str, version))}"


def _judge_flavor(cfg: BinlogSourceConfig, flavor: Flavor, version: tuple[int, int, int],
                  problems: list[str]) -> None:
    if flavor != cfg.flavor:
        right = MARIADB_CONNECTOR if flavor == "mariadb" else MYSQL_CONNECTOR
        problems.append(f"the server at {cfg.database_hostname}:{cfg.database_port} is "
                        f"{_show_version(flavor, version)}, but connector.class is {cfg.connector_class}; "
                        f"set connector.class={right}")


def _judge_binlog(cfg: BinlogSourceConfig, flavor: Flavor, version: tuple[int, int, int],
                  variables: Mapping[str, str], problems: list[str], warnings: list[str]) -> None:
    def var(name: str) -> str:
        return variables.get(name, "").strip()

    if var("log_bin").upper() != "ON":
        problems.append("binary logging is off (log_bin=OFF); enable it in the server's configuration (log-bin, "
                        "with server-id) and restart the server")
    if (fmt := var("binlog_format")).upper() != "ROW":
        problems.append(f"binlog_format is '{fmt}'; set binlog_format=ROW in the server's configuration (SET "
                        "GLOBAL binlog_format=ROW reaches only sessions opened after it)")
    if (image := var("binlog_row_image")).upper() != "FULL":
        problems.append(f"binlog_row_image is '{image}'; set binlog_row_image=FULL: otherwise updates and "
                        "deletes do not carry every column")
    if "PARTIAL_JSON" in var("binlog_row_value_options").upper():
        problems.append("binlog_row_value_options is 'PARTIAL_JSON'; set binlog_row_value_options='' : "
                        "otherwise JSON updates are logged as diffs without the whole document")
    history = ("the bridge relies on its schema history, built from the DDL statements in the binlog (a "
               "statement it cannot parse stops the tables it touches)")
    if "binlog_row_metadata" not in variables:
        warnings.append(f"{_show_version(flavor, version)} writes no column names into the binlog "
                        f"(binlog_row_metadata needs MySQL 8.0.1 or MariaDB 10.5), so {history}")
    elif (meta := var("binlog_row_metadata")).upper() != "FULL":
        warnings.append(f"binlog_row_metadata is '{meta}', so the binlog does not name the columns and {history}; "
                        "set binlog_row_metadata=FULL to avoid that")
    retention = _retention(variables)
    if retention is not None and retention[0] < MIN_BINLOG_RETENTION_S:
        seconds, setting = retention
        warnings.append(f"binary logs are purged after {_duration(seconds)} ({setting}): a bridge stopped for "
                        "longer cannot resume from its position and needs a new snapshot; keep them for days "
                        "(e.g. binlog_expire_logs_seconds=604800)")
    if (flavor == "mysql" and (cfg.gtid_source_includes or cfg.gtid_source_excludes)
            and var("gtid_mode").upper() != "ON"):
        which = "gtid.source.includes" if cfg.gtid_source_includes else "gtid.source.excludes"
        warnings.append(f"{which} is set but gtid_mode is '{var('gtid_mode') or 'OFF'}': the server writes no "
                        "GTIDs, so the filter has nothing to match; set gtid_mode=ON and "
                        "enforce_gtid_consistency=ON, or remove it")


def _retention(variables: Mapping[str, str]) -> tuple[float, str] | None:
    """(seconds, the setting that decides) after which binlogs are purged, or None when never."""
    if variables.get("binlog_expire_logs_auto_purge", "ON").strip().upper() == "OFF":
        return None
    seconds = _number(variables.get("binlog_expire_logs_seconds"))
    if seconds > 0:
        return seconds, f"binlog_expire_logs_seconds={variables['binlog_expire_logs_seconds'].strip()}"
    days = _number(variables.get("expire_logs_days"))
    if days > 0:
        return days * 86400, f"expire_logs_days={variables['expire_logs_days'].strip()}"
    return None


def _number(text: str | None) -> float:
    try:
        return float(text) if text else 0.0
    except ValueError:
        return 0.0


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:.3g} h"


def _judge_server_id(cfg: BinlogSourceConfig, facts: ServerFacts, problems: list[str]) -> None:
    own = facts.variables.get("server_id", "").strip()
    sid = cfg.database_server_id
    if own == str(sid):
        problems.append(f"database.server.id={sid} is the server_id of the server itself; every replica and "
                        "binlog reader needs its own: choose another database.server.id")
    elif sid in facts.replica_ids:
        problems.append(f"database.server.id={sid} is the server_id of a replica of this server; every "
                        "replica and binlog reader needs its own: choose another database.server.id")


def _grant_target(account: str) -> str:
    user, _, host = account.rpartition("@")
    return f"'{user}'@'{host}'" if user else f"'{account}'"


def _judge_replication_privileges(cfg: BinlogSourceConfig, flavor: Flavor, version: tuple[int, int, int],
                                  facts: ServerFacts, problems: list[str], warnings: list[str]) -> None:
    # MariaDB 10.5.2 split REPLICATION CLIENT into BINLOG MONITOR (and others) and stopped SUPER from
    # implying them; MySQL and older MariaDB still accept SUPER for SHOW MASTER STATUS.
    new_mariadb = flavor == "mariadb" and version >= (10, 5, 2)
    client_name = "BINLOG MONITOR" if new_mariadb else "REPLICATION CLIENT"
    client_names = _REPLICATION_CLIENT if new_mariadb else _REPLICATION_CLIENT | {"SUPER"}
    needed = (("REPLICATION SLAVE", _REPLICATION_SLAVE, "reading the binlog"),
              (client_name, client_names, "finding the binlog position (SHOW MASTER STATUS)"))
    target = _grant_target(facts.account)
    for name, names, why in needed:
        if facts.grants.has_global(frozenset(names)):
            continue
        fix = f"GRANT {name} ON *.* TO {target}"
        if facts.roles_resolved:
            problems.append(f"user '{cfg.database_user}' lacks the {name} privilege, which {why} needs ({fix})")
        else:
            warnings.append(f"user '{cfg.database_user}' may lack the {name} privilege, which {why} needs: it "
                            f"has roles whose grants cannot be read; if none of them has it, {fix}")


def _some(names: Sequence[str], limit: int = 10) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


def _judge_tables(cfg: BinlogSourceConfig, facts: ServerFacts, problems: list[str], warnings: list[str]) -> None:
    user = cfg.database_user
    for entry in cfg.database_include_list:
        pattern = re.compile(entry, re.IGNORECASE)
        if not any(pattern.fullmatch(db) for db in facts.databases):
            warnings.append(f"database.include.list entry '{entry}' matches no database that user '{user}' can "
                            "see (it does not exist, or the user has no privilege on it)")
    included = [(db, table, pk) for db, table, pk in facts.tables if cfg.table_included(db, table)]
    if not included:
        filters = [p for p in ("database.include.list", "database.exclude.list", "table.include.list",
                               "table.exclude.list") if getattr(cfg, p.replace(".", "_"))]
        which = f"matches {' and '.join(filters)}" if filters else "exists"
        warnings.append(f"no table that user '{user}' can see {which}: nothing is captured until a matching "
                        "table is created")
        return
    if cfg.snapshot_mode in _SNAPSHOT_READS_ROWS:
        unreadable = [(db, t) for db, t, _ in included if not facts.grants.can_select(db, t)]
        if unreadable:
            dbs = sorted({db for db, _ in unreadable})
            on = f"`{dbs[0]}`.*" if len(dbs) == 1 else "<database>.*"
            text = (f"user '{user}' cannot SELECT {_some([f'{db}.{t}' for db, t in unreadable])}, which the "
                    f"snapshot reads (GRANT SELECT ON {on} TO {_grant_target(facts.account)})")
            if facts.roles_resolved:
                problems.append(text)
            else:
                warnings.append(f"{text}, unless one of the user's roles allows it")
    loose = [f"{db}.{t}" for db, t, pk in included if not pk]
    if loose:
        many = len(loose) > 1
        warnings.append(f"table{'s' if many else ''} {_some(loose)} {'have' if many else 'has'} no primary key: "
                        "change events of such a table have a null key, so consumers can neither order nor "
                        "deduplicate them by key; add a PRIMARY KEY where a column set is unique")


# --- reading the server -------------------------------------------------------------------------


async def check_mysql(cfg: BinlogSourceConfig) -> tuple[list[str], list[str]]:
    """Return (problems, warnings) for one MySQL or MariaDB source connector; never raises."""
    where = f"{cfg.database_hostname}:{cfg.database_port}"
    try:
        problems, warnings = await asyncio.to_thread(_inspect, cfg)
    except Exception as exc:  # a check must report, never crash `cdc validate`
        problems, warnings = [f"checking the server at {where} failed: {_error_text(exc)}"], []
    prefix = f"connector '{cfg.name}': "
    return ([SecretsFilter.redact(prefix + p) for p in problems],
            [SecretsFilter.redact(prefix + w) for w in warnings])


def _error_text(exc: BaseException) -> str:
    # PyMySQL's errors carry (code, message); the message alone reads best.
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) == 2 and isinstance(exc.args[1], str):
        return exc.args[1]
    return str(exc) or type(exc).__name__


def _inspect(cfg: BinlogSourceConfig) -> tuple[list[str], list[str]]:
    """Blocking: connect, read the facts, judge them."""
    try:
        conn = pymysql.connect(**cfg.connect_kwargs(), autocommit=True)
    except (pymysql.err.MySQLError, OSError, ValueError) as exc:
        return [f"cannot connect to {cfg.database_hostname}:{cfg.database_port} as '{cfg.database_user}': "
                f"{_error_text(exc)}"], []
    with conn, conn.cursor() as cur:
        facts = _read_facts(cur)
    return judge(cfg, facts)


def _one(cur: Any, query: str) -> str:
    cur.execute(query)
    row = cur.fetchone()
    return "" if row is None or row[0] is None else str(row[0])


def _rows(cur: Any, query: str) -> list[tuple[Any, ...]]:
    cur.execute(query)
    return list(cur.fetchall())


def _read_facts(cur: Any) -> ServerFacts:
    version = _one(cur, "SELECT VERSION()")
    flavor = server_flavor(version)
    account = _one(cur, "SELECT CURRENT_USER()")
    names = ", ".join(f"'{n}'" for n in _VARIABLES)
    variables = {str(k): str(v) for k, v in _rows(cur, f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({names})")}
    lines = [str(r[0]) for r in _rows(cur, "SHOW GRANTS")]
    lines, resolved = _with_role_grants(cur, flavor, lines)
    builtins = ", ".join(f"'{d}'" for d in sorted(BUILT_IN_DATABASES))
    databases = tuple(str(r[0]) for r in _rows(
        cur, f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ({builtins})"))
    # STATISTICS, not TABLE_CONSTRAINTS: MariaDB hides constraints from a user with only SELECT.
    keyed = {(str(r[0]), str(r[1])) for r in _rows(
        cur, "SELECT DISTINCT TABLE_SCHEMA, TABLE_NAME FROM information_schema.STATISTICS "
             f"WHERE INDEX_NAME = 'PRIMARY' AND TABLE_SCHEMA NOT IN ({builtins})")}
    tables = tuple((str(db), str(t), (str(db), str(t)) in keyed) for db, t in _rows(
        cur, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
             f"WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ({builtins}) ORDER BY 1, 2"))
    return ServerFacts(version=version, account=account, variables=variables, grants=parse_grants(lines),
                       roles_resolved=resolved, replica_ids=_replica_ids(cur), databases=databases,
                       tables=tables)


def _with_role_grants(cur: Any, flavor: Flavor, lines: list[str]) -> tuple[list[str], bool]:
    """The user's grant lines plus those of its roles, and whether every role could be read.

    MariaDB lists the active role's grants in SHOW GRANTS already and lets a user read its roles'
    grants (roles may be granted roles: followed); MySQL shows them only with ``USING``.
    """
    roles = list(parse_grants(lines).roles)
    if not roles:
        return lines, True
    try:
        if flavor == "mysql":
            return lines + [str(r[0]) for r in _rows(
                cur, f"SHOW GRANTS FOR CURRENT_USER() USING {', '.join(roles)}")], True
        seen: set[str] = set()
        while roles:
            role = roles.pop()
            if role in seen:
                continue
            seen.add(role)
            more = [str(r[0]) for r in _rows(cur, f"SHOW GRANTS FOR {role}")]
            lines = lines + more
            roles.extend(parse_grants(more).roles)
        return lines, True
    except pymysql.err.MySQLError:
        return lines, False


def _replica_ids(cur: Any) -> tuple[int, ...]:
    """Server ids of registered replicas; empty when the user may not list them (a best effort)."""
    for query in ("SHOW REPLICAS", "SHOW SLAVE HOSTS"):
        try:
            return tuple(int(r[0]) for r in _rows(cur, query))
        except pymysql.err.MySQLError:
            continue
    return ()
