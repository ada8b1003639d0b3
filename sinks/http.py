"""HttpSink: business events to any REST endpoint, one request per record or in batches.

Role: with ``http.url`` each record is its own request (routes ``upsert`` and ``delete``, batch limit 1):
upserts go ``http.method`` (POST) to ``http.url``, deletes go ``http.delete.method`` (DELETE) to
``http.delete.url`` (default ``http.url``); both URLs are templates (`cdc.config.httpsinks`) whose values
are percent-encoded. The body (``http.body``) is the event's data after ``field.map.*`` (``data``, the
default), the CloudEvent exactly as the mapping wrote it (``cloudevent``, sent as
``application/cloudevents+json``), or ``http.body.template`` rendered for the event (``template``). A
delete sent with the DELETE method has no body; with another method it carries the body built the same way
(the data of a deleted event is its key, or null).

With ``http.batch.url`` every record goes in batches (route ``batch``, up to ``batch.max.records``) as the
README's generic batch endpoint takes them: ``{"records": [{"id", "subject", "op": "upsert"|"delete",
"data"}]}`` -- ``data`` built as above for upserts, null for deletes -- and the per-record
``{"results": [{"id", "status", "error"}]}`` is mapped back by event id (by position when an id is
missing), each status classified like a whole response. Nested lists in the data are sent as they are.

Failure story: a record whose URL needs a value it lacks (a ``{data.FIELD}`` that is missing or null) is
rejected with that explanation and dead-lettered, never sent to a wrong URL; a 2xx batch response that
cannot be read gives every record of the batch a retry (nothing is known applied); everything else is
`sinks.httpclient`'s classification.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import orjson
from pydantic import SecretStr

from cdc.config.httpsinks import PLACEHOLDER, HttpSinkConfig
from cdc.types import Outcome, OutcomeKind, SinkEvent
from sinks.fieldmaps import FieldMapper
from sinks.httpclient import (
    DELIVERED_BY_STATUS,
    Auth,
    HttpClient,
    HttpSinkBase,
    OAuth2ClientCredentials,
    RecordError,
    Request,
    Response,
    StaticAuth,
    idempotency_key,
    retry_all,
)

__all__ = ["BodyTemplate", "HttpSink", "UrlTemplate"]

_CLOUDEVENT = "application/cloudevents+json"
_dumps = orjson.dumps
# Characters kept as they are in the literal parts of a URL template: reserved ones and escapes.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


def _lookup(event: SinkEvent, name: str) -> Any:
    if name == "subject":
        return event.subject
    if name == "type":
        return event.type
    if name == "id":
        return event.id
    return (event.data or {}).get(name[5:])  # data.FIELD


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


class UrlTemplate:
    """A URL with placeholders, split once; `render` percent-encodes each value into it."""

    def __init__(self, text: str, prop: str) -> None:
        self._prop = prop
        pieces = PLACEHOLDER.split(text)  # literal, name, literal, name, ..., literal
        self._literals = [quote(p, safe=_URL_SAFE) for p in pieces[0::2]]
        self._names = [p.strip() for p in pieces[1::2]]

    def render(self, event: SinkEvent) -> str:
        out = [self._literals[0]]
        for name, literal in zip(self._names, self._literals[1:], strict=True):
            value = _lookup(event, name)
            if value is None or value == "":
                raise RecordError(f"{self._prop} needs {{{name}}}, which this event does not carry (or is null)")
            text = _as_text(value)
            out.append(text if text.isalnum() and text.isascii() else quote(text, safe=""))  # quote costs a µs
            out.append(literal)
        return "".join(out)


class BodyTemplate:
    """A JSON body template: a string that is exactly one placeholder becomes that JSON value, a
    placeholder inside a longer string its text; ``{data}`` is the (field-mapped) data object."""

    def __init__(self, text: str) -> None:
        self._doc = orjson.loads(text)

    def render(self, event: SinkEvent, data: dict[str, Any] | None) -> Any:
        def value(name: str) -> Any:
            return data if name == "data" else _lookup(event, name)

        def walk(node: Any) -> Any:
            if isinstance(node, str):
                whole = PLACEHOLDER.fullmatch(node)
                if whole is not None:
                    return value(whole.group(1).strip())
                return PLACEHOLDER.sub(lambda m: _text_or_empty(value(m.group(1).strip())), node)
            if isinstance(node, dict):
                return {k: walk(v) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(v) for v in node]
            return node

        return walk(self._doc)


def _text_or_empty(value: Any) -> str:
    return "" if value is None else _as_text(value)


def _secret(value: SecretStr | None) -> SecretStr:
    if value is None:  # the config model requires it for the chosen auth type
        raise ValueError("credential missing from a validated config")
    return value


def auth_for(cfg: HttpSinkConfig) -> Auth:
    """The credentials ``http.auth.type`` asks for."""
    match cfg.http_auth_type:
        case "bearer":
            return StaticAuth.bearer(_secret(cfg.http_auth_token), "http.auth.token")
        case "basic":
            return StaticAuth.basic(cfg.http_auth_username or "", _secret(cfg.http_auth_password),
                                    "http.auth.username / http.auth.password")
        case "apikey":
            return StaticAuth(cfg.http_auth_apikey_header, _secret(cfg.http_auth_apikey), "http.auth.apikey")
        case "oauth2":
            return OAuth2ClientCredentials(cfg.http_auth_oauth2_token_url or "", cfg.http_auth_oauth2_client_id or "",
                                           _secret(cfg.http_auth_oauth2_client_secret), cfg.http_auth_oauth2_scope)
    return Auth()


class HttpSink(HttpSinkBase):
    """The generic REST sink (see the module docstring)."""

    def __init__(self, cfg: HttpSinkConfig) -> None:
        client = HttpClient(cfg.name, timeout_ms=cfg.http_timeout_ms, max_in_flight=cfg.max_in_flight_requests,
                            auth=auth_for(cfg), headers=cfg.http_headers)
        super().__init__(cfg.name, cfg.batch_max_records, cfg.batch_max_bytes, client)
        self._cfg = cfg
        self._fields = FieldMapper(overrides=cfg.field_map)
        # Without field.map.* or a template, the data goes out as the mapping wrote it: embedded, not re-encoded.
        self._raw_data = not cfg.field_map and cfg.http_body == "data"
        self._url = UrlTemplate(cfg.http_url, "http.url") if cfg.http_url else None
        delete_url = cfg.http_delete_url or cfg.http_url
        self._delete_url = UrlTemplate(delete_url, "http.delete.url" if cfg.http_delete_url else "http.url") \
            if delete_url else None
        self._template = BodyTemplate(cfg.http_body_template) if cfg.http_body_template else None

    def route(self, event: SinkEvent) -> str:
        if self._cfg.http_batch_url:
            return "batch"
        return "delete" if event.deleted else "upsert"

    def is_batch_route(self, route: str) -> bool:
        return route == "batch"

    def _payload(self, event: SinkEvent) -> Any:
        """The body value of one record (orjson-serializable)."""
        if self._cfg.http_body == "cloudevent":
            return orjson.Fragment(event.raw)
        if self._raw_data:
            return orjson.Fragment(event.data_json)
        data = event.data
        if data is not None:
            data = self._fields.apply(data)
        if self._template is not None:
            return self._template.render(event, data)
        return data

    def record_request(self, event: SinkEvent) -> Request:
        cfg = self._cfg
        template = self._delete_url if event.deleted else self._url
        if template is None:  # the config allows only one of http.url / http.batch.url
            raise RecordError("no http.url configured")
        method = cfg.http_delete_method if event.deleted else cfg.http_method
        url = template.render(event)
        if method == "DELETE":
            return Request(method, url, event.id)
        content_type = _CLOUDEVENT if cfg.http_body == "cloudevent" else "application/json"
        return Request(method, url, event.id, orjson.dumps(self._payload(event)), content_type)

    def batch_request(self, route: str, batch: Sequence[SinkEvent]) -> Request:
        if self._raw_data or self._cfg.http_body == "cloudevent":
            # Each record's JSON joined from the event's own bytes: what orjson would write for the dicts below.
            raw = self._cfg.http_body == "cloudevent"
            body = b"".join((b'{"records":[', b",".join(
                b'{"id":%b,"subject":%b,"op":"delete","data":null}' % (_dumps(e.id), _dumps(e.subject))
                if e.deleted else b'{"id":%b,"subject":%b,"op":"upsert","data":%b}' % (
                    _dumps(e.id), _dumps(e.subject), e.raw if raw else e.data_json) for e in batch), b"]}"))
        else:
            body = orjson.dumps({"records": [self.batch_record(e) for e in batch]})
        return Request("POST", self._cfg.http_batch_url or "", idempotency_key(batch), body)

    def batch_record(self, event: SinkEvent) -> dict[str, Any]:
        """One record of a batch request as the generic batch endpoint takes it."""
        deleted = event.deleted
        return {"id": event.id, "subject": event.subject, "op": "delete" if deleted else "upsert",
                "data": None if deleted else self._payload(event)}

    def batch_outcomes(self, batch: Sequence[SinkEvent], resp: Response) -> list[Outcome]:
        doc = resp.json()
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, list):
            return retry_all(batch, f"unreadable batch response ({resp.status}): {resp.text[:200]}", resp.status)
        by_id = {r["id"]: r for r in results if isinstance(r, dict) and isinstance(r.get("id"), str)}
        where = f"POST {self._cfg.http_batch_url}"
        out: list[Outcome] = []
        for i, event in enumerate(batch):
            r = by_id.get(event.id)
            if r is None and i < len(results) and isinstance(results[i], dict) and "id" not in results[i]:
                r = results[i]
            status = r.get("status") if r is not None else None
            done = DELIVERED_BY_STATUS.get(status) if isinstance(status, int) else None  # no Response built
            if done is not None:
                out.append(done)
                continue
            if not isinstance(status, int):
                out.append(Outcome(OutcomeKind.RETRY, status=resp.status, error="no result for this record"))
                continue
            error = r.get("error") if r is not None else None
            text = error if isinstance(error, str) else orjson.dumps(error).decode() if error is not None else ""
            out.append(self.client.classify(Response(status, {}, text.encode()), delete=event.deleted, where=where))
        return out

