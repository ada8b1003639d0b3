"""Dynamics 365 / Dataverse Web API v9.2 emulator: Azure AD client credentials, upsert by alternate key
(README "Dynamics 365").

`POST /{tenant}/oauth2/v2.0/token` (form: client_id, client_secret, `scope=<org>/.default`) issues bearer
tokens. `PATCH /api/data/v9.2/{entitySet}({key}='{KEY}')` merges the body into the record (the key column set
to KEY) and answers 204 with `OData-EntityId`; `DELETE` on the same path answers 204 or 404. Composite keys
(`a='x',b='y'`) are stored under the key `a=x,b=y`. `Idempotency-Key`: an applied key is answered with the
original response and not applied again.

Errors are `{"error": {"code": "0x...", "message"}}`: 400 0x80040203 (email rule, reject rules, bad body),
404 0x80040217, 429 0x80072322 (service protection, with `Retry-After`), 5xx 0x80040216. A bad or expired
token gets 401 with an empty body and `WWW-Authenticate: Bearer error="invalid_token"`, as Dataverse does.
Faults as in core.py (no batch endpoint, so `partial` does not apply).
"""

from __future__ import annotations

import re
import uuid
from typing import ClassVar

from aiohttp import web

from tests.emulators.core import Emulator, TokenState, Vendor, from_stored, respond

TARGET = re.compile(r"^([A-Za-z_]\w*)\((.+)\)$")
KEY_PART = re.compile(r"\s*(\w+)\s*=\s*(?:'((?:[^']|'')*)'|([^,']+))\s*(?:,|$)")
AADSTS = {
    "invalid_client": "AADSTS7000215: Invalid client secret provided.",
    "invalid_scope": "AADSTS1002012: The provided value for scope is not valid; use <resource>/.default.",
}


def error(status: int, code: str, message: str) -> web.Response:
    return respond({"error": {"code": code, "message": message}}, status)


def parse_target(target: str) -> tuple[str, dict[str, str]] | None:
    """`accounts(accountnumber='A''1')` -> ("accounts", {"accountnumber": "A'1"}); None if not an alternate key."""
    m = TARGET.match(target)
    if m is None:
        return None
    inner, keys, pos = m.group(2), {}, 0
    while pos < len(inner):
        part = KEY_PART.match(inner, pos)
        if part is None or part.end() == pos:
            return None
        quoted, bare = part.group(2), part.group(3)
        keys[part.group(1)] = quoted.replace("''", "'") if quoted is not None else bare.strip()
        pos = part.end()
    return (m.group(1), keys) if keys else None


class Dynamics(Vendor):
    kind: ClassVar[str] = "dynamics"

    def __init__(self, emu: Emulator) -> None:
        super().__init__(emu)
        self.ids: dict[tuple[str, str], str] = {}

    def setup(self) -> None:
        self.add("POST", "/{tenant}/oauth2/v2.0/token", self.token, public=True)
        self.add("PATCH", "/api/data/{version}/{target}", self.upsert)
        self.add("DELETE", "/api/data/{version}/{target}", self.delete)

    def credentials(self) -> dict[str, str]:
        emu = self.emu
        return {
            "tenant_id": "emulator-tenant",
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "scope": f"{emu.url}/.default",
            "token_url": f"{emu.url}/emulator-tenant/oauth2/v2.0/token",
        }

    def unauthorized(self, state: TokenState) -> web.Response:
        detail = "The access token is expired" if state == "expired" else "The access token is invalid"
        challenge = f'Bearer error="invalid_token", error_description="{detail}"'
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})

    def rate_limited(self) -> web.Response:
        return error(
            429, "0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
        )

    def failed(self, status: int) -> web.Response:
        return error(status, "0x80040216", "An unexpected error occurred.")

    async def token(self, request: web.Request) -> web.Response:
        problem = await self.client_credentials(request)
        if problem is None and not str((await request.post()).get("scope", "")).endswith("/.default"):
            problem = "invalid_scope"
        if problem is not None:
            status = 401 if problem == "invalid_client" else 400
            return respond({"error": problem, "error_description": AADSTS.get(problem, problem)}, status)
        ttl = int(self.emu.tokens.ttl_s)
        return respond(
            {"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": self.emu.tokens.issue()}
        )

    @staticmethod
    def target(request: web.Request) -> tuple[str, str, dict[str, str]] | None:
        parsed = parse_target(request.match_info["target"])
        if parsed is None:
            return None
        entity, keys = parsed
        key = next(iter(keys.values())) if len(keys) == 1 else ",".join(f"{k}={v}" for k, v in keys.items())
        return entity, key, keys

    async def upsert(self, request: web.Request) -> web.Response:
        target = self.target(request)
        if target is None:
            self.rejected()
            return error(400, "0x80060888", "Upsert needs an alternate key: {entitySet}({key}='{value}')")
        entity, key, keys = target
        body = await request.read()
        idem = request.headers.get("Idempotency-Key")
        with self.ledger.txn() as led:
            data = self.record_body(led, idem, body, lambda: (
                error(400, "0x80048d19", "Error identified in Payload provided by the user for Entity.")))
            if isinstance(data, web.Response):
                return data
            bad = self.invalid(data)
            if bad is not None:
                self.rejected()
                return error(400, "0x80040203", f"{bad[1]} (attribute {bad[0]})")
            led.upsert(entity, key, data | keys, idem, merge=True)
            guid = self.ids.setdefault((entity, key), str(uuid.uuid4()))
            headers = {"OData-EntityId": f"{self.emu.url}/api/data/v9.2/{entity}({guid})", "OData-Version": "4.0"}
            led.remember(idem, (204, b"", headers))
        return web.Response(status=204, headers=headers)

    async def delete(self, request: web.Request) -> web.Response:
        target = self.target(request)
        idem = request.headers.get("Idempotency-Key")
        with self.ledger.txn() as led:
            stored = led.replay(idem)
            if stored is not None:
                return from_stored(stored)
            if target is None or not led.delete(target[0], target[1], idem):
                return error(404, "0x80040217", f"{request.match_info['target']} Does Not Exist")
            led.remember(idem, (204, b"", {}))
        return web.Response(status=204)
