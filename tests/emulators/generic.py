"""Generic REST emulator (the shapes `sinks.http.HttpSink` speaks; README "Generic REST").

`POST|PUT /records/{subject}` replaces the record (201 created / 200 updated, `{"id": subject}`),
`DELETE /records/{subject}` 204 / 404, `POST /batch` up to 1000 records answered per record in request order.
Auth by `auth=`: none, bearer, basic, apikey (`X-API-Key`) or oauth2 (client credentials at `/oauth/token`);
a missing/bad/expired credential gets 401 `{"error": "invalid_token"}`.

Faults as in core.py. The `Idempotency-Key` header of a single-record request, and each batch record's event
`id`, is remembered once applied: a repeat is answered with the original status without applying again (the
batch header, a hash of the event ids, is not needed for that). A batch record that fails with `partial` gets
status 503; a validation failure 422 (400 for a malformed record); a batch naming one subject twice is a
violation (both records are still applied in order); a batch delete of an unknown subject answers 204.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from aiohttp import web

from tests.emulators.core import (
    JSON_HEADERS,
    Emulator,
    Stored,
    TokenState,
    Vendor,
    basic,
    bearer,
    from_stored,
    invalid_field,
    json_list,
    respond,
)

COLLECTION = "records"
MAX_BATCH = 1000
STATUS_ONLY: dict[int, Stored] = {s: (s, b"", {}) for s in (200, 201, 204)}
AUTH_MODES = ("none", "bearer", "basic", "apikey", "oauth2")


class Generic(Vendor):
    kind: ClassVar[str] = "generic"

    def __init__(self, emu: Emulator) -> None:
        super().__init__(emu)
        self.mode = emu.auth or "none"
        if self.mode not in AUTH_MODES:
            raise ValueError(f"generic auth must be one of {AUTH_MODES}, not {self.mode!r}")
        self.static_token = self.mode in ("bearer", "basic", "apikey")

    def setup(self) -> None:
        self.add("POST", "/records/{subject}", self.upsert)
        self.add("PUT", "/records/{subject}", self.upsert)
        self.add("DELETE", "/records/{subject}", self.delete)
        self.add("POST", "/batch", self.batch)
        if self.mode == "oauth2":
            self.add("POST", "/oauth/token", self.token, public=True)

    def credentials(self) -> dict[str, str]:
        emu = self.emu
        token = emu.static or ""
        return {
            "none": {},
            "bearer": {"token": token},
            "basic": {"username": "emulator", "password": token},
            "apikey": {"api_key": token, "header": "X-API-Key"},
            "oauth2": {
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
                "token_url": f"{emu.url}/oauth/token",
            },
        }[self.mode]

    def authenticate(self, request: web.Request) -> web.Response | None:
        if self.mode == "none":
            return None
        tokens = self.emu.tokens
        if self.mode == "basic":
            pair = basic(request) or ("", "")
            state: TokenState = tokens.check(pair[1]) if pair[0] == "emulator" else "invalid" if pair[0] else "missing"
        elif self.mode == "apikey":
            state = tokens.check(request.headers.get("X-API-Key"))
        else:
            state = tokens.check(bearer(request))
        return None if state == "ok" else self.unauthorized(state)

    def unauthorized(self, state: TokenState) -> web.Response:
        challenge = 'Basic realm="emulator"' if self.mode == "basic" else 'Bearer error="invalid_token"'
        return respond({"error": "invalid_token"}, 401, {"WWW-Authenticate": challenge})

    def rate_limited(self) -> web.Response:
        return respond({"error": "rate_limited", "message": "too many requests"}, 429)

    def failed(self, status: int) -> web.Response:
        return respond({"error": "unavailable", "message": f"injected {status}"}, status)

    async def token(self, request: web.Request) -> web.Response:
        error = await self.client_credentials(request)
        if error is not None:
            return respond({"error": error}, 401 if error == "invalid_client" else 400)
        token = self.emu.tokens.issue()
        return respond({"access_token": token, "token_type": "Bearer", "expires_in": int(self.emu.tokens.ttl_s)})

    async def upsert(self, request: web.Request) -> web.Response:
        body = await request.read()
        idem = request.headers.get("Idempotency-Key")
        with self.ledger.txn() as led:
            data = self.record_body(led, idem, body, lambda: (
                respond({"error": "bad_request", "message": "body must be a JSON object"}, 400)))
            if isinstance(data, web.Response):
                return data
            bad = self.invalid(data)
            if bad is not None:
                self.rejected()
                return respond({"error": "validation_failed", "field": bad[0], "message": bad[1]}, 422)
            subject = request.match_info["subject"]
            status = 201 if led.upsert(COLLECTION, subject, data, idem) else 200
            out = orjson.dumps({"id": subject})
            led.remember(idem, (status, out, JSON_HEADERS))
        return web.Response(status=status, body=out, headers=JSON_HEADERS)

    async def delete(self, request: web.Request) -> web.Response:
        idem = request.headers.get("Idempotency-Key")
        with self.ledger.txn() as led:
            stored = led.replay(idem)
            if stored is not None:
                return from_stored(stored)
            if not led.delete(COLLECTION, request.match_info["subject"], idem):
                return respond({"error": "not_found"}, 404)
            led.remember(idem, (204, b"", {}))
        return web.Response(status=204)

    async def batch(self, request: web.Request) -> web.Response:
        records = json_list(await request.read(), "records")
        if records is None:
            self.rejected()
            return respond({"error": "bad_request", "message": 'body must be {"records": [...]}'}, 400)
        if len(records) > MAX_BATCH:
            self.rejected()
            return respond({"error": "too_many_records", "message": f"at most {MAX_BATCH} records"}, 400)
        results: list[dict[str, Any]] = []
        add = results.append
        seen: set[str] = set()
        partial = self.emu.faults.partial
        rng = self.emu.rng
        rules = self.emu.faults.reject_rules
        with self.ledger.txn() as led:
            idem = led.idem
            replayed = rejected = retry = 0
            for rec in records:
                eid = rec.get("id") if type(rec) is dict else None
                subject, op = (rec.get("subject"), rec.get("op")) if type(rec) is dict else (None, None)
                if subject is None or op not in ("upsert", "delete"):
                    rejected += 1
                    add({"id": eid, "status": 400, "error": "record needs subject and op upsert|delete"})
                    continue
                key = subject if type(subject) is str else str(subject)
                if key in seen:
                    led.violation(f"batch: {COLLECTION}/{key} twice in one request")
                seen.add(key)
                ek = None if eid is None else eid if type(eid) is str else str(eid)
                if ek is not None and (stored := idem.get(ek)) is not None:
                    replayed += 1
                    add({"id": eid, "status": stored[0]})
                    continue
                if partial and rng.random() < partial:
                    retry += 1
                    add({"id": eid, "status": 503, "error": "temporarily unavailable, retry"})
                    continue
                if op == "upsert":
                    data = rec.get("data")
                    if type(data) is not dict:
                        rejected += 1
                        add({"id": eid, "status": 400, "error": "upsert needs a data object"})
                        continue
                    bad = invalid_field(data, rules)
                    if bad is not None:
                        rejected += 1
                        add({"id": eid, "status": 422, "error": bad[1], "field": bad[0]})
                        continue
                    status = 201 if led.upsert(COLLECTION, key, data, ek) else 200
                else:
                    led.delete(COLLECTION, key, ek)
                    status = 204
                if ek is not None:
                    idem[ek] = STATUS_ONLY[status]
                add({"id": eid, "status": status})
            if replayed:
                led.count("replayed", replayed)
            if rejected:
                led.count("rejected", rejected)
            if retry:
                led.count("retryable_failures", retry)
        return web.Response(body=orjson.dumps({"results": results}), headers=JSON_HEADERS)
