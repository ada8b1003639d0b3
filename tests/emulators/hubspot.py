"""HubSpot CRM v3 emulator: private-app bearer token, batch upsert by unique property (README "HubSpot").

`POST /crm/v3/objects/{objectType}/batch/upsert` takes up to 100 inputs `{idProperty, id, properties,
objectWriteTraceId}` and stores every property as text (merging into the record, `idProperty` set to `id`);
200 `{"status": "COMPLETE", "results": [...]}`, or 207 with `numErrors`/`errors` whose `context` names the
failed inputs' `objectWriteTraceId`. `DELETE /crm/v3/objects/{objectType}/{KEY}?idProperty=P` answers 204 or
404 (without `idProperty` KEY is HubSpot's own record id).

Auth: the static token in `credentials["token"]` (or `--token`); a missing/unknown one gets 401
INVALID_AUTHENTICATION, one revoked by `expire_tokens()` 401 EXPIRED_AUTHENTICATION (`credentials` then holds
a fresh token). Faults as in core.py, with HubSpot bodies (429 RATE_LIMIT/SECONDLY, 5xx INTERNAL_ERROR).
Per input: `partial` fails with category RATE_LIMITS (retryable), the email rule and reject rules with
VALIDATION_ERROR. A batch naming one id twice is a violation and is refused whole (400 VALIDATION_ERROR,
nothing applied), as HubSpot does. HubSpot has no idempotency key: a repeated batch re-upserts harmlessly.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
from aiohttp import web

from tests.emulators.core import Emulator, TokenState, Vendor, json_list, respond

MAX_INPUTS = 100


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def text(value: Any) -> str:
    """HubSpot keeps every property value as a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else orjson.dumps(value).decode().strip('"')


def error(status: int, category: str, message: str, **extra: Any) -> web.Response:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}
    return respond(body | extra, status)


class HubSpot(Vendor):
    kind: ClassVar[str] = "hubspot"
    static_token = True

    def __init__(self, emu: Emulator) -> None:
        super().__init__(emu)
        self.ids: dict[tuple[str, str], str] = {}
        self.by_id: dict[tuple[str, str], str] = {}
        self.created_at: dict[tuple[str, str], str] = {}

    def setup(self) -> None:
        self.add("POST", "/crm/v3/objects/{object_type}/batch/upsert", self.upsert)
        self.add("DELETE", "/crm/v3/objects/{object_type}/{key}", self.delete)

    def credentials(self) -> dict[str, str]:
        return {"token": self.emu.static or ""}

    def unauthorized(self, state: TokenState) -> web.Response:
        if state == "expired":
            return error(401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired.")
        return error(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
            "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )

    def rate_limited(self) -> web.Response:
        return respond(
            {
                "status": "error",
                "message": "You have reached your secondly limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()),
                "policyName": "SECONDLY",
            },
            429,
        )

    def failed(self, status: int) -> web.Response:
        return error(status, "INTERNAL_ERROR", "internal error, please retry")

    def hs_id(self, object_type: str, key: str) -> str:
        hid = self.ids.get((object_type, key))
        if hid is None:
            hid = self.ids[object_type, key] = str(1000 + len(self.ids))
            self.by_id[object_type, hid] = key
        return hid

    async def upsert(self, request: web.Request) -> web.Response:
        started = now_iso()
        object_type = request.match_info["object_type"]
        inputs = json_list(await request.read(), "inputs")
        if inputs is None or not all(type(i) is dict for i in inputs):
            self.rejected()
            return error(400, "VALIDATION_ERROR", 'Invalid input JSON: expected {"inputs": [{...}]}')
        if len(inputs) > MAX_INPUTS:
            self.rejected()
            return error(400, "VALIDATION_ERROR", f"Batch input limit exceeded: {len(inputs)} > {MAX_INPUTS}")
        keys = [text(i.get("id")) for i in inputs]
        dups = sorted(k for k, n in Counter(keys).items() if n > 1)
        if dups:
            with self.ledger.txn() as led:
                for k in dups:
                    led.violation(f"batch: {object_type}/{k} twice in one request")
            self.rejected(len(inputs))
            return error(
                400,
                "VALIDATION_ERROR",
                f"Duplicate IDs found in batch input: [{', '.join(dups)}]. IDs must be unique",
                context={"ids": dups},
            )
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        with self.ledger.txn() as led:
            for inp, key in zip(inputs, keys, strict=True):
                trace = inp.get("objectWriteTraceId")
                ctx = {"objectWriteTraceId": [trace]} if trace is not None else {"ids": [key]}
                id_prop, props = inp.get("idProperty"), inp.get("properties")
                if not key or not isinstance(id_prop, str) or not isinstance(props, dict):
                    self.rejected()
                    errors.append(self.failure("VALIDATION_ERROR", "input needs idProperty, id and properties", ctx))
                    continue
                if self.partial_hit():
                    led.count("retryable_failures")
                    errors.append(self.failure("RATE_LIMITS", "You have reached your secondly limit.", ctx))
                    continue
                stored = {k: text(v) for k, v in props.items()}
                stored[id_prop] = key
                bad = self.invalid(stored)
                if bad is not None:
                    self.rejected()
                    code = "INVALID_EMAIL" if bad[0].lower() == "email" else "INVALID_OPTION"
                    detail = orjson.dumps([{"isValid": False, "message": bad[1], "error": code, "name": bad[0]}])
                    message = f"Property values were not valid: {detail.decode()}"
                    errors.append(self.failure("VALIDATION_ERROR", message, ctx))
                    continue
                created = led.upsert(object_type, key, stored, merge=True)
                hid = self.hs_id(object_type, key)
                stamp = now_iso()
                first = self.created_at.setdefault((object_type, key), stamp)
                result = {
                    "id": hid,
                    "properties": led.data[object_type][key] | {"hs_object_id": hid},
                    "createdAt": first,
                    "updatedAt": stamp,
                    "archived": False,
                    "new": created,
                }
                if trace is not None:
                    result["objectWriteTraceId"] = trace
                results.append(result)
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started}
        if errors:
            body |= {"numErrors": len(errors), "errors": errors}
        body["completedAt"] = now_iso()
        return respond(body, 207 if errors else 200)

    @staticmethod
    def failure(category: str, message: str, context: dict[str, list[Any]]) -> dict[str, Any]:
        return {"status": "error", "category": category, "message": message, "context": context}

    async def delete(self, request: web.Request) -> web.Response:
        object_type, key = request.match_info["object_type"], request.match_info["key"]
        if "idProperty" not in request.query:
            key = self.by_id.get((object_type, key), key)
        with self.ledger.txn() as led:
            if not led.delete(object_type, key):
                return error(404, "OBJECT_NOT_FOUND", "Object not found.")
        return web.Response(status=204)
