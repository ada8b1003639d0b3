"""End-to-end helpers for MySQL/MariaDB sources: connector files and the server's table contents.

The generic parts (running `cdc`, replaying its output, `Bridge`) live in `harness`; `replay` already
deduplicates binlog changes by (table, file, pos, row, op).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.servers.mariadb import MariaDbServer


def write_my_connectors(tmp: Path, srv: MariaDbServer, db: str, name: str, *, tables: str | None = None,
                        snapshot: str = "initial", extra: dict[str, str] | None = None,
                        server_id: int = 5400) -> list[Path]:
    """A MariaDbConnector source and a FileStreamSink connector file for database `db`."""
    config = {
        "connector.class": "io.debezium.connector.mariadb.MariaDbConnector",
        "database.hostname": "127.0.0.1", "database.port": str(srv.port), "database.user": srv.user,
        "database.password": "${env:E2E_MY_PASSWORD}", "database.server.id": str(server_id),
        "topic.prefix": name, "database.include.list": db, "snapshot.mode": snapshot,
        "skipped.operations": "none", **({"table.include.list": tables} if tables else {}), **(extra or {})}
    src = {"name": name, "config": config}
    sink = {"name": f"{name}-file", "config": {"connector.class": "FileStreamSink",
                                               "file": str(tmp / "out" / f"{name}.jsonl"),
                                               "topics.regex": f"{name}\\..*"}}
    files = [tmp / f"{name}-source.json", tmp / f"{name}-sink.json"]
    files[0].write_text(json.dumps(src))
    files[1].write_text(json.dumps(sink))
    return files


def my_rows(srv: MariaDbServer, db: str, table: str, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    with srv.connect(db) as c, c.cursor() as cur:
        cur.execute(f"SELECT {', '.join(f'`{x}`' for x in columns)} FROM `{table}`")
        return list(cur.fetchall())


def my_table_state(srv: MariaDbServer, db: str, table: str, pk: Sequence[str], columns: Sequence[str]) -> Any:
    """The server's rows in `replay`'s shape, values as text (str() of what the driver returns)."""
    rows = [{c: None if v is None else str(v) for c, v in zip(columns, r, strict=True)}
            for r in my_rows(srv, db, table, columns)]
    if pk:
        return {tuple(r[k] for k in pk): r for r in rows}
    return +Counter(json.dumps(r, sort_keys=True) for r in rows)
