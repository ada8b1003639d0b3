"""HubSpotSink: business events to HubSpot CRM objects (CRM API v3).

Role: upserts go in batches of up to ``batch.max.records`` (at most 100) as one
``POST /crm/v3/objects/{objectType}/batch/upsert`` whose inputs carry ``idProperty`` (``hubspot.id.property``,
default ``erp_id``, a unique property), ``id`` (the event's subject, the business key), ``properties``
(the event's fields renamed by `sinks.fieldmaps`, every value a string, since HubSpot stores properties as
text; nested lists such as ``Order.lines`` are dropped: line items are objects of their own) and
``objectWriteTraceId`` (the event id), by which results and errors are matched back to the records.
Deletes are one request each (route ``delete <objectType>``, batch limit 1):
``DELETE /crm/v3/objects/{objectType}/{KEY}?idProperty=P``; 404 counts as delivered.

Credentials: a private-app access token (``hubspot.access.token``) as a bearer token; a 401 stops the
sink (nothing to refresh).

Failure story: an input named in an error of a 207 response is rejected with that error's
``category: message`` unless the category is a transient one (rate limits, timeouts), which is retried;
an input without result or error is retried, except in a 200 response without errors, which
acknowledges the whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import orjson

from cdc.config.httpsinks import HubSpotSinkConfig
from cdc.types import Outcome, OutcomeKind, SinkEvent
from sinks.fieldmaps import HUBSPOT, FieldMapper, hubspot_value
from sinks.httpclient import HttpClient, HttpSinkBase, Request, Response, StaticAuth, idempotency_key, key_segment

__all__ = ["HubSpotSink"]

RETRYABLE_CATEGORIES = frozenset({"RATE_LIMIT", "RATE_LIMITS", "TIMEOUT", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE",
                                  "TEMPORARILY_UNAVAILABLE", "LOCKED"})


def _error_outcomes(errors: Any, status: int) -> dict[str, Outcome]:
    """Event id -> outcome, for every input an error names through ``context.objectWriteTraceId``."""
    out: dict[str, Outcome] = {}
    for e in errors if isinstance(errors, list) else []:
        if not isinstance(e, dict):
            continue
        category = str(e.get("category") or e.get("errorType") or "ERROR")
        kind = OutcomeKind.RETRY if category in RETRYABLE_CATEGORIES else OutcomeKind.REJECTED
        outcome = Outcome(kind, status=status, error=f"{category}: {e.get('message', '')}")
        context = e.get("context")
        ids = context.get("objectWriteTraceId") if isinstance(context, dict) else None
        for trace in ids if isinstance(ids, list) else [ids] if isinstance(ids, str) else []:
            out[str(trace)] = outcome
    return out


class HubSpotSink(HttpSinkBase):
    BATCH_UPSERTS = True

    def __init__(self, cfg: HubSpotSinkConfig) -> None:
        entity = cfg.mapper_entity
        obj = cfg.hubspot_object_type or HUBSPOT.object_for(entity or "").name
        auth = StaticAuth.bearer(cfg.hubspot_access_token, "hubspot.access.token")
        client = HttpClient(cfg.name, timeout_ms=cfg.http_timeout_ms, max_in_flight=cfg.max_in_flight_requests,
                            auth=auth)
        super().__init__(cfg.name, cfg.batch_max_records, cfg.batch_max_bytes, client, obj)
        self._id_property = cfg.hubspot_id_property
        base = f"{cfg.hubspot_base_url}/crm/v3/objects/{quote(obj, safe='')}"
        self._upsert_url = f"{base}/batch/upsert"
        self._delete_url = f"{base}/{{key}}?idProperty={quote(self._id_property, safe='')}"
        self._fields = FieldMapper.for_vendor(HUBSPOT, entity, obj, cfg.field_map, hubspot_value)

    def record_request(self, event: SinkEvent) -> Request:
        return Request("DELETE", self._delete_url.replace("{key}", key_segment(event)), event.id)

    def batch_request(self, route: str, batch: Sequence[SinkEvent]) -> Request:
        inputs = [{"idProperty": self._id_property, "id": e.subject, "properties": self._fields.apply(e.data),
                   "objectWriteTraceId": e.id} for e in batch]
        return Request("POST", self._upsert_url, idempotency_key(batch), orjson.dumps({"inputs": inputs}))

    def batch_outcomes(self, batch: Sequence[SinkEvent], resp: Response) -> list[Outcome]:
        doc = resp.json()
        if not isinstance(doc, dict):
            doc = {}
        errors = doc.get("errors")
        failed = _error_outcomes(errors, resp.status)
        done: set[str] = set()
        for r in doc.get("results") or []:
            if not isinstance(r, dict):
                continue
            if isinstance(r.get("objectWriteTraceId"), str):
                done.add(r["objectWriteTraceId"])
            props = r.get("properties")
            if isinstance(props, dict) and isinstance(props.get(self._id_property), str):
                done.add(props[self._id_property])  # a result without trace id, matched by its key
        complete = resp.status == 200 and not errors
        delivered = Outcome(OutcomeKind.DELIVERED, status=resp.status)
        missing = Outcome(OutcomeKind.RETRY, status=resp.status, error="HubSpot reported no result for this input")
        return [failed.get(e.id) or (delivered if complete or e.id in done or e.subject in done else missing)
                for e in batch]
