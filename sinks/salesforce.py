"""SalesforceSink: business events to Salesforce through the REST API (sObject Collections).

Role: upserts go in batches of up to ``batch.max.records`` (at most 200) as one
``PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExtIdField}`` with ``allOrNone: false``; each
record carries its ``attributes.type``, the external id field (default ``ERP_Id__c``) set to the event's
subject (the business key), and the event's fields renamed by `sinks.fieldmaps` (default Customer ->
Account, ...; ``field.map.*`` overrides; nested lists such as ``Order.lines`` are dropped: child records
need their own requests). Salesforce answers one UpsertResult per record in request order, which gives
each record its outcome. Deletes are one request each (route ``delete <SObject>``, batch limit 1):
``DELETE /services/data/vXX.X/sobjects/{SObject}/{ExtIdField}/{KEY}``; 404 counts as delivered.

Credentials: OAuth 2.0 client credentials at ``salesforce.token.url`` (default
``<instance>/services/oauth2/token``); the token is cached until Salesforce answers 401
``INVALID_SESSION_ID``, then fetched again once.

Failure story: a per-record error is rejected (dead-lettered with its ``statusCode: message [fields]``)
unless its code is a transient one (``UNABLE_TO_LOCK_ROW``, ...), which is retried; a 403
``REQUEST_LIMIT_EXCEEDED`` (the org's API limit) is retried, any other 403 stops the sink; a result list
Salesforce cut short leaves the missing records to be retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from cdc.config.httpsinks import SalesforceSinkConfig
from cdc.types import Outcome, OutcomeKind, SinkEvent
from sinks.fieldmaps import SALESFORCE, FieldMapper, salesforce_value
from sinks.httpclient import (
    HttpClient,
    HttpSinkBase,
    OAuth2ClientCredentials,
    Request,
    Response,
    idempotency_key,
    key_segment,
)

__all__ = ["SalesforceSink"]

# Per-record status codes that say "not now" rather than "never".
RETRYABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE",
                             "QUERY_TIMEOUT"})


def _limit_error(resp: Response) -> bool:
    return resp.status == 403 and b"REQUEST_LIMIT_EXCEEDED" in resp.body


def _error_text(errors: Any) -> tuple[str, bool]:
    """(the errors as text, whether every one is retryable)."""
    if not isinstance(errors, list) or not errors:
        return "failed without an error", False
    parts, codes = [], []
    for e in errors:
        if not isinstance(e, dict):
            continue
        code = str(e.get("statusCode") or e.get("errorCode") or "UNKNOWN")
        codes.append(code)
        fields = e.get("fields")
        where = f" [{', '.join(map(str, fields))}]" if isinstance(fields, list) and fields else ""
        parts.append(f"{code}: {e.get('message', '')}{where}")
    return "; ".join(parts), bool(codes) and all(c in RETRYABLE_CODES for c in codes)


class SalesforceSink(HttpSinkBase):
    BATCH_UPSERTS = True

    def __init__(self, cfg: SalesforceSinkConfig) -> None:
        entity = cfg.mapper_entity
        obj = cfg.salesforce_sobject or SALESFORCE.object_for(entity or "").name
        auth = OAuth2ClientCredentials(cfg.token_url, cfg.salesforce_client_id, cfg.salesforce_client_secret)
        client = HttpClient(cfg.name, timeout_ms=cfg.http_timeout_ms, max_in_flight=cfg.max_in_flight_requests,
                            auth=auth, limit_error=_limit_error)
        super().__init__(cfg.name, cfg.batch_max_records, cfg.batch_max_bytes, client, obj)
        self._ext = cfg.salesforce_external_id_field
        base = f"{cfg.salesforce_instance_url}/services/data/v{cfg.salesforce_api_version}"
        self._upsert_url = f"{base}/composite/sobjects/{obj}/{self._ext}"
        self._delete_url = f"{base}/sobjects/{obj}/{self._ext}/"
        self._fields = FieldMapper.for_vendor(SALESFORCE, entity, obj, cfg.field_map, salesforce_value)

    def record_request(self, event: SinkEvent) -> Request:
        return Request("DELETE", self._delete_url + key_segment(event), event.id)

    def batch_request(self, route: str, batch: Sequence[SinkEvent]) -> Request:
        attributes = {"type": self.object_name}
        records = [{"attributes": attributes, **self._fields.apply(e.data), self._ext: e.subject} for e in batch]
        return Request("PATCH", self._upsert_url, idempotency_key(batch),
                       orjson.dumps({"allOrNone": False, "records": records}))

    def batch_outcomes(self, batch: Sequence[SinkEvent], resp: Response) -> list[Outcome]:
        doc = resp.json()
        results = doc if isinstance(doc, list) else []
        out: list[Outcome] = []
        for i in range(len(batch)):
            r = results[i] if i < len(results) else None
            if not isinstance(r, dict):
                out.append(Outcome(OutcomeKind.RETRY, status=resp.status, error="Salesforce returned no result "
                                   "for this record"))
            elif r.get("success") is True:
                out.append(Outcome(OutcomeKind.DELIVERED, status=resp.status))
            else:
                text, retryable = _error_text(r.get("errors"))
                kind = OutcomeKind.RETRY if retryable else OutcomeKind.REJECTED
                out.append(Outcome(kind, status=resp.status, error=text))
        return out
