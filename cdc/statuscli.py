"""`cdc status [--json] [--watch]`: how far behind every connector of a running bridge is, at a glance.

Role: one GET of the admin API's ``/api/history`` (`cdc.admin.server.history`) of a running `cdc run
--http`, shown as a table: each connector's state, its lag in seconds, in change-log bytes not yet
confirmed (sources) and in journal records not yet delivered (sinks), its throughput and dead letters;
a FAILED connector's error under the table. ``--json`` prints the same as one JSON document;
``--watch`` fetches again every ``--interval`` seconds and redraws in place (piped: appends; with
``--json``: one JSON line per fetch) until Ctrl-C. The pure part (`parse`, `render`, the formatters)
turns the answer into rows and strings and is tested with plain dicts; only `fetch` does I/O (the
stdlib's urllib: one GET needs no session, and the command starts fast).

Failure story: every failure is one line on stderr and exit status 1: no bridge answers at the URL
(connection refused, timeout, unknown host), 401 (no token, or the wrong one), another HTTP error, an
answer that is not the history document. Under ``--watch`` an unreachable bridge is shown and asked
again (it may be restarting); the others end the command. Fields an older bridge does not send
(``lag_bytes``, ``journal_depth``) are unknown, shown as "—". The token is sent as ``Authorization:
Bearer`` and never printed; traces arrive already redacted by the server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

__all__ = ["ConnectorStatus", "Status", "StatusError", "Unreachable", "fetch", "parse", "render", "status"]

DEFAULT_URL = "http://127.0.0.1:8083"
TIMEOUT_S = 10.0
UNKNOWN = "—"

# Kafka Connect's states as an operator reads them: held by request is a warning, FAILED an alarm.
STATE_STYLES: dict[str, str] = {"RUNNING": "green", "PAUSED": "yellow", "STOPPED": "yellow", "FAILED": "bold red"}


class StatusError(Exception):
    """Why the bridge's status could not be read; the message is the whole line shown."""


class Unreachable(StatusError):
    """Nothing answered at the URL (a watch asks again: the bridge may be restarting)."""


# --- the pure part: the answer as values, the values as text ---------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectorStatus:
    """One connector of the answer; None wherever the bridge does not know (or does not send) a value."""

    name: str
    type: str
    state: str
    lag_seconds: float | None
    lag_bytes: int | None       # sources: change-log bytes not yet confirmed
    journal_depth: int | None   # sinks: journal records not yet delivered
    events_per_second: float | None
    dead_letters: int | None
    trace: str | None


@dataclass(frozen=True, slots=True)
class Status:
    worker_id: str
    now: float   # the bridge's clock, Unix seconds
    connectors: tuple[ConnectorStatus, ...]


def _number(entry: dict[str, Any], key: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    # bool is an int to Python, never a measure; NaN/inf would print as nonsense.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StatusError(f"the bridge's answer is malformed: '{key}' of connector '{entry.get('name')}' "
                          f"is {value!r}, not a number")
    return float(value)


def _count(entry: dict[str, Any], key: str) -> int | None:
    value = _number(entry, key)
    return None if value is None else int(value)


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str):
        raise StatusError(f"the bridge's answer is malformed: {where} has no '{key}' string")
    return value


def parse(doc: Any) -> Status:
    """The ``/api/history`` document as a `Status`; `StatusError` when it is not one."""
    if not isinstance(doc, dict) or not isinstance(doc.get("connectors"), list):
        raise StatusError("the bridge's answer is malformed: no 'connectors' list (is this a cdc bridge?)")
    connectors = []
    for i, entry in enumerate(doc["connectors"]):
        if not isinstance(entry, dict):
            raise StatusError(f"the bridge's answer is malformed: connector #{i + 1} is not an object")
        name = _text(entry, "name", f"connector #{i + 1}")
        trace = entry.get("trace")
        connectors.append(ConnectorStatus(
            name=name, type=str(entry.get("type") or "?"), state=_text(entry, "state", f"connector '{name}'"),
            lag_seconds=_number(entry, "lag_seconds"), lag_bytes=_count(entry, "lag_bytes"),
            journal_depth=_count(entry, "journal_depth"), events_per_second=_number(entry, "events_per_second"),
            dead_letters=_count(entry, "dead_letters"), trace=trace if isinstance(trace, str) else None))
    now = doc.get("now")
    return Status(worker_id=str(doc.get("worker_id") or "?"),
                  now=float(now) if isinstance(now, int | float) and not isinstance(now, bool) else time.time(),
                  connectors=tuple(connectors))


