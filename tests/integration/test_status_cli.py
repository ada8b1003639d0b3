"""`cdc status` as a real process against the real admin server (`cdc.admin.server`) listening in this test's
event loop: the JSON document and the table, a FAILED connector's trace, the bearer token, an unreachable
bridge, a malformed answer, and `--watch --json` ended by Ctrl-C.

The server's state is the admin tests' in-memory `AdminState` (`sample_state`) plus a FAILED sink and lags in
bytes and records; the process runs in a worker thread so the loop keeps answering it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from cdc.admin import ConnectorState, Metrics, Sample, create_app, serve
from cdc.admin.server import bound_port
from tests.e2e.harness import env, run_cdc
from tests.integration.test_admin_server import TOKEN, FakeState, sample_state

# Wide enough that rich never wraps or truncates a cell; no token unless a test passes one.
ENV = {"COLUMNS": "200", "CDC_HTTP_TOKEN": ""}
TRACE = "ConnectionError: target crm.example refused the connection\n  File \"sinks/http.py\", line 42"


def state() -> FakeState:
    st = sample_state()
    st.add("erp-file", "sink", {"connector.class": "FileStreamSink", "file": "/tmp/out.jsonl"},
           ConnectorState.FAILED, TRACE)
    st.histories["erp-file"].add(Sample(time.time(), 0.0, 200.0, 0))   # 3 min 20 s behind
    st.views["erp"] = dataclasses.replace(st.views["erp"], lag_bytes=5 * 1024**3 // 2)
    st.views["crm"] = dataclasses.replace(st.views["crm"], journal_depth=1234567)
    return st


async def listening(app: web.Application) -> AsyncIterator[str]:
    runner = await serve(app, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{bound_port(runner)}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def bridge() -> AsyncIterator[str]:
    async for url in listening(create_app(state(), Metrics())):
        yield url


@pytest.fixture
async def secured() -> AsyncIterator[str]:
    async for url in listening(create_app(state(), Metrics(), TOKEN)):
        yield url


async def cdc_status(*args: str) -> Any:
    return await asyncio.to_thread(run_cdc, ["status", *args], extra_env=ENV, timeout=60)


async def history(url: str, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.get(f"{url}/api/history", headers=headers) as r:
        doc: dict[str, Any] = await r.json()
        return doc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_json_document_matches_the_server(bridge: str) -> None:
    p = await cdc_status("--url", bridge, "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    served = await history(bridge)
    assert doc["worker_id"] == served["worker_id"] == "127.0.0.1:8083"
    assert [c["name"] for c in doc["connectors"]] == ["erp", "crm", "erp-file"]
    for shown, truth in zip(doc["connectors"], served["connectors"], strict=True):
        for key in ("name", "type", "state", "lag_seconds", "lag_bytes", "journal_depth", "events_per_second",
                    "dead_letters", "trace"):
            assert shown[key] == truth[key], key
        assert "series" not in shown
    erp, crm, failed = doc["connectors"]
    assert (erp["state"], erp["lag_seconds"], erp["lag_bytes"], erp["journal_depth"], erp["events_per_second"]) == (
        "RUNNING", 2.0, 5 * 1024**3 // 2, None, 400.0)
    assert (crm["journal_depth"], crm["lag_bytes"], crm["dead_letters"]) == (1234567, None, 3)
    assert (failed["state"], failed["lag_seconds"], failed["journal_depth"]) == ("FAILED", 200.0, None)
    assert failed["trace"].startswith("ConnectionError: target crm.example")


async def test_table_with_human_units_and_the_failed_trace(bridge: str) -> None:
    p = await cdc_status("--url", bridge.removeprefix("http://"))   # `cdc run --http`'s HOST:PORT works too
    assert p.returncode == 0, p.stderr
    for header in ("connector", "type", "state", "lag", "lag bytes", "behind", "events/s", "dead letters"):
        assert header in p.stdout
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.split("│")[1:-1]]
                                          for line in p.stdout.splitlines() if line.startswith("│"))}
    assert rows["erp"] == ["erp", "source", "RUNNING", "2.0 s", "2.5 GiB", "—", "400", "0"]
    assert rows["crm"] == ["crm", "sink", "RUNNING", "1.0 s", "—", "1,234,567", "360", "3"]
    assert rows["erp-file"] == ["erp-file", "sink", "FAILED", "3 min 20 s", "—", "—", "0.0", "0"]
    assert "erp-file FAILED: ConnectionError: target crm.example refused the connection" in p.stdout
    assert "sinks/http.py" not in p.stdout   # the first line only
    assert "worker 127.0.0.1:8083" in p.stdout and "3 connectors: 2 running, 1 failed" in p.stdout


async def test_token(secured: str) -> None:
    refused = await cdc_status("--url", secured)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "the bridge requires a token: pass --token or set CDC_HTTP_TOKEN"
    wrong = await cdc_status("--url", secured, "--token", "not-the-token")
    assert wrong.returncode == 1 and "the bridge refused the token" in wrong.stderr
    ok = await cdc_status("--url", secured, "--token", TOKEN, "--json")
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)["connectors"]) == 3
    from_env = await asyncio.to_thread(run_cdc, ["status", "--url", secured],
                                       extra_env={**ENV, "CDC_HTTP_TOKEN": TOKEN})
    assert from_env.returncode == 0 and "erp-file FAILED" in from_env.stdout
    for p in (refused, wrong, ok, from_env):
        assert TOKEN not in p.stdout + p.stderr


async def test_unreachable_bridge() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    p = await cdc_status("--url", url)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.strip() == (f"no bridge answers at {url}: connection refused; is `cdc run` running with "
                                "--http? pass --url")


async def test_malformed_answers() -> None:
    async def not_json(request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    async def wrong_shape(request: web.Request) -> web.Response:
        return web.json_response({"connectors": [{"name": "erp", "state": "RUNNING", "lag_seconds": "soon"}]})

    for handler, message in ((not_json, "is not JSON (is this a cdc bridge?)"),
                             (wrong_shape, "malformed: 'lag_seconds' of connector 'erp' is 'soon'")):
        app = web.Application()
        app.router.add_get("/api/history", handler)
        async for url in listening(app):
            p = await cdc_status("--url", url)
            assert p.returncode == 1 and message in p.stderr, p.stderr
    async for url in listening(web.Application()):
        p = await cdc_status("--url", url)
        assert p.returncode == 1 and "/api/history answered HTTP 404 Not Found" in p.stderr, p.stderr


async def test_watch_json_prints_a_line_per_refresh_until_ctrl_c(bridge: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cdc.cli", "status", "--url", bridge, "--json", "--watch", "--interval", "0.2",
        env={**env(), **ENV}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        lines = [await asyncio.wait_for(proc.stdout.readline(), 30) for _ in range(3)]
        assert all(json.loads(line)["worker_id"] == "127.0.0.1:8083" for line in lines)
        assert len({json.loads(line)["now"] for line in lines}) == 3   # three fetches, not one repeated
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()

