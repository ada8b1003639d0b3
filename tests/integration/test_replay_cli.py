"""`cdc offsets show|set` and `cdc replay` as real processes over a journal holding Debezium envelopes
(the capture side is exercised end to end in tests/e2e/test_pg_replay.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from cdc.journal.deadletters import DeadLetter, DeadLetterFilter
from cdc.journal.retention import RetentionPolicy
from cdc.journal.sqlite import JournalReader, SqliteJournal
from tests.e2e.harness import run_cdc
from tests.unit.test_positions import UUID, pg_journal

PG_PASSWORD = "Pg-S3cret-never-shown"


def journal(tmp_path: Path) -> Path:
    """The unit tests' journal (PostgreSQL source `erp`, seqs 1-8, a MySQL source `shop` at seq 6), a file
    sink `erp-file` that delivered everything and an API sink `crm` with lane progress and a dead letter."""
    data = tmp_path / "data"
    pg_journal(data / "journal.db")
    with JournalReader(data / "journal.db") as reader:
        reader.commit_cursor("erp-file", 8)
        letter = DeadLetter("crm", 2, "ev2", "order", "order.upserted", "O2", b"{}", 422, "bad", 1, 1, 1)
        reader.commit_delivery("crm", [8, 7], [letter])
    return data


def configs(tmp_path: Path) -> list[Path]:
    source = {"name": "erp", "config": {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector", "database.hostname": "127.0.0.1",
        "database.user": "cdc", "database.password": "${env:REPLAY_PG_PASSWORD}", "database.dbname": "erp",
        "topic.prefix": "erp"}}
    shop = {"name": "shop", "config": {
        "connector.class": "io.debezium.connector.mysql.MySqlConnector", "database.hostname": "127.0.0.1",
        "database.user": "cdc", "database.password": "${env:REPLAY_PG_PASSWORD}", "database.server.id": "5",
        "topic.prefix": "shop"}}
    sink = {"name": "erp-file", "config": {"connector.class": "FileStreamSink", "file": str(tmp_path / "out.jsonl"),
                                           "topics.regex": "erp\\..*"}}
    files = []
    for doc in (source, shop, sink):
        path = tmp_path / f"{doc['name']}.json"
        path.write_text(json.dumps(doc))
        files.append(path)
    return files


def cdc(*args: str | Path) -> Any:
    return run_cdc([str(a) for a in args], extra_env={"COLUMNS": "250", "REPLAY_PG_PASSWORD": PG_PASSWORD})


def shown(data: Path, *names: str) -> dict[str, Any]:
    p = cdc("offsets", "show", "--data-dir", data, "--json", *names)
    assert p.returncode == 0, p.stderr
    result: dict[str, Any] = json.loads(p.stdout)
    return result


def cursor(data: Path, sink: str) -> int:
    with JournalReader(data / "journal.db") as reader:
        return reader.cursor(sink)


def test_offsets_show(tmp_path: Path) -> None:
    data = journal(tmp_path)
    doc = shown(data)
    assert doc["journal"] == {"oldest": 1, "end": 8}
    sources = {s["connector"]: s for s in doc["sources"]}
    assert sources["erp"]["offset"] == {"lsn": 190} and sources["erp"]["position"] == {"lsn": "0/BE"}
    assert sources["shop"]["position"] == {"binlog": "mysql-bin.000003:500"}
    sinks = {s["connector"]: s for s in doc["sinks"]}
    assert (sinks["erp-file"]["cursor"], sinks["erp-file"]["lag"]) == (8, 0)
    assert "dead_letters" not in sinks["erp-file"]  # a file sink has none
    assert sinks["erp-file"]["record"] == {"topic": "erp.public.orders", "lsn": "0/B4", "txId": "701",
                                           "time": "1970-01-01T00:00:03.000Z"}
    assert (sinks["crm"]["cursor"], sinks["crm"]["lag"], sinks["crm"]["dead_letters"]) == (7, 1, 1)
    assert [s["connector"] for s in shown(data, "crm")["sinks"]] == ["crm"]
    assert shown(data, "crm")["sources"] == []

    table = cdc("offsets", "show", "--data-dir", data)
    assert table.returncode == 0, table.stderr
    for text in ("journal: seq 1 to 8", "lsn 0/BE", "binlog mysql-bin.000003:500", "erp.public.orders  lsn 0/B4"):
        assert text in table.stdout, table.stdout
    unknown = cdc("offsets", "show", "--data-dir", data, "nope")
    assert unknown.returncode == 1 and "nothing stored for nope" in unknown.stderr
    missing = cdc("offsets", "show", "--data-dir", tmp_path / "elsewhere")
    assert missing.returncode == 1 and "no journal at" in missing.stderr


def test_replay_moves_sinks_back(tmp_path: Path) -> None:
    data = journal(tmp_path)
    p = cdc("replay", "erp-file", "--from", "lsn:0/A1", "--data-dir", data)  # 161: tx 701 (seq 7)
    assert p.returncode == 0, p.stderr
    assert "cursor moved back from seq 8 to seq 6" in p.stdout and "resumes at seq 7 (erp.public.orders" in p.stdout
    assert cursor(data, "erp-file") == 6
    again = cdc("replay", "erp-file", "--from", "time:1970-01-01T00:00:03Z", "--data-dir", data)
    assert again.returncode == 0 and "nothing to replay" in again.stdout and cursor(data, "erp-file") == 6
    assert cdc("replay", "erp-file", "--from", "earliest", "--data-dir", data).returncode == 0
    assert cursor(data, "erp-file") == 0

    # An API sink loses its lane progress too: the cursor alone says where delivery resumes.
    with JournalReader(data / "journal.db") as reader:
        assert reader.lane_progress("crm", 2) == [8, 7]
    p = cdc("replay", "crm", "--from", "journal:3", "--data-dir", data)
    assert p.returncode == 0, p.stderr
    with JournalReader(data / "journal.db") as reader:
        assert (reader.cursor("crm"), reader.lane_progress("crm", 2)) == (2, None)


def test_replay_with_connector_files(tmp_path: Path) -> None:
    data = journal(tmp_path)
    files = configs(tmp_path)
    p = cdc("replay", "erp-file", "--from", "time:1970-01-01T00:00:02.001Z", "--data-dir", data, *files)
    assert p.returncode == 0, p.stderr
    assert cursor(data, "erp-file") == 6  # the sink reads erp.*: the MySQL record at t = 2.5 s is not its
    wrong = cdc("replay", "erp-file", "--from", "binlog:mysql-bin.000003:4", "--data-dir", data, *files)
    assert wrong.returncode == 2
    assert "binlog:mysql-bin.000003:4 is a MySQL/MariaDB position, but sink 'erp-file' reads from 'erp' " \
           "(PostgreSQL): use lsn:X/Y" in wrong.stderr
    not_sink = cdc("replay", "erp", "--from", "earliest", "--data-dir", data, *files)
    assert not_sink.returncode == 2
    assert "'erp' is not a sink connector in these files (sinks: erp-file)" in not_sink.stderr
    assert PG_PASSWORD not in wrong.stderr + wrong.stdout + not_sink.stderr + p.stdout + p.stderr


def test_replay_errors(tmp_path: Path) -> None:
    data = journal(tmp_path)
    bad = cdc("replay", "erp-file", "--from", "lsn:yesterday", "--data-dir", data)
    assert bad.returncode == 2 and "not an LSN" in bad.stderr
    unknown = cdc("replay", "erp-fil", "--from", "earliest", "--data-dir", data)
    assert unknown.returncode == 2 and "no sink named 'erp-fil' has a cursor" in unknown.stderr
    beyond = cdc("replay", "erp-file", "--from", "lsn:1/0", "--data-dir", data)
    assert beyond.returncode == 1 and "no record at or after it in the journal" in beyond.stderr
    latest = cdc("replay", "erp-file", "--from", "latest", "--data-dir", data)
    assert latest.returncode == 2 and "cdc offsets set SINK latest" in latest.stderr
    with sqlite3.connect(data / "journal.db") as conn:  # what retention does: drop the oldest runs
        conn.execute("DELETE FROM events WHERE first_seq < 3")
    old = cdc("replay", "erp-file", "--from", "journal:1", "--data-dir", data)
    assert old.returncode == 1 and "older than the journal retains: its oldest record is seq 3" in old.stderr
    assert cursor(data, "erp-file") == 8


def test_offsets_set_sink(tmp_path: Path) -> None:
    data = journal(tmp_path)
    p = cdc("offsets", "set", "erp-file", "journal:4", "--data-dir", data)
    assert p.returncode == 0 and "cursor moved from seq 8 to seq 3" in p.stdout, p.stderr
    assert cdc("offsets", "set", "erp-file", "latest", "--data-dir", data).returncode == 0
    assert cursor(data, "erp-file") == 8
    assert cdc("offsets", "set", "crm", f"gtid:{UUID}:1-8", "--data-dir", data).returncode == 0
    assert cursor(data, "crm") == 5  # the MySQL transaction uuid:9 at seq 6 is the first not in the set
    unknown = cdc("offsets", "set", "nobody", "journal:1", "--data-dir", data)
    assert unknown.returncode == 2 and "no source offset or sink cursor named 'nobody'" in unknown.stderr
    # A sink that has not run yet: named by its connector file.
    new = cdc("offsets", "set", "erp-file", "journal:2", "--data-dir", data, *configs(tmp_path))
    assert new.returncode == 0 and cursor(data, "erp-file") == 1


def test_offsets_set_postgres_source(tmp_path: Path) -> None:
    data = journal(tmp_path)
    back = cdc("offsets", "set", "erp", "lsn:0/10", "--data-dir", data)
    assert back.returncode == 1
    assert "cannot move PostgreSQL source 'erp' back from lsn 0/BE to 0/10" in back.stderr
    assert "the server has discarded the older WAL for the slot" in back.stderr
    fwd = cdc("offsets", "set", "erp", "lsn:0/200", "--data-dir", data)
    assert fwd.returncode == 0 and "offset stored: lsn 0/200" in fwd.stdout, fwd.stderr
    with SqliteJournal(data / "journal.db") as j:
        assert j.source_offset("erp") == {"lsn": 0x200}
    wrong = cdc("offsets", "set", "erp", "binlog:mysql-bin.000001:4", "--data-dir", data)
    assert wrong.returncode == 2 and "'erp' is a PostgreSQL source: its offset is lsn:X/Y" in wrong.stderr
    journal_kind = cdc("offsets", "set", "erp", "journal:3", "--data-dir", data)
    assert journal_kind.returncode == 2 and "is a source connector" in journal_kind.stderr


def test_offsets_set_binlog_source(tmp_path: Path) -> None:
    data = journal(tmp_path)
    back = cdc("offsets", "set", "shop", "binlog:mysql-bin.000002:4", "--data-dir", data)
    assert back.returncode == 0, back.stderr
    assert "captured and appended to the journal again" in back.stderr  # moving back: duplicates, and DDL
    with SqliteJournal(data / "journal.db") as j:
        assert j.source_offset("shop") == {"file": "mysql-bin.000002", "pos": 4, "ts_sec": 0}
    by_gtid = cdc("offsets", "set", "shop", f"gtid:{UUID}:1-7", "--data-dir", data, *configs(tmp_path))
    assert by_gtid.returncode == 0, by_gtid.stderr
    with SqliteJournal(data / "journal.db") as j:
        offset = j.source_offset("shop")
    assert offset is not None and offset["gtids"] == f"{UUID}:1-7" and offset["file"] == "gtid-resume.000000"
    assert "binlog (resume from the GTID set)" in by_gtid.stdout
    maria = cdc("offsets", "set", "shop", "gtid:0-1-5", "--data-dir", data, *configs(tmp_path))
    assert maria.returncode == 2 and "'shop' is a MySQL source; gtid:0-1-5 is a MariaDB GTID state" in maria.stderr
    # Without connector files the flavor comes from the stored GTID state.
    maria = cdc("offsets", "set", "shop", "gtid:0-1-5", "--data-dir", data)
    assert maria.returncode == 2 and "is a MariaDB GTID state" in maria.stderr
    lsn = cdc("offsets", "set", "shop", "lsn:0/1", "--data-dir", data)
    assert lsn.returncode == 2 and "MySQL/MariaDB source" in lsn.stderr


def test_replay_within_retention_after_pruning(tmp_path: Path) -> None:
    data = journal(tmp_path)
    files = configs(tmp_path)
    # Retention of erp's topics by size (the newest 0 bytes); the sinks' cursors (erp-file 8, crm 7) pin
    # everything after seq 7: erp's runs up to seq 5 go, the shop record and erp's run 7-8 stay.
    with SqliteJournal(data / "journal.db") as j:
        result = j.prune({"erp": RetentionPolicy("erp", -1, 0), "shop": RetentionPolicy("shop", -1, -1)}, {}, 0)
    assert (result.records, result.oldest) == (5, 6)
    table = cdc("offsets", "show", "--data-dir", data)
    assert table.returncode == 0 and "journal: seq 6 to 8 (the oldest journaled at " in table.stdout, table.stderr

    old = cdc("replay", "erp-file", "--from", "journal:2", "--data-dir", data)
    assert old.returncode == 1
    assert "journal:2 is older than the journal retains: its oldest record is seq 6; use --from earliest (or " \
           "journal:6)" in old.stderr
    assert "(seq 6 is binlog mysql-bin.000003:400" in old.stderr and "journaled at 20" in old.stderr
    assert "raise journal.retention.ms / journal.retention.bytes on the source connector" in old.stderr
    # With the connector files only the sink's topics count: its oldest retained record is erp's seq 7.
    old = cdc("replay", "erp-file", "--from", "journal:2", "--data-dir", data, *files)
    assert old.returncode == 1 and "its oldest record is seq 7" in old.stderr and "(seq 7 is lsn 0/69" in old.stderr
    lsn = cdc("replay", "erp-file", "--from", "lsn:0/64", "--data-dir", data, *files)
    assert lsn.returncode == 1
    assert "lsn:0/64 is older than the journal retains: its oldest record of that kind is seq 7 (lsn 0/69, " \
           "txId 701" in lsn.stderr and "journaled at 20" in lsn.stderr
    assert cursor(data, "erp-file") == 8  # refusals move nothing

    # A position within what is retained: the transaction at seq 7-8 (LSN 0/B4 is its second change).
    within = cdc("replay", "erp-file", "--from", "lsn:0/AA", "--data-dir", data, *files)
    assert within.returncode == 0 and "cursor moved back from seq 8 to seq 6" in within.stdout, within.stderr
    # `earliest` is the oldest record still retained: of the sink's topics with its files, else of all.
    assert cdc("offsets", "set", "erp-file", "latest", "--data-dir", data).returncode == 0
    assert cdc("replay", "erp-file", "--from", "earliest", "--data-dir", data, *files).returncode == 0
    assert cursor(data, "erp-file") == 6
    assert cdc("replay", "crm", "--from", "earliest", "--data-dir", data).returncode == 0
    assert cursor(data, "crm") == 5


def test_offsets_delete_releases_a_removed_sink(tmp_path: Path) -> None:
    data = journal(tmp_path)
    p = cdc("offsets", "delete", "crm", "--data-dir", data)
    assert p.returncode == 0 and "sink crm: cursor and lane progress deleted" in p.stdout, p.stderr
    with JournalReader(data / "journal.db") as reader:
        assert "crm" not in reader.sink_cursors() and reader.lane_progress("crm", 2) is None
        assert reader.count_dead_letters(DeadLetterFilter(connector="crm")) == 1  # its dead letters stay
    again = cdc("offsets", "delete", "crm", "--data-dir", data)
    assert again.returncode == 2 and "no sink named 'crm' has a cursor" in again.stderr
