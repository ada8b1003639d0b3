"""Acceptance: deliver PostgreSQL changes to a FileStreamSink, lose the target, `cdc replay` the sink from
`earliest`, from an LSN and from a time, and the next `cdc run --stop-at-end` re-delivers exactly from there.

Real PostgreSQL 15 (tests/conftest.py), real `cdc` processes; the oracle is the journal and the database.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from cdc.readers.pgoutput import lsn_to_str
from tests.e2e.harness import (
    as_text,
    execute,
    journal_records,
    read_events,
    replay,
    run_cdc,
    run_to_end,
    table_state,
    write_connectors,
)
from tests.servers.postgres import PgServer


def journal_values(data: Path) -> list[tuple[int, dict[str, Any]]]:
    return [(r.seq, orjson.loads(r.value)) for r in journal_records(data) if r.value is not None]


def items(events: list[dict[str, Any]]) -> Any:
    """The items table as a consumer applying `events` by key holds it (the database's text form)."""
    return as_text(replay(events, {"items": ["id"]})["items"], ["id"], {})


def cdc_ok(*args: str) -> str:
    p = run_cdc(list(args), extra_env={"COLUMNS": "250"})
    assert p.returncode == 0, f"cdc {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def test_replay_from_earliest_lsn_and_time(pg_server: PgServer, pg_db: str, tmp_path: Path) -> None:
    db = pg_db.rsplit("dbname=", 1)[1]
    execute(pg_db, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int)",
            "INSERT INTO items SELECT g, 'item ' || g, g * 10 FROM generate_series(1, 20) g")
    files = write_connectors(tmp_path, pg_server, db, "rp")
    out, data = tmp_path / "out" / "rp.jsonl", tmp_path / "data"
    run_to_end(files, data)  # the snapshot
    execute(pg_db, "BEGIN; INSERT INTO items VALUES (100, 'new', 1); UPDATE items SET qty = 0 WHERE id = 1; COMMIT")
    execute(pg_db, "BEGIN; DELETE FROM items WHERE id = 2; UPDATE items SET name = 'x' WHERE id = 3; COMMIT")
    time.sleep(0.05)  # the last transaction commits measurably later: replay it by time
    execute(pg_db, "BEGIN; INSERT INTO items VALUES (101, 'newer', 2); UPDATE items SET qty = 5 WHERE id = 100; "
                   "COMMIT")
    run_to_end(files, data)
    delivered = read_events(out)
    journal = journal_values(data)
    assert delivered == [v for _, v in journal]
    state = table_state(pg_db, "items", ["id"], ["id", "name", "qty"])
    assert items(delivered) == state

    shown = cdc_ok("offsets", "show", "--data-dir", str(data), "rp", "rp-file")
    assert "lsn" in shown and "rp-file" in shown

    # The target lost everything: replay from the oldest record, and it is whole again.
    out.write_text("")
    cdc_ok("replay", "rp-file", "--from", "earliest", "--data-dir", str(data), *map(str, files))
    run_to_end(files, data)
    assert read_events(out) == delivered
    assert items(read_events(out)) == state

    # From an LSN: the first change of the second streamed transaction (a delete, with its tombstone).
    streamed = [(seq, v) for seq, v in journal if v["op"] != "r"]
    second = next((seq, v) for seq, v in streamed if v["op"] == "d")
    out.write_text("")
    said = cdc_ok("replay", "rp-file", "--from", f"lsn:{lsn_to_str(second[1]['source']['lsn'])}", "--data-dir",
                  str(data))
    assert f"resumes at seq {second[0]}" in said
    run_to_end(files, data)
    assert read_events(out) == [v for seq, v in journal if seq >= second[0]]

    # From a time: the last transaction's commit time.
    last_ts = streamed[-1][1]["source"]["ts_ms"]
    first_of_last = next(seq for seq, v in streamed if v["source"]["ts_ms"] == last_ts)
    out.write_text("")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(last_ts / 1000)) + f".{last_ts % 1000:03d}Z"
    cdc_ok("replay", "rp-file", "--from", f"time:{stamp}", "--data-dir", str(data), *map(str, files))
    run_to_end(files, data)
    assert [e["after"]["id"] for e in read_events(out)] == [101, 100]
    assert read_events(out) == [v for seq, v in journal if seq >= first_of_last]

    # The source's slot has confirmed its position: an older LSN is refused with the reason.
    back = run_cdc(["offsets", "set", "rp", f"lsn:{lsn_to_str(second[1]['source']['lsn'])}", "--data-dir",
                    str(data)])
    assert back.returncode == 1 and "discarded the older WAL" in back.stderr


def test_retention_removes_delivered_records_and_replay_reaches_back_as_far(pg_server: PgServer, pg_db: str,
                                                                           tmp_path: Path) -> None:
    db = pg_db.rsplit("dbname=", 1)[1]
    execute(pg_db, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int)",
            "INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, 20) g")
    files = write_connectors(tmp_path, pg_server, db, "rt", extra={"journal.retention.ms": "1"})
    out, data = tmp_path / "out" / "rt.jsonl", tmp_path / "data"
    run_to_end(files, data)  # the snapshot: 20 records, delivered
    # Each run prunes at its start what is delivered and older than 1 ms -- judged by the journal's
    # time index, to the second -- and journals one more change.
    for n in range(100, 110):
        execute(pg_db, f"INSERT INTO items VALUES ({n}, 'new', 1)")
        run_to_end(files, data)
        if journal_values(data)[0][0] > 20:
            break
    retained = journal_values(data)
    assert retained and retained[0][0] > 20, "the snapshot's records were removed"
    delivered = read_events(out)
    assert items(delivered) == table_state(pg_db, "items", ["id"], ["id", "name", "qty"]), "nothing lost on the way"

    # `earliest` is the oldest record retained; older positions are refused with what to do.
    out.write_text("")
    cdc_ok("replay", "rt-file", "--from", "earliest", "--data-dir", str(data), *map(str, files))
    run_to_end(files, data)
    assert read_events(out) == [v for _, v in journal_values(data)]
    refused = run_cdc(["replay", "rt-file", "--from", "journal:1", "--data-dir", str(data)])
    assert refused.returncode == 1 and "journal.retention.ms" in refused.stderr, refused.stderr
