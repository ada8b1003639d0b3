"""The admin server over a real socket: every endpoint, its Kafka Connect shape and status code, masking,
the bearer token, offsets only on a STOPPED connector.

The unit under test is the server; the runner's side of `AdminState` is played by `FakeState`, an
in-memory implementation that records the calls it gets (the browser test reuses it).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from cdc.admin import (
    AdminError,
    ConnectorState,
    ConnectorView,
    History,
    Metrics,
    Offset,
    Sample,
    create_app,
    requires_token,
    serve,
)
from cdc.admin.server import _ROUTES, bound_port, openapi_document

PASSWORD = "hunter2-very-secret"
TOKEN = "s3cr3t-admin-token"


@dataclass
class FakeState:
    """An in-memory `AdminState`: connectors as views, offsets as lists, every control call recorded."""

    worker_id: str = "127.0.0.1:8083"
    views: dict[str, ConnectorView] = field(default_factory=dict)
    histories: dict[str, History] = field(default_factory=dict)
    stored_offsets: dict[str, list[Offset]] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    fail_with: Exception | None = None

    def add(self, name: str, type_: str, config: Mapping[str, str],
            state: ConnectorState = ConnectorState.RUNNING, trace: str | None = None,
            dead_letters: int = 0) -> ConnectorView:
        assert type_ in ("source", "sink")
        view = ConnectorView(name, "source" if type_ == "source" else "sink", dict(config), state,
                             self.worker_id, trace, dead_letters)
        self.views[name] = view
        self.histories.setdefault(name, History(maxlen=720))
        self.stored_offsets.setdefault(name, [])
        return view

    def set_state(self, name: str, state: ConnectorState, trace: str | None = None) -> None:
        self.views[name] = dataclasses.replace(self.views[name], state=state, trace=trace)

    def _known(self, name: str) -> ConnectorView:
        if name not in self.views:
            raise AdminError.not_found(name)
        return self.views[name]

    # -- AdminState --

    def connectors(self) -> Sequence[ConnectorView]:
        return list(self.views.values())

    def connector(self, name: str) -> ConnectorView | None:
        return self.views.get(name)

    def history(self, name: str) -> History | None:
        return self.histories.get(name)

    async def create(self, name: str, config: Mapping[str, str], initial_state: ConnectorState) -> ConnectorView:
        self.calls.append(("create", name, dict(config), initial_state))
        if self.fail_with is not None:
            raise self.fail_with
        if name in self.views:
            raise AdminError.conflict(f"Connector {name} already exists")
        if "connector.class" not in config:
            raise AdminError.bad_request("required property 'connector.class' is missing")
        kind = "sink" if "Sink" in config["connector.class"] else "source"
        return self.add(name, kind, config, initial_state)

    async def put_config(self, name: str, config: Mapping[str, str]) -> tuple[ConnectorView, bool]:
        self.calls.append(("put_config", name, dict(config)))
        if "connector.class" not in config:
            raise AdminError.bad_request("required property 'connector.class' is missing")
        created = name not in self.views
        kind = "sink" if "Sink" in config["connector.class"] else "source"
        state = ConnectorState.RUNNING if created else self.views[name].state
        return self.add(name, kind, config, state), created

    async def pause(self, name: str) -> None:
        self.calls.append(("pause", name))
        self._known(name)
        self.set_state(name, ConnectorState.PAUSED)

    async def resume(self, name: str) -> None:
        self.calls.append(("resume", name))
        self._known(name)
        self.set_state(name, ConnectorState.RUNNING)

    async def stop(self, name: str) -> None:
        self.calls.append(("stop", name))
        self._known(name)
        self.set_state(name, ConnectorState.STOPPED)

    async def restart(self, name: str, include_tasks: bool, only_failed: bool) -> None:
        self.calls.append(("restart", name, include_tasks, only_failed))
        self._known(name)

    async def delete(self, name: str) -> None:
        self.calls.append(("delete", name))
        self._known(name)
        del self.views[name]

    async def offsets(self, name: str) -> list[Offset]:
        self._known(name)
        return list(self.stored_offsets[name])

    async def alter_offsets(self, name: str, offsets: Sequence[Offset]) -> None:
        self.calls.append(("alter_offsets", name, list(offsets)))
        current = {tuple(sorted(o["partition"].items())): o for o in self.stored_offsets[name]}
        for o in offsets:
            k = tuple(sorted(o["partition"].items()))
            if o["offset"] is None:
                current.pop(k, None)
            else:
                current[k] = o
        self.stored_offsets[name] = list(current.values())

    async def reset_offsets(self, name: str) -> None:
        self.calls.append(("reset_offsets", name))
        self.stored_offsets[name] = []

    async def signal(self, name: str, signal_type: str, data: Mapping[str, Any]) -> str:
        self._known(name)
        self.calls.append(("signal", name, signal_type, dict(data)))
        return f"signal-{len(self.calls)}"


def erp_config(**extra: str) -> dict[str, str]:
    return {"connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "database.hostname": "db.example", "database.user": "cdc", "database.password": PASSWORD,
            "topic.prefix": "erp", **extra}


def sample_state() -> FakeState:
    st = FakeState()
    st.add("erp", "source", erp_config())
    st.add("crm", "sink", {"connector.class": "sinks.http.HttpSink", "http.url": "https://crm.example/api",
                           "http.header.Authorization": "Bearer xyz-12345", "auth.token": "${env:CRM_TOKEN}"},
           dead_letters=3)
    st.stored_offsets["erp"] = [{"partition": {"server": "erp"}, "offset": {"lsn": 12345, "txId": 7}}]
    now = time.time()
    for i in range(5):
        st.histories["erp"].add(Sample(now - 10 + 2 * i, 100.0 * i, 0.5 * i, 0))
        st.histories["crm"].add(Sample(now - 10 + 2 * i, 90.0 * i, None if i == 0 else 1.0, 3))
    return st


@dataclass
class Api:
    """A client for one running server."""

    base: str
    session: aiohttp.ClientSession
    state: FakeState
    metrics: Metrics

    async def call(self, method: str, path: str, *, json: Any = None, token: str | None = None,
                   headers: Mapping[str, str] | None = None) -> tuple[int, Any, aiohttp.ClientResponse]:
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.base + path, json=json, headers=h) as r:
            text = await r.text()
            body: Any = text
            if r.content_type == "application/json":
                body = await r.json()
            return r.status, body, r


async def running(state: FakeState, token: str | None) -> AsyncIterator[Api]:
    metrics = Metrics()
    runner = await serve(create_app(state, metrics, token), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(f"http://127.0.0.1:{bound_port(runner)}", session, state, metrics)
    finally:
        await runner.cleanup()


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async for a in running(sample_state(), None):
        yield a


@pytest.fixture
async def secured() -> AsyncIterator[Api]:
    async for a in running(sample_state(), TOKEN):
        yield a


# --- connectors -------------------------------------------------------------------------------------


async def test_list_connectors_and_expansions(api: Api) -> None:
    status, body, _ = await api.call("GET", "/connectors")
    assert (status, body) == (200, ["erp", "crm"])
    status, body, _ = await api.call("GET", "/connectors?expand=status")
    assert status == 200 and set(body) == {"erp", "crm"}
    assert body["erp"] == {"status": {"name": "erp", "connector": {"state": "RUNNING", "worker_id": "127.0.0.1:8083"},
                                      "tasks": [{"id": 0, "state": "RUNNING", "worker_id": "127.0.0.1:8083"}],
                                      "type": "source"}}
    status, body, _ = await api.call("GET", "/connectors?expand=info&expand=status&expand=bogus")
    assert status == 200
    assert set(body["crm"]) == {"info", "status"}
    assert body["crm"]["info"]["type"] == "sink"
    assert body["crm"]["info"]["tasks"] == [{"connector": "crm", "task": 0}]


async def test_get_connector_config_status_tasks_masked(api: Api) -> None:
    status, info, _ = await api.call("GET", "/connectors/erp")
    assert status == 200
    assert info["name"] == "erp" and info["type"] == "source"
    assert info["tasks"] == [{"connector": "erp", "task": 0}]
    # The fake hands out the clear password: the server masks whatever it is given.
    assert info["config"]["database.password"] == "********"
    assert info["config"]["name"] == "erp" and info["config"]["database.user"] == "cdc"
    status, config, _ = await api.call("GET", "/connectors/crm/config")
    assert status == 200
    assert config["http.header.Authorization"] == "********"
    assert config["auth.token"] == "${env:CRM_TOKEN}"   # a reference names where the secret is: shown
    assert config["http.url"] == "https://crm.example/api"
    status, tasks, _ = await api.call("GET", "/connectors/erp/tasks")
    assert status == 200 and tasks[0]["id"] == {"connector": "erp", "task": 0}
    assert tasks[0]["config"]["database.password"] == "********"
    for path in ("/connectors", "/connectors?expand=info", "/connectors/erp", "/connectors/erp/config",
                 "/connectors/erp/tasks"):
        _, _, r = await api.call("GET", path)
        assert PASSWORD not in await r.text()

    api.state.set_state("erp", ConnectorState.FAILED, trace="Permanent: slot cdc_erp is in use by pid 42")
    status, body, _ = await api.call("GET", "/connectors/erp/status")
    assert status == 200
    assert body["connector"] == {"state": "FAILED", "worker_id": "127.0.0.1:8083",
                                 "trace": "Permanent: slot cdc_erp is in use by pid 42"}
    assert body["tasks"][0]["state"] == "FAILED" and body["tasks"][0]["id"] == 0


async def test_unknown_connector_and_route_answer_kafka_connect_errors(api: Api) -> None:
    for method, path in (("GET", "/connectors/nope"), ("GET", "/connectors/nope/status"),
                         ("GET", "/connectors/nope/config"), ("PUT", "/connectors/nope/pause"),
                         ("POST", "/connectors/nope/restart"), ("DELETE", "/connectors/nope"),
                         ("GET", "/connectors/nope/offsets"), ("DELETE", "/connectors/nope/offsets")):
        status, body, _ = await api.call(method, path)
        assert (status, body) == (404, {"error_code": 404, "message": "Connector nope not found"}), (method, path)
    status, body, _ = await api.call("GET", "/no/such/route")
    assert (status, body) == (404, {"error_code": 404, "message": "HTTP 404 Not Found"})
    status, body, r = await api.call("POST", "/connectors/erp/status")
    assert status == 405 and body["error_code"] == 405
    assert "GET" in r.headers["Allow"]


async def test_create_connector(api: Api) -> None:
    new = {"name": "mes", "config": {"connector.class": "io.debezium.connector.mysql.MySqlConnector",
                                     "database.password": "pw-mes-123", "database.port": 3306,
                                     "include.schema.changes": False, "topic.prefix": None}}
    status, body, r = await api.call("POST", "/connectors", json=new)
    assert status == 201
    assert r.headers["Location"] == "/connectors/mes"
    assert body["name"] == "mes" and body["type"] == "source"
    assert body["config"]["database.password"] == "********"
    # Kafka Connect's config is Map<String, String>: JSON scalars arrive as strings, null as unset.
    _, name, config, initial = api.state.calls[-1]
    assert name == "mes" and initial is ConnectorState.RUNNING
    assert config == {"connector.class": "io.debezium.connector.mysql.MySqlConnector", "name": "mes",
                      "database.password": "pw-mes-123", "database.port": "3306",
                      "include.schema.changes": "false"}

    status, body, _ = await api.call("POST", "/connectors", json=new)
    assert (status, body) == (409, {"error_code": 409, "message": "Connector mes already exists"})
    status, body, _ = await api.call("POST", "/connectors", json={"name": "bad", "config": {"topic.prefix": "x"}})
    assert (status, body) == (400, {"error_code": 400, "message": "required property 'connector.class' is missing"})
    status, body, _ = await api.call("POST", "/connectors", json={"config": {"connector.class": "X"}})
    assert (status, body["message"]) == (400, "Connector name must be specified")
    status, body, _ = await api.call("POST", "/connectors", json={"name": "a", "config": {"name": "b"}})
    assert status == 400 and "doesn't match" in body["message"]
    status, body, _ = await api.call("POST", "/connectors", json={"name": "a", "config": {"x": {"nested": 1}}})
    assert status == 400 and body["error_code"] == 400
    async with api.session.post(api.base + "/connectors", data=b"{not json",
                                headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400 and (await r.json())["error_code"] == 400

    # KIP-980: created STOPPED (no tasks, as Kafka Connect shows a stopped connector).
    status, body, _ = await api.call("POST", "/connectors", json={
        "name": "later", "initial_state": "STOPPED", "config": {"connector.class": "sinks.http.HttpSink"}})
    assert status == 201 and body["tasks"] == []
    _, body, _ = await api.call("GET", "/connectors/later/status")
    assert body["connector"]["state"] == "STOPPED" and body["tasks"] == [] and body["type"] == "sink"


async def test_put_config_creates_then_updates(api: Api) -> None:
    status, body, r = await api.call("PUT", "/connectors/inv/config", json=erp_config(**{"topic.prefix": "inv"}))
    assert status == 201 and r.headers["Location"] == "/connectors/inv"
    assert body["config"]["database.password"] == "********" and body["config"]["name"] == "inv"
    status, body, _ = await api.call("PUT", "/connectors/inv/config", json=erp_config(**{"topic.prefix": "inv2"}))
    assert status == 200 and body["config"]["topic.prefix"] == "inv2"
    status, body, _ = await api.call("PUT", "/connectors/inv/config", json={"name": "other", "connector.class": "X"})
    assert status == 400 and "doesn't match" in body["message"]
    status, body, _ = await api.call("PUT", "/connectors/inv/config", json={"topic.prefix": "x"})
    assert status == 400 and body["message"] == "required property 'connector.class' is missing"
    status, body, _ = await api.call("PUT", "/connectors/inv/config", json=["not", "an", "object"])
    assert status == 400


async def test_pause_resume_stop_restart_delete(api: Api) -> None:
    for verb, state in (("pause", "PAUSED"), ("resume", "RUNNING"), ("stop", "STOPPED"), ("resume", "RUNNING")):
        status, body, _ = await api.call("PUT", f"/connectors/erp/{verb}")
        assert (status, body) == (202, ""), verb
        _, st, _ = await api.call("GET", "/connectors/erp/status")
        assert st["connector"]["state"] == state
    status, body, _ = await api.call("POST", "/connectors/erp/restart")
    assert (status, body) == (204, "")
    assert api.state.calls[-1] == ("restart", "erp", False, False)
    status, body, _ = await api.call("POST", "/connectors/erp/restart?includeTasks=true")
    assert status == 202
    assert body["connector"]["state"] == "RESTARTING" and body["tasks"][0]["state"] == "RESTARTING"
    assert api.state.calls[-1] == ("restart", "erp", True, False)
    # onlyFailed on a healthy connector restarts nothing: the status shows it as it is.
    status, body, _ = await api.call("POST", "/connectors/erp/restart?includeTasks=true&onlyFailed=true")
    assert status == 202 and body["connector"]["state"] == "RUNNING"
    status, body, _ = await api.call("POST", "/connectors/erp/restart?includeTasks=maybe")
    assert status == 400

    api.metrics.sink_delivered("crm", 5)
    status, body, _ = await api.call("DELETE", "/connectors/crm")
    assert (status, body) == (204, "")
    status, _, _ = await api.call("GET", "/connectors/crm")
    assert status == 404
    _, text, _ = await api.call("GET", "/metrics")
    assert 'connector="crm"' not in text   # a deleted connector's series go with it


async def test_signals_go_to_sources_only(api: Api) -> None:
    data = {"data-collections": ["public.customer"], "type": "incremental"}
    status, body, _ = await api.call("POST", "/connectors/erp/signals", json={"type": "execute-snapshot", "data": data})
    assert status == 202 and body["id"].startswith("signal-")
    assert api.state.calls[-1] == ("signal", "erp", "execute-snapshot", data)
    status, body, _ = await api.call("POST", "/connectors/crm/signals", json={"type": "execute-snapshot", "data": data})
    assert status == 400 and "sink" in body["message"]
    for bad in ({}, {"type": 5}, {"type": "execute-snapshot", "data": []}):
        status, body, _ = await api.call("POST", "/connectors/erp/signals", json=bad)
        assert status == 400 and "execute-snapshot" in body["message"], bad
    assert (await api.call("POST", "/connectors/nope/signals", json={"type": "x"}))[0] == 404


async def test_offsets_need_a_stopped_connector(api: Api) -> None:
    status, body, _ = await api.call("GET", "/connectors/erp/offsets")
    assert (status, body) == (200, {"offsets": [{"partition": {"server": "erp"},
                                                 "offset": {"lsn": 12345, "txId": 7}}]})
    new = {"offsets": [{"partition": {"server": "erp"}, "offset": {"lsn": 99}}]}
    # Kafka Connect 3.6+ refuses with a 400 (BadRequestException) and this message while not STOPPED.
    for method, body_ in (("PATCH", new), ("DELETE", None)):
        for state in (ConnectorState.RUNNING, ConnectorState.PAUSED, ConnectorState.FAILED):
            api.state.set_state("erp", state)
            status, body, _ = await api.call(method, "/connectors/erp/offsets", json=body_)
            assert status == 400, (method, state)
            assert body["message"].startswith("Connectors must be in the STOPPED state before their offsets")
            assert "'/connectors/erp/stop'" in body["message"]
    assert not [c for c in api.state.calls if c[0] in ("alter_offsets", "reset_offsets")]

    await api.call("PUT", "/connectors/erp/stop")
    status, body, _ = await api.call("PATCH", "/connectors/erp/offsets", json=new)
    assert (status, body) == (200, {"message": "The offsets for this connector have been altered successfully"})
    _, body, _ = await api.call("GET", "/connectors/erp/offsets")
    assert body == {"offsets": [{"partition": {"server": "erp"}, "offset": {"lsn": 99}}]}
    bad: Any
    for bad in ({}, {"offsets": "x"}, {"offsets": [{"offset": {}}]}, {"offsets": [{"partition": {}, "offset": 5}]}):
        status, body, _ = await api.call("PATCH", "/connectors/erp/offsets", json=bad)
        assert status == 400 and body["error_code"] == 400, bad
    status, body, _ = await api.call("DELETE", "/connectors/erp/offsets")
    assert (status, body) == (200, {"message": "The offsets for this connector have been reset successfully"})
    _, body, _ = await api.call("GET", "/connectors/erp/offsets")
    assert body == {"offsets": []}


async def test_state_errors_become_kafka_connect_errors(api: Api) -> None:
    api.state.fail_with = AdminError(409, "Connector mes is being rebalanced")
    status, body, _ = await api.call("POST", "/connectors", json={"name": "mes", "config": {"connector.class": "X"}})
    assert (status, body) == (409, {"error_code": 409, "message": "Connector mes is being rebalanced"})
    api.state.fail_with = RuntimeError("disk on fire")
    status, body, _ = await api.call("POST", "/connectors", json={"name": "mes", "config": {"connector.class": "X"}})
    assert (status, body) == (500, {"error_code": 500, "message": "RuntimeError: disk on fire"})
    status, _, _ = await api.call("GET", "/healthz")   # and it keeps serving
    assert status == 200


# --- operations endpoints ---------------------------------------------------------------------------


async def test_metrics_endpoint(api: Api) -> None:
    api.metrics.source_events("erp", "public.orders", "c", 7)
    api.metrics.source_lag("erp", 1.5, 2048)
    status, text, r = await api.call("GET", "/metrics")
    assert status == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'cdc_source_events_total{connector="erp",op="c",table="public.orders"} 7.0' in text
    assert 'cdc_source_lag_bytes{connector="erp"} 2048.0' in text
    assert "# TYPE cdc_sink_request_seconds histogram" in text


async def test_healthz_and_readyz(api: Api) -> None:
    status, body, _ = await api.call("GET", "/healthz")
    assert (status, body) == (200, {"status": "UP"})
    status, body, _ = await api.call("GET", "/readyz")
    assert status == 200 and body["connectors"] == {"erp": "RUNNING", "crm": "RUNNING"}
    api.state.set_state("erp", ConnectorState.PAUSED)
    api.state.set_state("crm", ConnectorState.STOPPED)
    status, _, _ = await api.call("GET", "/readyz")
    assert status == 200   # held by request: where the operator wants them
    api.state.set_state("erp", ConnectorState.FAILED, trace="Permanent: bad password")
    api.state.set_state("crm", ConnectorState.UNASSIGNED)
    status, body, _ = await api.call("GET", "/readyz")
    assert status == 503 and body["status"] == "DOWN"
    assert [(f["name"], f["state"]) for f in body["failing"]] == [("erp", "FAILED"), ("crm", "UNASSIGNED")]
    assert body["failing"][0]["trace"] == "Permanent: bad password"


async def test_history_series(api: Api) -> None:
    status, body, _ = await api.call("GET", "/api/history")
    assert status == 200 and body["worker_id"] == "127.0.0.1:8083"
    by_name = {c["name"]: c for c in body["connectors"]}
    erp, crm = by_name["erp"], by_name["crm"]
    assert erp["type"] == "source" and erp["state"] == "RUNNING"
    assert erp["series"]["events_per_second"] == [0.0, 100.0, 200.0, 300.0, 400.0]
    assert erp["series"]["lag_seconds"] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert len(erp["series"]["t"]) == 5 and erp["lag_seconds"] == 2.0 and erp["events_per_second"] == 400.0
    assert crm["series"]["lag_seconds"][0] is None and crm["dead_letters"] == 3 and crm["trace"] is None
    api.state.set_state("crm", ConnectorState.FAILED, trace="Permanent: 401 from the CRM")
    _, body, _ = await api.call("GET", "/api/history")
    assert body["connectors"][1]["trace"] == "Permanent: 401 from the CRM"


async def test_openapi_documents_every_route(api: Api) -> None:
    status, doc, _ = await api.call("GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    for method, path, _ in _ROUTES:
        assert method.lower() in doc["paths"][path], (method, path)
    assert "security" not in doc   # no token on this server
    assert openapi_document(True)["security"] == [{"bearer": []}]
    assert openapi_document(True)["paths"]["/healthz"]["get"]["security"] == []
    refs = {v for v in _walk(doc) if isinstance(v, str) and v.startswith("#/components/schemas/")}
    assert {r.rsplit("/", 1)[1] for r in refs} <= set(doc["components"]["schemas"])


def _walk(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [x for v in node.values() for x in _walk(v)]
    if isinstance(node, list):
        return [x for v in node for x in _walk(v)]
    return [node]


async def test_root_serves_the_status_page_or_the_version(api: Api) -> None:
    status, html, r = await api.call("GET", "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert status == 200 and r.content_type == "text/html"
    assert 'id="connectors"' in html and "api/history" in html
    # Nothing is loaded from elsewhere (the only URL is the SVG namespace, an identifier).
    assert re.findall(r"https?://[^\s\"']+", html) == ["http://www.w3.org/2000/svg"]
    assert " src=" not in html and "<link" not in html
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    status, body, _ = await api.call("GET", "/", headers={"Accept": "application/json"})
    assert status == 200 and set(body) == {"version", "commit", "kafka_cluster_id"}


# --- the bearer token -------------------------------------------------------------------------------


async def test_token_guards_every_endpoint_but_healthz(secured: Api) -> None:
    guarded = [(m, p.replace("{name}", "erp")) for m, p, _ in _ROUTES if p not in ("/healthz", "/")]
    guarded.append(("GET", "/"))   # the version JSON (the HTML shell is public: see below)
    for method, path in guarded:
        for token in (None, "wrong", TOKEN[:-1]):
            status, body, r = await secured.call(method, path, token=token)
            assert status == 401, (method, path, token)
            assert body["error_code"] == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert secured.state.calls == []   # nothing was changed by the refused requests
    status, _, _ = await secured.call("GET", "/connectors", headers={"Authorization": f"Basic {TOKEN}"})
    assert status == 401
    status, body, _ = await secured.call("GET", "/connectors", token=TOKEN)
    assert (status, body) == (200, ["erp", "crm"])
    status, _, _ = await secured.call("GET", "/metrics", token=TOKEN)
    assert status == 200
    status, _, _ = await secured.call("GET", "/healthz")
    assert status == 200
    # The status page's HTML holds no data (its script fetches /api/history with the token).
    status, html, _ = await secured.call("GET", "/", headers={"Accept": "text/html"})
    assert status == 200 and "crm" not in html and PASSWORD not in html


@pytest.mark.parametrize(("host", "needed"), [
    ("127.0.0.1", False), ("127.1.2.3", False), ("localhost", False), ("LOCALHOST", False), ("::1", False),
    ("[::1]", False), ("::ffff:127.0.0.1", False), ("0.0.0.0", True), ("", True), ("::", True),
    ("10.0.0.5", True), ("192.168.1.10", True), ("bridge.internal", True), ("fe80::1", True),
])
def test_requires_token(host: str, needed: bool) -> None:
    assert requires_token(host) is needed


async def test_serve_reports_a_busy_port() -> None:
    first = await serve(create_app(FakeState(), Metrics()), "127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            await serve(create_app(FakeState(), Metrics()), "127.0.0.1", bound_port(first))
    finally:
        await first.cleanup()


def test_app_routes_are_the_documented_ones() -> None:
    app = create_app(FakeState(), Metrics())
    registered = {(r.method, r.resource.canonical) for r in app.router.routes()
                  if r.method != "HEAD" and r.resource is not None}
    assert registered == {(m, p) for m, p, _ in _ROUTES}
    assert isinstance(app, web.Application)
