"""The HTTP machinery every HTTP sink shares: session, credentials, the one response classifier, and the
sink skeleton (`HttpSinkBase`) the generic and vendor sinks fill in.

Role: `HttpClient` owns one `sinks.transport.Transport` per sink (keep-alive connections, at most
``max.in.flight.requests`` kept, ``http.timeout.ms`` for a whole request), adds the credentials (`Auth`:
none, a static header -- bearer, basic, API key -- or OAuth2 client credentials with a cached token) and
the idempotency header(s), and turns a response into an `Outcome` in one place (`HttpClient.classify`):

- 2xx -> delivered; a DELETE answered 404 -> delivered (the record is already gone);
- 408, 425, 429 and 5xx -> retry, with the target's Retry-After (seconds or an HTTP date) in seconds;
  also a 403 the vendor marks as a limit (Salesforce ``REQUEST_LIMIT_EXCEEDED``), through the sink's
  `limit_error` hook;
- 401 -> the OAuth2 token is fetched again once and the request repeated once; a second 401 (or any 401
  with static credentials) raises `Permanent` naming the sink and the token URL, never a secret;
- 403 otherwise, 3xx (redirects are not followed: the URL is wrong) -> `Permanent`: no record can pass
  until an operator acts;
- any other 4xx -> rejected, with the response body as the error (at most 2,000 characters).

Transport failures (connection refused or reset, server disconnected, timeouts, truncated bodies) raise
`Transient`: the engine retries the whole batch. A per-record sink (`HttpSinkBase._each`) that sent
several requests turns a transport failure of some of them into retry outcomes instead.

`HttpSinkBase` implements the `cdc.types.Sink` protocol: a route is either a batch route (one request for
many records: `batch_request` / `batch_outcomes`) or a per-record route (`record_request`, one request
per record, `batch_limit` 1); a batch request answered with a non-2xx status gives every record the same
outcome. Every request carries ``Idempotency-Key``: the event id, or for a batch request a BLAKE2b hash
of its event ids (`idempotency_key`).

Failure story: errors name the sink, the method and URL and the target's answer; credentials never appear
in them (secrets are `SecretStr` until the request is built, and every message passes `SecretsFilter`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import quote, urlencode

import orjson
from pydantic import SecretStr

from cdc.config.secrets import SecretsFilter
from cdc.errors import Permanent, Transient
from cdc.types import Outcome, OutcomeKind, SinkEvent
from sinks.fieldmaps import FieldMapper
from sinks.transport import InvalidRequest, Response, Transport, TransportError, parse_retry_after

__all__ = ["DELIVERED_BY_STATUS", "MAX_ERROR_CHARS", "Auth", "HttpClient", "HttpSinkBase", "OAuth2ClientCredentials",
           "PerRecordSink", "RecordError", "Request", "Response", "StaticAuth", "idempotency_key", "key_segment",
           "parse_retry_after", "retry_all", "truncate"]

MAX_ERROR_CHARS = 2000
RETRY_STATUSES = frozenset({408, 425, 429})
# The outcomes of the usual statuses, made once (an Outcome per request cost a per-record route 2 %).
DELIVERED_BY_STATUS = {status: Outcome(OutcomeKind.DELIVERED, status) for status in (200, 201, 202, 204)}
# A cached token is replaced this long before the expiry its endpoint announced (or at 90% of a short
# lifetime), so that a request never leaves with a token about to expire on the way.
TOKEN_MARGIN_S = 60.0
USER_AGENT = "erp-cdc-bridge/0.1"


class RecordError(ValueError):
    """This record cannot become a request (e.g. a URL placeholder it has no value for): rejected."""


def truncate(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def idempotency_key(events: Sequence[SinkEvent]) -> str:
    """The event id for one event; for a batch, 32 hex digits of BLAKE2b over its event ids in order."""
    if len(events) == 1:
        return events[0].id
    return hashlib.blake2b("".join([e.id + "\n" for e in events]).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request of a sink. `url` is already percent-encoded; `key` the idempotency key."""

    method: str
    url: str
    key: str
    body: bytes | None = None
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


def _scrub(text: str) -> str:
    return SecretsFilter.redact(text)


# --- credentials -------------------------------------------------------------------------------------


