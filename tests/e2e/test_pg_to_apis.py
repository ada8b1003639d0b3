"""Acceptance: PostgreSQL legacy table -> mapping -> each cloud-API emulator, through faults and a SIGKILL.

For every vendor (and the generic REST sink with its batch endpoint): a real `cdc run` streams a
customer table while the emulator answers 10% of requests with 429 (Retry-After) or 5xx, resets
connections and fails some batch records; the bridge is SIGKILLed mid-delivery, restarted, its OAuth
tokens expire, and the API goes down for 20 s while the ERP keeps changing. At the end the emulator's
records equal the mapping run as a query on the source, no key's version ever went backwards, no
event was applied twice, and nothing was both delivered and dead-lettered.

Then the dead-letter story: a record the API rejects (an e-mail without '@') is dead-lettered with
the vendor's message and its business key while the stream flows, and is delivered once the source row
is fixed (its entry becomes superseded); a record rejected by a rule the API later drops is delivered
by `cdc dlq retry`.

Each row's `rowver` comes from one database sequence and is set on every change, so it is a per-key
source position the emulators check (their `order_field`).
"""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.harness import Bridge, execute, run_cdc
from tests.emulators import Emulator, start_emulator
from tests.servers.postgres import PgServer

MAPPING = """-- Active customers of the legacy ERP, free-form (the select-list names are the vendor's fields).
SELECT TRIM(cuno) AS id, TRIM(name) AS name, email, rowver AS version
FROM erp.customer
WHERE status <> 'X'
"""

ROWS = 400


def sink_config(kind: str, emu: Emulator) -> dict[str, str]:
    c = emu.credentials
    common = {"batch.linger.ms": "5", "circuit.breaker.open.ms": "2000", "errors.retry.delay.max.ms": "2000",
              "rate.limit.records.per.second": "1500", "http.timeout.ms": "3000"}
    if kind == "generic":
        return {"connector.class": "sinks.http.HttpSink", "http.batch.url": f"{emu.url}/batch",
                "http.auth.type": "oauth2",
                "http.auth.oauth2.token.url": c["token_url"], "http.auth.oauth2.client.id": c["client_id"],
                "http.auth.oauth2.client.secret": c["client_secret"], **common}
    if kind == "salesforce":
        return {"connector.class": "sinks.salesforce.SalesforceSink", "salesforce.instance.url": emu.url,
                "salesforce.token.url": c["token_url"], "salesforce.client.id": c["client_id"],
                "salesforce.client.secret": c["client_secret"], "salesforce.sobject": "Account", **common}
    if kind == "hubspot":
        return {"connector.class": "sinks.hubspot.HubSpotSink", "hubspot.base.url": emu.url,
                "hubspot.access.token": c["token"], "hubspot.object.type": "companies",
                "hubspot.id.property": "erp_id", **common}
    if kind == "netsuite":
        return {"connector.class": "sinks.netsuite.NetSuiteSink", "netsuite.base.url": emu.url,
                "netsuite.token.url": c["token_url"], "netsuite.client.id": c["client_id"],
                "netsuite.client.secret": c["client_secret"], "netsuite.record.type": "customer", **common}
    return {"connector.class": "sinks.dynamics.DynamicsSink", "dynamics.base.url": emu.url,
            "dynamics.token.url": c["token_url"], "dynamics.client.id": c["client_id"],
            "dynamics.client.secret": c["client_secret"], "dynamics.scope": c["scope"],
            "dynamics.entity.set": "accounts", "dynamics.alternate.key": "accountnumber", **common}


def secrets_of(emu: Emulator) -> list[str]:
    return [v for k, v in emu.credentials.items() if k in ("client_secret", "token", "password", "api_key")]


def write_files(tmp: Path, srv: PgServer, db: str, kind: str, emu: Emulator) -> list[Path]:
    (tmp / "customer.sql").write_text(MAPPING)
    src = {"name": "erp", "config": {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": str(srv.port), "database.user": "postgres",
        "database.password": "${env:E2E_PG_PASSWORD}", "database.dbname": db, "topic.prefix": "erp",
        "slot.name": f"slot_{kind}", "publication.name": f"pub_{kind}", "table.include.list": "erp\\..*"}}
    sink = {"name": "crm", "config": {"topics.regex": "erp\\.erp\\..*", "mapper.sql": "customer.sql",
                                      **sink_config(kind, emu)}}
    files = [tmp / "source.json", tmp / "sink.json"]
    files[0].write_text(json.dumps(src))
    files[1].write_text(json.dumps(sink))
    return files


def customer_table(dsn: str) -> None:
    """The legacy customer table, ROWS rows, every 50th inactive ('X')."""
    execute(dsn, "CREATE SCHEMA erp", "CREATE SEQUENCE erp.rowver",
            "CREATE TABLE erp.customer (cuno char(10) PRIMARY KEY, name varchar(80) NOT NULL, email varchar(80), "
            "status char(1) NOT NULL, rowver bigint NOT NULL DEFAULT nextval('erp.rowver'))",
            "ALTER TABLE erp.customer REPLICA IDENTITY FULL",
            f"INSERT INTO erp.customer (cuno, name, email, status) SELECT 'C' || lpad(i::text, 4, '0'), "
            f"'Customer ' || i, 'c' || i || '@example.com', CASE WHEN i % 50 = 0 THEN 'X' ELSE 'A' END "
            f"FROM generate_series(1, {ROWS}) i")


