"""Operating the bridge: Prometheus metrics, the admin HTTP server (Kafka Connect's REST API) and the status page.

Role: a self-contained package the runner plugs into. The runner owns the connectors; it implements
`AdminState` (`cdc.admin.state`) to show and control them, feeds `Metrics` (`cdc.admin.metrics`) with
counts per batch, and serves both with `create_app` / `serve` (`cdc.admin.server`).

Failure story: nothing here can stop a connector. A control callback that fails answers the HTTP
request with its `AdminError` (Kafka Connect's ``{"error_code", "message"}``); any other exception is
logged and answered with a 500, and the server keeps serving.
"""

from __future__ import annotations

from cdc.admin.metrics import CircuitState, Metrics
from cdc.admin.server import create_app, requires_token, serve
from cdc.admin.state import (
    AdminError,
    AdminState,
    ConnectorState,
    ConnectorView,
    History,
    Offset,
    Sample,
)

__all__ = [
    "AdminError",
    "AdminState",
    "CircuitState",
    "ConnectorState",
    "ConnectorView",
    "History",
    "Metrics",
    "Offset",
    "Sample",
    "create_app",
    "requires_token",
    "serve",
]
