"""`cdc dlq list|show|drop` as a real process over a journal holding dead letters (retry: tests/e2e)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from cdc.journal.deadletters import DeadLetter
from cdc.journal.sqlite import SqliteJournal
from cdc.types import ChangeEvent
from tests.e2e.harness import run_cdc


def letter(seq: int, entity: str, key: str, error: str, status: int = 422) -> DeadLetter:
    event = orjson.dumps({"id": f"ev{seq}", "type": f"{entity}.upserted", "subject": key, "data": {"id": key}})
    return DeadLetter("crm", seq, f"ev{seq}", entity, f"{entity}.upserted", key, event, status, error, 1,
                      1_700_000_000_000, 1_700_000_000_000 + seq)


def listed(data: Path, *args: str) -> list[dict[str, Any]]:
    p = run_cdc(["dlq", "list", "--data-dir", str(data), "--json", *args])
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


def test_list_show_and_drop_with_filters(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with SqliteJournal(data / "journal.db") as journal:
        journal.append("src", [[ChangeEvent("t", b"1", b"{}")] * 5], {"lsn": 1})
        reader = journal.reader()
        reader.commit_delivery("crm", [5], [letter(3, "customer", "C2", "INVALID_EMAIL_ADDRESS: bad e-mail"),
                                            letter(1, "customer", "C1", "INVALID_EMAIL_ADDRESS: no @"),
                                            letter(2, "order", "O1", "REQUIRED_FIELD_MISSING: Status", 400)])
        reader.commit_delivery("crm", [5], [letter(1, "customer", "C1", "INVALID_EMAIL_ADDRESS: still", 400)])
        reader.close()
    everything = listed(data)
    assert [(d["key"], d["seq"]) for d in everything] == [("C1", 1), ("C2", 3), ("O1", 2)]  # key order
    c1 = everything[0]
    assert (c1["attempts"], c1["status"], c1["error"], c1["state"]) == (2, 400, "INVALID_EMAIL_ADDRESS: still",
                                                                         "pending")
    assert [d["key"] for d in listed(data, "--entity", "Customer")] == ["C1", "C2"]
    assert [d["key"] for d in listed(data, "--error", "required_field")] == ["O1"]
    assert [d["key"] for d in listed(data, "--key", "C2", "--connector", "crm")] == ["C2"]
    assert listed(data, "--connector", "other") == []

    table = run_cdc(["dlq", "list", "--data-dir", str(data)], extra_env={"COLUMNS": "200"})
    assert table.returncode == 0 and "INVALID_EMAIL_ADDRESS" in table.stdout and "3 entries" in table.stdout
    shown = run_cdc(["dlq", "show", str(c1["id"]), "--data-dir", str(data)])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["event"]["subject"] == "C1"
    assert run_cdc(["dlq", "show", "999", "--data-dir", str(data)]).returncode == 1

    dropped = run_cdc(["dlq", "drop", "--data-dir", str(data), "--entity", "customer", "--yes"])
    assert dropped.returncode == 0 and "dropped 2" in dropped.stdout
    assert [d["key"] for d in listed(data)] == ["O1"]
    bad = run_cdc(["dlq", "list", "--data-dir", str(data), "--state", "gone"], extra_env={"COLUMNS": "200"})
    assert bad.returncode == 2 and "'gone' is not a state; use one of pending, delivered, superseded" in bad.stderr
    missing = run_cdc(["dlq", "list", "--data-dir", str(tmp_path / "nowhere")])
    assert missing.returncode == 1 and "no journal" in missing.stderr