def duration(seconds: float | None) -> str:
    """'0.4 s', '42.0 s', '3 min 12 s', '2 h 5 min', '3 d 4 h'; '—' when unknown."""
    if seconds is None:
        return UNKNOWN
    s = max(seconds, 0.0)   # a source clock ahead of ours is no lag, not a negative one
    if round(s, 1) < 60:
        return f"{s:.1f} s"
    whole = round(s)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def size(n: int | None) -> str:
    """'512 B', '1.5 KiB', '3.2 MiB', '1.0 GiB'...; '—' when unknown."""
    if n is None:
        return UNKNOWN
    if n < 1024:
        return f"{max(n, 0)} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if round(value, 1) < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def count(n: int | None) -> str:
    return UNKNOWN if n is None else f"{n:,}"


def rate(events_per_second: float | None) -> str:
    if events_per_second is None:
        return UNKNOWN
    return f"{events_per_second:,.0f}" if events_per_second >= 100 else f"{events_per_second:.1f}"


COLUMNS = ("connector", "type", "state", "lag", "lag bytes", "behind", "events/s", "dead letters")


def row(c: ConnectorStatus) -> tuple[str, ...]:
    """The table's cells for one connector, in `COLUMNS` order."""
    return (c.name, c.type, c.state, duration(c.lag_seconds), size(c.lag_bytes), count(c.journal_depth),
            rate(c.events_per_second), count(c.dead_letters))


def first_line(trace: str) -> str:
    return next((line.strip() for line in trace.splitlines() if line.strip()), "")


def when(now: float) -> str:
    return dt.datetime.fromtimestamp(now).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def render(status: Status) -> RenderableType:
    """The table, each FAILED connector's error under it, and a summary line."""
    table = Table(*COLUMNS)
    for column in table.columns[3:]:
        column.justify = "right"
    for c in status.connectors:
        cells = [Text(cell) for cell in row(c)]
        cells[2].stylize(STATE_STYLES.get(c.state, ""))
        if c.dead_letters:
            cells[7].stylize("yellow")
        table.add_row(*cells)
    parts: list[RenderableType] = [table]
    for c in status.connectors:
        if c.state == "FAILED":
            parts.append(Text.assemble((f"{c.name} FAILED: ", "bold red"),
                                       first_line(c.trace or "") or "(no error text)"))
    states = [c.state for c in status.connectors]
    tally = ", ".join(f"{states.count(s)} {s.lower()}" for s in dict.fromkeys(states))
    parts.append(Text(f"worker {status.worker_id} · {when(status.now)} · "
                      f"{len(states)} connector{'' if len(states) == 1 else 's'}" + (f": {tally}" if tally else ""),
                      style="dim"))
    return Group(*parts)


def as_json(status: Status) -> bytes:
    return orjson.dumps({"worker_id": status.worker_id, "now": status.now,
                         "connectors": [asdict(c) for c in status.connectors]})


# --- I/O ----------------------------------------------------------------------------------------------


def normalize(url: str) -> str:
    """`cdc run --http`'s HOST:PORT is accepted as is: http:// is assumed."""
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def _unreachable(url: str, why: object) -> str:
    if isinstance(why, TimeoutError):   # socket.timeout is TimeoutError
        reason = "timed out"
    elif isinstance(why, OSError) and why.strerror:   # "Connection refused" -> "connection refused"
        reason = why.strerror[0].lower() + why.strerror[1:]
    else:
        reason = str(why) or type(why).__name__
    return f"no bridge answers at {url}: {reason}; is `cdc run` running with --http? pass --url"


