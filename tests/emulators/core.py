"""Shared machinery of the cloud-API emulators (see README.md in this folder for the HTTP shapes).

`Emulator` owns one aiohttp app for one vendor (`Vendor` subclass in generic.py, salesforce.py, ...): the
ledger (records, applied writes in arrival order, violations, stats), the fault switches, the idempotency
store, the per-key order check, token issuing/checking and the built-in validation rule. It runs either on
its own event loop in a daemon thread (`start()`, for tests) or in the foreground (`serve_forever()`, for
`python -m tests.emulators`).

Faults, decided in one middleware before any handler runs, so a failed request changes nothing:
- `outage_until` (monotonic time): every API request, token endpoints included, gets the vendor's 503 body
  with `Retry-After` (the seconds left).
- after authentication, with a seeded `random.Random`: `rate_reset` closes the connection without an
  answer, `rate_429` answers the vendor's 429 with `Retry-After: retry_after_s`, `rate_5xx` answers the
  vendor's 500/502/503, `rate_stall` applies the request normally and then waits `stall_s` before answering
  (a client that times out and retries is answered from the idempotency store or re-upserts harmlessly).
  Token endpoints and the control endpoints (`/_ledger`, `/_faults`) are exempt.
- `partial` (batch endpoints only): that fraction of records fails with the vendor's retryable per-record
  error; `reject_rules` and the built-in rule (a non-empty `email`/`Email`/`emailaddress1` without `@`)
  reject a record with the vendor's validation error. Both are decided per record before it is applied.

`stats` counts API requests (not `/_ledger`, `/_faults`): `requests`, `status_<code>` (`status_reset` for a
dropped connection), `applied` (writes), `replayed` (idempotent repeats), `rejected` (validation/malformed
records or requests), `retryable_failures` (injected 429/5xx/resets/outage answers and `partial` records),
`stalls`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import random
import secrets
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal

import orjson
from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TokenState = Literal["ok", "missing", "invalid", "expired"]
Stored = tuple[int, bytes, Mapping[str, str]]  # an applied request's original response: status, body, headers
WriteRow = tuple[str, str, Literal["upsert", "delete"], dict[str, Any], str | None, float | None, float]

JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json"}
EMAIL_KEYS = frozenset({"email", "emailaddress1"})
_PENDING: Stored = (0, b"", {})



def json_object(body: bytes) -> dict[str, Any] | None:
    """A request body that must be one JSON object; None if it is not (the caller answers 400)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def json_list(body: bytes, field: str) -> list[Any] | None:
    """The list under `field` of a body that must be ``{field: [...]}``; None if it is not (a 400)."""
    data = json_object(body)
    items = data.get(field) if data is not None else None
    return items if isinstance(items, list) else None

@dataclass(frozen=True, slots=True)
class Write:
    """One applied write, in arrival order."""

    collection: str
    key: str
    op: Literal["upsert", "delete"]
    fields: dict[str, Any]
    idempotency_key: str | None
    version: float | None
    at: float  # wall-clock time (time.time()) it was applied: benchmarks measure latency with it


