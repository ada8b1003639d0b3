"""Connector configuration: Kafka Connect / Debezium connector JSON -> validated, typed models.

Role: the one place where connector files are read and judged (design §3). `load_connectors(paths)`
returns `ConnectorConfig` models (`PostgresSourceConfig`, `MySqlSourceConfig`, `MariaDbSourceConfig`,
`FileStreamSinkConfig`, the HTTP sinks' `HttpSinkConfig`, `SalesforceSinkConfig`, ... -- together
`DeliverySinkConfig`) chosen by ``connector.class`` through `connector_classes()`;
``${env:...}`` and ``${file:...:...}`` references are resolved on the way; `masked` and
`SecretsFilter` keep secrets out of output and logs.

Failure story: validation is complete and early. Every problem in every file is raised at once as one
`cdc.errors.ConfigError` whose problems each name the file, the connector, the property and what is
accepted; unknown and unsupported properties are errors, never ignored; secrets are never quoted.
"""

from __future__ import annotations

from cdc.config._base import ConnectorModel
from cdc.config.httpsinks import (
    DeliverySinkModel,
    DynamicsSinkConfig,
    HttpSinkConfig,
    HubSpotSinkConfig,
    NetSuiteSinkConfig,
    SalesforceSinkConfig,
)
from cdc.config.loader import load_connectors, validate_connector
from cdc.config.mysql import BinlogSourceConfig, MariaDbSourceConfig, MySqlSourceConfig
from cdc.config.postgres import PostgresSourceConfig
from cdc.config.registry import (
    ConnectorConfig,
    DeliverySinkConfig,
    SinkConfig,
    SourceConfig,
    connector_classes,
)
from cdc.config.secrets import MASK, SecretsFilter, is_secret_property, masked
from cdc.config.sinks import FileStreamSinkConfig, MappedSinkModel, SinkModel

__all__ = [
    "MASK",
    "BinlogSourceConfig",
    "ConnectorConfig",
    "ConnectorModel",
    "DeliverySinkConfig",
    "DeliverySinkModel",
    "DynamicsSinkConfig",
    "FileStreamSinkConfig",
    "HttpSinkConfig",
    "HubSpotSinkConfig",
    "MappedSinkModel",
    "MariaDbSourceConfig",
    "MySqlSourceConfig",
    "NetSuiteSinkConfig",
    "PostgresSourceConfig",
    "SalesforceSinkConfig",
    "SecretsFilter",
    "SinkConfig",
    "SinkModel",
    "SourceConfig",
    "connector_classes",
    "is_secret_property",
    "load_connectors",
    "masked",
    "validate_connector",
]
