"""The sinks' HTTP/1.1 transport: keep-alive connection pools over asyncio protocols, responses parsed by
httptools (llhttp, the parser of Node.js).

Role: `Transport.request(method, url, headers, body)` sends one request and returns the whole response
(`Response`: status, headers, body). That is all a sink needs: redirects are never followed (a 3xx means a
wrong URL), there are no cookies, proxies or streaming, and the body is asked for uncompressed
(``Accept-Encoding: identity``; a gzip or deflate body a server sends anyway is decoded). Connections are
reused per origin (scheme, host, port) while the server keeps them alive; TLS uses the system's trust
store and checks the host name.

Why not aiohttp's client (which the project used before, and whose server runs the admin API): with one
request per record the client's CPU per request is what limits a sink. Measured on this machine against
the generic emulator, 32 requests in flight: aiohttp 241 µs of client CPU per request, this transport 97 µs.

Failure story: a connection refused, reset or closed before the response is complete, a response llhttp
cannot parse, or the `timeout` running out raise `TransportError` (the sink retries: `Transient`); the
connection is closed, never reused. A request on a reused keep-alive connection that the server had
already closed (no response byte received) is sent once more on a new connection: servers close idle
connections at any time, and every request carries an idempotency key. A URL that is not
``http(s)://host[:port]/...``, or a header holding a line break, raises `InvalidRequest` (`Permanent`:
the configuration is wrong).
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import re
import ssl
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

import httptools
import orjson
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["InvalidRequest", "Response", "Transport", "TransportError", "parse_retry_after"]


class TransportError(Exception):
    """The exchange failed on the way (connection, timeout, unreadable response): worth another attempt."""


class InvalidRequest(ValueError):
    """The request cannot be sent as given (a bad URL or header): no attempt will do better."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After in seconds from now (delay-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(frozen=True, slots=True)
class Response:
    """A whole HTTP response."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; None when it is empty or not JSON."""
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            return None

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("Retry-After"))


_Origin = tuple[str, str, int]
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)(.*)", re.DOTALL)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.headers: CIMultiDict[str] = CIMultiDict()
        self.chunks: list[bytes] = []
        self.received = False   # a byte of the current response arrived
        self.headers_done = False
        self.until_eof = False   # the body ends when the server closes (no length, not chunked)
        self.complete = False
        self.keep_alive = False
        self.open = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's is not a subclass)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(TransportError(f"unreadable response: {e}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.until_eof and self.headers_done and not self.complete:
            self.on_message_complete()  # the close ends the body
        else:
            self._fail(TransportError("server disconnected" + (f": {exc}" if exc else "")))

    # llhttp callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        h = self.headers
        self.until_eof = "Content-Length" not in h and "chunked" not in h.get("Transfer-Encoding", "").lower()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it once the message is done
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, exc: TransportError) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, request: bytes, deadline: float, late: str) -> Response:
        """Send `request` and wait for its whole response until the loop time `deadline` (then fail with `late`)."""
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.headers = CIMultiDict()
        self.chunks = []
        self.received = self.headers_done = self.until_eof = self.complete = self.keep_alive = False
        assert self.transport is not None
        # A timer per request rather than asyncio.timeout(): a third of the transport's CPU otherwise.
        timer = loop.call_at(deadline, lambda: self._fail(TransportError(late)))
        try:
            self.transport.write(request)
            await self.waiter
        finally:
            timer.cancel()
        body = b"".join(self.chunks)
        coding = self.headers.get("Content-Encoding", "identity").lower()
        if coding in ("gzip", "deflate", "x-gzip") and body:
            try:
                body = zlib.decompress(body, wbits=47)  # 32 + 15: a gzip or zlib header, detected
            except zlib.error as e:
                raise TransportError(f"unreadable {coding} body: {e}") from None
        return Response(self.parser.get_status_code(), CIMultiDictProxy(self.headers), body)


