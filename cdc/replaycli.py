"""`cdc offsets show|set` and `cdc replay`: where every connector stands, and moving it.

Role
    `offsets show` prints each source connector's stored offset (PostgreSQL: the LSN as X/Y, txId,
    commit time; MySQL/MariaDB: binlog file:pos, GTID state, event time) and each sink's cursor: the
    journal seq it has done with, what that record was at the source, the journal's end and so the lag
    in records, and for delivery (API) sinks the pending dead letters. `offsets set` stores a source
    offset (MySQL/MariaDB: capture restarts from that binlog position or GTID set; PostgreSQL: forward
    only, the slot no longer holds older WAL) or moves a sink's cursor to any position. `replay` moves
    a sink back so that its next run re-delivers from a position (`cdc.journal.positions` finds it),
    within the journal's retention. `offsets delete` forgets a removed sink's cursor, which otherwise
    keeps retention from removing anything it has not delivered (`cdc.journal.retention`).

    As with Kafka Connect, whose offsets can only be changed while the connector is STOPPED, the
    bridge must not be running on the data dir: `cdc run` keeps its positions in memory and would
    overwrite or ignore a change made under it. (Nothing enforces this yet: there is no lock file.)

Crash safety of a sink move: the per-lane progress of a delivery sink is deleted first, then the
cursor is written (force: it may go backwards). Interrupted in between, the old cursor stays with no
lane progress: delivery resumes from the old cursor, re-sending a little (at-least-once), never
skipping -- the other order could leave old lane progress that skips records after the new cursor.

Failures: a malformed position, an unknown connector, a position of the wrong kind for the connector's
source or a config error exit 2; a position the journal does not hold, a PostgreSQL offset moved
backwards or a journal error exit 1. Secrets never appear: the journal holds none, and connector files
are loaded masked like `cdc run`'s.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cdc.errors import CdcError
from cdc.journal.deadletters import DeadLetterFilter
from cdc.journal.positions import (
    GtidSet,
    Position,
    binlog_key,
    describe,
    find_start,
    first_seq,
    format_ms,
    parse_position,
    record_source,
)
from cdc.journal.sqlite import JournalReader, SqliteJournal
from cdc.readers.pgoutput import lsn_to_str
from cdc.types import SourceOffset

offsets_app = typer.Typer(no_args_is_help=True,
                          help="Stored source offsets and sink cursors (stop the bridge before setting them).")
out = Console()
err = Console(stderr=True)

# A binlog offset that resumes by GTID only: the reader resumes from `file`/`pos` while the server has
# that file, else from the GTID state, so the file named here is one no server has (`.000000`).
GTID_ONLY_FILE = "gtid-resume.000000"
_ALL = re.compile(".*", re.DOTALL)

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="CDC_DATA_DIR", help="The bridge's data directory.")]
Files = Annotated[list[Path] | None, typer.Argument(
    help="Connector files (optional): check the connector and the position's kind against them.",
    exists=True, dir_okay=False, readable=True)]
POSITIONS = ("earliest, latest, journal:N, lsn:X/Y, binlog:FILE:POS, gtid:SET, time:ISO-8601 "
             "(UTC unless it has an offset)")


def _fail(message: str, code: int) -> NoReturn:
    err.print(Text("error: ", style="bold red") + Text(message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _journal_errors() -> Iterator[None]:
    """Journal failures (locked, corrupt, a position it does not hold) as one line and exit status 1."""
    try:
        yield
    except CdcError as e:
        _fail(str(e), 1)


def _journal_path(data_dir: Path) -> Path:
    path = data_dir / "journal.db"
    if not path.exists():
        _fail(f"no journal at {path}: is --data-dir (or CDC_DATA_DIR) right?", 1)
    return path


def _position(text: str) -> Position:
    try:
        return parse_position(text)
    except ValueError as e:
        _fail(str(e), 2)


def _configs(files: list[Path] | None) -> list[Any]:
    if not files:
        return []
    from cdc.cli import _load  # lazily: cdc.cli imports this module

    return list(_load(files))


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


# -- show -------------------------------------------------------------------------------------------

def source_position(offset: SourceOffset) -> dict[str, str]:
    """A stored source offset, readably (every key it holds, the known ones decoded)."""
    shown: dict[str, str] = {}
    rest = dict(offset)
    if isinstance(rest.get("lsn"), int):
        shown["lsn"] = lsn_to_str(rest.pop("lsn"))
        if rest.get("txId") is not None:
            shown["txId"] = str(rest.pop("txId"))
        if isinstance(rest.get("ts_usec"), int):
            shown["time"] = format_ms(rest.pop("ts_usec") // 1000)
    elif "file" in rest:
        file, pos = rest.pop("file"), rest.pop("pos", None)
        shown["binlog"] = "(resume from the GTID set)" if file == GTID_ONLY_FILE else f"{file}:{pos}"
        if rest.get("gtids"):
            shown["gtids"] = str(rest.pop("gtids"))
        if isinstance(rest.get("ts_sec"), int):
            ts = rest.pop("ts_sec")
            if ts:
                shown["time"] = format_ms(ts * 1000)
    if rest.pop("snapshot_completed", True) is False:
        shown["snapshot"] = "in progress (taken again at the next start)"
    rest.pop("txId", None)
    for key, value in sorted(rest.items()):
        shown[key] = str(value)
    return shown


@offsets_app.command("show")
def show(connectors: Annotated[list[str] | None, typer.Argument(help="Only these connectors.")] = None,
         data_dir: DataDir = Path(".cdc-data"),
         json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False) -> None:
    """Every source's stored offset and every sink's cursor, with its lag behind the journal's end."""
    wanted = set(connectors or ())
    with _journal_errors(), JournalReader(_journal_path(data_dir)) as reader:
        end = reader.end_seq()
        oldest = first_seq(reader)
        oldest_at = reader.journaled_at(oldest) if oldest is not None else None
        sources = [{"connector": name, "offset": offset, "position": source_position(offset),
                    "updated": _when(updated)}
                   for name, (offset, updated) in sorted(reader.source_offsets().items())
                   if not wanted or name in wanted]
        sinks: list[dict[str, Any]] = []
        for name, (seq, updated, lanes) in sorted(reader.sink_cursors().items()):
            if wanted and name not in wanted:
                continue
            sink: dict[str, Any] = {"connector": name, "cursor": seq, "end": end, "lag": end - seq,
                                    "updated": _when(updated)}
            at = reader.read(_ALL, seq - 1, 1) if seq > 0 else []
            if at and at[0].seq == seq:
                sink["record"] = {"topic": at[0].topic, **describe(record_source(at[0]))}
            pending = len(reader.dead_letters(DeadLetterFilter(connector=name)))
            if lanes or pending:  # a delivery (API) sink: the only kind with lanes and dead letters
                sink["dead_letters"] = pending
            sinks.append(sink)
    unknown = sorted(wanted - {s["connector"] for s in sources} - {s["connector"] for s in sinks})
    if json:
        typer.echo(orjson.dumps({"journal": {"oldest": oldest, "end": end}, "sources": sources,
                                 "sinks": sinks}, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_show(sources, sinks, oldest, oldest_at, end)
    if unknown:
        _fail(f"nothing stored for {', '.join(unknown)} (a connector that has not run has no offset)", 1)


def _print_show(sources: list[dict[str, Any]], sinks: list[dict[str, Any]], oldest: int | None,
                oldest_at: int | None, end: int) -> None:
    held = f"seq {oldest} to {end}" if oldest is not None else "no records"
    if oldest_at is not None:
        held += f" (the oldest journaled at {format_ms(oldest_at)})"
    out.print(f"journal: {held}", highlight=False)
    if sources:
        table = Table("source", "position", "stored at (UTC)", title="source offsets", title_justify="left")
        for s in sources:
            table.add_row(s["connector"], "  ".join(f"{k} {v}" for k, v in s["position"].items()), s["updated"])
        out.print(table)
    if sinks:
        table = Table("sink", "cursor", "at", "lag (records)", "dead letters", "committed at (UTC)",
                      title="sink cursors", title_justify="left")
        for k in sinks:
            record = k.get("record", {})
            at = "  ".join([record.get("topic", "")] + [f"{a} {b}" for a, b in record.items() if a != "topic"])
            table.add_row(k["connector"], str(k["cursor"]), at.strip() or "-", str(k["lag"]),
                          str(k.get("dead_letters", "-")), k["updated"])
        out.print(table)
    if not sources and not sinks:
        out.print("no source offsets or sink cursors stored yet")


# -- moving a sink ----------------------------------------------------------------------------------

def _sink_config(configs: list[Any], name: str) -> Any:
    from cdc.config import SinkModel

    sinks = [c for c in configs if isinstance(c, SinkModel)]
    found = next((c for c in sinks if c.name == name), None)
    if found is None:
        _fail(f"'{name}' is not a sink connector in these files (sinks: "
              f"{', '.join(c.name for c in sinks) or 'none'})", 2)
    return found


def _check_kind(configs: list[Any], sink: Any, pos: Position, data_dir: Path) -> None:
    """A source position must be of the kind the sink's sources write (lsn: PostgreSQL; binlog/gtid:
    MySQL/MariaDB). The sink's sources: those whose journal topics it reads, else every source given."""
    from cdc.config import BinlogSourceConfig, PostgresSourceConfig, SourceConfig

    if not pos.source_kind:
        return
    sources = [c for c in configs if isinstance(c, SourceConfig)]
    with SqliteJournal(_journal_path(data_dir)) as journal:
        topics = journal.topics()
    pattern = sink.topic_pattern()
    feeding = [c for c in sources if any(t.startswith(f"{c.topic_prefix}.") and pattern.fullmatch(t)
                                         for t in topics)] or sources
    if not feeding:
        return  # no source among the files: nothing to check against
    wanted = PostgresSourceConfig if pos.kind == "lsn" else BinlogSourceConfig
    if not any(isinstance(c, wanted) for c in feeding):
        names = ", ".join(f"'{c.name}' ({_flavor(c)})" for c in feeding)
        fits = "lsn:X/Y" if isinstance(feeding[0], PostgresSourceConfig) else "binlog:FILE:POS or gtid:SET"
        _fail(f"{pos.text} is a {'PostgreSQL' if pos.kind == 'lsn' else 'MySQL/MariaDB'} position, but sink "
              f"'{sink.name}' reads from {names}: use {fits}, journal:N, time:... or earliest", 2)


def _flavor(cfg: Any) -> str:
    from cdc.config import PostgresSourceConfig

    return "PostgreSQL" if isinstance(cfg, PostgresSourceConfig) else ("MariaDB" if cfg.flavor == "mariadb"
                                                                       else "MySQL")


def _target(reader: JournalReader, pos: Position, topics: re.Pattern[str] | None) -> int:
    """The cursor that makes the next run deliver from `pos`: one before the first seq to deliver."""
    return find_start(reader, pos, topics) - 1


def _landing(reader: JournalReader, cursor: int, topics: re.Pattern[str] | None) -> str:
    nxt = reader.read(topics or _ALL, cursor, 1)
    if not nxt:
        return "nothing is left to deliver"
    where = describe(record_source(nxt[0]))
    detail = ", ".join(f"{k} {v}" for k, v in where.items())
    return f"delivery resumes at seq {nxt[0].seq} ({nxt[0].topic}{', ' + detail if detail else ''})"


def replay(sink: Annotated[str, typer.Argument(help="The sink connector's name.")],
           from_: Annotated[str, typer.Option("--from", help=f"Where to re-deliver from: {POSITIONS}.")],
           files: Files = None,
           data_dir: DataDir = Path(".cdc-data")) -> None:
    """Move a sink back so that its next run re-delivers from a position (stop the bridge first)."""
    pos = _position(from_)
    if pos.kind == "latest":
        _fail("replay moves a sink back; to skip to the journal's end use `cdc offsets set SINK latest`", 2)
    configs = _configs(files)
    topics: re.Pattern[str] | None = None
    if configs:
        cfg = _sink_config(configs, sink)
        _check_kind(configs, cfg, pos, data_dir)
        topics = cfg.topic_pattern()
    with _journal_errors(), JournalReader(_journal_path(data_dir)) as reader:
        cursors = reader.sink_cursors()
        if sink not in cursors and not configs:
            _fail(f"no sink named '{sink}' has a cursor in {data_dir} (sinks: {', '.join(sorted(cursors)) or 'none'});"
                  " pass its connector file to replay a sink that has not run yet", 2)
        current = cursors[sink][0] if sink in cursors else 0
        target = _target(reader, pos, topics)
        if target >= current:
            out.print(f"sink {sink}: nothing to replay: its cursor (seq {current}) is already before "
                      f"{pos.text} (seq {target + 1}), so its next run delivers that anyway; to skip records use "
                      "`cdc offsets set`", highlight=False)
            return
        reader.move_cursor(sink, target)
        out.print(f"sink {sink}: cursor moved back from seq {current} to seq {target}; the next run re-delivers up to "
                  f"{current - target} records; {_landing(reader, target, topics)}", highlight=False, soft_wrap=True)


# -- offsets delete -----------------------------------------------------------------------------------

@offsets_app.command("delete")
def delete(sink: Annotated[str, typer.Argument(help="A sink connector that was removed.")],
           data_dir: DataDir = Path(".cdc-data")) -> None:
    """Forget a removed sink's cursor, so that it no longer keeps retention from removing old records."""
    path = _journal_path(data_dir)
    with _journal_errors(), SqliteJournal(path) as journal:
        if not journal.delete_cursor(sink):
            _fail(f"no sink named '{sink}' has a cursor in {data_dir}", 2)
    out.print(f"sink {sink}: cursor and lane progress deleted (its dead letters stay); if it runs again it "
              "starts from the oldest record the journal still holds", highlight=False)


# -- offsets set --------------------------------------------------------------------------------------

@offsets_app.command("set")
def set_(connector: Annotated[str, typer.Argument(help="A source or sink connector's name.")],
         position: Annotated[str, typer.Argument(help=f"Sinks: {POSITIONS}. Sources: lsn:X/Y (PostgreSQL, "
                                                      "forward only), binlog:FILE:POS or gtid:SET.")],
         files: Files = None,
         data_dir: DataDir = Path(".cdc-data")) -> None:
    """Store a source's offset or move a sink's cursor (stop the bridge first)."""
    from cdc.config import BinlogSourceConfig, PostgresSourceConfig, SinkModel, SourceConfig

    pos = _position(position)
    configs = _configs(files)
    cfg = next((c for c in configs if c.name == connector), None)
    if configs and cfg is None:
        _fail(f"no connector named '{connector}' in these files", 2)
    path = _journal_path(data_dir)
    with _journal_errors(), JournalReader(path) as reader:
        offsets, cursors = reader.source_offsets(), reader.sink_cursors()
        is_source = isinstance(cfg, SourceConfig) if cfg is not None else connector in offsets
        if cfg is None and not is_source and connector not in cursors:
            _fail(f"no source offset or sink cursor named '{connector}' in {data_dir}; pass its connector file to "
                  "set the first position of a connector that has not run yet", 2)
        if not is_source:
            topics = cfg.topic_pattern() if isinstance(cfg, SinkModel) else None
            if cfg is not None and configs:
                _check_kind(configs, cfg, pos, data_dir)
            current = cursors[connector][0] if connector in cursors else 0
            target = _target(reader, pos, topics)
            reader.move_cursor(connector, target)
            out.print(f"sink {connector}: cursor moved from seq {current} to seq {target}; "
                      f"{_landing(reader, target, topics)}", highlight=False, soft_wrap=True)
            return
        stored = offsets.get(connector, (None, 0))[0]
    if not pos.source_kind:
        _fail(f"'{connector}' is a source connector: its offset is a log position (lsn:X/Y for PostgreSQL, "
              f"binlog:FILE:POS or gtid:SET for MySQL/MariaDB), not {pos.text}; to re-deliver from the journal "
              "use `cdc replay SINK --from ...`", 2)
    mariadb: bool | None
    if cfg is not None:
        postgres = isinstance(cfg, PostgresSourceConfig)
        mariadb = isinstance(cfg, BinlogSourceConfig) and cfg.flavor == "mariadb"
    else:
        postgres = stored is not None and "lsn" in stored
        mariadb = _stored_flavor(stored)
    offset = (_postgres_offset(connector, pos, stored) if postgres
              else _binlog_offset(connector, pos, stored, mariadb))
    with _journal_errors(), SqliteJournal(path) as journal:
        journal.set_source_offset(connector, offset)
    shown = "  ".join(f"{k} {v}" for k, v in source_position(offset).items())
    out.print(f"source {connector}: offset stored: {shown}; the next run captures from there", highlight=False)


def _postgres_offset(connector: str, pos: Position, stored: SourceOffset | None) -> SourceOffset:
    if pos.kind != "lsn":
        _fail(f"'{connector}' is a PostgreSQL source: its offset is lsn:X/Y, not {pos.text}", 2)
    old = stored.get("lsn") if stored else None
    if isinstance(old, int) and pos.lsn < old:
        _fail(f"cannot move PostgreSQL source '{connector}' back from lsn {lsn_to_str(old)} to {lsn_to_str(pos.lsn)}: "
              "its replication slot has confirmed that position, and the server has discarded the older WAL for "
              "the slot, so it can only stream forward. To re-deliver older changes, replay a sink from the "
              f"journal (`cdc replay SINK --from lsn:{lsn_to_str(pos.lsn)}`), or take a new snapshot "
              "(snapshot.mode=always for one run)", 1)
    # The transaction id and time of the old position no longer apply; the snapshot is considered done
    # (the operator chose where streaming starts).
    return {"lsn": pos.lsn}


def _binlog_offset(connector: str, pos: Position, stored: SourceOffset | None, mariadb: bool | None) -> SourceOffset:
    if pos.kind == "lsn":
        _fail(f"'{connector}' is a MySQL/MariaDB source: its offset is binlog:FILE:POS or gtid:SET, not {pos.text}", 2)
    if pos.kind == "binlog":
        offset: SourceOffset = {"file": pos.file, "pos": pos.pos, "ts_sec": 0}
        backwards = stored is not None and "file" in stored and stored["file"] != GTID_ONLY_FILE and (
            _binlog_key(str(stored["file"]), int(stored.get("pos", 0))) > (_binlog_key(pos.file, pos.pos)))
    else:
        assert pos.gtids is not None
        if mariadb is not None and pos.gtids.mariadb != mariadb:
            given = "a MariaDB GTID state (domain-server-seq)" if pos.gtids.mariadb else "a MySQL GTID set (uuid:N-M)"
            _fail(f"'{connector}' is a {'MariaDB' if mariadb else 'MySQL'} source; {pos.text} is {given}", 2)
        # No file the server has: the reader resumes from the GTID state (MariaDB slave_connect_state,
        # MySQL auto-position), which the server checks against what it still holds.
        offset = {"file": GTID_ONLY_FILE, "pos": 4, "gtids": pos.gtids.text.strip(), "ts_sec": 0}
        backwards = True  # cannot be compared offline: say what it implies anyway
    if backwards:
        err.print(Text("note: ", style="yellow") + Text(
            "capture restarts from an older position: the transactions from there on are captured and "
            "appended to the journal again, so sinks receive them a second time (at-least-once). Rows are "
            "decoded with the table definitions recorded up to the stored position: if a DDL statement "
            "changed a captured table after the new position, take a new snapshot instead"), soft_wrap=True)
    return offset


def _binlog_key(file: str, pos: int) -> tuple[int, int]:
    try:
        return binlog_key(file, pos)
    except ValueError:  # not a NAME.NNNNNN file: order it first
        return (0, 0)


def _stored_flavor(stored: SourceOffset | None) -> bool | None:
    """Whether a stored binlog offset's GTID state is MariaDB's (None: it holds none, or unreadable)."""
    if not stored or not stored.get("gtids"):
        return None
    try:
        return GtidSet.parse(str(stored["gtids"])).mariadb
    except ValueError:
        return None
