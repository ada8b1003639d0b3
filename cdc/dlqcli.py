"""`cdc dlq list|show|retry|drop`: look at, redrive and discard dead-lettered business records.

Filters (all commands): ``--connector``, ``--entity``, ``--key`` (the business key), ``--error`` (a
substring of the target's error, case-insensitive), ``--state`` (``pending`` by default; ``all``).
`retry` needs the connector files, to build the sinks: it re-sends the matching pending entries of each
delivery sink in key order (`cdc.pipeline.redrive`) and prints what became of them; exit status 1 if
any failed again. `drop` deletes matching entries (``--yes`` to skip the confirmation).
Secrets never appear: entries hold business events and the targets' answers, which the sinks never
fill with credentials, and configs are loaded masked like `cdc run`'s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from cdc.journal.deadletters import STATES, DeadLetter, DeadLetterFilter
from cdc.journal.sqlite import JournalReader

dlq_app = typer.Typer(no_args_is_help=True, help="The dead-letter store: records a target refused.")
out = Console()

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="CDC_DATA_DIR", help="The bridge's data directory.")]
Connector = Annotated[str | None, typer.Option("--connector", "-c", help="Only this sink connector.")]
Entity = Annotated[str | None, typer.Option("--entity", help="Only this entity (e.g. customer).")]
Key = Annotated[str | None, typer.Option("--key", "-k", help="Only this business key.")]
ErrorText = Annotated[str | None, typer.Option("--error", help="Only entries whose error contains this text.")]
State = Annotated[str, typer.Option("--state", help=f"One of {', '.join(STATES)}, or all.")]


def _filter(connector: str | None, entity: str | None, key: str | None, error: str | None, state: str,
            ids: tuple[int, ...] = ()) -> DeadLetterFilter:
    if state != "all" and state not in STATES:
        raise typer.BadParameter(f"'{state}' is not a state; use one of {', '.join(STATES)} or all",
                                 param_hint="--state")
    return DeadLetterFilter(connector, entity, key, error, None if state == "all" else state, ids)


def _open(data_dir: Path) -> JournalReader:
    path = data_dir / "journal.db"
    if not path.exists():
        Console(stderr=True).print(f"no journal at {path}: is --data-dir (or CDC_DATA_DIR) right?")
        raise typer.Exit(1)
    return JournalReader(path)


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _as_json(d: DeadLetter) -> dict[str, object]:
    return {"id": d.id, "connector": d.connector, "entity": d.entity, "type": d.type, "key": d.subject,
            "event_id": d.event_id, "seq": d.seq, "status": d.status, "error": d.error, "attempts": d.attempts,
            "first_failure": _when(d.first_failure_ms), "last_failure": _when(d.last_failure_ms), "state": d.state}


@dlq_app.command("list")
def list_(data_dir: DataDir = Path(".cdc-data"), connector: Connector = None, entity: Entity = None,
          key: Key = None, error: ErrorText = None, state: State = "pending",
          json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
          limit: Annotated[int, typer.Option(help="At most this many entries.")] = 1000) -> None:
    """List dead letters in key order."""
    with _open(data_dir) as reader:
        letters = reader.dead_letters(_filter(connector, entity, key, error, state), limit)
    if json:
        for d in letters:
            typer.echo(orjson.dumps(_as_json(d)).decode())
        return
    table = Table("id", "connector", "entity", "key", "status", "error", "attempts", "last failure", "state")
    for d in letters:
        table.add_row(str(d.id), d.connector, d.entity, d.subject, str(d.status or ""), d.error[:80],
                      str(d.attempts), _when(d.last_failure_ms), d.state)
    out.print(table)
    out.print(f"{len(letters)} entr{'y' if len(letters) == 1 else 'ies'}")


@dlq_app.command()
def show(entry: Annotated[int, typer.Argument(help="The entry's id (from `cdc dlq list`).")],
         data_dir: DataDir = Path(".cdc-data")) -> None:
    """Show one entry in full: the target's answer and the event."""
    with _open(data_dir) as reader:
        found = reader.dead_letters(DeadLetterFilter(state=None, ids=(entry,)))
    if not found:
        Console(stderr=True).print(f"no dead letter with id {entry}")
        raise typer.Exit(1)
    d = found[0]
    typer.echo(orjson.dumps({**_as_json(d), "event": orjson.loads(d.event)}, option=orjson.OPT_INDENT_2).decode())


@dlq_app.command()
def retry(files: Annotated[list[Path], typer.Argument(help="The connector files (to build the sinks).",
                                                     exists=True, dir_okay=False)],
          data_dir: DataDir = Path(".cdc-data"), connector: Connector = None, entity: Entity = None,
          key: Key = None, error: ErrorText = None,
          ids: Annotated[list[int] | None, typer.Option("--id", help="Only these entries.")] = None) -> None:
    """Re-send pending entries to their targets, in key order."""
    from cdc.cli import _load
    from cdc.config import DeliverySinkConfig
    from cdc.pipeline.redrive import redrive
    from sinks import open_sink

    sinks = [c for c in _load(files) if isinstance(c, DeliverySinkConfig)
             and (connector is None or c.name == connector)]
    if not sinks:
        Console(stderr=True).print("none of these files defines a delivery sink" +
                                   (f" named '{connector}'" if connector else ""))
        raise typer.Exit(2)
    failed = 0
    with _open(data_dir) as reader:
        for cfg in sinks:
            letters = reader.dead_letters(_filter(cfg.name, entity, key, error, "pending", tuple(ids or ())))
            if not letters:
                continue
            result = asyncio.run(redrive(reader, open_sink(cfg), letters))
            failed += len(result.failed)
            out.print(f"sink {cfg.name}: {len(result.delivered)} delivered, {len(result.failed)} failed again, "
                      f"{len(result.skipped)} skipped")
            for d in result.failed:
                out.print(f"  {d.id} {d.entity} {d.subject}: {d.status or ''} {d.error[:200]}", highlight=False)
            for d, why in result.skipped:
                out.print(f"  {d.id} {d.entity} {d.subject}: skipped, {why}", highlight=False)
    if failed:
        raise typer.Exit(1)


@dlq_app.command()
def drop(data_dir: DataDir = Path(".cdc-data"), connector: Connector = None, entity: Entity = None,
         key: Key = None, error: ErrorText = None, state: State = "pending",
         ids: Annotated[list[int] | None, typer.Option("--id", help="Only these entries.")] = None,
         yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False) -> None:
    """Delete entries for good."""
    flt = _filter(connector, entity, key, error, state, tuple(ids or ()))
    with _open(data_dir) as reader:
        count = len(reader.dead_letters(flt))
        if count and not yes:
            typer.confirm(f"delete {count} dead letter{'s' if count != 1 else ''}?", abort=True)
        dropped = reader.drop_dead_letters(flt)
    out.print(f"dropped {dropped}")
