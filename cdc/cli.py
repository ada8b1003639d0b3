"""The `cdc` command (typer + rich): run connectors, validate connector files.

Errors the operator can fix (bad config, a server setting, privileges) are printed as a short list and
exit with status 2 (config) or 1 (runtime, or a server problem `validate` found; its warnings alone
leave 0), one line each; tracebacks only with `--debug`. Secrets never reach the output: configs are
printed masked, and a logging filter and the error printer redact every secret value loaded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from cdc.config import ConnectorConfig, PostgresSourceConfig, SecretsFilter, load_connectors
from cdc.errors import CdcError, ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Change-data-capture bridge for legacy ERP databases.")
err = Console(stderr=True)

ConfigFiles = Annotated[list[Path], typer.Argument(help="Connector JSON files (Kafka Connect shape).",
                                                   exists=True, dir_okay=False, readable=True)]
DataDir = Annotated[Path, typer.Option("--data-dir", envvar="CDC_DATA_DIR",
                                       help="Where the journal, offsets and spill files live.")]


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretsFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _safe(text: str) -> Text:
    """A message for the terminal: secrets redacted, never read as rich markup (printed unwrapped)."""
    return Text(SecretsFilter.redact(text))


def _load(files: list[Path]) -> list[ConnectorConfig]:
    try:
        return load_connectors(files)
    except ConfigError as e:
        err.print(f"[bold red]configuration error{'s' if len(e.problems) > 1 else ''}:[/]")
        for p in e.problems:
            err.print("  -", _safe(p), highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@app.command()
def run(files: ConfigFiles,
        data_dir: DataDir = Path(".cdc-data"),
        stop_at_end: Annotated[bool, typer.Option(
            "--stop-at-end", help="Capture up to the log end as of start, deliver everything, exit 0.")] = False,
        log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
        debug: Annotated[bool, typer.Option(help="Show tracebacks.")] = False) -> None:
    """Run source and sink connectors until stopped (SIGTERM drains and exits cleanly)."""
    from cdc.pipeline.runner import run as run_pipeline

    _setup_logging(log_level)
    connectors = _load(files)
    started = time.perf_counter()
    try:
        stats = asyncio.run(run_pipeline(connectors, data_dir, stop_at_end=stop_at_end))
    except CdcError as e:
        if debug:
            raise
        err.print("[bold red]error:[/]", _safe(str(e)), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    elapsed = time.perf_counter() - started
    for name, c in stats.capture.items():
        logging.getLogger("cdc").info("source %s: %d events in %d transactions captured", name, c.events,
                                      c.transactions)
    for name, d in stats.delivery.items():
        logging.getLogger("cdc").info("sink %s: %d events delivered (cursor %d)", name, d.delivered, d.cursor)
    logging.getLogger("cdc").info("done in %.2f s", elapsed)


@app.command()
def validate(files: ConfigFiles,
             offline: Annotated[bool, typer.Option(help="Check the files only; do not connect.")] = False) -> None:
    """Check every property, then connect and check each source's server settings; list all problems."""
    from cdc.config import BinlogSourceConfig
    from cdc.readers.mysql_checks import check_mysql
    from cdc.readers.postgres_checks import check_postgres

    connectors = _load(files)
    problems: list[str] = []
    warnings: list[str] = []
    if not offline:
        for c in connectors:
            if isinstance(c, PostgresSourceConfig):
                found, warned = asyncio.run(check_postgres(c))
            elif isinstance(c, BinlogSourceConfig):
                found, warned = asyncio.run(check_mysql(c))
            else:
                continue
            problems += found
            warnings += warned
    for warning in warnings:
        err.print("[yellow]warning:[/]", _safe(warning), highlight=False, soft_wrap=True)
    if problems:
        err.print(f"[bold red]{len(problems)} problem{'s' if len(problems) > 1 else ''}:[/]")
        for problem in problems:
            err.print("  -", _safe(problem), highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    Console().print(f"[green]OK[/]: {len(connectors)} connector(s) valid")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
