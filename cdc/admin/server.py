"""The admin HTTP server: Kafka Connect's REST API, Prometheus metrics, health probes and the status page.

Role: `create_app(state, metrics, token)` builds an aiohttp application over an `AdminState` (the
runner) and a `Metrics`; `serve(app, host, port)` starts listening and returns the `AppRunner` to
clean up. The REST API follows Kafka Connect's documented shapes and status codes (3.6+, with KIP-875
offsets and KIP-980 ``initial_state``), so its tools (curl recipes, kcctl, UIs) work against the bridge:

    GET    /connectors[?expand=status&expand=info]   names, or {name: {"status"|"info": ...}}
    POST   /connectors                               201 + info; 409 exists; 400 invalid
    GET    /connectors/{name}                        info {"name", "config", "tasks", "type"}
    GET    /connectors/{name}/config                 the (masked) config
    PUT    /connectors/{name}/config                 201 created / 200 updated, + info
    GET    /connectors/{name}/status                 {"name", "connector", "tasks", "type"}
    GET    /connectors/{name}/tasks                  [{"id": {"connector", "task"}, "config"}]
    PUT    /connectors/{name}/pause|resume|stop      202
    POST   /connectors/{name}/restart                204; 202 + status with ?includeTasks / ?onlyFailed
    DELETE /connectors/{name}                        204
    GET    /connectors/{name}/offsets                {"offsets": [{"partition", "offset"}]}
    PATCH  /connectors/{name}/offsets                200 + message; 400 unless STOPPED
    DELETE /connectors/{name}/offsets                200 + message; 400 unless STOPPED

plus ``GET /metrics`` (Prometheus text), ``/healthz`` (the process answers), ``/readyz`` (every
connector RUNNING, or PAUSED/STOPPED by request), ``/openapi.json``, ``/api/history`` (the charts'
series) and ``GET /`` (the status page; Kafka Connect's version JSON for clients that do not ask
for HTML).

Security: configs are masked on the way out whatever the state returns (`cdc.config.secrets.masked`).
With a `token`, every request except ``/healthz`` and the status page's HTML (a static shell without
data, which a browser cannot fetch with a header; its script sends the token) needs
``Authorization: Bearer <token>``, else 401. `requires_token(host)` tells the CLI when a token is
mandatory: on any address but loopback.

Failure story: an `AdminError` from the state becomes its status and Kafka Connect's error body
``{"error_code", "message"}``, as do aiohttp's own 404/405 and a malformed body (400). Any other
exception is logged and answered 500 with its text (secrets redacted); the server keeps serving.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from aiohttp import web

from cdc import __version__
from cdc.admin.metrics import CONTENT_TYPE, Metrics
from cdc.admin.state import READY_STATES, AdminError, AdminState, ConnectorState, ConnectorView, Offset
from cdc.admin.statuspage import page_html
from cdc.config.secrets import SecretsFilter, masked

__all__ = ["bound_port", "create_app", "openapi_document", "requires_token", "serve"]

log = logging.getLogger(__name__)

STATE: Final = web.AppKey("state", AdminState)
METRICS: Final = web.AppKey("metrics", Metrics)
TOKEN: Final = web.AppKey("token", str)  # "" = no token required

# Paths any caller may reach. /healthz is a liveness probe: it must answer even to a probe that
# holds no secret, and it tells nothing but "the process runs".
_OPEN_PATHS: Final = frozenset({"/healthz"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def requires_token(host: str) -> bool:
    """True when listening on `host` must require a bearer token: any address but loopback
    (127.0.0.0/8, ::1, ``localhost``). An empty host or ``0.0.0.0`` means every interface: True."""
    h = host.strip()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    if h.lower() == "localhost":
        return False
    try:
        addr = ipaddress.ip_address(h)
    except ValueError:
        return True   # a host name: it may resolve to anything
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped   # ::ffff:127.0.0.1 is loopback (Python < 3.13 says it is not)
    return not addr.is_loopback


# --- errors and auth -------------------------------------------------------------------------------


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error_code": status, "message": message}, status=status, headers=headers)


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AdminError as e:
        return _error(e.status, SecretsFilter.redact(e.message))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        # aiohttp's own 404 / 405 / 413, in Kafka Connect's error shape ("HTTP 404 Not Found").
        return _error(e.status, f"HTTP {e.status} {e.reason}", headers={
            k: v for k, v in e.headers.items() if k.lower() in ("allow", "www-authenticate")})
    except Exception as e:
        log.exception("admin API: %s %s failed", request.method, request.path)
        return _error(500, SecretsFilter.redact(f"{type(e).__name__}: {e}"))


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.app[TOKEN]
    if not token or request.path in _OPEN_PATHS or (request.path == "/" and _wants_html(request)):
        return await handler(request)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Constant-time comparison: the answer's timing must not tell how much of a guess was right.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return _error(401, "A valid bearer token is required (Authorization: Bearer <token>)",
                      headers={"WWW-Authenticate": 'Bearer realm="cdc"'})
    return await handler(request)


# --- shapes -----------------------------------------------------------------------------------------


def _config(view: ConnectorView) -> dict[str, Any]:
    # Kafka Connect's config always holds the name; masked again in case a caller forgot.
    return masked({"name": view.name, **view.config})


def _has_tasks(view: ConnectorView) -> bool:
    # A STOPPED connector has no tasks in Kafka Connect (its tasks are shut down, not paused).
    return view.state is not ConnectorState.STOPPED


def _info(view: ConnectorView) -> dict[str, Any]:
    tasks = [{"connector": view.name, "task": 0}] if _has_tasks(view) else []
    return {"name": view.name, "config": _config(view), "tasks": tasks, "type": view.type}


def _state(state: str, worker_id: str, trace: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"state": state, "worker_id": worker_id}
    if trace is not None:
        out["trace"] = SecretsFilter.redact(trace)
    return out


def _status(view: ConnectorView, restarting: bool = False) -> dict[str, Any]:
    state = ConnectorState.RESTARTING.value if restarting else view.state.value
    tasks = [{"id": 0, **_state(state, view.worker_id, view.trace)}] if _has_tasks(view) else []
    return {"name": view.name, "connector": _state(state, view.worker_id, view.trace), "tasks": tasks,
            "type": view.type}


def _view(request: web.Request) -> ConnectorView:
    name = request.match_info["name"]
    view = request.app[STATE].connector(name)
    if view is None:
        raise AdminError.not_found(name)
    return view


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AdminError.bad_request(f"Invalid JSON in the request body: {e}") from None


def _string_config(raw: Any) -> dict[str, str]:
    """A config object as Kafka Connect reads it (Map<String, String>): scalars become strings,
    null means not set, nested objects and arrays are refused."""
    if not isinstance(raw, dict):
        raise AdminError.bad_request("The connector config must be a JSON object")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if isinstance(value, dict | list):
            raise AdminError.bad_request(f"Config property '{key}' must be a string, number or boolean")
        out[str(key)] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false"):
        raise AdminError.bad_request(f"Query parameter {name} must be true or false")
    return value == "true"


def _require_stopped(view: ConnectorView) -> None:
    if view.state is not ConnectorState.STOPPED:
        # Kafka Connect's exact refusal (a 400, BadRequestException) for offsets of a live connector.
        raise AdminError.bad_request(
            "Connectors must be in the STOPPED state before their offsets can be modified. This can be done "
            f"for the specified connector by issuing a 'PUT' request to the '/connectors/{view.name}/stop' "
            "endpoint")


def _offsets_body(raw: Any) -> list[Offset]:
    if not isinstance(raw, dict) or not isinstance(raw.get("offsets"), list):
        raise AdminError.bad_request("Offsets must be specified: {\"offsets\": [{\"partition\": {...}, "
                                     "\"offset\": {...}}]}")
    out: list[Offset] = []
    for entry in raw["offsets"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("partition"), dict):
            raise AdminError.bad_request("Each offset needs a 'partition' object")
        offset = entry.get("offset")
        if offset is not None and not isinstance(offset, dict):
            raise AdminError.bad_request("An offset must be a JSON object or null")
        out.append({"partition": entry["partition"], "offset": offset})
    return out


# --- handlers ---------------------------------------------------------------------------------------


async def root(request: web.Request) -> web.Response:
    """The status page for browsers; Kafka Connect's version document for API clients."""
    if _wants_html(request):
        return web.Response(text=page_html(), content_type="text/html", headers={
            # The page loads nothing from elsewhere: say so, so an injected script could not either.
            "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
                                       "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
            "Cache-Control": "no-store"})
    return web.json_response({"version": __version__, "commit": "unknown", "kafka_cluster_id": None})


