"""Sink connector configurations: `SinkModel`, `MappedSinkModel` and `FileStreamSinkConfig` (JSON lines).

Role: the typed, validated form of a Kafka Connect sink config. Every sink takes Kafka Connect's
``topics`` (a comma-separated list) or ``topics.regex`` (a Java-style regex, matched against the whole
topic name), exactly one of the two, as Kafka Connect requires, plus the error-handling settings
``errors.tolerance`` (``none`` | ``all``) and ``errors.deadletterqueue.topic.name``, kept for the
delivery pipeline. `topic_pattern()` turns either form into one compiled pattern to use with
``fullmatch``.

FileStreamSink specifics: ``file`` is required here (Kafka writes to stdout when it is unset; a
service has no useful stdout); a relative path is taken relative to the working directory of the
process that loads the config and stored absolute. Kafka's FileStreamSink has no ``batch.size``
(that is the source's), so it is an unknown property here too.

Mappings (our own properties): ``mapper.sql`` names a SQL mapping file (relative to the connector
file that sets it, or absolute; the loader announces that file through `CONFIG_FILE`); with it the
sink writes CloudEvents instead of change events. ``mapper.entity`` (one of the canonical entities,
case-insensitive) validates the mapping's select list and each event's data; ``mapper.key`` (a
comma-separated list of select-list names) is the business key, by default the first column. The
mapping itself is compiled against the source's live catalog by `cdc validate` and when `cdc run`
starts, before capture begins (`mappers.load`). These three properties live in `MappedSinkModel`,
shared with the HTTP sinks (`cdc.config.httpsinks`), which require ``mapper.sql``.

Failure story: like every connector model, problems are collected and returned all at once
(`validate_properties`); the dead-letter topic may not be one of the topics the sink consumes, as
Kafka Connect also refuses.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from cdc.config._base import (
    ConnectorModel,
    enum_of,
    split_list,
    to_nonempty_str,
    to_regex,
    to_str,
    to_topic_name,
    v,
)

FILE_STREAM_SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"

# The connector file being validated, set by the loader: relative mapping paths are relative to it.
CONFIG_FILE: ContextVar[Path | None] = ContextVar("cdc_config_file", default=None)

ENTITY_NAMES = ("Customer", "Contact", "Product", "Order", "Invoice", "Payment", "Shipment")


def _topics(value: Any) -> tuple[str, ...]:
    items = split_list(to_str(value))
    for item in items:
        to_topic_name(item)
    return items


def _dlq_topic(value: Any) -> str | None:
    text = to_str(value)
    return to_topic_name(text) if text else None


def _file(value: Any) -> Path:
    return Path(os.path.abspath(to_nonempty_str(value)))


def _mapping_file(value: Any) -> Path:
    path = Path(to_nonempty_str(value))
    if not path.is_absolute():
        origin = CONFIG_FILE.get()
        base = origin.resolve().parent if origin is not None else Path.cwd()
        path = base / path
    path = Path(os.path.abspath(path))
    if not path.is_file():
        raise ValueError(f"is not a readable file ({path})")
    return path


def _entity(value: Any) -> str:
    text = to_nonempty_str(value)
    for name in ENTITY_NAMES:
        if name.lower() == text.lower():
            return name
    close = difflib.get_close_matches(text.capitalize(), ENTITY_NAMES, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ValueError(f"is not a canonical entity{hint}; one of: {', '.join(ENTITY_NAMES)}")


def _key_list(value: Any) -> tuple[str, ...]:
    items = split_list(to_str(value))
    if not items:
        raise ValueError("must name at least one select-list column")
    return items


class SinkModel(ConnectorModel):
    """What every sink shares: the topics it reads and Kafka Connect's error-handling settings."""

    KIND: ClassVar[str] = "sink"
    UNSUPPORTED: ClassVar[dict[str, str]] = {
        "errors.retry.timeout": "",
        "errors.retry.delay.max.ms": "",
        "errors.log.enable": "",
        "errors.log.include.messages": "",
        "errors.deadletterqueue.topic.replication.factor": "",
        "errors.deadletterqueue.context.headers.enable": "",
        "header.converter": "",
        "config.action.reload": "",
        "transforms": "single message transforms are not supported; use a mapping",
        "predicates": "",
    }
    UNSUPPORTED_PREFIXES: ClassVar[dict[str, str]] = {
        "transforms.": "single message transforms are not supported; use a mapping",
        "predicates.": "",
        "consumer.override.": "",
        "producer.override.": "",
        "admin.override.": "",
        "key.converter.": "only key.converter.schemas.enable is supported",
        "value.converter.": "only value.converter.schemas.enable is supported",
    }

    topics: Annotated[tuple[str, ...], v(_topics)] = Field((), alias="topics")
    topics_regex: Annotated[str | None, v(to_regex)] = Field(None, alias="topics.regex")
    errors_tolerance: Annotated[Literal["none", "all"], v(enum_of("none", "all"))] = Field(
        "none", alias="errors.tolerance")
    errors_deadletterqueue_topic_name: Annotated[str | None, v(_dlq_topic)] = Field(
        None, alias="errors.deadletterqueue.topic.name")

    @classmethod
    def _check_combinations(cls, data: Mapping[str, Any]) -> list[str]:
        given = [p for p in ("topics", "topics.regex") if str(data.get(p, "")).strip()]
        if not given:
            return ["one of the properties 'topics' or 'topics.regex' must be set"]
        if len(given) == 2:
            return ["properties 'topics' and 'topics.regex' are mutually exclusive; set only one"]
        return []

    @model_validator(mode="after")
    def _dlq_not_consumed(self) -> SinkModel:
        dlq = self.errors_deadletterqueue_topic_name
        if dlq is not None and self.topic_pattern().fullmatch(dlq):
            raise ValueError(f"property 'errors.deadletterqueue.topic.name' = '{dlq}' is one of the topics "
                             "this sink consumes")
        return self

    def topic_pattern(self) -> re.Pattern[str]:
        """The topics this sink reads, as one pattern; use ``fullmatch`` (Kafka's whole-name match)."""
        if self.topics_regex is not None:
            return re.compile(self.topics_regex)
        return re.compile("|".join(re.escape(t) for t in self.topics))