class Auth:
    """No credentials. Subclasses add a header; `refreshable` ones can fetch a new one after a 401."""

    refreshable = False

    async def header(self, client: HttpClient) -> tuple[str, str] | None:
        return None

    def invalidate(self, value: str) -> None:
        """Forget `value` (the header value a 401 answered), unless a newer one replaced it already."""

    def refused(self, sink: str, where: str, resp: Response) -> Permanent:
        return Permanent(_scrub(f"sink '{sink}': {where} answered 401 Unauthorized without credentials "
                                f"configured: {truncate(resp.text)}"))


class StaticAuth(Auth):
    """A fixed header: ``Authorization: Bearer T``, ``Authorization: Basic ...`` or an API key header."""

    def __init__(self, name: str, value: SecretStr, what: str) -> None:
        self._name = name
        self._value = value
        self._what = what  # which property holds it, for the message

    @classmethod
    def bearer(cls, token: SecretStr, what: str) -> StaticAuth:
        return cls("Authorization", SecretStr("Bearer " + token.get_secret_value()), what)

    @classmethod
    def basic(cls, username: str, password: SecretStr, what: str) -> StaticAuth:
        # RFC 7617 with UTF-8, the charset it recommends (aiohttp.BasicAuth is deprecated and latin-1).
        encoded = "Basic " + base64.b64encode(f"{username}:{password.get_secret_value()}".encode()).decode()
        SecretsFilter.register(encoded)
        return cls("Authorization", SecretStr(encoded), what)

    async def header(self, client: HttpClient) -> tuple[str, str] | None:
        return self._name, self._value.get_secret_value()

    def refused(self, sink: str, where: str, resp: Response) -> Permanent:
        return Permanent(_scrub(f"sink '{sink}': {where} refused the credentials in {self._what} (401): "
                                f"{truncate(resp.text)}"))


class OAuth2ClientCredentials(Auth):
    """OAuth 2.0 client credentials (RFC 6749 §4.4): the token is fetched on first use, cached until
    shortly before the ``expires_in`` its endpoint gave (or until a 401 when it gave none), and fetched
    again once after a 401."""

    refreshable = True

    def __init__(self, token_url: str, client_id: str, client_secret: SecretStr, scope: str | None = None) -> None:
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._token: str | None = None
        self._expires_at = math.inf
        self._lock = asyncio.Lock()

    async def header(self, client: HttpClient) -> tuple[str, str]:
        token = self._token
        if token is None or time.monotonic() >= self._expires_at:
            async with self._lock:  # one fetch for all lanes that found the token missing
                if self._token is None or time.monotonic() >= self._expires_at:
                    self._token, self._expires_at = await self._fetch(client)
                token = self._token
        return "Authorization", f"Bearer {token}"

    def invalidate(self, value: str) -> None:
        if value == f"Bearer {self._token}":
            self._token = None

    def refused(self, sink: str, where: str, resp: Response) -> Permanent:
        return Permanent(_scrub(f"sink '{sink}': {where} refused a freshly issued access token from {self.token_url} "
                                f"(401 twice): check the client's permissions: {truncate(resp.text)}"))

    async def _fetch(self, client: HttpClient) -> tuple[str, float]:
        form = {"grant_type": "client_credentials", "client_id": self._client_id,
                "client_secret": self._client_secret.get_secret_value()}
        if self._scope:
            form["scope"] = self._scope
        where = f"the token endpoint {self.token_url}"
        resp = await client.exchange("POST", self.token_url, body=urlencode(form).encode(),
                                     headers={"Content-Type": "application/x-www-form-urlencoded"}, where=where)
        if resp.status in RETRY_STATUSES or resp.status >= 500:
            raise Transient(_scrub(f"sink '{client.sink}': {where} answered {resp.status}: {truncate(resp.text)}"))
        if not 200 <= resp.status < 300:
            raise Permanent(_scrub(f"sink '{client.sink}': {where} refused the client credentials "
                                   f"({resp.status}): {truncate(resp.text)}"))
        doc = resp.json()
        token = doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise Permanent(f"sink '{client.sink}': {where} answered {resp.status} without an access_token")
        SecretsFilter.register(token)
        expires_in = doc.get("expires_in") if isinstance(doc, dict) else None
        lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else math.inf
        return token, time.monotonic() + lifetime - min(TOKEN_MARGIN_S, lifetime * 0.1)


# --- the client --------------------------------------------------------------------------------------


