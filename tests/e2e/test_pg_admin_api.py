"""`cdc run --http`: the Kafka Connect REST API, /metrics and health endpoints over a real running bridge."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

from tests.e2e.harness import Bridge, execute, run_cdc, write_connectors
from tests.servers.postgres import PgServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, method: str = "GET") -> tuple[int, Any]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
            status = r.status
            ctype = r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        body, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
    return status, json.loads(body) if "json" in ctype else body.decode()


def delivered(metrics: str, sink: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(f'cdc_sink_delivered_total{{connector="{sink}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_rest_api_metrics_and_health_of_a_running_bridge(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    db = psycopg.conninfo.conninfo_to_dict(pg_db)["dbname"]
    assert isinstance(db, str)
    execute(pg_db, "CREATE TABLE item (id int PRIMARY KEY, name text)")
    files = write_connectors(tmp_path, pg_server, db, "adm", snapshot="no_data")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with Bridge(files, tmp_path / "data", tmp_path / "run.log", "--http", f"127.0.0.1:{port}") as bridge:
        bridge.wait_for(lambda: "admin API" in bridge.output() and "streaming from" in bridge.output(),
                        "the admin API listening and the source streaming")
        execute(pg_db, "INSERT INTO item SELECT i, 'n' || i FROM generate_series(1, 50) i")
        bridge.wait_for(lambda: delivered(get(f"{base}/metrics")[1], "adm-file") >= 50, "delivered in /metrics")
        assert get(f"{base}/connectors") == (200, ["adm", "adm-file"])
        status, body = get(f"{base}/connectors/adm/status")
        assert status == 200 and body["connector"]["state"] == "RUNNING" and body["type"] == "source"
        status, config = get(f"{base}/connectors/adm/config")
        assert status == 200 and config["database.password"] == "********" and config["slot.name"] == "slot_adm"
        assert get(f"{base}/healthz")[0] == 200 and get(f"{base}/readyz")[0] == 200
        status, offsets = get(f"{base}/connectors/adm-file/offsets")
        assert status == 200 and offsets["offsets"][0]["offset"]["seq"] >= 50
        status, body = get(f"{base}/connectors/adm/pause", "PUT")
        assert status == 501 and "restart `cdc run`" in body["message"]
        metrics = get(f"{base}/metrics")[1]
        assert 'cdc_source_lag_seconds{connector="adm"}' in metrics
        assert 'cdc_sink_journal_depth_events{connector="adm-file"}' in metrics
        assert get(f"{base}/connectors/nope/status")[0] == 404
        assert bridge.stop() == 0
    p = run_cdc(["run", "--http", "0.0.0.0:18083", "--data-dir", str(tmp_path / "d2"), *map(str, files)],
                extra_env={"COLUMNS": "200"})
    assert p.returncode == 2 and "needs a bearer token" in p.stderr