def fetch(url: str, token: str | None, timeout: float = TIMEOUT_S) -> Any:
    """GET {url}/api/history as parsed JSON; `Unreachable` / `StatusError` with the line to show."""
    request = urllib.request.Request(f"{url}/api/history", headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
    except urllib.error.HTTPError as e:
        if e.code == 401:
            raise StatusError("the bridge refused the token: check --token or CDC_HTTP_TOKEN" if token else
                              "the bridge requires a token: pass --token or set CDC_HTTP_TOKEN") from None
        raise StatusError(f"{url}/api/history answered HTTP {e.code} {e.reason}{_message(e)}"
                          + (" (is this a cdc bridge?)" if e.code == 404 else "")) from None
    except urllib.error.URLError as e:   # refused, unknown host, timeout while connecting
        raise Unreachable(_unreachable(url, e.reason)) from None
    except (OSError, ValueError) as e:   # a timeout or reset while reading; ValueError: a URL urllib refuses
        raise Unreachable(_unreachable(url, e)) from None
    try:
        return json.loads(body)
    except ValueError:
        raise StatusError(f"the answer of {url}/api/history is not JSON (is this a cdc bridge?)") from None


def _message(e: urllib.error.HTTPError) -> str:
    """Kafka Connect's error message from the body, if any (the server redacts secrets in it)."""
    try:
        message = json.loads(e.read()).get("message")
    except (OSError, ValueError, AttributeError):
        return ""
    # aiohttp's own 404/405 carry only "HTTP 404 Not Found": already said.
    useless = not isinstance(message, str) or not message or message == f"HTTP {e.code} {e.reason}"
    return "" if useless else f": {message}"


def _status(url: str, token: str | None) -> Status:
    return parse(fetch(url, token))


def _fail(e: StatusError) -> typer.Exit:
    Console(stderr=True).print(Text(str(e), style="red"), soft_wrap=True)
    return typer.Exit(1)


def _watch(url: str, token: str | None, json_lines: bool, interval: float, out: Console) -> NoReturn:
    """Fetch and show every `interval` seconds until Ctrl-C; an unreachable bridge is asked again."""
    if json_lines:
        while True:
            try:
                typer.echo(as_json(_status(url, token)).decode())
            except Unreachable as e:
                Console(stderr=True).print(Text(str(e), style="red"), soft_wrap=True)
            time.sleep(interval)
    # Redrawn in place on a terminal; piped into a file or `tee`, each refresh is printed after the last.
    with Live(Text("asking the bridge..."), console=out, auto_refresh=False,
              redirect_stdout=False) if out.is_terminal else contextlib.nullcontext() as live:
        while True:
            try:
                shown: RenderableType = render(_status(url, token))
            except Unreachable as e:
                shown = Text.assemble((when(time.time()) + " ", "dim"), (str(e), "red"))
            if live is None:
                out.print(shown)
            else:
                live.update(shown, refresh=True)
            time.sleep(interval)


def status(
        url: Annotated[str, typer.Option("--url", envvar="CDC_HTTP_URL",
                                         help="The bridge's admin API (`cdc run --http`).")] = DEFAULT_URL,
        token: Annotated[str | None, typer.Option("--token", envvar="CDC_HTTP_TOKEN", show_default=False,
                                                  help="Bearer token, if the bridge requires one.")] = None,
        json_: Annotated[bool, typer.Option("--json", help="One JSON document (with --watch: one line per "
                                                            "refresh).")] = False,
        watch: Annotated[bool, typer.Option("--watch", help="Refresh until Ctrl-C.")] = False,
        interval: Annotated[float, typer.Option("--interval", min=0.1,
                                                help="Seconds between refreshes with --watch.")] = 2.0) -> None:
    """How far behind every connector of a running bridge is: lag in seconds, bytes and records."""
    url = normalize(url)
    out = Console()
    try:
        if watch:
            _watch(url, token, json_, interval, out)
        current = _status(url, token)
    except StatusError as e:
        raise _fail(e) from None
    except KeyboardInterrupt:   # the way to end --watch: not an error
        return
    if json_:
        typer.echo(as_json(current).decode())
    else:
        out.print(render(current))
