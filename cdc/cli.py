"""The `cdc` command (typer + rich): run connectors, validate connector files.

Errors the operator can fix (bad config, a server setting, privileges) are printed as a short list and
exit with status 2 (config, including a mapping `validate` compiled against the source's live catalog)
or 1 (runtime, or a server problem `validate` found; its warnings alone leave 0), one line each;
tracebacks only with `--debug`. Secrets never reach the output: configs are printed masked, and a
logging filter and the error printer redact every secret value loaded.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from cdc.config import (
    ConnectorConfig,
    PostgresSourceConfig,
    SecretsFilter,
    SinkModel,
    SourceConfig,
    load_connectors,
)
from cdc.errors import CdcError, ConfigError
from cdc.pipeline.roles import Role

if TYPE_CHECKING:
    from mappers.joined import JoinedMapper

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


DEFAULT_HTTP = "127.0.0.1:8083"


def _listen(option: str | None, token: str | None) -> tuple[str, int] | None:
    """Where the admin API listens: None when off, or when the default port is taken (a warning then:
    it was not asked for explicitly)."""
    text = option or DEFAULT_HTTP
    if text.lower() == "off":
        return None   # before the imports: a run without the API does not load aiohttp for it
    import socket

    from cdc.admin import requires_token

    host, _, port_text = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise typer.BadParameter(f"'{text}' is not HOST:PORT (or off)", param_hint="--http")
    if requires_token(host) and not token:
        raise typer.BadParameter(f"listening on {host} (beyond loopback) needs a bearer token: set --http-token "
                                 "or CDC_HTTP_TOKEN", param_hint="--http")
    port = int(port_text)
    if option is None:
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                logging.getLogger("cdc").warning("admin API off: %s is in use (set --http HOST:PORT)", text)
                return None
    return host, port


@app.command()
def run(files: ConfigFiles,
        data_dir: DataDir = Path(".cdc-data"),
        stop_at_end: Annotated[bool, typer.Option(
            "--stop-at-end", help="Capture up to the log end as of start, deliver everything, exit 0.")] = False,
        log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
        debug: Annotated[bool, typer.Option(help="Show tracebacks.")] = False,
        http: Annotated[str | None, typer.Option(
            "--http", envvar="CDC_HTTP", help=f"HOST:PORT of the Kafka Connect REST API, /metrics and the status page "
                           f"(default {DEFAULT_HTTP}; off to disable).")] = None,
        http_token: Annotated[str | None, typer.Option(
            "--http-token", envvar="CDC_HTTP_TOKEN",
            help="Bearer token the HTTP API requires (mandatory when it listens beyond loopback).")] = None,
        role: Annotated[Role, typer.Option(
            "--role", help="Run every connector (all), only the sources (source: capture into the journal) or "
                           "only the sinks (sink: deliver from it); a source and a sink process may share "
                           "one --data-dir.")] = Role.ALL) -> None:
    """Run source and sink connectors until stopped (SIGTERM drains and exits cleanly)."""
    from cdc.pipeline.runner import run as run_pipeline

    _setup_logging(log_level)
    connectors = _load(files)
    started = time.perf_counter()
    # Modules, config and compiled code never become garbage: keep them out of every collection the
    # event stream's allocations trigger (measurably less time in the cyclic collector).
    gc.freeze()
    try:
        stats = asyncio.run(run_pipeline(connectors, data_dir, stop_at_end=stop_at_end,
                                         http=_listen(http, http_token), token=http_token, role=role))
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
    """Check every property, then connect: each source's server settings, and each sink's mapping compiled
    against its source's live catalog (as `cdc run` does); list all problems."""
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
    mapping_problems, notes = _check_mappings(connectors, offline)
    for note in notes:
        err.print("[dim]note:[/]", _safe(note), highlight=False, soft_wrap=True)
    for warning in warnings:
        err.print("[yellow]warning:[/]", _safe(warning), highlight=False, soft_wrap=True)
    if problems or mapping_problems:
        total = len(problems) + len(mapping_problems)
        err.print(f"[bold red]{total} problem{'s' if total > 1 else ''}:[/]")
        for problem in problems:
            err.print("  -", _safe(problem), highlight=False, soft_wrap=True)
        for problem, detail in mapping_problems:
            _print_problem(problem, detail)
        # A mapping is configuration (2); a server problem (1) may hide further mapping problems.
        raise typer.Exit(1 if problems else 2)
    Console().print(f"[green]OK[/]: {len(connectors)} connector(s) valid")