class HttpClient:
    """One sink's session, credentials and response classification (see the module docstring)."""

    def __init__(self, sink: str, *, timeout_ms: int, max_in_flight: int, auth: Auth | None = None,
                 headers: Mapping[str, str | SecretStr] | None = None,
                 limit_error: Callable[[Response], bool] | None = None,
                 idempotency_headers: tuple[str, ...] = ("Idempotency-Key",)) -> None:
        self.sink = sink
        self.auth = auth or Auth()
        self._timeout = timeout_ms / 1000
        self._max_in_flight = max_in_flight
        # Unwrapped once (they go into every request); only the transport ever sees these values.
        self._headers = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in (headers or {}).items()}
        self._limit_error = limit_error
        self._idempotency_headers = idempotency_headers
        self._transport: Transport | None = None

    async def open(self) -> None:
        if self._transport is None:
            self._transport = Transport(limit=self._max_in_flight, timeout=self._timeout,
                                        headers={"User-Agent": USER_AGENT, "Accept": "application/json"})

    async def close(self) -> None:
        if self._transport is not None:
            transport, self._transport = self._transport, None
            transport.close()

    async def exchange(self, method: str, url: str, *, body: bytes | None, headers: Mapping[str, str],
                       where: str) -> Response:
        """One round trip, no credentials added; transport failures raise `Transient`."""
        if self._transport is None:
            raise RuntimeError(f"sink '{self.sink}' is not open")
        try:
            return await self._transport.request(method, url, headers, body)
        except TransportError as exc:
            raise Transient(_scrub(f"sink '{self.sink}': {where} failed: {exc}")) from None
        except InvalidRequest as exc:
            raise Permanent(_scrub(f"sink '{self.sink}': {where}: {exc}")) from None

    async def request(self, req: Request) -> Response:
        """`req` with credentials and idempotency headers; after a 401 the token is renewed once."""
        where = f"{req.method} {req.url}"
        headers = {**self._headers, **req.headers}
        for name in self._idempotency_headers:
            headers[name] = req.key
        if req.body is not None:
            headers["Content-Type"] = req.content_type
        for attempt in (1, 2):
            auth = await self.auth.header(self)
            if auth is not None:
                headers[auth[0]] = auth[1]
            resp = await self.exchange(req.method, req.url, body=req.body, headers=headers, where=where)
            if resp.status != 401:
                return resp
            if not self.auth.refreshable or attempt == 2 or auth is None:
                raise self.auth.refused(self.sink, where, resp)
            self.auth.invalidate(auth[1])
        raise AssertionError("unreachable")

    def classify(self, resp: Response, *, delete: bool, where: str) -> Outcome:
        """The outcome of a record (or of every record of a batch request) from the response status."""
        status = resp.status
        if 200 <= status < 300 or (delete and status == 404):
            return DELIVERED_BY_STATUS.get(status) or Outcome(OutcomeKind.DELIVERED, status=status)
        limited = self._limit_error is not None and self._limit_error(resp)
        if status in RETRY_STATUSES or status >= 500 or limited:
            return Outcome(OutcomeKind.RETRY, status=status, error=_scrub(truncate(resp.text)),
                           retry_after=resp.retry_after)
        if status == 401:
            raise self.auth.refused(self.sink, where, resp)
        if status == 403:
            raise Permanent(_scrub(f"sink '{self.sink}': {where} answered 403 Forbidden (the credentials lack a "
                                   f"permission): {truncate(resp.text)}"))
        if not 400 <= status < 500:
            raise Permanent(_scrub(f"sink '{self.sink}': {where} answered {status} (redirects are not followed: "
                                   f"check the URL): {truncate(resp.text)}"))
        return Outcome(OutcomeKind.REJECTED, status=status, error=_scrub(truncate(resp.text)))


# --- the sink skeleton -------------------------------------------------------------------------------