async def list_connectors(request: web.Request) -> web.Response:
    state = request.app[STATE]
    views = state.connectors()
    expand = set(request.query.getall("expand", []))
    if not expand:
        return web.json_response([v.name for v in views])
    # Unknown expansions are ignored, as Kafka Connect ignores them.
    out: dict[str, dict[str, Any]] = {}
    for v in views:
        entry: dict[str, Any] = {}
        if "status" in expand:
            entry["status"] = _status(v)
        if "info" in expand:
            entry["info"] = _info(v)
        out[v.name] = entry
    return web.json_response(out)


async def create_connector(request: web.Request) -> web.Response:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise AdminError.bad_request("The request body must be {\"name\": ..., \"config\": {...}}")
    config = _string_config(body.get("config", {}))
    name = body.get("name") or config.get("name")
    if not isinstance(name, str) or not name.strip():
        raise AdminError.bad_request("Connector name must be specified")
    name = name.strip()
    if "/" in name:
        raise AdminError.bad_request("Connector name should not contain '/'")
    if config.setdefault("name", name) != name:
        raise AdminError.bad_request(f"Connector name configuration ({config['name']}) doesn't match connector "
                                     f"name in the URL ({name})")
    initial = str(body.get("initial_state") or "RUNNING").upper()
    if initial not in ("RUNNING", "PAUSED", "STOPPED"):
        raise AdminError.bad_request("initial_state must be one of RUNNING, PAUSED, STOPPED")
    state = request.app[STATE]
    if state.connector(name) is not None:
        raise AdminError.conflict(f"Connector {name} already exists")
    view = await state.create(name, config, ConnectorState(initial))
    return web.json_response(_info(view), status=201, headers={"Location": f"/connectors/{name}"})


