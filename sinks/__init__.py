"""Sink adapters: deliver journal records (or mapped envelopes) to a target -- files, HTTP APIs, Kafka.

Dependency rule (design §8): modules here import only `cdc`'s types, protocols and errors
(`cdc.types`, `cdc.errors`, ...), never the engine's concrete parts (readers, journal backends,
pipeline); only the CLI and the connector registry name concrete sink classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdc.config.registry import DeliverySinkConfig
    from cdc.types import Sink

__all__ = ["open_sink"]


def open_sink(cfg: DeliverySinkConfig) -> Sink:
    """The sink adapter for an HTTP sink's config, not yet opened: the engine awaits ``open()`` before the
    first ``deliver`` and ``close()`` at the end. Each adapter also has ``batch_limit(route) -> int``.
    Imports lazily, so that a process with no HTTP sink never loads aiohttp."""
    from cdc.config.httpsinks import (
        DynamicsSinkConfig,
        HttpSinkConfig,
        HubSpotSinkConfig,
        NetSuiteSinkConfig,
        SalesforceSinkConfig,
    )

    if isinstance(cfg, HttpSinkConfig):
        from sinks.http import HttpSink

        return HttpSink(cfg)
    if isinstance(cfg, SalesforceSinkConfig):
        from sinks.salesforce import SalesforceSink

        return SalesforceSink(cfg)
    if isinstance(cfg, HubSpotSinkConfig):
        from sinks.hubspot import HubSpotSink

        return HubSpotSink(cfg)
    if isinstance(cfg, NetSuiteSinkConfig):
        from sinks.netsuite import NetSuiteSink

        return NetSuiteSink(cfg)
    if isinstance(cfg, DynamicsSinkConfig):
        from sinks.dynamics import DynamicsSink

        return DynamicsSink(cfg)
    raise TypeError(f"no HTTP sink for {type(cfg).__name__}")
