"""`cdc run --http`: the Kafka Connect REST API, /metrics and health endpoints over a real running bridge."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

from tests.e2e.harness import Bridge, execute, read_events, run_cdc, write_connectors
from tests.servers.postgres import PgServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
            status = r.status
            ctype = r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        body, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
    return status, json.loads(body) if "json" in ctype else body.decode()


def metric(metrics: str, series: str) -> float | None:
    """The value of one series (name and labels exactly as exposed), or None if it is not there."""
    for line in metrics.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def delivered(metrics: str, sink: str) -> float:
    return metric(metrics, f'cdc_sink_delivered_total{{connector="{sink}"}}') or 0.0


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
        bridge.wait_for(lambda: 'cdc_source_lag_bytes{connector="adm"}' in get(f"{base}/metrics")[1],
                        "a sample of the source's lag in bytes")
        metrics = get(f"{base}/metrics")[1]
        assert 'cdc_source_lag_seconds{connector="adm"}' in metrics
        assert 'cdc_sink_journal_depth_events{connector="adm-file"}' in metrics
        assert metric(metrics, 'cdc_source_events_total{connector="adm",op="c",table="adm.public.item"}') == 50
        assert metric(metrics, 'cdc_slot_wal_status{connector="adm",status="reserved"}') == 1
        assert (metric(metrics, 'cdc_source_lag_bytes{connector="adm"}') or 0) >= 0
        assert get(f"{base}/connectors/nope/status")[0] == 404
        assert bridge.stop() == 0
    p = run_cdc(["run", "--http", "0.0.0.0:18083", "--data-dir", str(tmp_path / "d2"), *map(str, files)],
                extra_env={"COLUMNS": "200"})
    assert p.returncode == 2 and "needs a bearer token" in p.stderr


def depth(base: str, sink: str) -> float | None:
    return metric(get(f"{base}/metrics")[1], f'cdc_sink_journal_depth_events{{connector="{sink}"}}')


def test_connectors_are_managed_over_the_rest_api(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    db = psycopg.conninfo.conninfo_to_dict(pg_db)["dbname"]
    assert isinstance(db, str)
    execute(pg_db, "CREATE TABLE item (id int PRIMARY KEY, name text)")
    files = write_connectors(tmp_path, pg_server, db, "mgd", snapshot="no_data")
    out = tmp_path / "out" / "mgd.jsonl"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sink = f"{base}/connectors/mgd-file"
    with Bridge(files, tmp_path / "data", tmp_path / "run.log", "--http", f"127.0.0.1:{port}") as bridge:
        bridge.wait_for(lambda: "streaming from" in bridge.output(), "the source streaming")
        execute(pg_db, "INSERT INTO item SELECT i, 'a' || i FROM generate_series(1, 10) i")
        bridge.wait_lines(out, 10)

        # Paused, the sink delivers nothing while the journal grows: its lag rises, then falls after resume.
        assert get(f"{sink}/pause", "PUT")[0] == 202
        assert get(f"{sink}/status")[1]["connector"]["state"] == "PAUSED"
        execute(pg_db, "INSERT INTO item SELECT i, 'b' || i FROM generate_series(11, 20) i")
        bridge.wait_for(lambda: depth(base, "mgd-file") == 10, "the paused sink's journal depth to reach 10")
        assert len(read_events(out)) == 10
        shown = run_cdc(["status", "--url", base, "--json"])
        assert shown.returncode == 0, shown.stderr
        status_of = {c["name"]: c for c in json.loads(shown.stdout)["connectors"]}
        assert status_of["mgd-file"]["state"] == "PAUSED" and status_of["mgd-file"]["journal_depth"] == 10
        assert status_of["mgd"]["state"] == "RUNNING" and status_of["mgd"]["lag_bytes"] is not None
        assert get(f"{sink}/resume", "PUT")[0] == 202
        bridge.wait_lines(out, 20)
        bridge.wait_for(lambda: depth(base, "mgd-file") == 0, "the resumed sink's journal depth back to 0")

        # Offsets change only while STOPPED (Kafka Connect's 400 before); moving the sink back re-delivers.
        status, body = get(f"{sink}/offsets", "PATCH", {"offsets": []})
        assert status == 400 and "STOPPED" in body["message"]
        assert get(f"{sink}/stop", "PUT")[0] == 202
        assert get(f"{sink}/status")[1]["connector"]["state"] == "STOPPED"
        partition = get(f"{sink}/offsets")[1]["offsets"][0]["partition"]
        status, body = get(f"{sink}/offsets", "PATCH", {"offsets": [{"partition": partition, "offset": {"seq": "x"}}]})
        assert status == 400 and "seq" in body["message"]
        status, _ = get(f"{sink}/offsets", "PATCH", {"offsets": [{"partition": partition, "offset": {"seq": 0}}]})
        assert status == 200 and get(f"{sink}/offsets")[1]["offsets"][0]["offset"] == {"seq": 0}
        assert get(f"{sink}/resume", "PUT")[0] == 202
        bridge.wait_lines(out, 40)
        assert [e["after"]["id"] for e in read_events(out)[20:]] == list(range(1, 21))

        # A connector created over the API runs next to the others; a bad config is refused with its problem.
        copy = tmp_path / "out" / "copy.jsonl"
        copy_config = {"connector.class": "FileStreamSink", "file": str(copy), "topics.regex": "mgd\\..*"}
        created = {"name": "copy", "config": copy_config}
        status, body = get(f"{base}/connectors", "POST", created)
        assert status == 201 and body["name"] == "copy" and body["type"] == "sink"
        bridge.wait_lines(copy, 20)
        status, body = get(f"{base}/connectors/copy/config", "PUT", {**copy_config, "topics.regex": "("})
        assert status == 400 and "topics.regex" in body["message"]
        assert get(f"{base}/connectors/copy/status")[1]["connector"]["state"] == "RUNNING"
        assert get(f"{base}/connectors/copy", "DELETE")[0] == 204
        assert get(f"{base}/connectors/copy/status")[0] == 404
        assert get(f"{base}/connectors")[1] == ["mgd", "mgd-file"]

        # A paused source lets go of its slot (the slot keeps the changes); resumed, it captures them.
        assert get(f"{base}/connectors/mgd/pause", "PUT")[0] == 202
        bridge.wait_for(lambda: not slot_active(pg_db, "slot_mgd"), "the paused source to release its slot")
        execute(pg_db, "INSERT INTO item VALUES (100, 'while paused')")
        assert get(f"{base}/connectors/mgd/resume", "PUT")[0] == 202
        bridge.wait_lines(out, 41)
        assert read_events(out)[40]["after"] == {"id": 100, "name": "while paused"}

        # Restarting the source reconnects it; changes keep flowing to the sink.
        assert get(f"{base}/connectors/mgd/restart", "POST")[0] == 204
        execute(pg_db, "UPDATE item SET name = 'z' WHERE id = 1")
        bridge.wait_lines(out, 42)
        assert get(f"{base}/connectors/mgd/status")[1]["connector"]["state"] == "RUNNING"
        assert bridge.stop() == 0


def slot_active(dsn: str, slot: str) -> bool:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
    return bool(row and row[0])


def test_an_incremental_snapshot_sent_over_the_rest_api(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    db = psycopg.conninfo.conninfo_to_dict(pg_db)["dbname"]
    assert isinstance(db, str)
    execute(pg_db, "CREATE TABLE item (id int PRIMARY KEY, name text)",
            "INSERT INTO item SELECT g, 'n' || g FROM generate_series(1, 1000) g", "ANALYZE item",
            "CREATE TABLE debezium_signal (id VARCHAR(42) PRIMARY KEY, type VARCHAR(32) NOT NULL, data VARCHAR(2048))")
    files = write_connectors(tmp_path, pg_server, db, "snp", snapshot="no_data", tables="public\\.item",
                             extra={"signal.data.collection": "public.debezium_signal",
                                    "incremental.snapshot.chunk.size": "100"})
    out = tmp_path / "out" / "snp.jsonl"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rows = 'cdc_incremental_snapshot_rows{connector="snp",table="public.item"}'
    with Bridge(files, tmp_path / "data", tmp_path / "run.log", "--http", f"127.0.0.1:{port}") as bridge:
        bridge.wait_for(lambda: "streaming from" in bridge.output(), "the source streaming")
        status, body = get(f"{base}/connectors/snp/signals", "POST", {
            "type": "execute-snapshot", "data": {"data-collections": ["public.item"], "type": "incremental"}})
        assert status == 202 and body["id"]
        bridge.wait_lines(out, 1000)
        bridge.wait_for(lambda: metric(get(f"{base}/metrics")[1], rows) == 1000, "the snapshot's progress metric")
        metrics = get(f"{base}/metrics")[1]
        assert metric(metrics, 'cdc_incremental_snapshot_pending_tables{connector="snp"}') == 0
        assert metric(metrics, 'cdc_incremental_snapshot_rows_estimate{connector="snp",table="public.item"}') == 1000
        status, body = get(f"{base}/connectors/snp/signals", "POST", {"type": "execute-snapshot", "data": {}})
        assert status == 400 and "data-collections" in body["message"]
        assert bridge.stop() == 0
    events = read_events(out)
    assert sorted(e["after"]["id"] for e in events) == list(range(1, 1001))
    assert {(e["op"], e["source"]["snapshot"]) for e in events} == {("r", "incremental")}
