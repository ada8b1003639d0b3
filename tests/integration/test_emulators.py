"""The cloud-API emulators (tests/emulators) over real HTTP: each vendor's request/response shapes, its validation
and error bodies, 429 with Retry-After, token expiry, idempotent replay, per-key order violations, outages and
the other faults, and `python -m tests.emulators` as a separate process."""

from __future__ import annotations

import base64
import http.client
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
import pytest

from tests.emulators import Emulator, Faults, start_emulator

KINDS = ["generic", "salesforce", "hubspot", "netsuite", "dynamics"]


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        return orjson.loads(self.raw)


def call(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Resp:
    hdrs = dict(headers or {})
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = orjson.dumps(body)
        hdrs["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return Resp(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, dict(e.headers), e.read())


def q(key: str) -> str:
    return urllib.parse.quote(key, safe="")


@dataclass
class Driver:
    """Speaks one vendor's real request shapes for the tests shared by all vendors."""

    emu: Emulator
    token: str = ""
    collection: ClassVar[str] = "records"

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def login(self) -> str:
        """Obtain a (new) token through the vendor's flow."""
        raise NotImplementedError

    def upsert(self, key: str, fields: dict[str, Any], event_id: str = "") -> Resp:
        raise NotImplementedError

    def delete(self, key: str, event_id: str = "") -> Resp:
        raise NotImplementedError

    def ok(self, resp: Resp) -> bool:
        return resp.status in (200, 201, 204)


class GenericDriver(Driver):
    def login(self) -> str:
        c = self.emu.credentials
        r = call("POST", c["token_url"], form={"grant_type": "client_credentials", **c})
        assert r.status == 200, r.raw
        assert r.json()["token_type"] == "Bearer"
        self.token = r.json()["access_token"]
        return self.token

    def upsert(self, key: str, fields: dict[str, Any], event_id: str = "") -> Resp:
        idem = {"Idempotency-Key": event_id} if event_id else {}
        return call("POST", f"{self.emu.url}/records/{q(key)}", fields, self.auth() | idem)

    def delete(self, key: str, event_id: str = "") -> Resp:
        idem = {"Idempotency-Key": event_id} if event_id else {}
        return call("DELETE", f"{self.emu.url}/records/{q(key)}", None, self.auth() | idem)


class SalesforceDriver(Driver):
    collection = "Account"

    def login(self) -> str:
        c = self.emu.credentials
        form = {"grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"]}
        r = call("POST", c["token_url"], form=form)
        assert r.status == 200, r.raw
        assert set(r.json()) >= {"access_token", "instance_url", "token_type", "issued_at", "signature"}
        self.token = r.json()["access_token"]
        return self.token

    def batch(self, records: list[dict[str, Any]], all_or_none: bool = False) -> Resp:
        body = {"allOrNone": all_or_none, "records": [{"attributes": {"type": "Account"}, **r} for r in records]}
        url = f"{self.emu.url}/services/data/v60.0/composite/sobjects/Account/ERP_Id__c"
        return call("PATCH", url, body, self.auth())

    def upsert(self, key: str, fields: dict[str, Any], event_id: str = "") -> Resp:
        return self.batch([{"ERP_Id__c": key, **fields}])

    def delete(self, key: str, event_id: str = "") -> Resp:
        url = f"{self.emu.url}/services/data/v60.0/sobjects/Account/ERP_Id__c/{q(key)}"
        return call("DELETE", url, None, self.auth())

    def ok(self, resp: Resp) -> bool:
        return resp.status == 204 or (resp.status == 200 and all(r["success"] for r in resp.json()))


class HubSpotDriver(Driver):
    collection = "companies"

    def login(self) -> str:
        self.token = self.emu.credentials["token"]
        return self.token

    def batch(self, inputs: list[tuple[str, dict[str, Any], str]]) -> Resp:
        body = {
            "inputs": [
                {
                    "idProperty": "erp_id",
                    "id": k,
                    "properties": {p: str(v) for p, v in f.items()},
                    "objectWriteTraceId": t,
                }
                for k, f, t in inputs
            ]
        }
        return call("POST", f"{self.emu.url}/crm/v3/objects/companies/batch/upsert", body, self.auth())

    def upsert(self, key: str, fields: dict[str, Any], event_id: str = "") -> Resp:
        return self.batch([(key, fields, event_id or f"ev-{key}")])

    def delete(self, key: str, event_id: str = "") -> Resp:
        return call("DELETE", f"{self.emu.url}/crm/v3/objects/companies/{q(key)}?idProperty=erp_id", None, self.auth())

    def ok(self, resp: Resp) -> bool:
        return resp.status in (200, 204)


class NetSuiteDriver(Driver):
    collection = "customer"

    def login(self) -> str:
        c = self.emu.credentials
        basic = base64.b64encode(f"{c['client_id']}:{c['client_secret']}".encode()).decode()
        r = call(
            "POST",
            c["token_url"],
            form={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert r.status == 200, r.raw
        assert r.json()["token_type"] == "Bearer" and r.json()["expires_in"] == int(self.emu.tokens.ttl_s)
        self.token = r.json()["access_token"]
        return self.token

    def upsert(self, key: str, fields: dict[str, Any], event_id: str = "") -> Resp:
        idem = {"X-NetSuite-Idempotency-Key": event_id} if event_id else {}
        url = f"{self.emu.url}/services/rest/record/v1/customer/eid:{q(key)}"
        return call("PUT", url, fields, self.auth() | idem)

    def delete(self, key: str, event_id: str = "") -> Resp:
        idem = {"X-NetSuite-Idempotency-Key": event_id} if event_id else {}
        return call("DELETE", f"{self.emu.url}/services/rest/record/v1/customer/eid:{q(key)}", None, self.auth() | idem)


class DynamicsDriver(Driver):
    collection = "accounts"

    def login(self) -> str:
        c = self.emu.credentials
        form = {
            "grant_type": "client_credentials",
            "client_id": c["client_id"],
            "client_secret": c["client_secret"],
            "scope": c["scope"],
        }
        r = call("POST", c["token_url"], form=form)
        assert r.status == 200, r.raw
        assert set(r.json()) >= {"token_type", "expires_in", "access_token"}
        self.token = r.json()["access_token"]
        return self.token

    def path(self, key: str) -> str:
        return f"{self.emu.url}/api/data/v9.2/accounts(accountnumber='{q(key.replace(chr(39), chr(39) * 2))}')"

    def upsert(self, key: str, fields: dict[str, Any], event_id: str = "") -> Resp:
        idem = {"Idempotency-Key": event_id} if event_id else {}
        return call("PATCH", self.path(key), fields, self.auth() | idem)

    def delete(self, key: str, event_id: str = "") -> Resp:
        idem = {"Idempotency-Key": event_id} if event_id else {}
        return call("DELETE", self.path(key), None, self.auth() | idem)


DRIVERS: dict[str, type[Driver]] = {
    "generic": GenericDriver,
    "salesforce": SalesforceDriver,
    "hubspot": HubSpotDriver,
    "netsuite": NetSuiteDriver,
    "dynamics": DynamicsDriver,
}
EMAIL_FIELD = {
    "generic": "email",
    "salesforce": "Email",
    "hubspot": "email",
    "netsuite": "email",
    "dynamics": "emailaddress1",
}


@pytest.fixture(params=KINDS)
def drv(request: pytest.FixtureRequest) -> Iterator[Driver]:
    kind = request.param
    with start_emulator(kind, order_field="version", auth="oauth2" if kind == "generic" else None) as emu:
        d = DRIVERS[kind](emu)
        d.login()
        yield d


# ---------------------------------------------------------------- shared behaviour, every vendor


def test_happy_path_upsert_and_delete(drv: Driver) -> None:
    key = "K/1 'ü"
    assert drv.ok(r := drv.upsert(key, {"name": "Acme", "version": 1}, "ev-1")), r.raw
    assert drv.ok(r := drv.upsert(key, {"city": "Bern", "version": 2}, "ev-2")), r.raw
    rec = drv.emu.records(drv.collection)[key]
    assert str(rec["version"]) == "2" and rec["city"] == "Bern"
    assert drv.emu.records() == drv.emu.records(drv.collection)
    r = drv.delete(key, "ev-3")
    assert r.status == 204, r.raw
    assert key not in drv.emu.records(drv.collection) and drv.emu.deleted(drv.collection) == {key}
    assert drv.delete(key, "ev-4").status == 404
    ops = [(w.collection, w.key, w.op, w.version) for w in drv.emu.writes]
    assert ops == [
        (drv.collection, key, "upsert", 1),
        (drv.collection, key, "upsert", 2),
        (drv.collection, key, "delete", None),
    ]
    assert drv.emu.violations == []
    assert drv.emu.stats["applied"] == 3


def test_validation_rejection(drv: Driver) -> None:
    r = drv.upsert("bad", {EMAIL_FIELD[drv.emu.kind]: "no-at-sign", "version": 1}, "ev-bad")
    body = r.json()
    match drv.emu.kind:
        case "generic":
            assert r.status == 422 and body["error"] == "validation_failed" and body["field"] == "email"
        case "salesforce":
            assert r.status == 200 and body[0]["success"] is False
            assert body[0]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS" and body[0]["errors"][0]["fields"] == [
                "Email"
            ]
        case "hubspot":
            assert r.status == 207 and body["numErrors"] == 1 and body["results"] == []
            assert body["errors"][0]["category"] == "VALIDATION_ERROR"
            assert body["errors"][0]["context"] == {"objectWriteTraceId": ["ev-bad"]}
        case "netsuite":
            assert r.status == 400 and body["status"] == 400
            assert body["o:errorDetails"][0]["o:errorCode"] == "INVALID_FIELD_VALUE"
            assert body["o:errorDetails"][0]["o:errorPath"] == "email"
        case "dynamics":
            assert r.status == 400 and body["error"]["code"] == "0x80040203"
    assert drv.emu.records(drv.collection) == {} and drv.emu.stats["rejected"] == 1
    drv.emu.reject("name", "forbidden")
    assert not drv.ok(drv.upsert("r2", {"name": "forbidden", "version": 1}, "ev-r2"))
    assert drv.ok(drv.upsert("r3", {EMAIL_FIELD[drv.emu.kind]: "a@b", "name": "fine", "version": 1}, "ev-r3"))
    assert list(drv.emu.records(drv.collection)) == ["r3"]


def test_429_with_retry_after_changes_nothing(drv: Driver) -> None:
    drv.emu.faults.rate_429 = 1.0
    drv.emu.faults.retry_after_s = 2
    r = drv.upsert("k", {"version": 1}, "ev-1")
    assert r.status == 429 and r.headers["Retry-After"] == "2"
    match drv.emu.kind:
        case "salesforce":
            assert r.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        case "hubspot":
            assert r.json()["errorType"] == "RATE_LIMIT" and r.json()["policyName"] == "SECONDLY"
        case "netsuite":
            assert r.json()["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
        case "dynamics":
            assert r.json()["error"]["code"] == "0x80072322"
    assert drv.emu.records(drv.collection) == {} and drv.emu.writes == []
    drv.emu.faults.rate_429 = 0.0
    assert drv.ok(drv.upsert("k", {"version": 1}, "ev-1"))
    stats = drv.emu.stats
    assert stats["status_429"] == 1 and stats["retryable_failures"] == 1 and stats["applied"] == 1


def test_expired_token_then_new_token(drv: Driver) -> None:
    old = drv.token
    drv.emu.expire_tokens()
    r = drv.upsert("k", {"version": 1}, "ev-1")
    assert r.status == 401
    match drv.emu.kind:
        case "generic":
            assert r.json() == {"error": "invalid_token"}
        case "salesforce":
            assert r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        case "hubspot":
            assert r.json()["category"] == "EXPIRED_AUTHENTICATION"
        case "netsuite":
            assert r.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"
        case "dynamics":
            assert r.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert drv.emu.writes == []
    assert drv.login() != old
    assert drv.ok(drv.upsert("k", {"version": 1}, "ev-1"))
    drv.token = "never-issued"
    assert drv.upsert("k", {"version": 2}, "ev-2").status == 401


def test_idempotent_replay(drv: Driver) -> None:
    first = drv.upsert("k", {"name": "a", "version": 1}, "ev-1")
    again = drv.upsert("k", {"name": "a", "version": 1}, "ev-1")
    assert drv.ok(first) and drv.ok(again)
    if drv.emu.kind in ("generic", "netsuite", "dynamics"):  # Idempotency-Key: original answer, applied once
        assert (again.status, again.raw) == (first.status, first.raw)
        assert len(drv.emu.writes) == 1 and drv.emu.stats["replayed"] == 1
        assert drv.emu.writes[0].idempotency_key == "ev-1"
    else:  # no idempotency key: a harmless re-upsert of the same version
        assert len(drv.emu.writes) == 2
        created = [again.json()[0]["created"]] if drv.emu.kind == "salesforce" else [again.json()["results"][0]["new"]]
        assert created == [False]
    assert drv.emu.violations == []


def test_order_violation_detected(drv: Driver) -> None:
    assert drv.ok(drv.upsert("k", {"version": 5}, "ev-5"))
    assert drv.ok(drv.upsert("k", {"version": 5}, "ev-5b"))  # equal: an idempotent re-send
    assert drv.emu.violations == []
    assert drv.ok(drv.upsert("k", {"version": 3}, "ev-3"))  # applied anyway, like a real API
    assert drv.delete("k", "ev-del").status == 204
    assert drv.ok(drv.upsert("k", {"version": 4}, "ev-4"))  # after a delete the key still may not go back
    v = drv.emu.violations
    assert len(v) == 2 and all(f"{drv.collection}/k" in m for m in v)
    assert "version 3 after 5" in v[0] and "version 4 after 5" in v[1]


def test_outage(drv: Driver) -> None:
    drv.emu.outage(60)
    r = drv.upsert("k", {"version": 1}, "ev-1")
    assert r.status == 503 and 0 < int(r.headers["Retry-After"]) <= 60
    match drv.emu.kind:
        case "salesforce":
            assert r.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
        case "hubspot":
            assert r.json()["status"] == "error"
        case "netsuite":
            assert r.json()["status"] == 503
        case "dynamics":
            assert "code" in r.json()["error"]
    assert drv.emu.writes == []
    drv.emu.outage(0)
    assert drv.ok(drv.upsert("k", {"version": 1}, "ev-1"))


def test_faults_5xx_reset_stall(drv: Driver) -> None:
    emu = drv.emu
    emu.faults = Faults(rate_5xx=1.0)
    assert drv.upsert("k", {"version": 1}, "ev-1").status in (500, 502, 503)
    emu.faults = Faults(rate_reset=1.0)
    with pytest.raises((http.client.HTTPException, ConnectionError, urllib.error.URLError)):
        drv.upsert("k", {"version": 1}, "ev-1")
    assert emu.writes == [] and emu.stats["status_reset"] == 1
    emu.faults = Faults(rate_stall=1.0, stall_s=0.05)
    assert drv.ok(drv.upsert("k", {"version": 1}, "ev-1"))
    assert emu.stats["stalls"] == 1 and len(emu.writes) == 1
    assert emu.stats["retryable_failures"] == 2


# ---------------------------------------------------------------- vendor specifics


@pytest.mark.parametrize("kind", ["salesforce", "netsuite", "dynamics", "generic"])
def test_tokens_expire_after_ttl(kind: str) -> None:
    with start_emulator(kind, token_ttl_s=0, auth="oauth2" if kind == "generic" else None) as emu:
        d = DRIVERS[kind](emu)
        d.login()
        assert d.upsert("k", {"version": 1}, "ev-1").status == 401
        assert emu.writes == [] and emu.stats["status_401"] == 1


def test_generic_batch_shapes_replay_partial_and_duplicates() -> None:
    with start_emulator("generic", auth="bearer") as emu:
        auth = {"Authorization": f"Bearer {emu.credentials['token']}"}
        recs = [
            {"id": "e1", "subject": "a", "op": "upsert", "data": {"version": 1, "email": "a@x"}},
            {"id": "e2", "subject": "b", "op": "upsert", "data": {"version": 1, "email": "nope"}},
            {"id": "e3", "subject": "c", "op": "delete", "data": None},
            {"id": "e4", "subject": "d", "op": "upsert", "data": None},
        ]
        r = call("POST", f"{emu.url}/batch", {"records": recs}, auth | {"Idempotency-Key": "h1"})
        assert r.status == 200
        res = r.json()["results"]
        assert [x["id"] for x in res] == ["e1", "e2", "e3", "e4"]
        assert [x["status"] for x in res] == [201, 422, 204, 400]
        assert res[1]["field"] == "email"
        # the same batch again: e1/e3 replayed from the idempotency store, not applied twice
        r = call("POST", f"{emu.url}/batch", {"records": recs[:1] + recs[2:3]}, auth)
        assert [x["status"] for x in r.json()["results"]] == [201, 204]
        assert emu.stats["replayed"] == 2 and [w.key for w in emu.writes] == ["a"]
        emu.faults.partial = 1.0
        r = call(
            "POST", f"{emu.url}/batch", {"records": [{"id": "e5", "subject": "x", "op": "upsert", "data": {}}]}, auth
        )
        assert r.json()["results"][0]["status"] == 503 and "x" not in emu.records()
        emu.faults.partial = 0.0
        dup = [{"id": f"d{i}", "subject": "z", "op": "upsert", "data": {"version": i}} for i in (1, 2)]
        r = call("POST", f"{emu.url}/batch", {"records": dup}, auth)
        assert [x["status"] for x in r.json()["results"]] == [201, 200]
        assert emu.violations == ["batch: records/z twice in one request"]
        big = [{"id": str(i), "subject": str(i), "op": "delete"} for i in range(1001)]
        assert call("POST", f"{emu.url}/batch", {"records": big}, auth).status == 400
        assert call("POST", f"{emu.url}/batch", {"records": []}, {}).status == 401


@pytest.mark.parametrize("mode", ["none", "basic", "apikey"])
def test_generic_auth_modes(mode: str) -> None:
    with start_emulator("generic", auth=mode) as emu:
        c = emu.credentials
        headers = {
            "none": {},
            "basic": {
                "Authorization": "Basic "
                + base64.b64encode(f"{c.get('username')}:{c.get('password')}".encode()).decode()
            },
            "apikey": {"X-API-Key": c.get("api_key", "")},
        }[mode]
        assert call("PUT", f"{emu.url}/records/a", {"v": 1}, headers).status == 201
        if mode != "none":
            assert call("PUT", f"{emu.url}/records/a", {"v": 1}).status == 401
            emu.expire_tokens()
            assert call("PUT", f"{emu.url}/records/a", {"v": 1}, headers).status == 401
            assert emu.credentials != c


def test_salesforce_collection_rules() -> None:
    with start_emulator("salesforce") as emu:
        d = SalesforceDriver(emu)
        d.login()
        r = d.batch([{"ERP_Id__c": "1", "Name": "A", "version": 1}, {"ERP_Id__c": "2", "Name": "B", "version": 1}])
        res = r.json()
        assert (
            [x["created"] for x in res] == [True, True] and res[0]["id"].startswith("001") and len(res[0]["id"]) == 18
        )
        assert emu.records("Account")["1"] == {"ERP_Id__c": "1", "Name": "A", "version": 1}
        r = d.batch([{"ERP_Id__c": "1", "version": 2}, {"ERP_Id__c": "1", "version": 3}])
        assert r.json()[0]["success"] is True and r.json()[1]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
        assert emu.violations == ["batch: Account/1 twice in one request"]
        assert emu.records("Account")["1"] == {"ERP_Id__c": "1", "Name": "A", "version": 2}  # merged
        r = d.batch(
            [{"ERP_Id__c": "3", "version": 1}, {"ERP_Id__c": "4", "Email": "bad", "version": 1}], all_or_none=True
        )
        codes = [x["errors"][0]["statusCode"] for x in r.json()]
        assert codes == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_EMAIL_ADDRESS"] and "3" not in emu.records(
            "Account"
        )
        emu.faults.partial = 1.0
        r = d.batch([{"ERP_Id__c": "5", "version": 1}])
        assert r.json()[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
        emu.faults.partial = 0.0
        r = d.batch([{"ERP_Id__c": str(i)} for i in range(201)])
        assert r.status == 400 and r.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
        r = d.delete("nope")
        assert r.status == 404 and r.json()[0]["errorCode"] == "NOT_FOUND"
        bad = call(
            "POST",
            d.emu.credentials["token_url"],
            form={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
        )
        assert bad.status == 400 and bad.json()["error"] == "invalid_client"


def test_hubspot_batch_rules() -> None:
    with start_emulator("hubspot", tokens=["pat-na1-test"]) as emu:
        d = HubSpotDriver(emu)
        assert d.login() == "pat-na1-test"
        r = d.batch([("1", {"name": "A", "version": 1, "flag": True}, "t1"), ("2", {"email": "x", "version": 1}, "t2")])
        assert r.status == 207
        body = r.json()
        assert body["status"] == "COMPLETE" and body["numErrors"] == 1
        assert body["errors"][0]["context"] == {"objectWriteTraceId": ["t2"]}
        res = body["results"][0]
        assert res["objectWriteTraceId"] == "t1" and res["new"] is True
        assert res["properties"]["erp_id"] == "1" and res["properties"]["flag"] == "True"
        assert emu.records("companies")["1"] == {"name": "A", "version": "1", "flag": "True", "erp_id": "1"}
        assert emu.writes[0].version == 1  # the string version is read as a number
        r = d.batch([("3", {"version": 1}, "t3"), ("3", {"version": 2}, "t4")])
        assert r.status == 400 and r.json()["category"] == "VALIDATION_ERROR" and "3" not in emu.records("companies")
        assert emu.violations == ["batch: companies/3 twice in one request"]
        emu.faults.partial = 1.0
        r = d.batch([("5", {"version": 1}, "t5")])
        assert r.status == 207 and r.json()["errors"][0]["category"] == "RATE_LIMITS"
        emu.faults.partial = 0.0
        assert d.batch([(str(i), {}, str(i)) for i in range(101)]).status == 400
        d.token = "pat-wrong"
        r = d.batch([("6", {}, "t6")])
        assert r.status == 401 and r.json()["category"] == "INVALID_AUTHENTICATION"
        d.login()
        hs_id = res["id"]
        assert call("DELETE", f"{emu.url}/crm/v3/objects/companies/{hs_id}", None, d.auth()).status == 204
        assert emu.deleted("companies") == {"1"}


def test_netsuite_and_dynamics_specifics() -> None:
    with start_emulator("netsuite") as emu:
        d = NetSuiteDriver(emu)
        d.login()
        r = d.upsert("C-1", {"companyName": "Acme", "version": 1})
        assert r.status == 204 and r.headers["Location"].startswith(f"{emu.url}/services/rest/record/v1/customer/")
        assert emu.records("customer")["C-1"] == {"companyName": "Acme", "version": 1, "externalId": "C-1"}
        assert call("PUT", f"{emu.url}/services/rest/record/v1/customer/17", {}, d.auth()).status == 400
        jwt = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": "a.b.c",
        }
        assert call("POST", emu.credentials["token_url"], form=jwt).status == 200
    with start_emulator("dynamics") as emu:
        dd = DynamicsDriver(emu)
        dd.login()
        r = dd.upsert("A'1", {"name": "Acme", "version": 1})
        assert r.status == 204 and r.headers["OData-EntityId"].startswith(f"{emu.url}/api/data/v9.2/accounts(")
        assert emu.records("accounts")["A'1"] == {"name": "Acme", "version": 1, "accountnumber": "A'1"}
        r = call("PATCH", f"{emu.url}/api/data/v9.2/contacts(firstname='a',lastname='b')", {"x": 1}, dd.auth())
        assert r.status == 204 and emu.records("contacts") == {
            "firstname=a,lastname=b": {"x": 1, "firstname": "a", "lastname": "b"}
        }
        c = emu.credentials
        form = {"grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"]}
        assert call("POST", c["token_url"], form=form).json()["error"] == "invalid_scope"
        r = dd.delete("missing")
        assert r.status == 404 and r.json()["error"]["code"] == "0x80040217"


def test_wait_for_and_ledger_from_other_threads() -> None:
    with start_emulator("generic") as emu:

        def writer() -> None:
            for i in range(20):
                call("PUT", f"{emu.url}/records/k{i}", {"version": i})

        t = threading.Thread(target=writer)
        t.start()
        emu.wait_for(lambda e: len(e.records()) == 20, timeout=10)
        t.join()
        assert emu.stats["status_201"] == 20
        with pytest.raises(TimeoutError):
            emu.wait_for(lambda e: len(e.records()) > 20, timeout=0.05)
        r = call("POST", f"{emu.url}/_faults", {"outage_s": 30})
        assert r.json()["outage_until"] > 0
        assert call("PUT", f"{emu.url}/records/x", {}).status == 503
        call("POST", f"{emu.url}/_faults", {"clear": True})
        assert call("PUT", f"{emu.url}/records/x", {}).status == 201
        assert call("POST", f"{emu.url}/_faults", {"bogus": 1}).status == 400


def test_cli_runs_separate_process() -> None:
    cmd = [sys.executable, "-m", "tests.emulators", "hubspot", "--port", "0", "--token", "T1"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            ready, url = proc.stdout.readline().split()
            assert ready == "READY" and url.startswith("http://127.0.0.1:")
            assert orjson.loads(proc.stdout.readline().split(" ", 1)[1]) == {"token": "T1"}
            inp = {"idProperty": "erp_id", "id": "1", "properties": {"version": "1"}, "objectWriteTraceId": "t"}
            auth = {"Authorization": "Bearer T1"}
            assert call("POST", f"{url}/crm/v3/objects/contacts/batch/upsert", {"inputs": [inp]}, auth).status == 200
            doc = call("GET", f"{url}/_ledger?records=1").json()
            assert doc["record_count"] == 1 and doc["violations"] == [] and doc["stats"]["applied"] == 1
            assert doc["records"] == {"contacts": {"1": {"version": "1", "erp_id": "1"}}}
            assert call("POST", f"{url}/_faults", {"expire_tokens": True}).status == 200
            assert call("POST", f"{url}/crm/v3/objects/contacts/batch/upsert", {"inputs": [inp]}, auth).status == 401
            assert "records" not in call("GET", f"{url}/_ledger").json()
        finally:
            proc.terminate()
        assert proc.wait(timeout=10) == 0