async def get_connector(request: web.Request) -> web.Response:
    return web.json_response(_info(_view(request)))


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(_config(_view(request)))


async def put_config(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    config = _string_config(await _json_body(request))
    if config.setdefault("name", name) != name:
        raise AdminError.bad_request(f"Connector name configuration ({config['name']}) doesn't match connector "
                                     f"name in the URL ({name})")
    view, created = await request.app[STATE].put_config(name, config)
    return web.json_response(_info(view), status=201 if created else 200,
                             headers={"Location": f"/connectors/{name}"} if created else None)


async def get_status(request: web.Request) -> web.Response:
    return web.json_response(_status(_view(request)))


async def get_tasks(request: web.Request) -> web.Response:
    view = _view(request)
    tasks = [{"id": {"connector": view.name, "task": 0}, "config": _config(view)}] if _has_tasks(view) else []
    return web.json_response(tasks)


async def pause(request: web.Request) -> web.Response:
    await request.app[STATE].pause(_view(request).name)
    return web.Response(status=202)


async def resume(request: web.Request) -> web.Response:
    await request.app[STATE].resume(_view(request).name)
    return web.Response(status=202)


async def stop(request: web.Request) -> web.Response:
    await request.app[STATE].stop(_view(request).name)
    return web.Response(status=202)


async def restart(request: web.Request) -> web.Response:
    view = _view(request)
    include_tasks, only_failed = _flag(request, "includeTasks"), _flag(request, "onlyFailed")
    await request.app[STATE].restart(view.name, include_tasks, only_failed)
    if not include_tasks and not only_failed:
        return web.Response(status=204)
    # Kafka Connect answers 202 with the status, what is being restarted marked RESTARTING.
    restarting = not only_failed or view.state is ConnectorState.FAILED
    return web.json_response(_status(view, restarting=restarting), status=202)


async def delete_connector(request: web.Request) -> web.Response:
    view = _view(request)
    await request.app[STATE].delete(view.name)
    request.app[METRICS].forget(view.name)
    return web.Response(status=204)


async def get_offsets(request: web.Request) -> web.Response:
    view = _view(request)
    offsets = await request.app[STATE].offsets(view.name)
    return web.json_response({"offsets": offsets})


async def alter_offsets(request: web.Request) -> web.Response:
    view = _view(request)
    _require_stopped(view)
    offsets = _offsets_body(await _json_body(request))
    await request.app[STATE].alter_offsets(view.name, offsets)
    return web.json_response({"message": "The offsets for this connector have been altered successfully"})


async def reset_offsets(request: web.Request) -> web.Response:
    view = _view(request)
    _require_stopped(view)
    await request.app[STATE].reset_offsets(view.name)
    return web.json_response({"message": "The offsets for this connector have been reset successfully"})


async def send_signal(request: web.Request) -> web.Response:
    """Debezium's signal, sent to a source (e.g. ``execute-snapshot``): ``{"type": ..., "data": {...}}``."""
    view = _view(request)
    body = await _json_body(request)
    if (not isinstance(body, dict) or not isinstance(body.get("type"), str)
            or not isinstance(body.get("data", {}), dict)):
        raise AdminError.bad_request('A signal is {"type": "execute-snapshot", "data": {"data-collections": '
                                     '["schema.table"], "type": "incremental"}}')
    if view.type != "source":
        raise AdminError.bad_request(f"Connector {view.name} is a sink; signals go to source connectors")
    signal_id = await request.app[STATE].signal(view.name, body["type"], body.get("data", {}))
    return web.json_response({"id": signal_id}, status=202)


async def metrics(request: web.Request) -> web.Response:
    # The text format's content type carries its version; aiohttp's content_type= refuses parameters.
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "UP"})


