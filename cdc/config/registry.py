"""The connector registry: which ``connector.class`` values exist and which model validates each.

Role: adding a connector type (a MySQL source, an HTTP sink) is one entry in `MODELS` (and its
member in the `SourceConfig` / `SinkConfig` / `ConnectorConfig` unions beside it); each model
lists the class names it answers to (`CONNECTOR_CLASSES`: the canonical Java class name first, then
the short aliases Kafka Connect also accepts, such as ``PostgresConnector`` or ``FileStreamSink``).

Failure story: an unknown ``connector.class`` is reported by the loader with the canonical names of
every registered connector; two models claiming one name is a programming error, raised at import.
"""

from __future__ import annotations

from typing import TypeAlias

from cdc.config._base import ConnectorModel
from cdc.config.httpsinks import (
    DynamicsSinkConfig,
    HttpSinkConfig,
    HubSpotSinkConfig,
    NetSuiteSinkConfig,
    SalesforceSinkConfig,
)
from cdc.config.mysql import MariaDbSourceConfig, MySqlSourceConfig
from cdc.config.postgres import PostgresSourceConfig
from cdc.config.sinks import FileStreamSinkConfig

# The typed unions the rest of the bridge matches on; extend them with MODELS.
SourceConfig: TypeAlias = PostgresSourceConfig | MySqlSourceConfig | MariaDbSourceConfig
# The sinks the delivery engine drives (`sinks.open_sink`).
DeliverySinkConfig: TypeAlias = (HttpSinkConfig | SalesforceSinkConfig | HubSpotSinkConfig | NetSuiteSinkConfig
                                 | DynamicsSinkConfig)
SinkConfig: TypeAlias = (FileStreamSinkConfig | HttpSinkConfig | SalesforceSinkConfig | HubSpotSinkConfig
                         | NetSuiteSinkConfig | DynamicsSinkConfig)
ConnectorConfig: TypeAlias = (PostgresSourceConfig | MySqlSourceConfig | MariaDbSourceConfig | FileStreamSinkConfig
                              | HttpSinkConfig | SalesforceSinkConfig | HubSpotSinkConfig | NetSuiteSinkConfig
                              | DynamicsSinkConfig)

MODELS: tuple[type[ConnectorModel], ...] = (
    PostgresSourceConfig,
    MySqlSourceConfig,
    MariaDbSourceConfig,
    FileStreamSinkConfig,
    HttpSinkConfig,
    SalesforceSinkConfig,
    HubSpotSinkConfig,
    NetSuiteSinkConfig,
    DynamicsSinkConfig,
)


def _build() -> dict[str, type[ConnectorModel]]:
    table: dict[str, type[ConnectorModel]] = {}
    for model in MODELS:
        for name in model.CONNECTOR_CLASSES:
            if name in table:
                raise RuntimeError(f"connector class {name!r} is claimed by {table[name].__name__} and "
                                   f"{model.__name__}")
            table[name] = model
    return table


_CLASSES = _build()


def connector_classes() -> dict[str, type[ConnectorModel]]:
    """Every accepted ``connector.class`` value -> the model that validates it (a copy)."""
    return dict(_CLASSES)


def canonical_classes() -> list[str]:
    """The canonical class name of each registered connector, for messages."""
    return [model.CONNECTOR_CLASSES[0] for model in MODELS]
