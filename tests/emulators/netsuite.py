"""NetSuite REST Record Service v1 emulator: OAuth2 client credentials, upsert by external id (README "NetSuite").

`POST /services/rest/auth/oauth2/v1/token` issues bearer tokens (client_id/client_secret in the form or HTTP
Basic, or NetSuite's real `client_assertion` JWT, accepted unverified). `PUT /services/rest/record/v1/
{recordType}/eid:{KEY}` merges the body into the record (`externalId` = KEY) and answers 204 with `Location`;
`DELETE` on the same path answers 204 or 404 NONEXISTENT_ID. `X-NetSuite-Idempotency-Key`: an applied key is
answered with the original response and not applied again.

Errors are RFC 9457-style bodies with `o:errorDetails`: 400 INVALID_FIELD_VALUE (`o:errorPath` = the field;
the email rule and reject rules), 401 INVALID_LOGIN (bad or expired token), 429 CONCURRENCY_LIMIT_EXCEEDED,
5xx UNEXPECTED_ERROR. Faults as in core.py (no batch endpoint, so `partial` does not apply).
"""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web

from tests.emulators.core import Emulator, TokenState, Vendor, from_stored, respond

RFC = "https://www.rfc-editor.org/rfc/rfc9110.html#section-"
TYPES = {
    400: (RFC + "15.5.1", "Bad Request"),
    401: (RFC + "15.5.2", "Unauthorized"),
    404: (RFC + "15.5.5", "Not Found"),
    429: ("https://www.rfc-editor.org/rfc/rfc6585.html#section-4", "Too Many Requests"),
    500: (RFC + "15.6.1", "Internal Server Error"),
    502: (RFC + "15.6.3", "Bad Gateway"),
    503: (RFC + "15.6.4", "Service Unavailable"),
}


def error(status: int, code: str, detail: str, path: str | None = None) -> web.Response:
    item: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    if path is not None:
        item["o:errorPath"] = path
    kind, title = TYPES[status]
    return respond({"type": kind, "title": title, "status": status, "o:errorDetails": [item]}, status)


class NetSuite(Vendor):
    kind: ClassVar[str] = "netsuite"

    def __init__(self, emu: Emulator) -> None:
        super().__init__(emu)
        self.ids: dict[tuple[str, str], int] = {}

    def setup(self) -> None:
        self.add("POST", "/services/rest/auth/oauth2/v1/token", self.token, public=True)
        self.add("PUT", "/services/rest/record/v1/{record_type}/{ref}", self.upsert)
        self.add("DELETE", "/services/rest/record/v1/{record_type}/{ref}", self.delete)

    def credentials(self) -> dict[str, str]:
        emu = self.emu
        return {
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "token_url": f"{emu.url}/services/rest/auth/oauth2/v1/token",
        }

    def unauthorized(self, state: TokenState) -> web.Response:
        return error(401, "INVALID_LOGIN", "Invalid login attempt. For more details, see the Login Audit Trail.")

    def rate_limited(self) -> web.Response:
        return error(429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded. Request blocked.")

    def failed(self, status: int) -> web.Response:
        return error(status, "UNEXPECTED_ERROR", "An unexpected error occurred. Please try again.")

    async def token(self, request: web.Request) -> web.Response:
        problem = await self.client_credentials(request)
        if problem is not None:
            return respond({"error": problem}, 400)
        return respond(
            {"access_token": self.emu.tokens.issue(), "expires_in": int(self.emu.tokens.ttl_s), "token_type": "Bearer"}
        )

    @staticmethod
    def key(request: web.Request) -> str | None:
        ref = request.match_info["ref"]
        return ref[4:] if ref.startswith("eid:") and len(ref) > 4 else None

    async def upsert(self, request: web.Request) -> web.Response:
        record_type, key = request.match_info["record_type"], self.key(request)
        if key is None:
            self.rejected()
            return error(400, "INVALID_ID", "Upsert needs an external id: .../{recordType}/eid:{externalId}")
        body = await request.read()
        idem = request.headers.get("X-NetSuite-Idempotency-Key")
        with self.ledger.txn() as led:
            data = self.record_body(led, idem, body, lambda: (
                error(400, "INVALID_CONTENT", "The request body must be a JSON object.")))
            if isinstance(data, web.Response):
                return data
            bad = self.invalid(data)
            if bad is not None:
                self.rejected()
                return error(400, "INVALID_FIELD_VALUE", f"Invalid field value for {bad[0]}. {bad[1]}", bad[0])
            led.upsert(record_type, key, data | {"externalId": key}, idem, merge=True)
            internal = self.ids.setdefault((record_type, key), len(self.ids) + 1)
            headers = {"Location": f"{self.emu.url}/services/rest/record/v1/{record_type}/{internal}"}
            led.remember(idem, (204, b"", headers))
        return web.Response(status=204, headers=headers)

    async def delete(self, request: web.Request) -> web.Response:
        record_type, key = request.match_info["record_type"], self.key(request)
        idem = request.headers.get("X-NetSuite-Idempotency-Key")
        with self.ledger.txn() as led:
            stored = led.replay(idem)
            if stored is not None:
                return from_stored(stored)
            if key is None or not led.delete(record_type, key, idem):
                return error(404, "NONEXISTENT_ID", f"The record instance does not exist. Provided id: {key}.")
            led.remember(idem, (204, b"", {}))
        return web.Response(status=204)
