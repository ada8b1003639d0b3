"""HTTP sinks against a real local HTTP server: exact requests, per-record outcomes, auth, faults.

Each test starts an aiohttp server on 127.0.0.1 (port 0) whose handler records every request (method,
raw path with query, headers, body) and answers as the test scripts it with the vendors' documented
responses (tests/emulators/README.md). No mocks: the sinks speak real HTTP to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
import pytest
from aiohttp import web

from cdc.config import (
    DynamicsSinkConfig,
    HubSpotSinkConfig,
    NetSuiteSinkConfig,
    SalesforceSinkConfig,
    validate_connector,
)
from cdc.errors import Permanent, Transient
from cdc.types import Outcome, OutcomeKind, SinkEvent
from mappers.entities import ENTITIES
from sinks import open_sink
from sinks.dynamics import DynamicsSink
from sinks.fieldmaps import DYNAMICS, HUBSPOT, NETSUITE, SALESFORCE, FieldMapper, hubspot_value, salesforce_value
from sinks.http import HttpSink
from sinks.httpclient import HttpSinkBase, idempotency_key, parse_retry_after
from sinks.hubspot import HubSpotSink
from sinks.netsuite import NetSuiteSink
from sinks.salesforce import SalesforceSink

DELIVERED, RETRY, REJECTED = OutcomeKind.DELIVERED, OutcomeKind.RETRY, OutcomeKind.REJECTED
SECRET = "s3cr3t-client-secret-value"

# --- the recording server -----------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str  # raw: percent-encoding and query as sent
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON value, or bytes as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False  # close the connection without answering


Handler = Callable[[Seen], Reply]


class Server:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.handle: Handler = lambda _s: Reply(204)
        self.base = ""
        self.tokens_issued = 0

    def calls(self, prefix: str = "") -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(prefix)]

    async def _handler(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.raw_path, dict(request.headers), await request.read())
        self.seen.append(seen)
        reply = self.handle(seen)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.reset:
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("reset by the test")
        body = reply.body if isinstance(reply.body, bytes) else b"" if reply.body is None else orjson.dumps(reply.body)
        headers = dict(reply.headers)
        if reply.body is not None and not isinstance(reply.body, bytes):
            headers.setdefault("Content-Type", "application/json")
        return web.Response(status=reply.status, body=body or None, headers=headers)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv._handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    srv.base = f"http://{host}:{port}"
    try:
        yield srv
    finally:
        await runner.cleanup()


def token_then(handler: Handler, *, prefix: str = "/oauth/token", expires_in: int | None = 3600,
               extra: dict[str, Any] | None = None) -> Handler:
    """A handler issuing numbered tokens at `prefix`, passing everything else to `handler`."""
    state = {"n": 0}

    def handle(seen: Seen) -> Reply:
        if seen.path.startswith(prefix):
            state["n"] += 1
            doc: dict[str, Any] = {"access_token": f"tok-{state['n']}", "token_type": "Bearer", **(extra or {})}
            if expires_in is not None:
                doc["expires_in"] = expires_in
            return Reply(200, doc)
        return handler(seen)

    return handle


# --- configs and events ---------------------------------------------------------------------------------


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "customer.sql"
    path.write_text("SELECT id, name, email FROM m3.customers\n", encoding="utf-8")
    return path


def config(mapping: Path, connector_class: str, **props: Any) -> Any:
    return validate_connector({"name": "crm", "connector.class": connector_class, "topics": "erp.m3.customers",
                               "mapper.sql": str(mapping), **props})


def ev(subject: str, data: dict[str, Any] | None = None, *, deleted: bool = False, n: int = 1,
       entity: str = "customer") -> SinkEvent:
    type_ = f"{entity}.{'deleted' if deleted else 'upserted'}"
    eid = hashlib.blake2b(f"{subject}/{n}/{type_}".encode(), digest_size=16).hexdigest()
    body = None if deleted else (data if data is not None else {"id": subject, "name": f"Name {subject}"})
    raw = orjson.dumps({"specversion": "1.0", "id": eid, "source": "/erp/m3/customers", "type": type_,
                        "subject": subject, "time": "2024-05-01T10:00:00.000000Z",
                        "datacontenttype": "application/json", "data": body})
    return SinkEvent(seq=n, id=eid, type=type_, subject=subject, data_json=orjson.dumps(body), raw=raw)


async def run(sink: HttpSinkBase, batch: list[SinkEvent]) -> list[Outcome]:
    await sink.open()
    try:
        return list(await sink.deliver(batch))
    finally:
        await sink.close()


def generic(server: Server, mapping: Path, **props: Any) -> HttpSink:
    cfg = config(mapping, "HttpSink", **{"http.url": server.base + "/records/{subject}", **props})
    sink = open_sink(cfg)
    assert isinstance(sink, HttpSink)
    return sink


# --- generic REST: single requests ----------------------------------------------------------------------


async def test_generic_upsert_request_and_outcome(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(201, {"id": "C/1"})
    sink = generic(server, mapping, **{"http.header.X-Tenant": "north", "http.auth.type": "bearer",
                                       "http.auth.token": "bearer-token-123"})
    event = ev("C/1", {"id": "C/1", "name": "Ågren & Co", "lines": [{"line_number": 1}]})
    assert sink.route(event) == "upsert" and sink.batch_limit("upsert") == 1
    assert await run(sink, [event]) == [Outcome(DELIVERED, status=201)]
    [seen] = server.seen
    assert (seen.method, seen.path) == ("POST", "/records/C%2F1")
    assert seen.json() == {"id": "C/1", "name": "Ågren & Co", "lines": [{"line_number": 1}]}
    assert seen.headers["Idempotency-Key"] == event.id
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Authorization"] == "Bearer bearer-token-123"
    assert seen.headers["X-Tenant"] == "north"


async def test_generic_delete_has_no_body_and_404_is_delivered(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(404, {"error": "not_found"})
    sink = generic(server, mapping, **{"http.method": "put"})
    event = ev("C 9", deleted=True)
    assert sink.route(event) == "delete" and sink.batch_limit("delete") == 1
    assert await run(sink, [event]) == [Outcome(DELIVERED, status=404)]
    [seen] = server.seen
    assert (seen.method, seen.path, seen.body) == ("DELETE", "/records/C%209", b"")
    assert seen.headers["Idempotency-Key"] == event.id


async def test_generic_404_on_upsert_is_rejected(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(404, {"error": "no such collection"})
    [outcome] = await run(generic(server, mapping), [ev("C1")])
    assert outcome == Outcome(REJECTED, status=404, error='{"error":"no such collection"}')


async def test_url_templating_and_encoding(server: Server, mapping: Path) -> None:
    sink = generic(server, mapping, **{
        "http.url": server.base + "/t/{type}/{data.country}/{ subject }?event={id}&x=a b",
        "http.delete.url": server.base + "/gone/{subject}", "http.delete.method": "POST", "http.body": "template",
        "http.body.template": '{"key": "{subject}"}'})
    up = ev("A&B?#/é", {"id": "x", "country": "Côte d'Ivoire"})
    gone = ev("A&B", deleted=True)
    assert await run(sink, [up]) == [Outcome(DELIVERED, status=204)]
    assert await run(sink, [gone]) == [Outcome(DELIVERED, status=204)]
    first, second = server.seen
    assert first.path == (f"/t/customer.upserted/C%C3%B4te%20d%27Ivoire/A%26B%3F%23%2F%C3%A9?event={up.id}"
                          "&x=a%20b")
    assert (second.method, second.path, second.json()) == ("POST", "/gone/A%26B", {"key": "A&B"})


async def test_url_placeholder_without_value_rejects_without_sending(server: Server, mapping: Path) -> None:
    sink = generic(server, mapping, **{"http.url": server.base + "/by-country/{data.country}/{subject}"})
    outcomes = await run(sink, [ev("C1", {"id": "C1", "country": None})])
    assert outcomes[0].kind is REJECTED and outcomes[0].status is None
    assert outcomes[0].error == "http.url needs {data.country}, which this event does not carry (or is null)"
    assert server.seen == []


async def test_body_mode_cloudevent_sends_the_event_as_written(server: Server, mapping: Path) -> None:
    sink = generic(server, mapping, **{"http.body": "cloudevent", "http.method": "PATCH"})
    event = ev("C1")
    await run(sink, [event])
    [seen] = server.seen
    assert (seen.method, seen.body) == ("PATCH", event.raw)
    assert seen.headers["Content-Type"] == "application/cloudevents+json"


async def test_body_mode_template_substitutes_json_values(server: Server, mapping: Path) -> None:
    template = json.dumps({"customer": {"number": "{subject}", "limit": "{data.credit_limit}",
                                        "active": "{data.active}", "missing": "{data.email}"},
                           "label": "{data.name} ({subject})", "event": ["{id}", "{type}"], "all": "{data}",
                           "fixed": 3})
    sink = generic(server, mapping, **{"http.body": "template", "http.body.template": template,
                                       "field.map.name": "displayName"})
    event = ev("C1", {"id": "C1", "name": "Acme", "credit_limit": "1000.50", "active": True})
    await run(sink, [event])
    assert server.seen[0].json() == {
        "customer": {"number": "C1", "limit": "1000.50", "active": True, "missing": None},
        "label": "Acme (C1)", "event": [event.id, "customer.upserted"],
        "all": {"id": "C1", "displayName": "Acme", "credit_limit": "1000.50", "active": True}, "fixed": 3}


async def test_field_map_overrides_rename_and_drop(server: Server, mapping: Path) -> None:
    sink = generic(server, mapping, **{"field.map.name": "companyName", "field.map.email": ""})
    await run(sink, [ev("C1", {"id": "C1", "name": "Acme", "email": "a@b.c"})])
    assert server.seen[0].json() == {"id": "C1", "companyName": "Acme"}


@pytest.mark.parametrize(("auth", "header", "value"), [
    ({"http.auth.type": "basic", "http.auth.username": "erp", "http.auth.password": "pa:ss"},
     "Authorization", "Basic ZXJwOnBhOnNz"),
    ({"http.auth.type": "apikey", "http.auth.apikey": "key-4711"}, "X-API-Key", "key-4711"),
    ({"http.auth.type": "apikey", "http.auth.apikey": "key-4711", "http.auth.apikey.header": "X-Key"},
     "X-Key", "key-4711"),
])
async def test_static_credentials(server: Server, mapping: Path, auth: dict[str, str], header: str,
                                  value: str) -> None:
    await run(generic(server, mapping, **auth), [ev("C1")])
    assert server.seen[0].headers[header] == value


async def test_429_with_retry_after_seconds_and_http_date(server: Server, mapping: Path) -> None:
    body = {"error": "rate_limited"}
    server.handle = lambda s: Reply(429, body, {"Retry-After": "7"})
    [first] = await run(generic(server, mapping), [ev("C1")])
    assert first == Outcome(RETRY, status=429, error='{"error":"rate_limited"}', retry_after=7.0)
    server.handle = lambda s: Reply(429, body, {"Retry-After": formatdate(usegmt=True)})
    [second] = await run(generic(server, mapping), [ev("C1")])
    assert second.kind is RETRY and second.retry_after is not None and 0 <= second.retry_after <= 1


@pytest.mark.parametrize("status", [408, 425, 500, 502, 503])
async def test_retryable_statuses(server: Server, mapping: Path, status: int) -> None:
    server.handle = lambda s: Reply(status, b"try later")
    assert await run(generic(server, mapping), [ev("C1")]) == [Outcome(RETRY, status=status, error="try later")]


async def test_validation_error_is_rejected_with_the_body_truncated(server: Server, mapping: Path) -> None:
    message = "x" * 5000
    server.handle = lambda s: Reply(422, {"error": "validation_failed", "field": "email", "message": message})
    [outcome] = await run(generic(server, mapping), [ev("C1")])
    assert outcome.kind is REJECTED and outcome.status == 422
    assert outcome.error is not None and len(outcome.error) == 2000
    assert outcome.error.startswith('{"error":"validation_failed","field":"email"')


async def test_403_stops_the_sink(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(403, {"error": "forbidden"})
    with pytest.raises(Permanent, match=r"sink 'crm': POST http://.*/records/C1 answered 403 Forbidden"):
        await run(generic(server, mapping), [ev("C1")])


async def test_redirect_is_not_followed(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(301, b"", {"Location": "https://elsewhere.example/"})
    with pytest.raises(Permanent, match="answered 301"):
        await run(generic(server, mapping), [ev("C1")])
    assert len(server.seen) == 1


async def test_connection_reset_raises_transient(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(reset=True)
    with pytest.raises(Transient, match=r"sink 'crm': POST http://.*/records/C1 failed: server disconnected"):
        await run(generic(server, mapping), [ev("C1")])


async def test_connection_refused_raises_transient(mapping: Path) -> None:
    cfg = config(mapping, "HttpSink", **{"http.url": "http://127.0.0.1:9/records/{subject}"})
    with pytest.raises(Transient, match=r"failed: cannot connect to 127\.0\.0\.1:9"):
        await run(open_sink(cfg), [ev("C1")])  # type: ignore[arg-type]


async def test_timeout_raises_transient(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(204, delay=2.0)
    with pytest.raises(Transient, match=r"failed: no complete response within 0\.2 s"):
        await run(generic(server, mapping, **{"http.timeout.ms": 200}), [ev("C1")])


async def test_several_single_requests_keep_order_and_isolate_failures(server: Server, mapping: Path) -> None:
    replies = {"/records/A": Reply(201), "/records/B": Reply(reset=True), "/records/C": Reply(422, b"bad"),
               "/records/D": Reply(404)}
    server.handle = lambda s: replies[s.path]
    sink = generic(server, mapping)
    outcomes = await run(sink, [ev("A"), ev("B"), ev("C"), ev("D", deleted=True)])
    assert [o.kind for o in outcomes] == [DELIVERED, RETRY, REJECTED, DELIVERED]
    assert outcomes[1].error is not None and "failed: server disconnected" in outcomes[1].error


# --- generic REST: OAuth2 --------------------------------------------------------------------------------


def oauth_props(server: Server) -> dict[str, str]:
    return {"http.auth.type": "oauth2", "http.auth.oauth2.token.url": server.base + "/oauth/token",
            "http.auth.oauth2.client.id": "bridge", "http.auth.oauth2.client.secret": SECRET,
            "http.auth.oauth2.scope": "records.write"}


async def test_oauth2_token_is_fetched_once_and_cached(server: Server, mapping: Path) -> None:
    server.handle = token_then(lambda s: Reply(201))
    sink = generic(server, mapping, **oauth_props(server))
    await sink.open()
    try:
        await sink.deliver([ev("A")])
        await asyncio.gather(sink.deliver([ev("B")]), sink.deliver([ev("C")]))
    finally:
        await sink.close()
    token_calls = server.calls("/oauth/token")
    assert len(token_calls) == 1
    assert token_calls[0].form() == {"grant_type": "client_credentials", "client_id": "bridge",
                                     "client_secret": SECRET, "scope": "records.write"}
    assert token_calls[0].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert {s.headers["Authorization"] for s in server.calls("/records/")} == {"Bearer tok-1"}


async def test_oauth2_token_is_renewed_before_it_expires(server: Server, mapping: Path) -> None:
    state = {"n": 0}

    def handle(seen: Seen) -> Reply:
        if seen.path == "/oauth/token":
            state["n"] += 1
            return Reply(200, {"access_token": f"tok-{state['n']}", "token_type": "Bearer", "expires_in": 0.3})
        return Reply(201)

    server.handle = handle
    sink = generic(server, mapping, **oauth_props(server))
    await sink.open()
    try:
        await sink.deliver([ev("A")])
        await asyncio.sleep(0.35)
        await sink.deliver([ev("B")])
    finally:
        await sink.close()
    assert [s.headers.get("Authorization") for s in server.calls("/records/")] == ["Bearer tok-1", "Bearer tok-2"]


async def test_401_without_credentials_is_permanent(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(401, {"error": "invalid_token"})
    with pytest.raises(Permanent, match="answered 401 Unauthorized without credentials configured"):
        await run(generic(server, mapping), [ev("A")])


async def test_oauth2_401_refreshes_the_token_and_retries_once(server: Server, mapping: Path) -> None:
    def records(seen: Seen) -> Reply:
        if seen.headers["Authorization"] == "Bearer tok-1":
            return Reply(401, {"error": "invalid_token"})
        return Reply(201)

    server.handle = token_then(records)
    assert await run(generic(server, mapping, **oauth_props(server)), [ev("A")]) == [Outcome(DELIVERED, status=201)]
    assert [(s.path, s.headers.get("Authorization")) for s in server.seen] == [
        ("/oauth/token", None), ("/records/A", "Bearer tok-1"), ("/oauth/token", None), ("/records/A", "Bearer tok-2")]
    # The retried request is the same request: same idempotency key.
    assert server.seen[1].headers["Idempotency-Key"] == server.seen[3].headers["Idempotency-Key"]


async def test_oauth2_second_401_is_permanent_without_the_secret(server: Server, mapping: Path) -> None:
    server.handle = token_then(lambda s: Reply(401, {"error": "invalid_token"}))
    with pytest.raises(Permanent) as info:
        await run(generic(server, mapping, **oauth_props(server)), [ev("A")])
    text = str(info.value)
    assert "sink 'crm'" in text and f"{server.base}/oauth/token" in text and "401 twice" in text
    assert SECRET not in text and "tok-" not in text
    assert len(server.calls("/oauth/token")) == 2 and len(server.calls("/records/")) == 2


async def test_oauth2_token_endpoint_refusal_is_permanent(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(401, {"error": "invalid_client"})
    with pytest.raises(Permanent, match=r"the token endpoint .*/oauth/token refused the client credentials \(401\)"):
        await run(generic(server, mapping, **oauth_props(server)), [ev("A")])
    assert server.calls("/records/") == []


async def test_oauth2_token_endpoint_outage_is_transient(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(503, b"maintenance")
    with pytest.raises(Transient, match="answered 503"):
        await run(generic(server, mapping, **oauth_props(server)), [ev("A")])


async def test_static_bearer_401_is_permanent_and_names_the_property(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(401, {"error": "invalid_token"})
    sink = generic(server, mapping, **{"http.auth.type": "bearer", "http.auth.token": "bearer-token-123"})
    with pytest.raises(Permanent, match=r"refused the credentials in http.auth.token \(401\)") as info:
        await run(sink, [ev("A")])
    assert "bearer-token-123" not in str(info.value)
    assert len(server.seen) == 1


# --- generic REST: the batch endpoint --------------------------------------------------------------------


@pytest.mark.parametrize("body", ["data", "cloudevent"])
def test_batch_body_joined_from_event_bytes_equals_the_records_encoded(mapping: Path, body: str) -> None:
    batch = [ev('C"1\\é'), ev("C2", deleted=True), ev("C3", {"id": "C3", "n": [1, {"x": None}]}), ev("C\n4")]
    sink = open_sink(config(mapping, "HttpSink", **{"http.batch.url": "http://127.0.0.1:9/batch", "http.body": body}))
    assert isinstance(sink, HttpSink)
    assert sink.batch_request("batch", batch).body == orjson.dumps({"records": [sink.batch_record(e) for e in batch]})


async def test_generic_batch_shape_and_per_record_results(server: Server, mapping: Path) -> None:
    batch = [ev("A"), ev("B", deleted=True), ev("C", {"id": "C", "email": "nope"}), ev("D"), ev("E")]

    def handle(seen: Seen) -> Reply:
        ids = [r["id"] for r in seen.json()["records"]]
        # Answered out of order; E has no result at all.
        return Reply(200, {"results": [
            {"id": ids[3], "status": 503, "error": "overloaded"}, {"id": ids[0], "status": 201},
            {"id": ids[2], "status": 422, "error": "email is invalid"}, {"id": ids[1], "status": 204}]})

    server.handle = handle
    cfg = config(mapping, "HttpSink", **{"http.batch.url": server.base + "/batch"})
    sink = open_sink(cfg)
    assert cfg.batch_max_records == 1000 and sink.max_batch_records == 1000
    assert {sink.route(e) for e in batch} == {"batch"}
    assert isinstance(sink, HttpSink) and sink.batch_limit("batch") == 1000
    outcomes = await run(sink, batch)
    assert outcomes == [Outcome(DELIVERED, status=201), Outcome(DELIVERED, status=204),
                        Outcome(REJECTED, status=422, error="email is invalid"),
                        Outcome(RETRY, status=503, error="overloaded"),
                        Outcome(RETRY, status=200, error="no result for this record")]
    [seen] = server.seen
    assert (seen.method, seen.path) == ("POST", "/batch")
    assert seen.json() == {"records": [
        {"id": batch[0].id, "subject": "A", "op": "upsert", "data": {"id": "A", "name": "Name A"}},
        {"id": batch[1].id, "subject": "B", "op": "delete", "data": None},
        {"id": batch[2].id, "subject": "C", "op": "upsert", "data": {"id": "C", "email": "nope"}},
        {"id": batch[3].id, "subject": "D", "op": "upsert", "data": {"id": "D", "name": "Name D"}},
        {"id": batch[4].id, "subject": "E", "op": "upsert", "data": {"id": "E", "name": "Name E"}}]}
    expected_key = hashlib.blake2b("".join(e.id + "\n" for e in batch).encode(), digest_size=16).hexdigest()
    assert seen.headers["Idempotency-Key"] == expected_key == idempotency_key(batch)


async def test_generic_batch_cloudevent_mode_embeds_the_events(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(200, {"results": [{"id": r["id"], "status": 200} for r in s.json()["records"]]})
    sink = open_sink(config(mapping, "HttpSink", **{"http.batch.url": server.base + "/batch",
                                                    "http.body": "cloudevent"}))
    batch = [ev("A"), ev("B")]
    assert [o.kind for o in await run(sink, batch)] == [DELIVERED, DELIVERED]  # type: ignore[arg-type]
    assert [r["data"] for r in server.seen[0].json()["records"]] == [orjson.loads(e.raw) for e in batch]


async def test_generic_batch_whole_request_failure_applies_to_every_record(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(429, {"error": "slow down"}, {"Retry-After": "3"})
    sink = open_sink(config(mapping, "HttpSink", **{"http.batch.url": server.base + "/batch"}))
    outcomes = await run(sink, [ev("A"), ev("B")])  # type: ignore[arg-type]
    assert outcomes == [Outcome(RETRY, status=429, error='{"error":"slow down"}', retry_after=3.0)] * 2
    server.handle = lambda s: Reply(200, b"<html>proxy</html>")
    outcomes = await run(sink, [ev("A"), ev("B")])  # type: ignore[arg-type]
    assert [o.kind for o in outcomes] == [RETRY, RETRY]


# --- Salesforce ------------------------------------------------------------------------------------------


def salesforce(server: Server, mapping: Path, **props: Any) -> SalesforceSink:
    cfg = config(mapping, "sinks.salesforce.SalesforceSink", **{
        "salesforce.instance.url": server.base, "salesforce.client.id": "sf-client",
        "salesforce.client.secret": SECRET, "mapper.entity": "Customer", **props})
    assert isinstance(cfg, SalesforceSinkConfig)
    sink = open_sink(cfg)
    assert isinstance(sink, SalesforceSink)
    return sink


def sf_token(handler: Handler) -> Handler:
    return token_then(handler, prefix="/services/oauth2/token", expires_in=None,
                      extra={"instance_url": "https://x.my.salesforce.com", "issued_at": "1", "signature": "s"})


async def test_salesforce_upsert_batch_and_partial_failure(server: Server, mapping: Path) -> None:
    def handle(seen: Seen) -> Reply:
        return Reply(200, [
            {"id": "001A", "success": True, "errors": [], "created": True},
            {"success": False, "errors": [{"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid",
                                           "fields": ["Email__c"]}]},
            {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked", "fields": []}]},
            {"id": "001D", "success": True, "errors": [], "created": False}])  # the fifth result is missing

    server.handle = sf_token(handle)
    sink = salesforce(server, mapping)
    batch = [ev("C1", {"id": "C1", "name": "Acme", "vat_number": "DE1", "updated_at": "2024-05-01T10:00:00.123456Z",
                       "registered_on": "2020-01-31", "active": True, "credit_limit": "100.00"}),
             ev("C2", {"id": "C2", "email": "nope"}), ev("C3"), ev("C4"), ev("C5")]
    assert sink.route(batch[0]) == "upsert Account" and sink.batch_limit("upsert Account") == 200
    outcomes = await run(sink, batch)
    assert outcomes == [
        Outcome(DELIVERED, status=200),
        Outcome(REJECTED, status=200, error="INVALID_EMAIL_ADDRESS: Email: invalid [Email__c]"),
        Outcome(RETRY, status=200, error="UNABLE_TO_LOCK_ROW: locked"),
        Outcome(DELIVERED, status=200),
        Outcome(RETRY, status=200, error="Salesforce returned no result for this record")]
    token, upsert = server.seen
    assert token.form() == {"grant_type": "client_credentials", "client_id": "sf-client", "client_secret": SECRET}
    assert (upsert.method, upsert.path) == ("PATCH", "/services/data/v60.0/composite/sobjects/Account/ERP_Id__c")
    assert upsert.headers["Authorization"] == "Bearer tok-1"
    assert upsert.headers["Idempotency-Key"] == idempotency_key(batch)
    body = upsert.json()
    assert body["allOrNone"] is False and len(body["records"]) == 5
    assert body["records"][0] == {"attributes": {"type": "Account"}, "Name": "Acme", "Vat_Number__c": "DE1",
                                  "Updated_At__c": "2024-05-01T10:00:00.123Z", "Registered_On__c": "2020-01-31",
                                  "Active__c": True, "Credit_Limit__c": "100.00", "ERP_Id__c": "C1"}
    assert body["records"][1] == {"attributes": {"type": "Account"}, "Email__c": "nope", "ERP_Id__c": "C2"}


async def test_salesforce_delete_by_external_id(server: Server, mapping: Path) -> None:
    server.handle = sf_token(lambda s: Reply(404, [{"errorCode": "NOT_FOUND", "message": "not found"}]))
    sink = salesforce(server, mapping, **{"salesforce.sobject": "Customer__c", "salesforce.api.version": "61.0",
                                          "salesforce.external.id.field": "Legacy_Id__c"})
    event = ev("C/9 x", deleted=True)
    assert sink.route(event) == "delete Customer__c" and sink.batch_limit("delete Customer__c") == 1
    assert await run(sink, [event]) == [Outcome(DELIVERED, status=404)]
    delete = server.seen[-1]
    assert (delete.method, delete.path) == (
        "DELETE", "/services/data/v61.0/sobjects/Customer__c/Legacy_Id__c/C%2F9%20x")
    assert delete.headers["Idempotency-Key"] == event.id and delete.body == b""


async def test_salesforce_request_limit_403_is_retried(server: Server, mapping: Path) -> None:
    server.handle = sf_token(lambda s: Reply(403, [{"message": "TotalRequests Limit exceeded.",
                                                    "errorCode": "REQUEST_LIMIT_EXCEEDED"}]))
    outcomes = await run(salesforce(server, mapping), [ev("C1"), ev("C2")])
    assert [(o.kind, o.status) for o in outcomes] == [(RETRY, 403), (RETRY, 403)]


async def test_salesforce_expired_session_refreshes_token(server: Server, mapping: Path) -> None:
    def handle(seen: Seen) -> Reply:
        if seen.headers["Authorization"] == "Bearer tok-1":
            return Reply(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        return Reply(200, [{"id": "001", "success": True, "errors": [], "created": False}])

    server.handle = sf_token(handle)
    assert await run(salesforce(server, mapping), [ev("C1")]) == [Outcome(DELIVERED, status=200)]
    assert len(server.calls("/services/oauth2/token")) == 2


async def test_salesforce_too_many_records_is_rejected(server: Server, mapping: Path) -> None:
    server.handle = sf_token(lambda s: Reply(400, [{"message": "too many", "errorCode": "EXCEEDED_ID_LIMIT"}]))
    outcomes = await run(salesforce(server, mapping), [ev("C1"), ev("C2")])
    assert [(o.kind, o.status) for o in outcomes] == [(REJECTED, 400)] * 2
    assert outcomes[0].error == '[{"message":"too many","errorCode":"EXCEEDED_ID_LIMIT"}]'


# --- HubSpot ---------------------------------------------------------------------------------------------


def hubspot(server: Server, mapping: Path, **props: Any) -> HubSpotSink:
    cfg = config(mapping, "HubSpotSink", **{"hubspot.base.url": server.base, "hubspot.access.token": "pat-na1-xyz",
                                            "mapper.entity": "Contact", **props})
    assert isinstance(cfg, HubSpotSinkConfig)
    sink = open_sink(cfg)
    assert isinstance(sink, HubSpotSink)
    return sink


async def test_hubspot_batch_upsert_207_partial_failure(server: Server, mapping: Path) -> None:
    batch = [ev("P1", {"id": "P1", "first_name": "Ada", "active": True, "customer_id": "C1", "updated_at": None}),
             ev("P2", {"id": "P2", "email": "nope"}), ev("P3"), ev("P4")]

    def handle(seen: Seen) -> Reply:
        traces = [i["objectWriteTraceId"] for i in seen.json()["inputs"]]
        return Reply(207, {
            "status": "COMPLETE", "numErrors": 2,
            "results": [{"id": "101", "properties": {"erp_id": "P1"}, "new": True, "objectWriteTraceId": traces[0]},
                        {"id": "103", "properties": {"erp_id": "P3"}, "new": False, "objectWriteTraceId": traces[2]}],
            "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "Email is invalid",
                        "context": {"objectWriteTraceId": [traces[1]]}},
                       {"status": "error", "category": "RATE_LIMITS", "message": "busy",
                        "context": {"objectWriteTraceId": [traces[3]]}}],
            "startedAt": "2024-05-01T10:00:00Z", "completedAt": "2024-05-01T10:00:01Z"})

    server.handle = handle
    sink = hubspot(server, mapping)
    assert sink.route(batch[0]) == "upsert contacts" and sink.batch_limit("upsert contacts") == 100
    outcomes = await run(sink, batch)
    assert outcomes == [Outcome(DELIVERED, status=207),
                        Outcome(REJECTED, status=207, error="VALIDATION_ERROR: Email is invalid"),
                        Outcome(DELIVERED, status=207), Outcome(RETRY, status=207, error="RATE_LIMITS: busy")]
    [seen] = server.seen
    assert (seen.method, seen.path) == ("POST", "/crm/v3/objects/contacts/batch/upsert")
    assert seen.headers["Authorization"] == "Bearer pat-na1-xyz"
    assert seen.headers["Idempotency-Key"] == idempotency_key(batch)
    assert seen.json()["inputs"][0] == {"idProperty": "erp_id", "id": "P1", "objectWriteTraceId": batch[0].id,
                                        "properties": {"firstname": "Ada", "active": "true", "customer_id": "C1",
                                                       "updated_at": ""}}


async def test_hubspot_complete_200_without_trace_ids_acknowledges_all(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(200, {"status": "COMPLETE", "results": [{"id": "1", "properties": {}}]})
    outcomes = await run(hubspot(server, mapping, **{"hubspot.object.type": "p_people"}), [ev("A"), ev("B")])
    assert outcomes == [Outcome(DELIVERED, status=200)] * 2
    assert server.seen[0].path == "/crm/v3/objects/p_people/batch/upsert"


async def test_hubspot_rate_limit_and_delete(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(429, {"status": "error", "message": "You have reached your secondly limit.",
                                          "errorType": "RATE_LIMIT", "policyName": "SECONDLY"}, {"Retry-After": "1"})
    sink = hubspot(server, mapping, **{"hubspot.id.property": "legacy_id"})
    [limited] = await run(sink, [ev("P1")])
    assert (limited.kind, limited.status, limited.retry_after) == (RETRY, 429, 1.0)
    server.handle = lambda s: Reply(204)
    gone = ev("P 1/2", deleted=True)
    assert sink.route(gone) == "delete contacts" and sink.batch_limit("delete contacts") == 1
    assert await run(sink, [gone]) == [Outcome(DELIVERED, status=204)]
    assert (server.seen[-1].method, server.seen[-1].path) == ("DELETE", "/crm/v3/objects/contacts/P%201%2F2"
                                                                        "?idProperty=legacy_id")


async def test_hubspot_401_stops_the_sink(server: Server, mapping: Path) -> None:
    server.handle = lambda s: Reply(401, {"status": "error", "message": "Authentication credentials not found.",
                                          "category": "INVALID_AUTHENTICATION"})
    with pytest.raises(Permanent, match=r"hubspot\.access\.token") as info:
        await run(hubspot(server, mapping), [ev("P1")])
    assert "pat-na1-xyz" not in str(info.value)


# --- NetSuite --------------------------------------------------------------------------------------------


def netsuite(server: Server, mapping: Path, **props: Any) -> NetSuiteSink:
    cfg = config(mapping, "sinks.netsuite.NetSuiteSink", **{
        "netsuite.base.url": server.base, "netsuite.client.id": "ns-client", "netsuite.client.secret": SECRET,
        "mapper.entity": "Customer", **props})
    assert isinstance(cfg, NetSuiteSinkConfig)
    sink = open_sink(cfg)
    assert isinstance(sink, NetSuiteSink)
    return sink


async def test_netsuite_upsert_by_external_id(server: Server, mapping: Path) -> None:
    server.handle = token_then(lambda s: Reply(204), prefix="/services/rest/auth/oauth2/v1/token")
    sink = netsuite(server, mapping, **{"field.map.status": "entityStatus"})
    event = ev("C-1", {"id": "C-1", "name": "Acme", "email": "a@b.c", "status": "13", "credit_limit": "5.00",
                       "country": "SE"})
    assert sink.route(event) == "upsert customer" and sink.batch_limit("upsert customer") == 1
    assert sink.max_batch_records == 1
    assert await run(sink, [event]) == [Outcome(DELIVERED, status=204)]
    token, put = server.seen
    assert token.form()["client_id"] == "ns-client"
    assert (put.method, put.path) == ("PUT", "/services/rest/record/v1/customer/eid:C-1")
    assert put.headers["Idempotency-Key"] == put.headers["X-NetSuite-Idempotency-Key"] == event.id
    assert put.json() == {"companyName": "Acme", "email": "a@b.c", "entityStatus": "13", "creditLimit": "5.00",
                          "custentity_erp_country": "SE"}


async def test_netsuite_errors(server: Server, mapping: Path) -> None:
    invalid = {"type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1", "title": "Bad Request",
               "status": 400, "o:errorDetails": [{"detail": "Invalid email", "o:errorCode": "INVALID_FIELD_VALUE",
                                                  "o:errorPath": "email"}]}
    busy = {"type": "https://www.rfc-editor.org/rfc/rfc6585.html#section-4", "title": "Too Many Requests",
            "status": 429, "o:errorDetails": [{"detail": "busy", "o:errorCode": "CONCURRENCY_LIMIT_EXCEEDED"}]}
    replies = {"C1": Reply(400, invalid), "C2": Reply(429, busy), "C3": Reply(404, b"")}
    server.handle = token_then(lambda s: replies[s.path.rsplit(":", 1)[1]],
                               prefix="/services/rest/auth/oauth2/v1/token")
    sink = netsuite(server, mapping)
    outcomes = await run(sink, [ev("C1"), ev("C2"), ev("C3", deleted=True)])
    assert [(o.kind, o.status) for o in outcomes] == [(REJECTED, 400), (RETRY, 429), (DELIVERED, 404)]
    assert outcomes[0].error is not None and "INVALID_FIELD_VALUE" in outcomes[0].error
    writes = sorted((s.method, s.path) for s in server.calls("/services/rest/record/"))
    assert writes == [("DELETE", "/services/rest/record/v1/customer/eid:C3"),
                      ("PUT", "/services/rest/record/v1/customer/eid:C1"),
                      ("PUT", "/services/rest/record/v1/customer/eid:C2")]
    assert len(server.calls("/services/rest/auth/oauth2/v1/token")) == 1


# --- Dynamics 365 ----------------------------------------------------------------------------------------


def dynamics(server: Server, mapping: Path, **props: Any) -> DynamicsSink:
    cfg = config(mapping, "DynamicsSink", **{
        "dynamics.base.url": server.base, "dynamics.token.url": server.base + "/tenant-1/oauth2/v2.0/token",
        "dynamics.client.id": "d-client", "dynamics.client.secret": SECRET, "mapper.entity": "Customer", **props})
    assert isinstance(cfg, DynamicsSinkConfig)
    sink = open_sink(cfg)
    assert isinstance(sink, DynamicsSink)
    return sink


async def test_dynamics_upsert_by_alternate_key(server: Server, mapping: Path) -> None:
    server.handle = token_then(lambda s: Reply(204, headers={"OData-EntityId": "x"}),
                               prefix="/tenant-1/oauth2/v2.0/token")
    sink = dynamics(server, mapping)
    event = ev("O'Brien/1", {"id": "O'Brien/1", "name": "O'Brien", "email": "o@b.ie", "vat_number": "IE9"})
    assert sink.route(event) == "upsert accounts" and sink.batch_limit("upsert accounts") == 1
    assert await run(sink, [event]) == [Outcome(DELIVERED, status=204)]
    token, patch = server.seen
    assert token.form() == {"grant_type": "client_credentials", "client_id": "d-client", "client_secret": SECRET,
                            "scope": f"{server.base}/.default"}
    assert (patch.method, patch.path) == ("PATCH", "/api/data/v9.2/accounts(accountnumber='O''Brien%2F1')")
    assert patch.headers["OData-Version"] == "4.0" and patch.headers["Idempotency-Key"] == event.id
    assert patch.json() == {"name": "O'Brien", "emailaddress1": "o@b.ie", "erp_vat_number": "IE9"}


async def test_dynamics_named_entity_set_limits_and_delete(server: Server, mapping: Path) -> None:
    replies = [Reply(429, {"error": {"code": "0x80072322", "message": "limit"}}, {"Retry-After": "12"}),
               Reply(404, {"error": {"code": "0x80040217", "message": "Does Not Exist"}}),
               Reply(400, {"error": {"code": "0x80040203", "message": "bad value"}})]
    server.handle = token_then(lambda s: replies.pop(0), prefix="/tenant-1/oauth2/v2.0/token")
    sink = dynamics(server, mapping, **{"dynamics.entity.set": "erp_customers", "dynamics.scope": "api://x/.default"})
    limited, gone, bad = [await run(sink, [e]) for e in (ev("K1"), ev("K2", deleted=True), ev("K3"))]
    assert limited == [Outcome(RETRY, status=429, error='{"error":{"code":"0x80072322","message":"limit"}}',
                               retry_after=12.0)]
    assert gone == [Outcome(DELIVERED, status=404)]
    assert bad[0].kind is REJECTED and bad[0].error == '{"error":{"code":"0x80040203","message":"bad value"}}'
    writes = [s for s in server.seen if "/api/" in s.path]
    assert [(s.method, s.path) for s in writes] == [
        ("PATCH", "/api/data/v9.2/erp_customers(erp_id='K1')"), ("DELETE", "/api/data/v9.2/erp_customers(erp_id='K2')"),
        ("PATCH", "/api/data/v9.2/erp_customers(erp_id='K3')")]
    assert server.calls("/tenant-1/")[0].form()["scope"] == "api://x/.default"


# --- field maps, value conversions, helpers --------------------------------------------------------------


@pytest.mark.parametrize("maps", [SALESFORCE, HUBSPOT, NETSUITE, DYNAMICS], ids=["sf", "hs", "ns", "dyn"])
def test_default_maps_cover_every_entity_with_real_fields(maps: Any) -> None:
    assert set(maps.objects) == set(ENTITIES)
    for entity, standard in maps.standard.items():
        assert set(standard) <= set(ENTITIES[entity].model_fields), entity
    for entity, model in ENTITIES.items():
        obj = maps.object_for(entity).name
        mapper = FieldMapper.for_vendor(maps, entity, obj, {})
        sent = mapper.apply({name: "v" for name in model.model_fields})
        assert "id" not in model.model_fields or all(k != "id" for k in sent)
        assert len(sent) == len(model.model_fields) - 1 - ("lines" in model.model_fields)


def test_field_mapper_without_entity_sends_select_list_names() -> None:
    mapper = FieldMapper.for_vendor(SALESFORCE, None, "Thing__c", {"x": "X__c", "drop": ""})
    assert mapper.apply({"id": "1", "Name": "n", "x": 1, "drop": 2, "lines": [1]}) == {"Name": "n", "X__c": 1}
    kept = FieldMapper.for_vendor(SALESFORCE, "Order", "Order", {"lines": "Lines__c"})
    assert kept.apply({"lines": [{"line_number": 1}]}) == {"Lines__c": [{"line_number": 1}]}


def test_vendor_value_conversions() -> None:
    assert [hubspot_value(x) for x in (None, True, False, 3, 2.5, "x", {"a": 1})] == [
        "", "true", "false", "3", "2.5", "x", '{"a":1}']
    assert salesforce_value("2024-05-01T10:00:00.123456Z") == "2024-05-01T10:00:00.123Z"
    assert salesforce_value("2024-05-01T10:00:00.123456+02:00") == "2024-05-01T10:00:00.123+02:00"
    assert salesforce_value("2024-05-01T10:00:00.1Z") == "2024-05-01T10:00:00.1Z"
    assert salesforce_value("2024-05-01") == "2024-05-01" and salesforce_value(5) == 5


def test_retry_after_parsing() -> None:
    assert parse_retry_after("120") == 120.0 and parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("nan") is None


def test_idempotency_key_of_one_event_is_its_id() -> None:
    event = ev("A")
    assert idempotency_key([event]) == event.id
    assert idempotency_key([ev("A"), ev("B")]) != idempotency_key([ev("B"), ev("A")])


async def test_open_sink_builds_each_sink_with_the_protocol(server: Server, mapping: Path) -> None:
    sinks: list[HttpSinkBase] = [generic(server, mapping), salesforce(server, mapping), hubspot(server, mapping),
                                 netsuite(server, mapping), dynamics(server, mapping)]
    for sink in sinks:
        assert sink.name == "crm" and sink.max_batch_bytes == 4_194_304
        for attr in ("route", "batch_limit", "open", "deliver", "close"):
            assert callable(getattr(sink, attr))
        await sink.open()
        assert await sink.deliver([]) == []
        await sink.close()
        await sink.close()  # idempotent
    assert [s.max_batch_records for s in sinks] == [1, 200, 100, 1, 1]


async def test_deliver_before_open_is_a_programming_error(server: Server, mapping: Path) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await generic(server, mapping).deliver([ev("A")])