class Transport:
    """Connection pools per origin; `limit` idle connections kept per origin, `timeout` seconds for a whole
    request (connecting included), `headers` sent with every request."""

    def __init__(self, *, limit: int, timeout: float, headers: dict[str, str],
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.limit = limit
        self.timeout = timeout
        self._fixed = _header_lines({**headers, "Accept-Encoding": "identity"})
        self._late = f"no complete response within {timeout:g} s"
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._ssl = ssl_context  # None: the system's trust store, made on the first https connection
        self._hosts: dict[str, tuple[_Origin, bytes]] = {}  # "scheme://netloc" -> origin, Host line

    def _origin(self, url: str) -> tuple[_Origin, bytes, bytes]:
        """(scheme, host, port), the Host header line and the request target of `url`."""
        m = _URL.match(url)
        if m is None:
            raise InvalidRequest(f"invalid URL {url!r}: expected http(s)://host[:port]/path")
        prefix, target = m.group(1, 2)
        known = self._hosts.get(prefix)
        if known is None:
            parts = urlsplit(prefix)
            try:
                port = parts.port
            except ValueError as e:
                raise InvalidRequest(f"invalid URL {url!r}: {e}") from None
            if parts.scheme not in ("http", "https") or not parts.hostname or not prefix.isascii():
                raise InvalidRequest(f"invalid URL {url!r}: expected http(s)://host[:port]/path")
            origin = (parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80))
            if len(self._hosts) >= 256:  # URLs naming many hosts: keep the cache small
                self._hosts.clear()
            known = self._hosts[prefix] = (origin, f"Host: {parts.netloc.rpartition('@')[2]}\r\n".encode())
        target = target.partition("#")[0]
        if not target.startswith("/"):
            target = "/" + target
        if not target.isascii() or " " in target or "\r" in target or "\n" in target:
            raise InvalidRequest(f"invalid URL {url!r}: a space, line break or non-ASCII character in the path "
                                 "(percent-encode it)")
        return known[0], known[1], target.encode()

    async def _connect(self, origin: _Origin) -> _Connection:
        scheme, host, port = origin
        context: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            _, conn = await asyncio.get_running_loop().create_connection(_Connection, host, port, ssl=context)
        except (OSError, ssl.SSLError) as e:
            raise TransportError(f"cannot connect to {host}:{port}: {e}") from None
        return conn

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Response:
        origin, host, target = self._origin(url)
        raw = b"".join((method.encode(), b" ", target, b" HTTP/1.1\r\n", host, self._fixed, _header_lines(headers),
                        b"Content-Length: %d\r\n\r\n" % len(body or b""), body or b""))
        idle = self._idle.setdefault(origin, [])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while idle:
            conn = idle.pop()
            if conn.open:
                try:
                    return self._done(idle, conn, await _send(conn, raw, deadline, self._late))
                except TransportError:
                    if conn.received or loop.time() >= deadline:
                        raise
                    # closed by the server while idle: send on another connection
        try:
            async with asyncio.timeout_at(deadline):
                conn = await self._connect(origin)
        except TimeoutError:
            raise TransportError(f"no connection within {self.timeout:g} s") from None
        return self._done(idle, conn, await _send(conn, raw, deadline, self._late))

    def _done(self, idle: list[_Connection], conn: _Connection, reply: Response) -> Response:
        if conn.open and conn.keep_alive and len(idle) < self.limit:
            idle.append(conn)
        else:
            conn.close()
        return reply

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


_NAMES: set[str] = set()  # header names found valid: a sink sends the same few with every request


def _valid_names(headers: Mapping[str, str]) -> bool:
    if _NAMES.issuperset(headers):
        return True
    if any(not name or ":" in name or " " in name for name in headers):
        return False
    if len(_NAMES) > 1024:
        _NAMES.clear()
    _NAMES.update(headers)
    return True


def _header_lines(headers: Mapping[str, str]) -> bytes:
    text = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    # (line breaks first: a name is found valid only in a text without stray ones)
    if text.count("\n") != len(headers) or text.count("\r") != len(headers) or not _valid_names(headers):
        raise InvalidRequest(f"a header holds a line break, or a header name is empty or holds ':' or ' ' "
                             f"({', '.join(headers)})")
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidRequest(f"a header value is not Latin-1 ({', '.join(headers)})") from None


async def _send(conn: _Connection, raw: bytes, deadline: float, late: str) -> Response:
    try:
        return await conn.exchange(raw, deadline, late)
    except BaseException:  # a failure, the timeout or a cancellation mid-exchange: never reused
        conn.close()
        raise