class HttpSinkBase:
    """The `cdc.types.Sink` protocol over an `HttpClient`; subclasses build requests and read results.

    Subclasses implement `route`, `is_batch_route`, and `record_request` (per-record routes) and/or
    `batch_request` + `batch_outcomes` (batch routes).
    """

    name: str
    max_batch_records: int
    max_batch_bytes: int
    # Vendor sinks: upserts of `object_name` go in batch requests (else one request per record).
    BATCH_UPSERTS: ClassVar[bool] = False

    def __init__(self, name: str, max_batch_records: int, max_batch_bytes: int, client: HttpClient,
                 object_name: str = "") -> None:
        self.name = name
        self.max_batch_records = max_batch_records
        self.max_batch_bytes = max_batch_bytes
        self.client = client
        self.object_name = object_name

    # -- to implement (routes default to "upsert <object>" / "delete <object>") --

    def route(self, event: SinkEvent) -> str:
        return f"{'delete' if event.deleted else 'upsert'} {self.object_name}"

    def is_batch_route(self, route: str) -> bool:
        return self.BATCH_UPSERTS and route.startswith("upsert ")

    def record_request(self, event: SinkEvent) -> Request:
        raise NotImplementedError

    def batch_request(self, route: str, batch: Sequence[SinkEvent]) -> Request:
        raise NotImplementedError

    def batch_outcomes(self, batch: Sequence[SinkEvent], resp: Response) -> list[Outcome]:
        """Per-record outcomes of a batch request the target answered with 2xx, in batch order."""
        raise NotImplementedError

    # -- the protocol --

    def batch_limit(self, route: str) -> int:
        """The most records one batch of `route` may hold: 1 for per-record routes (each record is its own
        request, e.g. every delete), ``batch.max.records`` for batch routes."""
        return self.max_batch_records if self.is_batch_route(route) else 1

    async def open(self) -> None:
        await self.client.open()

    async def close(self) -> None:
        await self.client.close()

    async def deliver(self, batch: Sequence[SinkEvent]) -> Sequence[Outcome]:
        if not batch:
            return []
        route = self.route(batch[0])
        if not self.is_batch_route(route):
            return await self._each(batch)
        req = self.batch_request(route, batch)
        resp = await self.client.request(req)
        if 200 <= resp.status < 300:
            return self.batch_outcomes(batch, resp)
        outcome = self.client.classify(resp, delete=False, where=f"{req.method} {req.url}")
        return [outcome] * len(batch)

    async def _one(self, event: SinkEvent) -> Outcome:
        try:
            req = self.record_request(event)
        except RecordError as exc:
            return Outcome(OutcomeKind.REJECTED, error=str(exc))
        resp = await self.client.request(req)
        return self.client.classify(resp, delete=event.deleted, where=f"{req.method} {req.url}")

    async def _each(self, batch: Sequence[SinkEvent]) -> list[Outcome]:
        if len(batch) == 1:
            return [await self._one(batch[0])]
        # The engine never puts two events of one key in a batch, so these requests may run concurrently.
        results = await asyncio.gather(*(self._one(e) for e in batch), return_exceptions=True)
        outcomes: list[Outcome] = []
        failures: list[Transient] = []
        for r in results:
            if isinstance(r, Outcome):
                outcomes.append(r)
            elif isinstance(r, Transient):
                failures.append(r)
                outcomes.append(Outcome(OutcomeKind.RETRY, error=str(r)))
            else:
                raise r  # Permanent (the sink must stop), cancellation, or a bug
        if len(failures) == len(results):
            raise failures[0]
        return outcomes


class PerRecordSink(HttpSinkBase):
    """A target written one record per request on the record's own URL (NetSuite, Dynamics):
    upserts with `UPSERT_METHOD` and the field-mapped data as body, deletes with DELETE.
    Subclasses set `url_prefix` (the key's segment is appended) and `fields`, or override `record_url`."""

    UPSERT_METHOD: ClassVar[str] = "PUT"
    HEADERS: ClassVar[Mapping[str, str]] = {}
    url_prefix: str
    fields: FieldMapper

    def record_url(self, event: SinkEvent) -> str:
        return self.url_prefix + key_segment(event)

    def record_request(self, event: SinkEvent) -> Request:
        url = self.record_url(event)
        if event.deleted:
            return Request("DELETE", url, event.id, headers=self.HEADERS)
        return Request(self.UPSERT_METHOD, url, event.id, orjson.dumps(self.fields.apply(event.data)),
                       headers=self.HEADERS)


def key_segment(event: SinkEvent) -> str:
    """The event's business key as one percent-encoded URL path segment."""
    return quote(event.subject, safe="")


def retry_all(batch: Sequence[SinkEvent], why: str, status: int | None = None) -> list[Outcome]:
    """Every record to be retried (a 2xx batch response the sink cannot read: nothing is known applied)."""
    return [Outcome(OutcomeKind.RETRY, status=status, error=why)] * len(batch)
