"""Salesforce emulator: OAuth2 client credentials + sObject Collections upsert by external id (README "Salesforce").

`POST /services/oauth2/token` issues bearer tokens (`issued_at`, no `expires_in`: they expire after
`token_ttl_s` or `expire_tokens()`, then every call gets 401 INVALID_SESSION_ID).
`PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExtIdField}` upserts up to 200 records (merging
fields), answering one UpsertResult per record in order; `DELETE /services/data/vXX.X/sobjects/{SObject}/
{ExtIdField}/{KEY}` answers 204 or 404 NOT_FOUND.

Faults as in core.py (error bodies are Salesforce's `[{"message", "errorCode"}]` lists: 429/403-style
REQUEST_LIMIT_EXCEEDED, 500 UNKNOWN_EXCEPTION, 502/503 SERVER_UNAVAILABLE). Per record: `partial` fails with
UNABLE_TO_LOCK_ROW (retryable), the email rule with INVALID_EMAIL_ADDRESS, a reject rule with
FIELD_CUSTOM_VALIDATION_EXCEPTION, a key named twice in one request with DUPLICATE_VALUE (and a violation).
With `allOrNone: true` one failing record rolls back the whole request (ALL_OR_NONE_OPERATION_ROLLED_BACK).
Salesforce has no idempotency key: a repeated batch re-upserts (same version: no violation, `created` false).
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any, ClassVar

from aiohttp import web

from tests.emulators.core import Emulator, TokenState, Vendor, json_object, respond

MAX_RECORDS = 200
PREFIXES = {"Account": "001", "Contact": "003", "Product2": "01t", "Order": "801"}
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
    "fields": [],
}


def errors(code: str, message: str, status: int) -> web.Response:
    return respond([{"message": message, "errorCode": code}], status)


class Salesforce(Vendor):
    kind: ClassVar[str] = "salesforce"

    def __init__(self, emu: Emulator) -> None:
        super().__init__(emu)
        self.ids: dict[tuple[str, str], str] = {}

    def setup(self) -> None:
        self.add("POST", "/services/oauth2/token", self.token, public=True)
        self.add("PATCH", "/services/data/{version}/composite/sobjects/{sobject}/{extid}", self.upsert)
        self.add("DELETE", "/services/data/{version}/sobjects/{sobject}/{extid}/{key}", self.delete)

    def credentials(self) -> dict[str, str]:
        emu = self.emu
        return {
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "login_url": emu.url,
            "token_url": f"{emu.url}/services/oauth2/token",
        }

    def unauthorized(self, state: TokenState) -> web.Response:
        return errors("INVALID_SESSION_ID", "Session expired or invalid", 401)

    def rate_limited(self) -> web.Response:
        return errors("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", 429)

    def failed(self, status: int) -> web.Response:
        if status == 500:
            return errors("UNKNOWN_EXCEPTION", "An unexpected error occurred. Please try again.", 500)
        return errors("SERVER_UNAVAILABLE", "Server is temporarily unavailable, please try again.", status)

    def sf_id(self, sobject: str, key: str) -> str:
        sid = self.ids.get((sobject, key))
        if sid is None:
            prefix = PREFIXES.get(sobject, "a0" + chr(65 + len(sobject) % 26))
            sid = self.ids[sobject, key] = f"{prefix}{len(self.ids) + 1:012d}AAA"
        return sid

    async def token(self, request: web.Request) -> web.Response:
        error = await self.client_credentials(request)
        if error is not None:
            return respond({"error": error, "error_description": "invalid client credentials"}, 400)
        url = self.emu.url
        return respond(
            {
                "access_token": self.emu.tokens.issue(),
                "instance_url": url,
                "id": f"{url}/id/00D000000000001AAA/005000000000001AAA",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            }
        )

    def check(self, rec: Any, sobject: str, extid: str, seen: set[str]) -> tuple[str | None, dict[str, Any] | None]:
        """(key, per-record error or None) for one record of an upsert request."""
        if type(rec) is not dict:
            return None, {"statusCode": "JSON_PARSER_ERROR", "message": "record must be an object", "fields": []}
        attrs = rec.get("attributes")
        if not isinstance(attrs, dict) or attrs.get("type") != sobject:
            return None, {"statusCode": "INVALID_TYPE", "message": "Must send a concrete entity type.", "fields": []}
        raw = rec.get(extid)
        if raw is None or raw == "":
            return None, {"statusCode": "MISSING_ARGUMENT", "message": f"{extid} not specified", "fields": [extid]}
        key = raw if type(raw) is str else str(raw)
        if key in seen:
            self.ledger.violation(f"batch: {sobject}/{key} twice in one request")
            return key, {
                "statusCode": "DUPLICATE_VALUE",
                "message": f"Duplicate external id specified: {key}",
                "fields": [extid],
            }
        seen.add(key)
        if self.partial_hit():
            self.ledger.count("retryable_failures")
            return key, {
                "statusCode": "UNABLE_TO_LOCK_ROW",
                "message": "unable to obtain exclusive access to this record or 1 records",
                "fields": [],
            }
        bad = self.invalid(rec)
        if bad is not None:
            self.rejected()
            code = "INVALID_EMAIL_ADDRESS" if bad[0].lower() == "email" else "FIELD_CUSTOM_VALIDATION_EXCEPTION"
            return key, {"statusCode": code, "message": f"{bad[0]}: {bad[1]}", "fields": [bad[0]]}
        return key, None

    async def upsert(self, request: web.Request) -> web.Response:
        sobject, extid = request.match_info["sobject"], request.match_info["extid"]
        doc = json_object(await request.read()) or {}
        records = doc.get("records")
        if not isinstance(records, list):
            self.rejected()
            return errors("JSON_PARSER_ERROR", 'body must be {"allOrNone": bool, "records": [...]}', 400)
        if len(records) > MAX_RECORDS:
            self.rejected()
            return errors(
                "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call", 400
            )
        results: list[dict[str, Any]] = []
        with self.ledger.txn() as led:
            seen: set[str] = set()
            checked = [self.check(rec, sobject, extid, seen) for rec in records]
            rollback = bool(doc.get("allOrNone")) and any(err is not None for _, err in checked)
            for rec, (key, err) in zip(records, checked, strict=True):
                if err is not None or rollback or key is None:
                    results.append({"success": False, "errors": [err or ROLLED_BACK]})
                    continue
                data = {k: v for k, v in rec.items() if k != "attributes"}
                created = led.upsert(sobject, key, data, merge=True)
                results.append({"id": self.sf_id(sobject, key), "success": True, "errors": [], "created": created})
        return respond(results)

    async def delete(self, request: web.Request) -> web.Response:
        sobject, key = request.match_info["sobject"], request.match_info["key"]
        with self.ledger.txn() as led:
            if not led.delete(sobject, key):
                return errors("NOT_FOUND", "The requested resource does not exist", 404)
        return web.Response(status=204)
