"""The status page in headless Chromium: the connectors table and the SVG charts render, refresh every 2 s,
the token passed as ``#token=`` works and leaves the address bar; a screenshot is taken.

Chromium is driven through the DevTools protocol over a websocket (aiohttp), so the test waits on the
page's own DOM with a deadline instead of sleeping. Debian's `chromium` is installed when missing
(as root, like `tests/servers/postgres.py` installs PostgreSQL); elsewhere the test is skipped.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cdc.admin import ConnectorState, Metrics, Sample, create_app, serve
from cdc.admin.server import bound_port
from tests.integration.test_admin_server import TOKEN, sample_state

DEADLINE_S = 30.0


@pytest.fixture(scope="session")
def chromium() -> Iterator[str]:
    """The Chromium binary, installing Debian's package when it is missing."""
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed (Debian package `chromium`) and cannot be installed here")
    yield found


class Cdp:
    """A minimal DevTools protocol client: one page target, calls answered by id, events ignored."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        mid = self.next_id
        await self.ws.send_json({"id": mid, "method": method, "params": params})
        async with asyncio.timeout(DEADLINE_S):
            while True:
                msg = await self.ws.receive_json()
                if msg.get("id") == mid:
                    if "error" in msg:
                        raise RuntimeError(f"{method}: {msg['error']}")
                    result: dict[str, Any] = msg["result"]
                    return result

    async def evaluate(self, expression: str) -> Any:
        r = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def wait_for(self, expression: str, what: str) -> Any:
        """Poll `expression` until it is truthy; fail after the deadline, saying what was awaited.
        Until the navigation commits the old document answers: a script error there counts as not yet."""
        deadline = time.monotonic() + DEADLINE_S
        value = None
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()"
        while time.monotonic() < deadline:
            value = await self.evaluate(guarded)
            if value:
                return value
            await asyncio.sleep(0.05)
        dom = await self.evaluate("document.body ? document.body.outerHTML.slice(0, 2000) : ''")
        raise AssertionError(f"timed out waiting for {what}; last value {value!r}; page: {dom}")


@dataclass
class Browser:
    proc: asyncio.subprocess.Process
    cdp: Cdp


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


def _port_in(marker: Path) -> int | None:
    try:
        return int(marker.read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):   # not written yet, or half-written
        return None


async def _devtools_port(profile: Path, proc: asyncio.subprocess.Process, log: Path) -> int:
    # Chromium writes the port it picked (we ask for 0) to DevToolsActivePort in its profile.
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}: {_tail(log)}")
        port = _port_in(profile / "DevToolsActivePort")
        if port is not None:
            return port
        await asyncio.sleep(0.05)
    raise RuntimeError(f"chromium did not open its DevTools port: {_tail(log)}")


@contextlib.asynccontextmanager
async def launched(chromium: str, tmp: Path) -> AsyncIterator[Browser]:
    profile = tmp / "profile"
    profile.mkdir()
    log = tmp / "chromium.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={profile}",
            "--window-size=1200,900", "about:blank",
            stdout=out, stderr=out, start_new_session=True)
    try:
        port = await _devtools_port(profile, proc, log)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                targets = await r.json(content_type=None)
            page = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024) as ws:
                yield Browser(proc, Cdp(ws))
    finally:
        # Chromium's helpers (zygote, renderer) share its session: end that group, which we started.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


PAGE_STATE = """JSON.stringify({
  refreshes: Number(document.body.dataset.refreshes || 0),
  hash: location.hash,
  banner: document.getElementById("banner").textContent,
  rows: [...document.querySelectorAll("#connectors tbody tr")].map(tr => ({
    name: tr.dataset.name, state: tr.dataset.state, trace: tr.querySelector(".state").title,
    cells: [...tr.querySelectorAll("td")].map(td => td.textContent)})),
  charts: [...document.querySelectorAll("#charts figure svg")].map(svg => ({
    connector: svg.closest("figure").dataset.connector, series: svg.dataset.series,
    path: (svg.querySelector("path.line") || {getAttribute: () => ""}).getAttribute("d") || ""})),
})"""


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_status_page_renders_charts_and_refreshes(chromium: str, tmp_path: Path) -> None:
    state = sample_state()
    state.set_state("crm", ConnectorState.PAUSED)
    state.views["erp"] = dataclasses.replace(state.views["erp"], lag_bytes=3 * 1024 * 1024)
    state.views["crm"] = dataclasses.replace(state.views["crm"], journal_depth=42)
    runner = await serve(create_app(state, Metrics(), TOKEN), "127.0.0.1", 0)
    try:
        async with launched(chromium, tmp_path) as browser:
            cdp = browser.cdp
            await cdp.call("Emulation.setDeviceMetricsOverride", width=1200, height=900, deviceScaleFactor=1,
                           mobile=False)
            await cdp.call("Page.navigate", url=f"http://127.0.0.1:{bound_port(runner)}/#token={TOKEN}")
            # Both connectors' rows and all four charts (lag and throughput each), with drawn lines.
            expr = f"(() => {{ const s = {PAGE_STATE}; const p = JSON.parse(s); " \
                   "return p.rows.length === 2 && p.charts.filter(c => c.path).length === 4 ? s : ''; })()"
            page = json.loads(await cdp.wait_for(expr, "the table and the charts"))
            assert page["banner"] == ""
            assert page["hash"] == ""   # the token left the address bar (kept in sessionStorage)
            rows = {r["name"]: r for r in page["rows"]}
            assert rows["erp"]["state"] == "RUNNING" and rows["crm"]["state"] == "PAUSED"
            assert rows["erp"]["cells"][:3] == ["erp", "source", "RUNNING"]
            assert rows["erp"]["cells"][3] == "400.0"        # events/s of the latest sample
            assert rows["erp"]["cells"][4] == "2.0 s"        # lag of the latest sample
            assert rows["crm"]["cells"][5] == "3"            # dead letters
            assert rows["erp"]["cells"][6] == "3.0 MiB"      # behind: the source's change log not confirmed
            assert rows["crm"]["cells"][6] == "42 records"   # behind: the sink's journal records to deliver
            series = {(c["connector"], c["series"]) for c in page["charts"]}
            assert series == {(n, s) for n in ("erp", "crm") for s in ("lag_seconds", "events_per_second")}
            erp_lag = next(c["path"] for c in page["charts"] if c["connector"] == "erp"
                           and c["series"] == "lag_seconds")
            assert erp_lag.startswith("M") and erp_lag.count("L") == 4   # five samples, one line
            crm_lag = next(c["path"] for c in page["charts"] if c["connector"] == "crm"
                           and c["series"] == "lag_seconds")
            assert crm_lag.count("M") == 1 and crm_lag.count("L") == 3   # the unknown first lag is skipped

            # The page refreshes by itself: new samples and a new dead letter show up without a reload.
            before = page["refreshes"]
            state.histories["erp"].add(Sample(time.time(), 1234.0, 9.0, 0))
            state.set_state("crm", ConnectorState.FAILED, trace="Permanent: 401 from CRM")
            expr = f"(() => {{ const p = JSON.parse({PAGE_STATE}); return p.refreshes > {before} && " \
                   "p.rows.some(r => r.name === 'erp' && r.cells[3] === '1234.0') && " \
                   "p.rows.some(r => r.name === 'crm' && r.state === 'FAILED' && " \
                   "r.trace === 'Permanent: 401 from CRM'); })()"
            await cdp.wait_for(expr, "a refresh showing the new sample and state")

            shot = base64.b64decode((await cdp.call("Page.captureScreenshot", format="png"))["data"])
            (tmp_path / "status-page.png").write_bytes(shot)
            assert png_size(shot) == (1200, 900)
            assert len(shot) > 10_000   # a drawn page, not a blank one
    finally:
        await runner.cleanup()


async def test_status_page_asks_for_the_token(chromium: str, tmp_path: Path) -> None:
    runner = await serve(create_app(sample_state(), Metrics(), TOKEN), "127.0.0.1", 0)
    try:
        async with launched(chromium, tmp_path) as browser:
            cdp = browser.cdp
            await cdp.call("Page.navigate", url=f"http://127.0.0.1:{bound_port(runner)}/")
            await cdp.wait_for("document.getElementById('auth').classList.contains('shown') && "
                               "document.getElementById('banner').textContent.includes('bearer token')",
                               "the token form")
            assert await cdp.evaluate("document.querySelectorAll('#connectors tbody tr').length") == 0
            await cdp.evaluate(f"document.getElementById('token').value = {json.dumps(TOKEN)}; "
                               "document.getElementById('auth').requestSubmit(); true")
            await cdp.wait_for("document.querySelectorAll('#connectors tbody tr').length === 2 && "
                               "!document.getElementById('auth').classList.contains('shown')",
                               "the table after entering the token")
    finally:
        await runner.cleanup()