@dataclass
class Faults:
    """Fault switches, changeable at run time from any thread (plain attribute writes)."""

    rate_429: float = 0.0
    retry_after_s: float = 1.0
    rate_5xx: float = 0.0
    rate_stall: float = 0.0
    stall_s: float = 5.0
    rate_reset: float = 0.0
    outage_until: float = 0.0
    partial: float = 0.0
    reject_rules: list[tuple[str, Any]] = field(default_factory=list)

    def outage(self, seconds: float) -> None:
        """Every request answers 503 for the next `seconds` (0 ends an outage)."""
        self.outage_until = time.monotonic() + seconds if seconds > 0 else 0.0

    def reject(self, field_name: str, value: Any) -> None:
        """Records whose `field_name` equals `value` are rejected with the vendor's validation error."""
        self.reject_rules = [*self.reject_rules, (field_name, value)]

    def clear(self) -> None:
        fresh = Faults()
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))

    def update(self, doc: Mapping[str, Any]) -> None:
        """Apply a `POST /_faults` body: field names, `outage_s`, `reject_rules` as [[field, value], ...]."""
        names = {f.name for f in fields(self)}
        for name, value in doc.items():
            if name == "outage_s":
                self.outage(float(value))
            elif name == "reject_rules":
                self.reject_rules = [(str(f), v) for f, v in value]
            elif name in names:
                setattr(self, name, float(value))
            else:
                raise ValueError(f"unknown fault {name!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def invalid_field(data: Mapping[str, Any], rules: list[tuple[str, Any]]) -> tuple[str, str] | None:
    """(field, message) when the built-in email rule or a reject rule refuses `data`, else None."""
    for k, v in data.items():
        if type(v) is str and v and "@" not in v and len(k) in (5, 13) and k.lower() in EMAIL_KEYS:
            return k, f"Invalid email address: {v}"
    for name, value in rules:
        if name in data and (data[name] == value or str(data[name]) == str(value)):
            return name, f"Value {value!r} is not allowed for field {name}"
    return None


def as_number(raw: Any) -> float | None:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            try:
                return float(raw)
            except ValueError:
                return None
    return None


def respond(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response (orjson); `obj` None gives an empty body."""
    if obj is None:
        return web.Response(status=status, headers=headers)
    hdrs = {**JSON_HEADERS, **headers} if headers else JSON_HEADERS
    return web.Response(status=status, body=orjson.dumps(obj), headers=hdrs)


def from_stored(stored: Stored) -> web.Response:
    return web.Response(status=stored[0], body=stored[1] or None, headers=stored[2])


def bearer(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    return value[7:].strip() if value[:7].lower() == "bearer " else None


def basic(request: web.Request) -> tuple[str, str] | None:
    value = request.headers.get("Authorization", "")
    if value[:6].lower() != "basic ":
        return None
    try:
        user, _, password = base64.b64decode(value[6:].strip()).decode().partition(":")
    except ValueError:
        return None
    return user, password


class Ledger:
    """Records, applied writes, violations, stats and the idempotency store, behind one condition.

    Mutators (`upsert`, `delete`, `replay`, `remember`, `violation`, `count`) expect the caller to hold
    `txn()`, which notifies `wait_for` waiters when it ends."""

    def __init__(self, order_field: str | None) -> None:
        self.order_field = order_field
        self.cond = threading.Condition(threading.RLock())
        self.data: dict[str, dict[str, dict[str, Any]]] = {}
        self.gone: dict[str, set[str]] = {}
        self.top: dict[str, dict[str, float]] = {}
        self.log: list[WriteRow] = []  # applied writes as tuples (cheap), turned into `Write`s when read
        self.violations: list[str] = []
        self.stats: Counter[str] = Counter()
        self.idem: dict[str, Stored] = {}

    @contextlib.contextmanager
    def txn(self) -> Iterator[Ledger]:
        with self.cond:
            try:
                yield self
            finally:
                self.cond.notify_all()

    def collection(self, name: str) -> dict[str, dict[str, Any]]:
        coll = self.data.get(name)
        if coll is None:
            coll = self.data[name] = {}
            self.gone[name] = set()
            self.top[name] = {}
        return coll

    def violation(self, message: str) -> None:
        self.violations.append(message)

    def count(self, name: str, n: int = 1) -> None:
        self.stats[name] += n

    def replay(self, key: str | None) -> Stored | None:
        """The stored response of an already applied idempotency key (counted as replayed), else None."""
        if key is None:
            return None
        stored = self.idem.get(key)
        if stored is not None:
            self.stats["replayed"] += 1
        return stored

    def remember(self, key: str | None, stored: Stored) -> None:
        if key is not None:
            self.idem[key] = stored

    def _claim(self, key: str | None) -> None:
        if key is not None:
            if key in self.idem:
                self.violations.append(f"idempotency: key {key} applied twice")
            self.idem[key] = _PENDING

    def upsert(
        self, collection: str, key: str, data: dict[str, Any], idem: str | None = None, *, merge: bool = False
    ) -> bool:
        """Apply an upsert (replace, or merge into the stored fields); True when the key was created."""
        coll = self.data.get(collection) or self.collection(collection)
        version = None
        if self.order_field is not None:
            raw = data.get(self.order_field)
            if raw is not None:
                version = raw if type(raw) is int or type(raw) is float else as_number(raw)
                if version is not None:
                    top = self.top[collection]
                    prev = top.get(key)
                    if prev is None or version >= prev:
                        top[key] = version
                    else:
                        self.violations.append(f"order: {collection}/{key} version {version!r} after {prev!r}")
        old = coll.get(key)
        if old is None:
            coll[key] = data
            gone = self.gone[collection]
            if gone:
                gone.discard(key)
        else:
            coll[key] = {**old, **data} if merge else data
        if idem is not None:
            self._claim(idem)
        self.log.append((collection, key, "upsert", data, idem, version, time.time()))
        return old is None

    def delete(self, collection: str, key: str, idem: str | None = None) -> bool:
        """Apply a delete; False (nothing applied) when the key is unknown."""
        coll = self.collection(collection)
        if coll.pop(key, None) is None:
            return False
        self.gone[collection].add(key)
        self._claim(idem)
        self.log.append((collection, key, "delete", {}, idem, None, time.time()))
        return True


class Tokens:
    """Issued bearer tokens with their expiry (monotonic); static tokens never expire on their own."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    def issue(self, value: str | None = None, *, static: bool = False) -> str:
        token = value or secrets.token_urlsafe(24)
        with self._lock:
            self._expiry[token] = math.inf if static else time.monotonic() + self.ttl_s
        return token

    def check(self, token: str | None) -> TokenState:
        if not token:
            return "missing"
        expiry = self._expiry.get(token)
        if expiry is None:
            return "invalid"
        return "ok" if time.monotonic() < expiry else "expired"

    def expire_all(self) -> None:
        with self._lock:
            self._expiry = dict.fromkeys(self._expiry, 0.0)


class Vendor:
    """One vendor's routes and error shapes. Subclasses register routes in `setup` with `add`."""

    kind: ClassVar[str]
    static_token: bool = False  # True: a private-app/API token instead of a token endpoint

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.ledger = emu.ledger

    def add(self, method: str, path: str, handler: Handler, *, public: bool = False) -> None:
        route = self.emu.app.router.add_route(method, path, handler)
        if public:
            self.emu.public.add(route)

    def setup(self) -> None:
        raise NotImplementedError

    def credentials(self) -> dict[str, str]:
        raise NotImplementedError

    def authenticate(self, request: web.Request) -> web.Response | None:
        """None when the request may proceed, else the vendor's 401."""
        state = self.emu.tokens.check(bearer(request))
        return None if state == "ok" else self.unauthorized(state)

    def unauthorized(self, state: TokenState) -> web.Response:
        raise NotImplementedError

    def rate_limited(self) -> web.Response:
        raise NotImplementedError

    def failed(self, status: int) -> web.Response:
        """The vendor's 500/502/503 (also the outage answer)."""
        raise NotImplementedError

    def rejected(self, n: int = 1) -> None:
        self.ledger.count("rejected", n)

    def partial_hit(self) -> bool:
        p = self.emu.faults.partial
        return bool(p) and self.emu.rng.random() < p

    def invalid(self, data: Mapping[str, Any]) -> tuple[str, str] | None:
        return invalid_field(data, self.emu.faults.reject_rules)

    def record_body(self, led: Ledger, idem: str | None, body: bytes,
                    not_an_object: Callable[[], web.Response]) -> dict[str, Any] | web.Response:
        """Inside a ledger transaction, a single-record write's body: the stored answer when the idempotency
        key was seen before, the vendor's 400 (`not_an_object`, counted as rejected) when the body is not
        one JSON object, else the object."""
        stored = led.replay(idem)
        if stored is not None:
            return from_stored(stored)
        data = json_object(body)
        if data is None:
            self.rejected()
            return not_an_object()
        return data

    async def client_credentials(self, request: web.Request) -> str | None:
        """Check an OAuth2 client-credentials token request (form or HTTP Basic client auth, or a NetSuite-style
        `client_assertion`); None when valid, else the OAuth error code."""
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return "unsupported_grant_type"
        if form.get("client_assertion") and str(form.get("client_assertion_type", "")).endswith(":jwt-bearer"):
            return None
        pair = basic(request) or (str(form.get("client_id", "")), str(form.get("client_secret", "")))
        return None if pair == (self.emu.client_id, self.emu.client_secret) else "invalid_client"


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()


def fmt_seconds(seconds: float) -> str:
    return str(max(0, math.ceil(seconds))) if seconds >= 1 or seconds <= 0 else f"{seconds:g}"


class Emulator:
    """A running (or runnable) emulator: `start()`/`close()` on a daemon thread, or `serve_forever()`."""

    def __init__(
        self,
        vendor: type[Vendor],
        *,
        order_field: str | None = "version",
        auth: str | None = None,
        seed: int = 0,
        token_ttl_s: float = 3600.0,
        tokens: tuple[str, ...] | list[str] = (),
        client_id: str = "emulator-client",
        client_secret: str = "emulator-secret",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.kind = vendor.kind
        self.auth = auth
        self.host, self.port = host, port
        self.url = ""
        self.ledger = Ledger(order_field)
        self._faults = Faults()
        self.rng = random.Random(seed)
        self.tokens = Tokens(token_ttl_s)
        self.client_id, self.client_secret = client_id, client_secret
        self.public: set[AbstractRoute] = set()
        self.app = web.Application(middlewares=[self._middleware], client_max_size=256 * 1024 * 1024)
        self.app.router.add_get("/_ledger", self._ledger_view)
        self.app.router.add_post("/_faults", self._faults_view)
        self.vendor = vendor(self)
        self.static: str | None = None
        if self.vendor.static_token:
            for t in tokens:
                self.tokens.issue(t, static=True)
            self.static = tokens[0] if tokens else self.tokens.issue(static=True)
        self.vendor.setup()
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ----- public handle -----
    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self._faults = value

    @property
    def credentials(self) -> dict[str, str]:
        return self.vendor.credentials()

    def _pick(self, collection: str | None) -> str | None:
        if collection is not None:
            return collection
        return next(iter(self.ledger.data), None)

    def records(self, collection: str | None = None) -> dict[str, dict[str, Any]]:
        with self.ledger.cond:
            name = self._pick(collection)
            return dict(self.ledger.data.get(name, {})) if name is not None else {}

    def deleted(self, collection: str | None = None) -> set[str]:
        with self.ledger.cond:
            name = self._pick(collection)
            return set(self.ledger.gone.get(name, ())) if name is not None else set()

    @property
    def writes(self) -> list[Write]:
        with self.ledger.cond:
            return [Write(*row) for row in self.ledger.log]

    @property
    def violations(self) -> list[str]:
        with self.ledger.cond:
            return list(self.ledger.violations)

    @property
    def stats(self) -> dict[str, int]:
        with self.ledger.cond:
            base = dict.fromkeys(("requests", "applied", "replayed", "rejected", "retryable_failures"), 0)
            return base | dict(self.ledger.stats) | {"applied": len(self.ledger.log)}

    def outage(self, seconds: float) -> None:
        self._faults.outage(seconds)

    def reject(self, field_name: str, value: Any) -> None:
        self._faults.reject(field_name, value)

    def expire_tokens(self) -> None:
        """Every token issued so far becomes invalid; a static token is replaced by a new one (see credentials)."""
        self.tokens.expire_all()
        if self.static is not None:
            self.static = self.tokens.issue(static=True)

    def wait_for(self, predicate: Callable[[Emulator], bool], timeout: float = 60.0) -> None:
        """Block until `predicate(self)` holds (re-checked on every ledger change); TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self.ledger.cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.kind} emulator: condition not met in {timeout}s; stats={self.stats}")
                self.ledger.cond.wait(min(remaining, 0.1))

    def ledger_doc(self, with_records: bool = False, with_writes: bool = False) -> dict[str, Any]:
        with self.ledger.cond:
            led = self.ledger
            doc: dict[str, Any] = {
                "kind": self.kind,
                "stats": self.stats,
                "record_count": sum(len(c) for c in led.data.values()),
                "deleted_count": sum(len(g) for g in led.gone.values()),
                "writes": len(led.log),
                "violations": list(led.violations),
            }
            if with_records:
                doc["records"] = {name: dict(coll) for name, coll in led.data.items()}
            if with_writes:
                doc["write_log"] = [list(row) for row in led.log]
            return doc

    # ----- lifecycle -----
    async def _open(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.25)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        await web.SockSite(self._runner, sock, backlog=1024).start()

    async def _shut(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]  # e.g. stalled handlers
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def start(self) -> Emulator:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=_run_loop, args=(loop,), name=f"emulator-{self.kind}", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._open(), loop).result(timeout=30)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shut(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def serve_forever(self, stop: asyncio.Event | None = None) -> None:
        """Foreground mode: listen, print `READY <url>` (and the credentials as JSON), run until `stop`."""
        await self._open()
        sys.stdout.write(f"READY {self.url}\nCREDENTIALS {orjson.dumps(self.credentials).decode()}\n")
        sys.stdout.flush()
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await self._shut()

    # ----- HTTP plumbing -----
    def _count(self, status: int | str, retryable: bool) -> None:
        with self.ledger.txn() as led:
            led.stats["requests"] += 1
            led.stats[f"status_{status}"] += 1
            if retryable:
                led.stats["retryable_failures"] += 1

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_"):
            return await handler(request)
        f, vendor = self._faults, self.vendor
        if f.outage_until and (left := f.outage_until - time.monotonic()) > 0:
            resp = vendor.failed(503)
            resp.headers["Retry-After"] = fmt_seconds(left)
            self._count(503, True)
            return resp
        stall = False
        if request.match_info.route not in self.public:
            denied = vendor.authenticate(request)
            if denied is not None:
                self._count(denied.status, False)
                return denied
            rng = self.rng
            if f.rate_reset and rng.random() < f.rate_reset:
                self._count("reset", True)
                if request.transport is not None:
                    request.transport.close()
                raise asyncio.CancelledError  # the connection is gone: aiohttp sends nothing
            if f.rate_429 and rng.random() < f.rate_429:
                resp = vendor.rate_limited()
                resp.headers["Retry-After"] = fmt_seconds(f.retry_after_s)
                self._count(429, True)
                return resp
            if f.rate_5xx and rng.random() < f.rate_5xx:
                resp = vendor.failed(rng.choice((500, 502, 503)))
                self._count(resp.status, True)
                return resp
            stall = bool(f.rate_stall) and rng.random() < f.rate_stall
        try:
            out = await handler(request)
        except web.HTTPException as exc:
            self._count(exc.status, False)
            raise
        self._count(out.status, False)
        if stall:
            with self.ledger.txn() as led:
                led.stats["stalls"] += 1
            await asyncio.sleep(f.stall_s)
        return out

    async def _ledger_view(self, request: web.Request) -> web.Response:
        return respond(self.ledger_doc(request.query.get("records") in ("1", "true"),
                                       request.query.get("writes") in ("1", "true")))

    async def _faults_view(self, request: web.Request) -> web.Response:
        try:
            doc = orjson.loads(await request.read() or b"{}")
            if not isinstance(doc, dict):
                raise ValueError("body must be a JSON object")
            if doc.pop("clear", False):
                self._faults.clear()
            if doc.pop("expire_tokens", False):
                self.expire_tokens()
            self._faults.update(doc)
        except (ValueError, TypeError) as exc:
            return respond({"error": str(exc)}, 400)
        return respond(self._faults.as_dict())