def _check_mappings(connectors: list[ConnectorConfig], offline: bool) -> tuple[list[tuple[str, Any]], list[str]]:
    """Compile every sink's mapping against the live catalog of its source, as `cdc run` does at start.

    Returns (problems, each with its `mappers.errors.Problem` when it has a file:line:col; notes)."""
    from mappers.errors import MappingError
    from mappers.load import sink_mapper

    sources = [c for c in connectors if isinstance(c, SourceConfig)]
    problems: list[tuple[str, Any]] = []
    notes: list[str] = []
    for c in connectors:
        path = getattr(c, "mapper_sql", None)
        if not isinstance(c, SinkModel) or path is None:
            continue
        if offline:
            notes.append(f"sink '{c.name}': mapping {path} not compiled (--offline: it is checked against the "
                         "source's live catalog)")
            continue
        if not sources:
            notes.append(f"sink '{c.name}': mapping {path} not compiled: no source connector among these files")
            continue
        try:
            mapper = sink_mapper(c, sources)
        except MappingError as e:
            problems += list(zip(e.problems, e.details, strict=True))
        except ConfigError as e:
            problems += [(p, None) for p in e.problems]
        except CdcError as e:  # the catalog could not be read: the source checks above say why
            problems.append((f"sink '{c.name}': mapping {path} not checked: {e}", None))
        else:
            if mapper is not None:
                mapper.close()
    return problems, notes


mapper_app = typer.Typer(no_args_is_help=True, help="Write and debug SQL mappings.")
schema_app = typer.Typer(no_args_is_help=True, help="Canonical entity schemas.")
app.add_typer(mapper_app, name="mapper")
app.add_typer(schema_app, name="schema")

from cdc.dlqcli import dlq_app  # noqa: E402  (after `app`: dlqcli imports this module lazily)

app.add_typer(dlq_app, name="dlq")

from cdc.replaycli import offsets_app, replay  # noqa: E402  (likewise)

app.add_typer(offsets_app, name="offsets")
app.command("replay")(replay)

from cdc.snapshotcli import snapshot  # noqa: E402  (likewise)

app.command("snapshot")(snapshot)

from cdc.statuscli import status  # noqa: E402  (likewise)

app.command("status")(status)


def _print_problem(problem: str, detail: Any = None) -> None:
    """One problem; for a file:line:col problem (`mappers.errors.Problem`) also the mapping line with a
    caret under the column."""
    err.print("  -", _safe(problem), highlight=False, soft_wrap=True)
    if detail is None:
        return
    try:
        line = Path(detail.file).read_text(encoding="utf-8").splitlines()[detail.line - 1]
    except (OSError, IndexError, UnicodeDecodeError):
        return
    err.print("      " + line, markup=False, highlight=False, soft_wrap=True)
    err.print("      " + " " * (detail.col - 1) + "^", markup=False, highlight=False, soft_wrap=True)


def _print_mapping_problems(e: ConfigError) -> None:
    """Each problem, and for file:line:col problems the mapping line with a caret under the column."""
    from mappers.errors import MappingError

    err.print(f"[bold red]mapping error{'s' if len(e.problems) > 1 else ''}:[/]")
    details = e.details if isinstance(e, MappingError) else []
    for i, problem in enumerate(e.problems):
        _print_problem(problem, details[i] if i < len(details) else None)


