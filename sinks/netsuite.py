"""NetSuiteSink: business events to NetSuite records through the REST Record Service (v1).

Role: one request per record (routes ``upsert <recordType>`` / ``delete <recordType>``, batch limit 1):
upsert by external id ``PUT /services/rest/record/v1/{recordType}/eid:{KEY}`` with the event's fields
(renamed by `sinks.fieldmaps`: Customer -> customer, ...; nested lists such as ``Order.lines`` are
dropped, sublists are not written here), answered 204; delete ``DELETE`` on the same URL, 404 counting
as delivered. The key is the event's subject. Each request carries the event id both as
``Idempotency-Key`` and ``X-NetSuite-Idempotency-Key``.

Credentials: OAuth 2.0 client credentials at ``netsuite.token.url`` (default
``<base>/services/rest/auth/oauth2/v1/token``), cached for its ``expires_in``, fetched again once after
a 401 ``INVALID_LOGIN``.

Failure story: a 400 (``o:errorDetails``, e.g. ``INVALID_FIELD_VALUE``) is rejected with NetSuite's
body; 429 ``CONCURRENCY_LIMIT_EXCEEDED`` and 5xx are retried (``max.in.flight.requests`` should not
exceed the account's concurrency limit).
"""

from __future__ import annotations

from cdc.config.httpsinks import NetSuiteSinkConfig
from sinks.fieldmaps import NETSUITE, FieldMapper
from sinks.httpclient import HttpClient, OAuth2ClientCredentials, PerRecordSink

__all__ = ["NetSuiteSink"]


class NetSuiteSink(PerRecordSink):
    UPSERT_METHOD = "PUT"

    def __init__(self, cfg: NetSuiteSinkConfig) -> None:
        entity = cfg.mapper_entity
        record = cfg.netsuite_record_type or NETSUITE.object_for(entity or "").name
        auth = OAuth2ClientCredentials(cfg.token_url, cfg.netsuite_client_id, cfg.netsuite_client_secret)
        client = HttpClient(cfg.name, timeout_ms=cfg.http_timeout_ms, max_in_flight=cfg.max_in_flight_requests,
                            auth=auth, idempotency_headers=("Idempotency-Key", "X-NetSuite-Idempotency-Key"))
        super().__init__(cfg.name, cfg.batch_max_records, cfg.batch_max_bytes, client, record)
        self.url_prefix = f"{cfg.netsuite_base_url}/services/rest/record/v1/{record}/eid:"
        self.fields = FieldMapper.for_vendor(NETSUITE, entity, record, cfg.field_map)