class MappedSinkModel(SinkModel):
    """A sink that can deliver business events: the ``mapper.*`` properties (see the module docstring).

    `MAPPER_REQUIRED` is set by sinks that only deliver business events (the HTTP sinks); then
    ``mapper.sql`` is a required property and its absence is reported once, as missing.
    """

    MAPPER_REQUIRED: ClassVar[bool] = False

    mapper_sql: Annotated[Path | None, v(_mapping_file)] = Field(None, alias="mapper.sql")
    mapper_entity: Annotated[str | None, v(_entity)] = Field(None, alias="mapper.entity")
    mapper_key: Annotated[tuple[str, ...], v(_key_list)] = Field((), alias="mapper.key")

    @classmethod
    def _check_combinations(cls, data: Mapping[str, Any]) -> list[str]:
        problems = super()._check_combinations(data)
        if not cls.MAPPER_REQUIRED and not str(data.get("mapper.sql", "")).strip():
            problems += [f"property '{p}' needs 'mapper.sql'" for p in ("mapper.entity", "mapper.key")
                         if str(data.get(p, "")).strip()]
        return problems


class FileStreamSinkConfig(MappedSinkModel):
    """Kafka's FileStreamSink: one event value per line (UTF-8 JSON), appended to `file`."""

    ONLY_DEFAULT: ClassVar[Mapping[str, tuple[str, str]]] = {
        "errors.tolerance": ("none", "the dead-letter store comes with the delivery work (issue #5)"),
        "errors.deadletterqueue.topic.name": ("", "the dead-letter store comes with the delivery work (issue #5)"),
    }

    CONNECTOR_CLASSES: ClassVar[tuple[str, ...]] = (
        FILE_STREAM_SINK, "FileStreamSinkConnector", "FileStreamSink")

    file: Annotated[Path, v(_file)] = Field(alias="file")