async def readyz(request: web.Request) -> web.Response:
    views = request.app[STATE].connectors()
    failing = [{"name": v.name, "type": v.type, **_state(v.state.value, v.worker_id, v.trace)}
               for v in views if v.state not in READY_STATES]
    if failing:
        return web.json_response({"status": "DOWN", "failing": failing}, status=503)
    return web.json_response({"status": "UP", "connectors": {v.name: v.state.value for v in views}})


async def history(request: web.Request) -> web.Response:
    """Every connector's chart series, column-wise (one array per measure: compact to send and to plot)."""
    state = request.app[STATE]
    out = []
    for v in state.connectors():
        h = state.history(v.name)
        samples = h.samples() if h is not None else []
        latest = samples[-1] if samples else None
        out.append({
            "name": v.name, "type": v.type, "state": v.state.value,
            "trace": SecretsFilter.redact(v.trace) if v.trace is not None else None,
            "dead_letters": latest.dead_letters if latest is not None else v.dead_letters,
            "events_per_second": latest.events_per_second if latest is not None else None,
            "lag_seconds": latest.lag_seconds if latest is not None else None,
            "lag_bytes": v.lag_bytes,
            "journal_depth": v.journal_depth,
            "series": {
                "t": [s.timestamp for s in samples],
                "events_per_second": [s.events_per_second for s in samples],
                "lag_seconds": [s.lag_seconds for s in samples],
                "dead_letters": [s.dead_letters for s in samples],
            },
        })
    return web.json_response({"now": time.time(), "worker_id": state.worker_id, "connectors": out})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(bool(request.app[TOKEN])))


# --- the application ---------------------------------------------------------------------------------

_ROUTES: Final[list[tuple[str, str, Handler]]] = [
    ("GET", "/", root),
    ("GET", "/connectors", list_connectors),
    ("POST", "/connectors", create_connector),
    ("GET", "/connectors/{name}", get_connector),
    ("DELETE", "/connectors/{name}", delete_connector),
    ("GET", "/connectors/{name}/config", get_config),
    ("PUT", "/connectors/{name}/config", put_config),
    ("GET", "/connectors/{name}/status", get_status),
    ("GET", "/connectors/{name}/tasks", get_tasks),
    ("PUT", "/connectors/{name}/pause", pause),
    ("PUT", "/connectors/{name}/resume", resume),
    ("PUT", "/connectors/{name}/stop", stop),
    ("POST", "/connectors/{name}/restart", restart),
    ("GET", "/connectors/{name}/offsets", get_offsets),
    ("PATCH", "/connectors/{name}/offsets", alter_offsets),
    ("DELETE", "/connectors/{name}/offsets", reset_offsets),
    ("POST", "/connectors/{name}/signals", send_signal),
    ("GET", "/metrics", metrics),
    ("GET", "/healthz", healthz),
    ("GET", "/readyz", readyz),
    ("GET", "/openapi.json", openapi),
    ("GET", "/api/history", history),
]


