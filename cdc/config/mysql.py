"""`MySqlSourceConfig` and `MariaDbSourceConfig`: Debezium's binlog connectors, as this bridge runs them.

Role: the typed, validated form of a ``io.debezium.connector.mysql.MySqlConnector`` or
``io.debezium.connector.mariadb.MariaDbConnector`` config. Both share `BinlogSourceConfig` (as
Debezium's two connectors share its ``BinlogConnectorConfig``); they differ in the server they accept
(`flavor`), the ``source.connector`` name their events carry, the vocabulary of ``database.ssl.mode``
and what ``gtid.source.includes`` / ``excludes`` match (a MySQL server UUID, a MariaDB
``domain-server`` pair). Attribute names are the Debezium property names in snake_case; defaults are
Debezium 3.x's except where noted below. The models also answer the questions the reader asks: which
databases, tables and columns are captured (`database_included`, `table_included`, `column_included`:
Debezium's anchored, case-insensitive regex match on ``db``, ``db.table``, ``db.table.column``),
which GTID sources count (`gtid_source_wanted`), which operations are skipped (`skipped`), and how to
connect (`connect_kwargs`, for PyMySQL and mysql-replication).

Decisions and differences from Debezium, and why:
- ``database.server.id`` is required, an integer 1..4294967295 (MySQL's server_id range), as Debezium
  3 requires it (older versions picked a random id). It must differ from the server's own server_id
  and from every replica's: a second binlog reader with the same id makes the server drop the first.
- ``decimal.handling.mode`` is ``string`` (Debezium: ``precise``), as for the PostgreSQL connector:
  ``precise`` encodes decimals as base64 bytes that schema-less JSON consumers cannot read.
- ``include.schema.changes`` is ``false`` and only ``false`` (Debezium: ``true``): no schema change
  topic is produced yet; the schema history lives in the journal.
- ``snapshot.mode`` also accepts ``schema_only`` (Debezium's name before 2.6) and ``never`` as aliases
  of ``no_data``, as design §3 fixes. ``never`` in Debezium up to 2.x read the binlog from its oldest
  file; here, as ``no_data``, streaming starts at the current binlog position.
- ``snapshot.fetch.size`` defaults to 10240 rows (Debezium's MySQL connector leaves it unset and lets
  the JDBC driver stream row by row): the snapshot fetches rows in batches of this size.
- ``time.precision.mode`` ``adaptive`` is refused, as Debezium's binlog connectors refuse it;
  ``isostring`` (which Debezium 3 accepts) is refused until the binlog decoder writes it.
- Java key and trust stores (``database.ssl.keystore`` ...) are refused: certificates are checked
  against the system's CA store, which OpenSSL also reads from ``SSL_CERT_FILE`` (for a private CA).
- Properties that would make the bridge drop events it cannot decode (``event.*.failure.handling.mode``,
  ``inconsistent.schema.handling.mode``) accept only ``fail``: nothing is skipped silently.
- Incremental snapshots: ``signal.data.collection`` (``database.table``) and
  ``incremental.snapshot.chunk.size`` as Debezium's; the watermarks are always Debezium's default
  ``insert_insert`` rows, so ``incremental.snapshot.watermarking.strategy`` is refused, as is
  ``incremental.snapshot.allow.schema.changes`` (a schema change during a table's snapshot is not
  supported).

Failure story: nothing here connects anywhere; problems are found from the properties alone and
returned all at once by `validate_properties` (see `cdc.config._base`). `connect_kwargs` contains the
password: the caller hands it to the driver and never logs it (the loader registered it with
`SecretsFilter` in case it is).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field

from cdc.config._base import (
    OPERATIONS,
    Bool,
    PositiveInt,
    RegexList,
    Secret,
    enum_of,
    int_between,
    passes_filters,
    table_name,
    to_nonempty_str,
    v,
)
from cdc.config.source import COMMON_UNSUPPORTED, COMMON_UNSUPPORTED_PREFIXES, SourceModel

# One rule for filters and skipped operations across source connectors (they live beside the
# PostgreSQL model, which came first).

MYSQL_CONNECTOR = "io.debezium.connector.mysql.MySqlConnector"
MARIADB_CONNECTOR = "io.debezium.connector.mariadb.MariaDbConnector"

# Debezium's BUILT_IN_DB_NAMES (table.ignore.builtin=true): never captured.
BUILT_IN_DATABASES = frozenset({"mysql", "performance_schema", "sys", "information_schema"})

MAX_SERVER_ID = 2**32 - 1

# How strongly to protect the connection, whatever the flavor's spelling of database.ssl.mode.
TlsLevel = Literal["disabled", "preferred", "required", "verify_ca", "verify_identity"]

_SNAPSHOT_MODES = ("initial", "no_data", "never", "schema_only", "initial_only", "when_needed", "always")
_RECOVERY_REASON = ("it rebuilds a lost schema history topic; this bridge keeps its schema history in "
                    "the journal")
_ONLY_FAIL_REASON = "an event that cannot be decoded stops the connector; nothing is skipped silently"
_TLS_STORE_REASON = ("Java key and trust stores are not read; the server certificate is verified against "
                     "the system's CA certificates (set SSL_CERT_FILE to a PEM bundle for a private CA)")
_HISTORY_REASON = "the schema history is kept in the journal"
_PG_ONLY = "a PostgreSQL connector property"
_TOPIC_NAMES = "topics are named <topic.prefix>.<database>.<table>"


_signal_collection = table_name("database", "erp.debezium_signal")


def _fail_only(refused: tuple[str, ...]) -> BeforeValidator:
    return v(enum_of("fail", unsupported=dict.fromkeys(refused, _ONLY_FAIL_REASON)))


class BinlogSourceConfig(SourceModel):
    """What the MySQL and MariaDB connectors share (see the module docstring for defaults)."""

    FILTER_KINDS: ClassVar[tuple[str, ...]] = ("database", "table", "column")
    flavor: ClassVar[Literal["mysql", "mariadb"]]
    source_connector: ClassVar[str]  # Debezium's source.connector in the events

    KIND: ClassVar[str] = "source"
    ONLY_DEFAULT: ClassVar[Mapping[str, tuple[str, str]]] = {
        "include.schema.changes": ("false", "schema change events are not produced yet; the schema "
                                   "history is kept in the journal"),
        "include.query": ("false", "the SQL statement of a change is not captured"),
        "provide.transaction.metadata": ("false", "transaction boundary events are not produced"),
        "heartbeat.interval.ms": ("0", "heartbeats come with the operations work (issue #6)"),
    }
    UNSUPPORTED: ClassVar[dict[str, str]] = {
        **COMMON_UNSUPPORTED,
        "database.server.id.offset": "parallel snapshots are not supported",
        "database.jdbc.driver": "the bridge connects with PyMySQL",
        "database.protocol": "the bridge connects with PyMySQL",
        "database.ssl.keystore": _TLS_STORE_REASON,
        "database.ssl.keystore.password": _TLS_STORE_REASON,
        "database.ssl.truststore": _TLS_STORE_REASON,
        "database.ssl.truststore.password": _TLS_STORE_REASON,
        "database.dbname": f"{_PG_ONLY}; use database.include.list",
        "database.whitelist": "renamed database.include.list (Debezium 1.3)",
        "database.blacklist": "renamed database.exclude.list (Debezium 1.3)",
        "table.whitelist": "renamed table.include.list (Debezium 1.3)",
        "table.blacklist": "renamed table.exclude.list (Debezium 1.3)",
        "column.whitelist": "renamed column.include.list (Debezium 1.3)",
        "column.blacklist": "renamed column.exclude.list (Debezium 1.3)",
        "schema.include.list": f"{_PG_ONLY}; use database.include.list",
        "schema.exclude.list": f"{_PG_ONLY}; use database.exclude.list",
        "plugin.name": _PG_ONLY,
        "slot.name": _PG_ONLY,
        "publication.name": _PG_ONLY,
        "publication.autocreate.mode": _PG_ONLY,
        "table.ignore.builtin": "system databases are always ignored",
        "connect.keep.alive.max.reconnect.attempts": "",
        "use.nongraceful.disconnect": "",
        "binlog.net.read.timeout": "",
        "binlog.net.write.timeout": "",
        "binlog.buffer.size": "",
        "binlog.metadata.based.schema": "the bridge uses the binlog's row metadata when the server writes it "
                                        "(binlog_row_metadata=FULL) and its schema history otherwise",
        "min.row.count.to.stream.results": "the snapshot always streams rows",
        "resolve.create.table.like.schema": "",
        "gtid.ignore.on.recovery": "",
        "include.unknown.datatypes": "every MySQL and MariaDB column type is decoded",
        "topic.naming.strategy": _TOPIC_NAMES,
        "topic.delimiter": _TOPIC_NAMES,
        "streaming.delay.ms": "",
        "schema.history.internal": _HISTORY_REASON,
        "database.history": _HISTORY_REASON,
        "incremental.snapshot.allow.schema.changes": "a table's schema must not change during its incremental "
                                                     "snapshot; run the snapshot again after the change",
        "incremental.snapshot.watermarking.strategy": "watermarks are always inserted as two rows of the signal "
                                                      "table and kept (Debezium's default, insert_insert)",
    }
    UNSUPPORTED_PREFIXES: ClassVar[dict[str, str]] = {
        **COMMON_UNSUPPORTED_PREFIXES,
        "schema.history.internal.": _HISTORY_REASON,
        "database.history.": _HISTORY_REASON,
    }

    # --- connection ---
    database_hostname: Annotated[str, v(to_nonempty_str)] = Field(alias="database.hostname")
    database_port: Annotated[int, v(int_between(1, 65535))] = Field(3306, alias="database.port")
    database_user: Annotated[str, v(to_nonempty_str)] = Field(alias="database.user")
    database_password: Secret = Field(None, alias="database.password")
    database_server_id: Annotated[int, v(int_between(1, MAX_SERVER_ID))] = Field(alias="database.server.id")
    connect_timeout_ms: PositiveInt = Field(30000, alias="connect.timeout.ms")
    connect_keep_alive: Bool = Field(True, alias="connect.keep.alive")
    connect_keep_alive_interval_ms: PositiveInt = Field(60000, alias="connect.keep.alive.interval.ms")

    # --- naming ---

    # --- filters (comma-separated regexes; Debezium's full, case-insensitive match) ---
    database_include_list: RegexList = Field((), alias="database.include.list")
    database_exclude_list: RegexList = Field((), alias="database.exclude.list")
    gtid_source_includes: RegexList = Field((), alias="gtid.source.includes")
    gtid_source_excludes: RegexList = Field((), alias="gtid.source.excludes")
    gtid_source_filter_dml_events: Bool = Field(True, alias="gtid.source.filter.dml.events")

    # --- snapshot ---
    snapshot_mode: Annotated[
        Literal["initial", "no_data", "initial_only", "when_needed", "always"],
        v(enum_of(*_SNAPSHOT_MODES, aliases={"never": "no_data", "schema_only": "no_data"},
                  unsupported={"recovery": _RECOVERY_REASON, "schema_only_recovery": _RECOVERY_REASON,
                               "configuration_based": "", "custom": ""})),
    ] = Field("initial", alias="snapshot.mode")
    snapshot_locking_mode: Annotated[
        Literal["minimal", "none"],
        v(enum_of("minimal", "none",
                  unsupported={"extended": "the global read lock is held only while the snapshot reads the "
                                           "schema and the binlog position (minimal)",
                               "minimal_percona": "", "minimal_percona_no_table_locks": "",
                               "minimal_at_least_once": "", "custom": ""})),
    ] = Field("minimal", alias="snapshot.locking.mode")
    snapshot_lock_timeout_ms: PositiveInt = Field(10000, alias="snapshot.lock.timeout.ms")
    incremental_snapshot_chunk_size: PositiveInt = Field(1024, alias="incremental.snapshot.chunk.size")
    signal_data_collection: Annotated[str | None, v(_signal_collection)] = Field(
        None, alias="signal.data.collection")

    # --- event encoding ---
    time_precision_mode: Annotated[
        Literal["adaptive_time_microseconds", "connect"],
        v(enum_of("adaptive_time_microseconds", "connect",
                  unsupported={"adaptive": "Debezium's MySQL and MariaDB connectors no longer support it; use "
                                           "adaptive_time_microseconds",
                               "isostring": "not supported yet for MySQL and MariaDB",
                               "microseconds": "", "nanoseconds": "", "structured": ""})),
    ] = Field("adaptive_time_microseconds", alias="time.precision.mode")
    bigint_unsigned_handling_mode: Annotated[
        Literal["long", "precise"], v(enum_of("long", "precise"))
    ] = Field("long", alias="bigint.unsigned.handling.mode")
    enable_time_adjuster: Bool = Field(True, alias="enable.time.adjuster")
    include_schema_changes: Bool = Field(False, alias="include.schema.changes")
    include_query: Bool = Field(False, alias="include.query")

    # --- failures: only "fail" (see the module docstring) ---
    event_deserialization_failure_handling_mode: Annotated[
        Literal["fail"], _fail_only(("warn", "ignore", "skip"))
    ] = Field("fail", alias="event.deserialization.failure.handling.mode")
    event_processing_failure_handling_mode: Annotated[
        Literal["fail"], _fail_only(("warn", "ignore", "skip"))
    ] = Field("fail", alias="event.processing.failure.handling.mode")
    inconsistent_schema_handling_mode: Annotated[
        Literal["fail"], _fail_only(("warn", "ignore", "skip"))
    ] = Field("fail", alias="inconsistent.schema.handling.mode")


    @classmethod
    def _check_combinations(cls, data: Mapping[str, Any]) -> list[str]:
        problems = super()._check_combinations(data)
        if "gtid.source.includes" in data and "gtid.source.excludes" in data:
            problems.append("properties 'gtid.source.includes' and 'gtid.source.excludes' cannot both be set "
                            "(Debezium: \"Cannot specify GTID excludes when includes are provided.\")")
        return problems

    # --- questions the reader asks ---

    def database_included(self, database: str) -> bool:
        """Whether tables of this database can be captured (database.include/exclude.list, built-ins)."""
        if database.lower() in BUILT_IN_DATABASES:
            return False
        return passes_filters(database, self.database_include_list, self.database_exclude_list)

    def table_included(self, database: str, table: str) -> bool:
        """Whether changes of ``database.table`` are captured (Debezium's database and table filters)."""
        if not self.database_included(database):
            return False
        return passes_filters(f"{database}.{table}", self.table_include_list, self.table_exclude_list)

    def column_included(self, database: str, table: str, column: str) -> bool:
        """Whether a column appears in events (column.include/exclude.list on ``db.table.column``)."""
        return passes_filters(f"{database}.{table}.{column}", self.column_include_list, self.column_exclude_list)

    def gtid_source_wanted(self, source: str) -> bool:
        """Whether GTIDs of this source count (gtid.source.includes/excludes): a server UUID for MySQL, a
        ``domain-server`` pair such as ``0-1`` for MariaDB. True for every source when neither is set."""
        return passes_filters(source, self.gtid_source_includes, self.gtid_source_excludes)

    def tls_level(self) -> TlsLevel:
        """``database.ssl.mode`` in one vocabulary for both flavors."""
        raise NotImplementedError

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``pymysql.connect`` (and mysql-replication's ``connection_settings``):
        host, port, user, password, connect_timeout, charset and the TLS settings. The password is in
        it: never log the result.

        TLS: ``disabled`` turns TLS off; ``preferred`` is PyMySQL's own default (TLS when the server
        offers it); the stricter levels pass an `ssl.SSLContext` built from the system's CA store,
        verifying nothing (``required``), the certificate (``verify_ca``), or it and the host name
        (``verify_identity``). A fresh dict (and context) on every call.
        """
        kwargs: dict[str, Any] = {
            "host": self.database_hostname,
            "port": self.database_port,
            "user": self.database_user,
            "connect_timeout": self.connect_timeout_ms / 1000,
            "charset": "utf8mb4",
        }
        if self.database_password is not None:
            kwargs["password"] = self.database_password.get_secret_value()
        level = self.tls_level()
        if level == "disabled":
            kwargs["ssl_disabled"] = True
        elif level != "preferred":
            context = ssl.create_default_context()
            if level in ("required", "verify_ca"):
                context.check_hostname = False
            if level == "required":
                context.verify_mode = ssl.CERT_NONE
            kwargs["ssl"] = context
        return kwargs

    def masked_dump(self) -> dict[str, Any]:
        out = super().masked_dump()
        ops = [op for op in OPERATIONS if op in self.skipped_operations]
        out["skipped.operations"] = ",".join(ops) if ops else "none"
        return out


_MYSQL_TLS: dict[str, TlsLevel] = {
    "disabled": "disabled", "preferred": "preferred", "required": "required", "verify_ca": "verify_ca",
    "verify_identity": "verify_identity",
}
# As Debezium's MariaDB connector maps its modes onto the binlog client's (sslModeFor).
_MARIADB_TLS: dict[str, TlsLevel] = {
    "disable": "disabled", "trust": "required", "verify-ca": "verify_ca", "verify-full": "verify_identity",
}


class MySqlSourceConfig(BinlogSourceConfig):
    """Debezium's MySQL source connector, validated (see the module docstring for defaults)."""

    flavor: ClassVar[Literal["mysql", "mariadb"]] = "mysql"
    source_connector: ClassVar[str] = "mysql"
    CONNECTOR_CLASSES: ClassVar[tuple[str, ...]] = (MYSQL_CONNECTOR, "MySqlConnector", "MySql")

    database_ssl_mode: Annotated[
        Literal["disabled", "preferred", "required", "verify_ca", "verify_identity"],
        v(enum_of(*_MYSQL_TLS)),
    ] = Field("preferred", alias="database.ssl.mode")

    def tls_level(self) -> TlsLevel:
        return _MYSQL_TLS[self.database_ssl_mode]


class MariaDbSourceConfig(BinlogSourceConfig):
    """Debezium's MariaDB source connector, validated (see the module docstring for defaults)."""

    flavor: ClassVar[Literal["mysql", "mariadb"]] = "mariadb"
    source_connector: ClassVar[str] = "mariadb"
    CONNECTOR_CLASSES: ClassVar[tuple[str, ...]] = (MARIADB_CONNECTOR, "MariaDbConnector", "MariaDb")

    # Debezium's MariaDB connector speaks MariaDB Connector/J's sslMode, default "disable".
    database_ssl_mode: Annotated[
        Literal["disable", "trust", "verify-ca", "verify-full"], v(enum_of(*_MARIADB_TLS))
    ] = Field("disable", alias="database.ssl.mode")

    def tls_level(self) -> TlsLevel:
        return _MARIADB_TLS[self.database_ssl_mode]
