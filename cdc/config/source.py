"""`SourceModel`: what every Debezium source connector's configuration shares.

Role: the properties and rules the PostgreSQL and the MySQL/MariaDB models have in common — naming
(`topic.prefix`), table and column filters, snapshot chunking, decimal and binary encodings, event
options (`tombstones.on.delete`, `skipped.operations`, `provide.transaction.metadata`), pacing,
heartbeats, signals and retries, the "include and exclude lists cannot both be set" rule for the
filter kinds a connector names (`FILTER_KINDS`), and `max.queue.size` > `max.batch.size` — declared
once. Failure story: as every model, problems are returned all at once by the validation driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from cdc.config._base import (
    Bool,
    ConnectorModel,
    OptionalStr,
    PositiveInt,
    RegexList,
    enum_of,
    int_between,
    only_one,
    skipped_operations_of,
    to_topic_name,
    v,
)

# Debezium properties every source refuses for the same reason; each model adds its own.
COMMON_UNSUPPORTED: dict[str, str] = {
    "heartbeat.action.query": "not supported yet",
    "heartbeat.topics.prefix": "",
    "message.key.columns": "custom message keys are not supported yet",
    "snapshot.locking.mode.custom.name": "",
    "snapshot.query.mode": "",
    "snapshot.query.mode.custom.name": "",
    "snapshot.select.statement.overrides": "",
    "snapshot.include.collection.list": "",
    "snapshot.delay.ms": "",
    "snapshot.mode.custom.name": "",
    "snapshot.tables.order.by.row.count": "",
    "read.only": "",
    "include.schema.comments": "",
    "database.initial.statements": "",
    "database.query.timeout.ms": "",
    "database.server.name": "replaced by topic.prefix in Debezium 2.0",
    "column.propagate.source.type": "",
    "datatype.propagate.source.type": "",
    "converters": "custom converters are not supported",
    "post.processors": "",
    "sanitize.field.names": "",
    "field.name.adjustment.mode": "",
    "schema.name.adjustment.mode": "",
    "event.converting.failure.handling.mode": "",
    "topic.cache.size": "",
    "topic.heartbeat.prefix": "",
    "topic.transaction": "",
    "signal.enabled.channels": "",
    "signal.poll.interval.ms": "",
    "notification.enabled.channels": "",
    "custom.metric.tags": "",
    "query.fetch.size": "",
    "max.queue.size.in.bytes": "",
    "sourceinfo.struct.maker": "",
    "source.struct.version": "",
    "skip.messages.without.change": "",
    "header.converter": "",
    "config.action.reload": "",
    "transforms": "single message transforms are not supported; use a mapping",
    "predicates": "",
    "errors.tolerance": "a source connector stops on errors",
    "errors.retry.timeout": "use errors.max.retries",
    "errors.retry.delay.max.ms": "use errors.max.retries",
    "errors.log.enable": "",
    "errors.log.include.messages": "",
    "exactly.once.support": "",
    "transaction.boundary": "",
    "offsets.storage.topic": "",
}
COMMON_UNSUPPORTED_PREFIXES: dict[str, str] = {
    "transforms.": "single message transforms are not supported; use a mapping",
    "predicates.": "",
    "topic.creation.": "topics are created by the journal",
    "column.mask.": "",
    "column.truncate.": "",
    "snapshot.mode.configuration.based.": "",
    "driver.": "",
    "producer.override.": "",
    "consumer.override.": "",
    "admin.override.": "",
    "key.converter.": "only key.converter.schemas.enable is supported",
    "value.converter.": "only value.converter.schemas.enable is supported",
    "notification.": "",
    "signal.kafka.": "",
}


class SourceModel(ConnectorModel):
    """Base of the source connector models (see the module docstring)."""

    FILTER_KINDS: ClassVar[tuple[str, ...]] = ("table", "column")

    topic_prefix: Annotated[str, v(to_topic_name)] = Field(alias="topic.prefix")

    # --- filters (comma-separated regexes; Debezium's full, case-insensitive match) ---
    table_include_list: RegexList = Field((), alias="table.include.list")
    table_exclude_list: RegexList = Field((), alias="table.exclude.list")
    column_include_list: RegexList = Field((), alias="column.include.list")
    column_exclude_list: RegexList = Field((), alias="column.exclude.list")

    # --- snapshot ---
    snapshot_fetch_size: PositiveInt = Field(10240, alias="snapshot.fetch.size")
    snapshot_max_threads: Annotated[
        int, v(only_one("snapshots run on one thread; set snapshot.max.threads=1"))
    ] = Field(1, alias="snapshot.max.threads")

    # --- encoding (decimal.handling.mode defaults to string: see the README) ---
    decimal_handling_mode: Annotated[
        Literal["precise", "double", "string"], v(enum_of("precise", "double", "string"))
    ] = Field("string", alias="decimal.handling.mode")
    binary_handling_mode: Annotated[
        Literal["bytes", "base64", "base64-url-safe", "hex"],
        v(enum_of("bytes", "base64", "base64-url-safe", "hex")),
    ] = Field("bytes", alias="binary.handling.mode")
    # --- events ---
    tombstones_on_delete: Bool = Field(True, alias="tombstones.on.delete")
    skipped_operations: Annotated[frozenset[str], v(skipped_operations_of)] = Field(
        frozenset({"t"}), alias="skipped.operations")
    provide_transaction_metadata: Bool = Field(False, alias="provide.transaction.metadata")

    # --- pacing, heartbeats, signals, retries ---
    heartbeat_interval_ms: Annotated[int, v(int_between(0))] = Field(0, alias="heartbeat.interval.ms")
    max_batch_size: PositiveInt = Field(2048, alias="max.batch.size")
    max_queue_size: PositiveInt = Field(8192, alias="max.queue.size")
    poll_interval_ms: PositiveInt = Field(500, alias="poll.interval.ms")
    signal_data_collection: OptionalStr = Field(None, alias="signal.data.collection")
    errors_max_retries: Annotated[int, v(int_between(-1))] = Field(-1, alias="errors.max.retries")
    retriable_restart_connector_wait_ms: PositiveInt = Field(
        10000, alias="retriable.restart.connector.wait.ms")

    # --- the journal's retention of this source's topics, as a Kafka topic's retention.ms / retention.bytes
    # (cdc.journal.retention; -1 = no limit). Only records every sink has delivered are ever removed.
    journal_retention_ms: Annotated[int, v(int_between(-1))] = Field(
        7 * 24 * 3600 * 1000, alias="journal.retention.ms")  # seven days, Kafka's default retention.ms
    journal_retention_bytes: Annotated[int, v(int_between(-1))] = Field(-1, alias="journal.retention.bytes")

    @classmethod
    def _check_combinations(cls, data: Mapping[str, Any]) -> list[str]:
        problems = []
        for kind in cls.FILTER_KINDS:
            if f"{kind}.include.list" in data and f"{kind}.exclude.list" in data:
                problems.append(f"properties '{kind}.include.list' and '{kind}.exclude.list' cannot both be "
                                f"set (Debezium: \"{kind}.include.list\" is already specified)")
        return problems

    @model_validator(mode="after")
    def _queue_larger_than_batch(self) -> Self:
        if self.max_queue_size <= self.max_batch_size:
            raise ValueError(f"property 'max.queue.size' = {self.max_queue_size} must be larger than "
                             f"'max.batch.size' ({self.max_batch_size})")
        return self

    @property
    def signal_table(self) -> tuple[str, str] | None:
        """(schema or database, table) of ``signal.data.collection``, or None when signals are off."""
        if self.signal_data_collection is None:
            return None
        container, _, table = self.signal_data_collection.partition(".")
        return container, table

    def skipped(self, op: str) -> bool:
        """Whether events of this Debezium operation code (``c``, ``u``, ``d``, ``t``, ``r``) are dropped."""
        return op in self.skipped_operations