def create_app(state: AdminState, metrics: Metrics, token: str | None = None) -> web.Application:
    """The admin application over `state` and `metrics`; with `token`, requests need it (see module doc)."""
    app = web.Application(middlewares=[_errors, _auth], client_max_size=1024 * 1024)
    app[STATE] = state
    app[METRICS] = metrics
    app[TOKEN] = token or ""
    for method, path, handler in _ROUTES:
        app.router.add_route(method, path, handler)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Listen on host:port (port 0: any free one, see `bound_port`); `await runner.cleanup()` stops it.

    Raises OSError when the address cannot be bound (in use, not local), after releasing the app.
    """
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        with contextlib.suppress(Exception):
            await runner.cleanup()
        raise
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port the server listens on (the one chosen when `serve` was given port 0)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the admin server is not listening")


# --- OpenAPI -----------------------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERR: Final = _json(_ref("Error"), "Kafka Connect's error body")
_NAME_PARAM: Final = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_STR_MAP: Final = {"type": "object", "additionalProperties": {"type": "string"}}


def _op(summary: str, responses: dict[str, Any], *, named: bool = True, body: dict[str, Any] | None = None,
        query: list[dict[str, Any]] | None = None, public: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {**responses, "401": _ERR}}
    params = ([_NAME_PARAM] if named else []) + (query or [])
    if named:
        op["responses"]["404"] = _ERR
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if public:
        op["security"] = []
        del op["responses"]["401"]
    return op


def openapi_document(token_required: bool = True) -> dict[str, Any]:
    """An OpenAPI 3.0 description of every endpoint (served at ``/openapi.json``)."""
    state_enum = {"type": "string", "enum": [s.value for s in ConnectorState]}
    flag = {"type": "boolean", "default": False}
    accepted = {"description": "Accepted"}
    message = _json({"type": "object", "properties": {"message": {"type": "string"}}}, "Done")
    paths: dict[str, dict[str, Any]] = {
        "/": {"get": _op("Status page (text/html) or the version document (application/json)", {
            "200": {"description": "The page or the version", "content": {
                "text/html": {"schema": {"type": "string"}},
                "application/json": {"schema": _ref("ServerInfo")}}}}, named=False)},
        "/connectors": {
            "get": _op("Connector names, or with expand=status/info a map name -> expansions", {
                "200": _json({"oneOf": [{"type": "array", "items": {"type": "string"}},
                                        {"type": "object", "additionalProperties": {"type": "object", "properties": {
                                            "status": _ref("ConnectorStatus"), "info": _ref("ConnectorInfo")}}}]},
                             "Names or expansions")},
                named=False, query=[{"name": "expand", "in": "query", "required": False, "schema": {
                    "type": "array", "items": {"type": "string", "enum": ["status", "info"]}},
                    "style": "form", "explode": True}]),
            "post": _op("Create a connector", {"201": _json(_ref("ConnectorInfo"), "Created"), "400": _ERR,
                                               "409": _ERR}, named=False, body=_ref("CreateConnector")),
        },
        "/connectors/{name}": {
            "get": _op("Connector info", {"200": _json(_ref("ConnectorInfo"), "Info")}),
            "delete": _op("Delete the connector", {"204": {"description": "Deleted"}}),
        },
        "/connectors/{name}/config": {
            "get": _op("The connector's config, secrets masked", {"200": _json(_STR_MAP, "Config")}),
            "put": _op("Create the connector or replace its config", {
                "200": _json(_ref("ConnectorInfo"), "Updated"), "201": _json(_ref("ConnectorInfo"), "Created"),
                "400": _ERR}, body=_STR_MAP),
        },
        "/connectors/{name}/status": {"get": _op("Connector and task state", {
            "200": _json(_ref("ConnectorStatus"), "Status")})},
        "/connectors/{name}/tasks": {"get": _op("The connector's tasks (one, none while STOPPED)", {
            "200": _json({"type": "array", "items": {"type": "object"}}, "Tasks")})},
        "/connectors/{name}/pause": {"put": _op("Pause the connector", {"202": accepted})},
        "/connectors/{name}/resume": {"put": _op("Resume the connector", {"202": accepted})},
        "/connectors/{name}/stop": {"put": _op("Stop the connector (keeps config and offsets)", {"202": accepted})},
        "/connectors/{name}/restart": {"post": _op("Restart the connector", {
            "204": {"description": "Restarted"}, "202": _json(_ref("ConnectorStatus"), "Restarting"), "400": _ERR},
            query=[{"name": "includeTasks", "in": "query", "required": False, "schema": flag},
                   {"name": "onlyFailed", "in": "query", "required": False, "schema": flag}])},
        "/connectors/{name}/offsets": {
            "get": _op("The connector's offsets", {"200": _json(_ref("Offsets"), "Offsets")}),
            "patch": _op("Alter offsets (connector must be STOPPED)", {"200": message, "400": _ERR},
                         body=_ref("Offsets")),
            "delete": _op("Reset offsets (connector must be STOPPED)", {"200": message, "400": _ERR}),
        },
        "/connectors/{name}/signals": {"post": _op(
            "Send a Debezium signal to a source (execute-snapshot, stop-snapshot): written to its "
            "signal.data.collection table, acted on when the stream reaches it", {
                "202": _json({"type": "object", "properties": {"id": {"type": "string"}}}, "Sent"),
                "400": _ERR}, body=_ref("Signal"))},
        "/metrics": {"get": _op("Prometheus metrics", {"200": {"description": "Text exposition format 0.0.4",
                                                              "content": {"text/plain": {"schema": {
                                                                  "type": "string"}}}}}, named=False)},
        "/healthz": {"get": _op("Liveness: 200 while the process runs", {
            "200": _json({"type": "object"}, "Up")}, named=False, public=True)},
        "/readyz": {"get": _op("Readiness: every connector RUNNING, or PAUSED/STOPPED by request", {
            "200": _json({"type": "object"}, "Ready"), "503": _json({"type": "object"}, "Failing connectors")},
            named=False)},
        "/openapi.json": {"get": _op("This document", {"200": _json({"type": "object"}, "OpenAPI 3")},
                                     named=False)},
        "/api/history": {"get": _op("Chart series per connector: time, events/s, lag seconds, dead letters", {
            "200": _json({"type": "object"}, "Series")}, named=False)},
    }
    state = {"type": "object", "required": ["state", "worker_id"], "properties": {
        "state": state_enum, "worker_id": {"type": "string"}, "trace": {"type": "string"}}}
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "erp-cdc-bridge admin API (Kafka Connect REST API)", "version": __version__},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error_code", "message"], "properties": {
                    "error_code": {"type": "integer"}, "message": {"type": "string"}}},
                "ServerInfo": {"type": "object", "properties": {
                    "version": {"type": "string"}, "commit": {"type": "string"},
                    "kafka_cluster_id": {"type": "string", "nullable": True}}},
                "CreateConnector": {"type": "object", "required": ["name", "config"], "properties": {
                    "name": {"type": "string"}, "config": _STR_MAP,
                    "initial_state": {"type": "string", "enum": ["RUNNING", "PAUSED", "STOPPED"]}}},
                "ConnectorInfo": {"type": "object", "properties": {
                    "name": {"type": "string"}, "config": _STR_MAP,
                    "tasks": {"type": "array", "items": {"type": "object", "properties": {
                        "connector": {"type": "string"}, "task": {"type": "integer"}}}},
                    "type": {"type": "string", "enum": ["source", "sink"]}}},
                "ConnectorStatus": {"type": "object", "properties": {
                    "name": {"type": "string"}, "connector": state,
                    "tasks": {"type": "array", "items": {"allOf": [state, {"type": "object", "properties": {
                        "id": {"type": "integer"}}}]}},
                    "type": {"type": "string", "enum": ["source", "sink"]}}},
                "Signal": {"type": "object", "required": ["type"], "properties": {
                    "type": {"type": "string", "enum": ["execute-snapshot", "stop-snapshot"]},
                    "data": {"type": "object"}}},
                "Offsets": {"type": "object", "required": ["offsets"], "properties": {
                    "offsets": {"type": "array", "items": {"type": "object", "required": ["partition"],
                                                           "properties": {
                        "partition": {"type": "object"}, "offset": {"type": "object", "nullable": True}}}}}},
            },
        },
    }
    if token_required:
        doc["security"] = [{"bearer": []}]
    return doc
