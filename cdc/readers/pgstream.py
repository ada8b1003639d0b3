"""The one class that talks to PostgreSQL's replication socket: a COPY_BOTH stream driven by libpq.

`ReplicationStream` sends `START_REPLICATION`, then hands out the CopyData messages that have
arrived (in batches, so the event loop wakes once per socket read rather than once per row), and
writes standby status updates. It knows nothing about pgoutput beyond the CopyData framing.

Failure story: a broken connection, a server error, or the end of the COPY all raise `Transient`
with the server's message (the caller reconnects with backoff and resumes from the journal's offset);
a refused `START_REPLICATION` (missing slot or publication) raises `SourceError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
from psycopg import pq

from cdc.errors import SourceError, Transient
from cdc.readers.pgoutput import standby_status


class ReplicationStream:
    """A started logical replication stream over a `replication=database` connection."""

    def __init__(self, conn: psycopg.AsyncConnection[object]) -> None:
        self._conn = conn
        self._pg = conn.pgconn
        self._loop = asyncio.get_running_loop()

    async def _readable(self, limit: float | None = None) -> bool:
        return await self._wait(self._loop.add_reader, self._loop.remove_reader, limit)

    async def _writable(self) -> None:
        await self._wait(self._loop.add_writer, self._loop.remove_writer)

    async def _wait(self, add: Callable[..., None], remove: Callable[[int], object],
                    limit: float | None = None) -> bool:
        """Until the socket is ready (readable or writable, by `add`) or `limit` s passed (→ False).

        A plain timer rather than asyncio.timeout: this runs thousands of times a second under load."""
        fut: asyncio.Future[bool] = self._loop.create_future()
        sock = self._pg.socket

        def done(ready: bool) -> None:
            if not fut.done():
                fut.set_result(ready)

        add(sock, done, True)
        timer = None if limit is None else self._loop.call_later(limit, done, False)
        try:
            return await fut
        finally:
            remove(sock)
            if timer is not None:
                timer.cancel()

    async def start(self, command: str) -> None:
        """Send START_REPLICATION and wait until the server switched to COPY_BOTH."""
        pg = self._pg
        pg.nonblocking = 1
        pg.send_query(command.encode())
        await self._flush()
        while True:
            pg.consume_input()
            if not pg.is_busy():
                break
            await self._readable()
        res = pg.get_result()
        if res is None or res.status != pq.ExecStatus.COPY_BOTH:
            msg = (res.error_message.decode(errors="replace") if res is not None else "no result").strip()
            raise SourceError(f"START_REPLICATION refused by the server: {msg}")

    async def read(self, out: list[memoryview | bytes], wait: float | None) -> None:
        """Append every CopyData message already received to `out`; if none, wait up to `wait` s."""
        pg = self._pg
        polled = False
        while True:
            n, data = pg.get_copy_data(1)
            if n > 0:
                out.append(data)
                continue
            if n == 0:
                if out:
                    return
                if not polled:
                    # While the last batch was processed more data usually arrived: read the socket
                    # without registering with epoll, and give the loop's other tasks their turn.
                    polled = True
                    self._consume()
                    await asyncio.sleep(0)
                    continue
                if not await self._readable(wait):
                    return
                self._consume()
                continue
            raise Transient(f"replication stream ended: {self._error()}")

    def _consume(self) -> None:
        try:
            self._pg.consume_input()
        except psycopg.OperationalError as e:
            raise Transient(f"replication connection lost: {e}") from e

    def _error(self) -> str:
        res = self._pg.get_result()
        if res is not None and res.error_message:
            return res.error_message.decode(errors="replace").strip()
        return self._pg.error_message.decode(errors="replace").strip() or "connection closed"

    async def send_status(self, write_lsn: int, flush_lsn: int, reply: bool = False) -> None:
        """Tell the server what we received and what is durable (flush = apply = the journal's)."""
        if self._pg.put_copy_data(standby_status(write_lsn, flush_lsn, flush_lsn, reply)) != 1:
            raise Transient(f"could not send standby status: {self._error()}")
        await self._flush()

    async def _flush(self) -> None:
        while self._pg.flush() == 1:
            await self._writable()
