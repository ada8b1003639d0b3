"""The sinks' HTTP/1.1 transport against real loopback servers that answer with chosen bytes: keep-alive
reuse, the ways a response body can end, compression, stale idle connections, timeouts, garbled
responses, TLS, and requests refused before sending."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import trustme

from sinks.transport import InvalidRequest, Transport, TransportError

HEADERS = {"User-Agent": "test/1", "Accept": "application/json"}

Answer = Callable[[bytes], bytes | None]  # request bytes -> raw response (None: close without answering)


@dataclass
class RawServer:
    """A loopback HTTP server that records each request and each connection, and answers with `answer`'s
    bytes; `close_after` closes the connection after each answer."""

    answer: Answer
    close_after: bool = False
    stall: bool = False
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                if self.stall:
                    await asyncio.Event().wait()
                raw = self.answer(head + body)
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def started(answer: Answer, ssl_context: ssl.SSLContext | None = None, **kw: object) -> tuple[RawServer,
                                                                                                   asyncio.Server]:
    raw = RawServer(answer, **kw)  # type: ignore[arg-type]
    server = await asyncio.start_server(raw.handle, "127.0.0.1", 0, ssl=ssl_context)
    raw.port = server.sockets[0].getsockname()[1]
    return raw, server


def ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> Answer:
    return lambda _req: b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        len(body), extra, body)


def transport(timeout: float = 5.0) -> Transport:
    return Transport(limit=4, timeout=timeout, headers=HEADERS)


async def test_request_bytes_and_keep_alive_reuse() -> None:
    raw, server = await started(ok())
    t = transport()
    try:
        for i in range(3):
            reply = await t.request("PUT", f"http://127.0.0.1:{raw.port}/records/C%20{i}?x=1#frag",
                                    {"Content-Type": "application/json", "Idempotency-Key": f"k{i}"}, b'{"a":1}')
            assert (reply.status, reply.body, reply.headers["content-type"]) == (200, b'{"ok":true}',
                                                                                 "application/json")
    finally:
        t.close()
        server.close()
    assert raw.connections == 1  # one keep-alive connection for the three requests
    assert raw.requests[2] == (f"PUT /records/C%202?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{raw.port}\r\n"
                               "User-Agent: test/1\r\nAccept: application/json\r\nAccept-Encoding: identity\r\n"
                               "Content-Type: application/json\r\nIdempotency-Key: k2\r\nContent-Length: 7\r\n\r\n"
                               '{"a":1}').encode()


async def test_concurrent_requests_use_separate_connections_and_keep_them() -> None:
    raw, server = await started(ok())
    t = transport()
    try:
        for _ in range(2):
            replies = await asyncio.gather(*(t.request("GET", f"http://127.0.0.1:{raw.port}/{i}", {}, None)
                                             for i in range(3)))
            assert [r.status for r in replies] == [200, 200, 200]
    finally:
        t.close()
        server.close()
    assert raw.connections == 3


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabcdefg",  # no length: the close ends the body
    b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\nabcdefg",
    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nabcdefg",
], ids=["chunked", "until-close", "http-1.0", "connection-close"])
async def test_body_endings(answer: bytes) -> None:
    raw, server = await started(lambda _req: answer, close_after=True)
    t = transport()
    try:
        for _ in range(2):  # the closed connection is not reused: the second request gets a new one
            reply = await t.request("GET", f"http://127.0.0.1:{raw.port}/", {}, None)
            assert (reply.status, reply.body) == (200, b"abcdefg")
    finally:
        t.close()
        server.close()
    assert raw.connections == 2


async def test_no_content_and_compressed_bodies() -> None:
    packed = gzip.compress(b'{"n":1}')
    answers = iter([b"HTTP/1.1 204 No Content\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(packed), packed),
                    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nxyz"])
    raw, server = await started(lambda _req: next(answers))
    t = transport()
    url = f"http://127.0.0.1:{raw.port}/"
    try:
        assert (await t.request("DELETE", url, {}, None)).body == b""
        assert (await t.request("GET", url, {}, None)).body == b'{"n":1}'
        with pytest.raises(TransportError, match="unreadable gzip body"):
            await t.request("GET", url, {}, None)
    finally:
        t.close()
        server.close()
    assert raw.connections == 1


async def test_idle_connection_closed_by_the_server_is_replaced_without_error() -> None:
    raw, server = await started(ok())
    t = transport()
    url = f"http://127.0.0.1:{raw.port}/"
    try:
        await t.request("GET", url, {}, None)
        for w in raw.writers:  # the server drops its idle keep-alive connection (the client may or may not
            w.close()           # have seen the close when it sends: either way the request goes on a new one)
            await w.wait_closed()
        reply = await t.request("GET", url, {}, None)
        assert reply.status == 200
    finally:
        t.close()
        server.close()
    assert raw.connections == 2


async def test_a_reset_after_the_response_started_is_an_error() -> None:
    raw, server = await started(lambda _req: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", close_after=True)
    t = transport()
    try:
        with pytest.raises(TransportError, match="server disconnected"):
            await t.request("GET", f"http://127.0.0.1:{raw.port}/", {}, None)
    finally:
        t.close()
        server.close()


async def test_timeout_refused_and_garbled() -> None:
    raw, server = await started(ok(), stall=True)
    garbled, server2 = await started(lambda _req: b"HTTP/1.1 2x0 What\r\n\r\n")
    t = transport(timeout=0.2)
    try:
        with pytest.raises(TransportError, match=r"no complete response within 0\.2 s"):
            await t.request("GET", f"http://127.0.0.1:{raw.port}/", {}, None)
        with pytest.raises(TransportError, match="unreadable response"):
            await t.request("GET", f"http://127.0.0.1:{garbled.port}/", {}, None)
        server.close()
        await server.wait_closed()
        with pytest.raises(TransportError, match=rf"cannot connect to 127\.0\.0\.1:{raw.port}"):
            await t.request("GET", f"http://127.0.0.1:{raw.port}/", {}, None)
    finally:
        t.close()
        server2.close()


@pytest.mark.parametrize(("url", "headers", "message"), [
    ("ftp://example.com/x", {}, "expected http"),
    ("example.com/x", {}, "expected http"),
    ("http://example.com:99999/x", {}, "invalid URL"),
    ("http://example.com/a b", {}, "a space, line break or non-ASCII"),
    ("http://example.com/é", {}, "a space, line break or non-ASCII"),
    ("http://example.com/x", {"X-Evil": "a\r\nInjected: 1"}, "line break"),
    ("http://example.com/x", {"Bad Name": "v"}, "header name"),
])
async def test_requests_that_cannot_be_sent(url: str, headers: dict[str, str], message: str) -> None:
    t = transport()
    with pytest.raises(InvalidRequest, match=message):
        await t.request("GET", url, headers, None)


async def test_tls_checks_the_certificate() -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    raw, server = await started(ok(), ssl_context=server_ctx)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    good = Transport(limit=4, timeout=5.0, headers=HEADERS, ssl_context=trusting)
    system = transport()  # the system's trust store does not know the test CA
    try:
        assert (await good.request("GET", f"https://localhost:{raw.port}/", {}, None)).status == 200
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            await system.request("GET", f"https://localhost:{raw.port}/", {}, None)
    finally:
        good.close()
        system.close()
        server.close()
