"""DynamicsSink: business events to Dynamics 365 / Dataverse tables through the Web API (v9.2).

Role: one request per record (routes ``upsert <entitySet>`` / ``delete <entitySet>``, batch limit 1):
upsert by alternate key ``PATCH /api/data/v9.2/{entitySet}({key}='{KEY}')`` with the event's fields
(renamed by `sinks.fieldmaps`: Customer -> accounts, ...; nested lists such as ``Order.lines`` are
dropped: order lines are rows of their own table), answered 204; delete ``DELETE`` on the same URL, 404
counting as delivered. The key value is the event's subject as an OData string literal (quotes doubled,
percent-encoded). The alternate key is ``dynamics.alternate.key``, else the entity's default
(``accountnumber`` for accounts, ``productnumber`` for products, ``erp_id`` otherwise, and ``erp_id`` for
an entity set named by ``dynamics.entity.set``).

Credentials: Azure AD OAuth 2.0 client credentials at ``dynamics.token.url`` with ``dynamics.scope``
(default ``<base>/.default``), cached for its ``expires_in``, fetched again once after a 401.

Failure story: 400 ``{"error": {"code", "message"}}`` is rejected with that body; 429 (service protection
limits, with Retry-After) and 5xx are retried.
"""

from __future__ import annotations

from urllib.parse import quote

from cdc.config.httpsinks import DynamicsSinkConfig
from cdc.types import SinkEvent
from sinks.fieldmaps import DYNAMICS, FieldMapper
from sinks.httpclient import HttpClient, OAuth2ClientCredentials, PerRecordSink

__all__ = ["DynamicsSink"]

_ODATA_HEADERS = {"OData-MaxVersion": "4.0", "OData-Version": "4.0"}


class DynamicsSink(PerRecordSink):
    UPSERT_METHOD = "PATCH"
    HEADERS = _ODATA_HEADERS

    def __init__(self, cfg: DynamicsSinkConfig) -> None:
        entity = cfg.mapper_entity
        default = DYNAMICS.object_for(entity) if entity is not None and cfg.dynamics_entity_set is None else None
        entity_set = cfg.dynamics_entity_set or (default.name if default is not None else "")
        key = cfg.dynamics_alternate_key or (default.key if default is not None and default.key else "erp_id")
        auth = OAuth2ClientCredentials(cfg.dynamics_token_url, cfg.dynamics_client_id, cfg.dynamics_client_secret,
                                       cfg.scope)
        client = HttpClient(cfg.name, timeout_ms=cfg.http_timeout_ms, max_in_flight=cfg.max_in_flight_requests,
                            auth=auth)
        super().__init__(cfg.name, cfg.batch_max_records, cfg.batch_max_bytes, client, entity_set)
        self.url_prefix = f"{cfg.dynamics_base_url}/api/data/v9.2/{entity_set}({key}="
        self.fields = FieldMapper.for_vendor(DYNAMICS, entity, entity_set, cfg.field_map)

    def record_url(self, event: SinkEvent) -> str:
        literal = "'" + event.subject.replace("'", "''") + "'"
        return self.url_prefix + quote(literal, safe="'") + ")"
