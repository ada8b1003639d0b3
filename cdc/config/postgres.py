"""`PostgresSourceConfig`: Debezium's PostgreSQL connector configuration, as this bridge runs it.

Role: the typed, validated form of a ``io.debezium.connector.postgresql.PostgresConnector`` config.
Attribute names are the Debezium property names in snake_case (``database.hostname`` ->
``database_hostname``); defaults are Debezium 3.x's except where noted below. It also answers the
questions the reader asks of the config: which tables and columns are captured (`table_included`,
`column_included`, with Debezium's anchored, case-insensitive regex matching on ``schema.table`` and
``schema.table.column``), which operations are skipped (`skipped`), and how to connect (`conninfo`).

Defaults that differ from Debezium, and why:
- ``plugin.name`` is ``pgoutput`` (Debezium's field default is ``decoderbufs``): pgoutput ships with
  PostgreSQL 10+ and is the only decoder this bridge implements.
- ``decimal.handling.mode`` is ``string`` (Debezium: ``precise``): ``precise`` encodes decimals as
  base64 bytes, which schema-less JSON consumers cannot read; strings keep every digit.
- ``key/value.converter.schemas.enable`` are ``false`` (Kafka's JsonConverter: ``true``): events are
  written schema-less, as design §4 fixes.
- ``snapshot.mode`` also accepts ``never``, as an alias of ``no_data`` (Debezium 3 dropped it).

Failure story: nothing here connects anywhere; problems are found from the properties alone and
returned all at once by `validate_properties` (see `cdc.config._base`). `conninfo` contains the
password: the caller hands it to the driver and never logs it (and the password is registered with
`SecretsFilter` in case it does).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from cdc.config._base import (
    OPERATIONS,
    Bool,
    OptionalStr,
    PositiveInt,
    RegexList,
    Secret,
    enum_of,
    int_between,
    passes_filters,
    table_name,
    to_nonempty_str,
    to_str,
    v,
)
from cdc.config.source import COMMON_UNSUPPORTED, COMMON_UNSUPPORTED_PREFIXES, SourceModel

POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"

# Session settings every connection gets, so that text-format values decode one way.
SESSION_OPTIONS = (
    "-c DateStyle=ISO,MDY -c TimeZone=UTC -c IntervalStyle=postgres"
    " -c extra_float_digits=1 -c bytea_output=hex"
)
APPLICATION_NAME = "cdc-bridge"


# Debezium's SystemTablesPredicate (table.ignore.builtin=true): never captured.
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
_SYSTEM_TABLES = ("spatial_ref_sys",)
_TEMP_SCHEMA_PREFIX = "pg_temp"


def _slot_name(value: Any) -> str:
    text = to_str(value)
    if not re.fullmatch(r"[a-z0-9_]{1,63}", text):
        raise ValueError("is not a valid replication slot name (lower-case letters, digits and '_', "
                         "at most 63 characters)")
    return text


def _publication_name(value: Any) -> str:
    text = to_nonempty_str(value)
    if len(text.encode()) > 63:
        raise ValueError("is longer than PostgreSQL's 63-byte identifier limit")
    return text


_signal_collection = table_name("schema", "public.debezium_signal")


_SNAPSHOT_MODES = ("initial", "no_data", "never", "initial_only", "when_needed", "always")


class PostgresSourceConfig(SourceModel):
    """A Debezium PostgreSQL source connector, validated (see the module docstring for defaults)."""

    ONLY_DEFAULT: ClassVar[Mapping[str, tuple[str, str]]] = {
        "slot.drop.on.stop": ("false", "the slot is kept; drop it with pg_drop_replication_slot when retiring "
                              "the connector"),
        "provide.transaction.metadata": ("false", "transaction boundary events are not produced"),
    }

    FILTER_KINDS: ClassVar[tuple[str, ...]] = ("schema", "table", "column")
    CONNECTOR_CLASSES: ClassVar[tuple[str, ...]] = (POSTGRES_CONNECTOR, "PostgresConnector", "Postgres")
    KIND: ClassVar[str] = "source"
    UNSUPPORTED: ClassVar[dict[str, str]] = {
        **COMMON_UNSUPPORTED,
        "slot.stream.params": "pgoutput's parameters are set by the bridge",
        "slot.failover": "",
        "slot.max.retries": "",
        "slot.retry.delay.ms": "",
        "message.prefix.include.list": "logical decoding messages are not captured",
        "message.prefix.exclude.list": "logical decoding messages are not captured",
        "snapshot.isolation.mode": "",
        "snapshot.locking.mode": "",
        "hstore.handling.mode": "",
        "schema.refresh.mode": "",
        "replica.identity.autoset.values": "set REPLICA IDENTITY on the tables instead",
        "publish.via.partition.root": "",
        "money.fraction.digits": "",
        "unavailable.value.placeholder": "",
        "include.schema.changes": "",
        "xmin.fetch.interval.ms": "",
        "flush.lsn.source": "the bridge confirms the slot once the journal is durable",
        "lsn.flush.mode": "the bridge confirms the slot once the journal is durable",
        "lsn.flush.timeout.ms": "",
        "lsn.flush.timeout.action": "",
        "offset.mismatch.strategy": "",
        "database.sslfactory": "",
        "database.include.list": "a MySQL/MariaDB connector property; use schema.include.list",
        "database.exclude.list": "a MySQL/MariaDB connector property; use schema.exclude.list",
        "table.ignore.builtin": "system tables are always ignored",
        "event.processing.failure.handling.mode": "",
        "topic.naming.strategy": "topics are named <topic.prefix>.<schema>.<table>",
        "topic.delimiter": "topics are named <topic.prefix>.<schema>.<table>",
        "decimal.format": "",
        "incremental.snapshot.allow.schema.changes": "a table's schema must not change during its incremental "
                                                     "snapshot; run the snapshot again after the change",
        "incremental.snapshot.watermarking.strategy": "watermarks are logical decoding messages, never rows "
                                                      "of the signal table",
    }
    UNSUPPORTED_PREFIXES: ClassVar[dict[str, str]] = {
        **COMMON_UNSUPPORTED_PREFIXES,
        "column.mask.hash.": "",
        "schema.history.internal.": "the PostgreSQL connector has no schema history",
        "database.history.": "the PostgreSQL connector has no schema history",
    }

    # --- connection ---
    database_hostname: Annotated[str, v(to_nonempty_str)] = Field(alias="database.hostname")
    database_port: Annotated[int, v(int_between(1, 65535))] = Field(5432, alias="database.port")
    database_user: Annotated[str, v(to_nonempty_str)] = Field(alias="database.user")
    database_password: Secret = Field(None, alias="database.password")
    database_dbname: Annotated[str, v(to_nonempty_str)] = Field(alias="database.dbname")
    database_sslmode: Annotated[
        Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
        v(enum_of("disable", "allow", "prefer", "require", "verify-ca", "verify-full")),
    ] = Field("prefer", alias="database.sslmode")
    database_sslrootcert: OptionalStr = Field(None, alias="database.sslrootcert")
    database_sslcert: OptionalStr = Field(None, alias="database.sslcert")
    database_sslkey: OptionalStr = Field(None, alias="database.sslkey")
    database_sslpassword: Secret = Field(None, alias="database.sslpassword")
    database_tcp_keepalive: Bool = Field(True, alias="database.tcpKeepAlive")

    # --- naming and replication ---
    plugin_name: Annotated[
        Literal["pgoutput"],
        v(enum_of("pgoutput", unsupported={"decoderbufs": "", "wal2json": "", "wal2json_streaming": "",
                                           "wal2json_rds": "", "wal2json_rds_streaming": ""},
                  unsupported_reason="only pgoutput is supported")),
    ] = Field("pgoutput", alias="plugin.name")
    slot_name: Annotated[str, v(_slot_name)] = Field("debezium", alias="slot.name")
    slot_drop_on_stop: Bool = Field(False, alias="slot.drop.on.stop")
    publication_name: Annotated[str, v(_publication_name)] = Field(
        "dbz_publication", alias="publication.name")
    publication_autocreate_mode: Annotated[
        Literal["all_tables", "disabled", "filtered", "no_tables"],
        v(enum_of("all_tables", "disabled", "filtered", "no_tables")),
    ] = Field("all_tables", alias="publication.autocreate.mode")
    status_update_interval_ms: PositiveInt = Field(10000, alias="status.update.interval.ms")
    # On by default here (Debezium: 0): an idle captured database on a busy server must not pin its WAL.
    heartbeat_interval_ms: Annotated[int, v(int_between(0))] = Field(10000, alias="heartbeat.interval.ms")
    slot_retained_wal_warning_bytes: Annotated[int, v(int_between(0))] = Field(
        1 << 30, alias="slot.retained.wal.warning.bytes")

    # --- filters (comma-separated regexes; Debezium's full, case-insensitive match) ---
    schema_include_list: RegexList = Field((), alias="schema.include.list")
    schema_exclude_list: RegexList = Field((), alias="schema.exclude.list")

    # --- snapshot ---
    snapshot_mode: Annotated[
        Literal["initial", "no_data", "initial_only", "when_needed", "always"],
        v(enum_of(*_SNAPSHOT_MODES, aliases={"never": "no_data"},
                  unsupported={"configuration_based": "", "custom": "", "exported": "", "schema_only": "",
                               "schema_only_recovery": "", "recovery": ""})),
    ] = Field("initial", alias="snapshot.mode")
    incremental_snapshot_chunk_size: PositiveInt = Field(1024, alias="incremental.snapshot.chunk.size")
    signal_data_collection: Annotated[str | None, v(_signal_collection)] = Field(
        None, alias="signal.data.collection")

    # --- event encoding ---
    time_precision_mode: Annotated[
        Literal["adaptive", "adaptive_time_microseconds", "connect", "isostring"],
        v(enum_of("adaptive", "adaptive_time_microseconds", "connect", "isostring",
                  unsupported={"microseconds": "", "nanoseconds": ""})),
    ] = Field("adaptive", alias="time.precision.mode")
    interval_handling_mode: Annotated[
        Literal["numeric", "string"], v(enum_of("numeric", "string"))
    ] = Field("numeric", alias="interval.handling.mode")
    include_unknown_datatypes: Bool = Field(False, alias="include.unknown.datatypes")


    # --- questions the reader asks ---

    def table_included(self, schema: str, table: str) -> bool:
        """Whether changes of ``schema.table`` are captured (Debezium's schema and table filters)."""
        if (schema.lower() in _SYSTEM_SCHEMAS or table.lower() in _SYSTEM_TABLES
                or schema.startswith(_TEMP_SCHEMA_PREFIX)):
            return False
        if not passes_filters(schema, self.schema_include_list, self.schema_exclude_list):
            return False
        return passes_filters(f"{schema}.{table}", self.table_include_list, self.table_exclude_list)

    def column_included(self, schema: str, table: str, column: str) -> bool:
        """Whether a column appears in events (column.include/exclude.list on ``schema.table.column``)."""
        return passes_filters(f"{schema}.{table}.{column}", self.column_include_list, self.column_exclude_list)

    def conninfo(self, replication: bool = False) -> str:
        """A libpq connection string for this source, password included: never log it.

        ``replication=True`` asks for a logical replication connection (``replication=database``).
        """
        params: list[tuple[str, str]] = [
            ("host", self.database_hostname),
            ("port", str(self.database_port)),
            ("dbname", self.database_dbname),
            ("user", self.database_user),
        ]
        if self.database_password is not None:
            params.append(("password", self.database_password.get_secret_value()))
        params.append(("sslmode", self.database_sslmode))
        for key, value in (("sslrootcert", self.database_sslrootcert), ("sslcert", self.database_sslcert),
                           ("sslkey", self.database_sslkey)):
            if value is not None:
                params.append((key, value))
        if self.database_sslpassword is not None:
            params.append(("sslpassword", self.database_sslpassword.get_secret_value()))
        params.append(("keepalives", "1" if self.database_tcp_keepalive else "0"))
        params.append(("application_name", APPLICATION_NAME))
        params.append(("options", SESSION_OPTIONS))
        if replication:
            params.append(("replication", "database"))
        return " ".join(f"{key}={_quote(value)}" for key, value in params)

    def masked_dump(self) -> dict[str, Any]:
        out = super().masked_dump()
        ops = [op for op in OPERATIONS if op in self.skipped_operations]
        out["skipped.operations"] = ",".join(ops) if ops else "none"
        return out


def _quote(value: str) -> str:
    """A libpq conninfo value: single-quoted, with backslash and quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
