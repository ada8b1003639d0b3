"""`cdc snapshot FILES... --tables T1,T2 [--connector NAME] [--stop]`: ask a PostgreSQL, MySQL or MariaDB
connector for an ad-hoc incremental snapshot (or stop one).

Role: sends Debezium's `execute-snapshot` (or `stop-snapshot`) signal by inserting a row into the
connector's signal table (`cdc.signals.send_signal`). The running bridge sees the insert in its
replication stream (or binlog) and snapshots the tables chunk by chunk while streaming; a bridge that is not
running acts on it at its next start. Nothing here talks to the bridge itself.

Failures: a config problem (files, no source connector, an unknown --connector, no
`signal.data.collection`, bad --tables) exits 2; the database refusing the insert (no signal table,
privileges, connection) exits 1. One line each; secrets are redacted as everywhere in the CLI.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from cdc.config import BinlogSourceConfig, PostgresSourceConfig, SecretsFilter, SourceConfig, load_connectors
from cdc.errors import CdcError, ConfigError
from cdc.readers.incremental import EXECUTE, STOP, InvalidSignal

out = Console()
err = Console(stderr=True)


def _fail(message: str, code: int) -> NoReturn:
    err.print(Text("error: ", style="bold red") + Text(SecretsFilter.redact(message)), highlight=False,
              soft_wrap=True)
    raise typer.Exit(code)


def _source(files: list[Path], connector: str | None) -> PostgresSourceConfig | BinlogSourceConfig:
    try:
        connectors = load_connectors(files)
    except ConfigError as e:
        for p in e.problems:
            err.print(Text("error: ", style="bold red") + Text(SecretsFilter.redact(p)), highlight=False,
                      soft_wrap=True)
        raise typer.Exit(2) from None
    sources = [c for c in connectors if isinstance(c, SourceConfig)]
    if connector is not None:
        sources = [c for c in sources if c.name == connector]
        if not sources:
            _fail(f"no source connector named '{connector}' in these files", 2)
    elif len(sources) != 1:
        names = ", ".join(c.name for c in sources) or "none"
        _fail(f"these files hold {len(sources)} source connectors ({names}); choose one with --connector", 2)
    [cfg] = sources
    if not isinstance(cfg, PostgresSourceConfig | BinlogSourceConfig):
        _fail(f"connector '{cfg.name}': incremental snapshots are supported for PostgreSQL, MySQL and MariaDB "
              "sources only", 2)
    return cfg


def snapshot(files: Annotated[list[Path], typer.Argument(help="Connector JSON files (Kafka Connect shape).",
                                                         exists=True, dir_okay=False, readable=True)],
             tables: Annotated[str | None, typer.Option(
                 "--tables", "-t", help="Comma-separated schema.table (MySQL/MariaDB: database.table) "
                                        "names or regexes (as Debezium's data-collections); with --stop, "
                                        "optional (default: all).")] = None,
             connector: Annotated[str | None, typer.Option(
                 "--connector", "-c", help="The source connector (needed when the files hold several).")] = None,
             stop: Annotated[bool, typer.Option("--stop", help="Stop the incremental snapshot instead.")] = False,
             ) -> None:
    """Ask a running (or the next) bridge for an ad-hoc incremental snapshot of tables, through the
    connector's signal table (signal.data.collection)."""
    collections = [t.strip() for t in (tables or "").split(",") if t.strip()]
    if not collections and not stop:
        raise typer.BadParameter("name the tables to snapshot, e.g. --tables public.customers,public.orders",
                                 param_hint="--tables")
    cfg = _source(files, connector)
    data: dict[str, object] = {"type": "incremental"}
    if collections:
        data["data-collections"] = collections
    kind = STOP if stop else EXECUTE
    from cdc.signals import send_signal  # lazily: the driver loads only for this command

    try:
        sig_id = asyncio.run(send_signal(cfg, kind, data))
    except (ConfigError, InvalidSignal) as e:
        _fail(str(e), 2)
    except CdcError as e:
        _fail(str(e), 1)
    what = ", ".join(collections) if collections else "every table"
    out.print(Text(f"signal {sig_id} ({kind} of {what}) written to {cfg.signal_data_collection} for connector "
                   f"'{cfg.name}': the running bridge acts on it from its stream (a stopped one at its next "
                   "start)"), highlight=False, soft_wrap=True)