def expected(dsn: str) -> dict[str, dict[str, str]]:
    """The mapping run as a query on the source: key -> fields, as text (HubSpot stores text)."""
    with psycopg.connect(dsn) as c:
        rows = c.execute("SELECT TRIM(cuno), TRIM(name), email, rowver FROM erp.customer "
                         "WHERE status <> 'X'").fetchall()
    return {r[0]: {"name": r[1], "email": r[2], "version": str(r[3])} for r in rows}


def actual(emu: Emulator) -> dict[str, dict[str, str]]:
    return {k: {f: str(v.get(f)) for f in ("name", "email", "version")} for k, v in emu.records().items()}


def changes(dsn: str, rnd: random.Random, rounds: int) -> None:
    """Updates in small transactions, some rows leaving and re-entering the filter, some deleted."""
    with psycopg.connect(dsn, autocommit=True) as c:
        for _ in range(rounds):
            keys = [f"C{rnd.randint(1, ROWS):04d}" for _ in range(8)]
            with c.transaction():
                for k in keys:
                    c.execute("UPDATE erp.customer SET name = name || '.', rowver = nextval('erp.rowver') "
                              "WHERE cuno = %s", (k,))
        with c.transaction():
            c.execute("UPDATE erp.customer SET status = CASE status WHEN 'X' THEN 'A' ELSE 'X' END, "
                      "rowver = nextval('erp.rowver') WHERE cuno IN (SELECT cuno FROM erp.customer "
                      "ORDER BY md5(cuno || %s) LIMIT 6)", (str(rnd.random()),))
            c.execute("DELETE FROM erp.customer WHERE cuno IN (SELECT cuno FROM erp.customer "
                      "ORDER BY md5(cuno || %s) LIMIT 3)", (str(rnd.random()),))


def dlq(files: list[Path], data: Path, *args: str) -> list[dict[str, Any]]:
    p = run_cdc(["dlq", "list", "--data-dir", str(data), "--json", *args])
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


@pytest.mark.parametrize("kind", ["generic", "salesforce", "hubspot", "netsuite", "dynamics"])
def test_every_change_reaches_the_api_through_faults_crash_and_outage(
        kind: str, pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    db = psycopg.conninfo.conninfo_to_dict(pg_db)["dbname"]
    assert isinstance(db, str)
    customer_table(pg_db)
    rnd = random.Random(7)
    data = tmp_path / "data"
    with start_emulator(kind, auth="oauth2" if kind == "generic" else None) as emu:
        files = write_files(tmp_path, pg_server, db, kind, emu)
        emu.faults.rate_429, emu.faults.retry_after_s = 0.05, 0.2
        emu.faults.rate_5xx, emu.faults.rate_reset, emu.faults.partial = 0.05, 0.01, 0.05
        with Bridge(files, data, tmp_path / "run1.log") as bridge:
            execute(pg_db, "INSERT INTO erp.customer (cuno, name, email, status) "
                    "VALUES ('C9001', 'Broken Mail Ltd', 'no-at-sign.example.com', 'A')")
            changes(pg_db, rnd, 60)
            bridge.wait_for(lambda: emu.stats["applied"] > 300, "a third of the backlog delivered")
            bridge.stop(signal.SIGKILL)
        if kind != "hubspot":  # a private-app token does not expire (revoking it is for an operator to fix)
            emu.expire_tokens()
        with Bridge(files, data, tmp_path / "run2.log") as bridge:
            emu.outage(20)
            changes(pg_db, rnd, 60)
            want = {k: v for k, v in expected(pg_db).items() if k != "C9001"}
            bridge.wait_for(lambda: actual(emu) == want, "the API to hold the mapping's result", timeout=180)
            letters = dlq(files, data)
            assert [(d["key"], d["entity"], d["state"]) for d in letters] == [("C9001", "crm", "pending")]
            assert "@" in letters[0]["error"] or "mail" in letters[0]["error"].lower()
            # Fixing the source row delivers it; the old entry is superseded, not re-sent.
            execute(pg_db, "UPDATE erp.customer SET email = 'ap@broken-mail.example', "
                    "rowver = nextval('erp.rowver') WHERE cuno = 'C9001'")
            bridge.wait_for(lambda: actual(emu) == expected(pg_db), "the fixed record delivered", timeout=60)
            assert dlq(files, data) == []
            assert [d["state"] for d in dlq(files, data, "--state", "all")] == ["superseded"]
            # A rejection the API drops later: `cdc dlq retry` delivers it.
            emu.reject("name", "Embargoed GmbH")
            execute(pg_db, "INSERT INTO erp.customer (cuno, name, email, status) "
                    "VALUES ('C9002', 'Embargoed GmbH', 'e@embargoed.example', 'A')")
            bridge.wait_for(lambda: len(dlq(files, data)) == 1, "the rejected record dead-lettered")
            assert bridge.stop() == 0
        emu.faults.reject_rules.clear()
        p = run_cdc(["dlq", "retry", "--data-dir", str(data), *map(str, files)])
        assert p.returncode == 0, p.stdout + p.stderr
        assert "1 delivered" in p.stdout
        assert actual(emu) == expected(pg_db)
        assert [d["state"] for d in dlq(files, data, "--key", "C9002", "--state", "all")] == ["delivered"]
        assert emu.violations == []
        # Nothing both delivered and dead-lettered: C9001 reached the API only once fixed.
        assert {w.fields.get("email") for w in emu.writes if w.key == "C9001"} == {"ap@broken-mail.example"}
        assert emu.stats.get("status_503", 0) > 0 and emu.stats.get("status_429", 0) > 0
        logs = (tmp_path / "run1.log").read_text() + (tmp_path / "run2.log").read_text() + p.stdout + p.stderr
        for secret in secrets_of(emu):
            assert secret not in logs