@mapper_app.command("test")
def mapper_test(
        mapping: Annotated[Path, typer.Argument(help="The mapping (.sql).", exists=True, dir_okay=False)],
        config: Annotated[list[Path], typer.Option("--config", help="The source connector file.", exists=True,
                                                   dir_okay=False)],
        row: Annotated[str | None, typer.Option(
            help="A row as a change event's 'after' carries it (Debezium encodings), or a whole change event "
                 "value (before/after/op).")] = None,
        from_db: Annotated[bool, typer.Option("--from-db", help="Map rows read from the source table.")] = False,
        limit: Annotated[int, typer.Option(help="Rows to read with --from-db.")] = 10,
        entity: Annotated[str | None, typer.Option(help="Validate against this canonical entity.")] = None,
        key: Annotated[str | None, typer.Option(help="Business key columns (comma-separated).")] = None,
        name: Annotated[str, typer.Option(help="Event type prefix of a free-form mapping.")] = "mapping") -> None:
    """Compile a mapping against the source's live catalog and show the events it produces."""
    import json

    import orjson

    from cdc.types import JournalRecord
    from mappers.catalog import source_dialect
    from mappers.load import load_mapper
    from mappers.mapper import SqlMapper
    from mappers.sample import sample_rows

    sources = [c for c in _load(config) if not isinstance(c, SinkModel)]
    if not sources:
        err.print("[bold red]error:[/] --config names no source connector")
        raise typer.Exit(2)
    src = sources[0]
    keys = tuple(k.strip() for k in key.split(",") if k.strip()) if key else ()
    try:
        mapper = load_mapper(mapping, src, name=name, entity=entity, key=keys)
    except ConfigError as e:
        _print_mapping_problems(e)
        raise typer.Exit(2) from None
    except CdcError as e:
        err.print("[bold red]error:[/]", _safe(str(e)), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    out = Console()
    if not isinstance(mapper, SqlMapper):
        _joined_test(mapper, src, mapping, row, from_db, limit, out)
        return
    table = mapper.compiled.table
    out.print(f"[green]OK[/]: {mapping} maps {table.qualified} ({source_dialect(src)}) to "
              f"{mapper.name}.* events; business key: {', '.join(mapper.key_names)}")
    changes: list[dict[str, object]] = []
    if row is not None:
        try:
            given = json.loads(row)
        except json.JSONDecodeError as e:
            err.print(f"[bold red]error:[/] --row is not JSON: {e}")
            raise typer.Exit(2) from None
        if not isinstance(given, dict):
            err.print("[bold red]error:[/] --row must be a JSON object")
            raise typer.Exit(2)
        changes.append(given if "op" in given else {"before": None, "after": given, "op": "r"})
    if from_db:
        try:
            rows = sample_rows(src, table, limit)
        except CdcError as e:
            err.print("[bold red]error:[/]", _safe(str(e)), highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        changes += [{"before": None, "after": r, "op": "r"} for r in rows]
    container = {"schema": table.schema} if source_dialect(src) == "postgres" else {"db": table.schema}
    now_us = int(time.time() * 1_000_000)
    for n, change in enumerate(changes, start=1):
        source = {"name": getattr(src, "topic_prefix", src.name), **container, "table": table.name,
                  "ts_us": now_us, "lsn": 0}
        value = orjson.dumps({**change, "source": source})
        try:
            events = mapper.map(JournalRecord(n, mapper.topic, None, value))
        except CdcError as e:
            err.print(f"[bold red]row {n}:[/]", _safe(str(e)), highlight=False, soft_wrap=True)
            continue
        if not events:
            out.print(f"[dim]row {n}: no event (not a member: WHERE is not true)[/]")
        for ev in events:
            assert ev.value is not None
            out.print_json(ev.value.decode())
    if not changes:
        out.print("[dim]no rows given: use --row JSON or --from-db[/]")


def _joined_test(mapper: JoinedMapper, src: ConnectorConfig, mapping: Path, row: str | None, from_db: bool,
                 limit: int, out: Console) -> None:
    """`cdc mapper test` of a multi-table mapping: the events of the first roots the source holds."""
    from mappers.catalog import source_dialect

    m = mapper.mapping
    others = sorted({t.qualified for t in m.tables} - {m.root.qualified})
    out.print(f"[green]OK[/]: {mapping} maps {m.root.qualified} (root) with {', '.join(others) or 'no other table'} "
              f"({source_dialect(src)}) to {mapper.name}.* events, re-read from the source; business key: "
              f"{', '.join(m.key_names)}")
    try:
        if row is not None:
            err.print("[bold red]error:[/] --row maps one change of a single-table mapping; a multi-table mapping "
                      "reads the source: use --from-db")
            raise typer.Exit(2)
        if not from_db:
            out.print("[dim]use --from-db to see the events of the first roots[/]")
            return
        source = {"name": getattr(src, "topic_prefix", src.name), "ts_us": int(time.time() * 1_000_000), "lsn": 0}
        try:
            events = mapper.preview(limit, source)
        except CdcError as e:
            err.print("[bold red]error:[/]", _safe(str(e)), highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        for ev in events:
            assert ev.value is not None
            out.print_json(ev.value.decode())
    finally:
        mapper.close()


@schema_app.command("export")
def schema_export(directory: Annotated[Path, typer.Argument(help="Where to write the JSON Schema files.",
                                                            file_okay=False)]) -> None:
    """Write the JSON Schema of every canonical entity (one file per entity and version)."""
    from mappers.entities import export_schemas

    for path in export_schemas(directory):
        Console().print(str(path), highlight=False)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
