"""A private PostgreSQL 15 cluster: initdb in a temp dir, a free loopback port, `wal_level=logical`.

Used by the test fixtures, the benchmarks and `make demo`. When the server binaries are missing it
installs Debian's `postgresql` package (we run as root on CI). PostgreSQL refuses to run as root, so
as root the cluster is owned by and run as the `postgres` user. Failure to start raises with the
server log's tail, so a broken environment says why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

PG_MAJOR = "15"


def pg_bindir() -> Path:
    """The PostgreSQL server's bin dir, installing Debian's package when it is missing."""
    candidates = [Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")]
    for c in candidates:
        if (c / "initdb").exists():
            return c
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                        f"postgresql-{PG_MAJOR}", f"postgresql-client-{PG_MAJOR}"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        for c in candidates:
            if (c / "initdb").exists():
                return c
    raise RuntimeError(f"PostgreSQL {PG_MAJOR} server binaries not found in {candidates}; "
                       f"install Debian's postgresql-{PG_MAJOR} package")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """A running private cluster; `dsn(db)` gives a superuser DSN for a database on it."""

    datadir: Path
    port: int
    bindir: Path
    user: str = "postgres"
    _owner: str | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def _run(self, args: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
        user = self._owner
        return subprocess.run(args, check=True, user=user, capture_output=True, **kw)  # type: ignore[call-overload,no-any-return]

    @classmethod
    def start(cls, root: Path | None = None, settings: dict[str, str] | None = None) -> PgServer:
        bindir = pg_bindir()
        base = Path(tempfile.mkdtemp(prefix="cdc-pg-", dir=root))
        owner = "postgres" if os.geteuid() == 0 else None
        if owner:
            shutil.chown(base, owner, owner)
        srv = cls(datadir=base / "data", port=free_port(), bindir=bindir, _owner=owner)
        srv._run([str(bindir / "initdb"), "-D", str(srv.datadir), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        conf = {
            "listen_addresses": "'127.0.0.1'", "port": str(srv.port), "unix_socket_directories": f"'{base}'",
            "wal_level": "logical", "max_replication_slots": "20", "max_wal_senders": "20",
            "max_wal_size": "4GB", "fsync": "on", "synchronous_commit": "on",
            "shared_buffers": "128MB", "logical_decoding_work_mem": "64MB", "autovacuum": "off",
            "log_min_messages": "warning", "timezone": "'UTC'",
        }
        conf.update(settings or {})
        with (srv.datadir / "postgresql.conf").open("a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in conf.items())
        srv.start_server()
        return srv

    def start_server(self) -> None:
        try:
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l",
                       str(self.datadir.parent / "server.log"), "-w", "-t", "60", "start"])
        except subprocess.CalledProcessError as e:
            log = (self.datadir.parent / "server.log")
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"PostgreSQL failed to start: {e.stderr!r}\n{tail}") from e

    def stop_server(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"])

    def destroy(self) -> None:
        self.stop_server("immediate")
        shutil.rmtree(self.datadir.parent, ignore_errors=True)

    def create_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.dsn(), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as c:
            for (slot,) in c.execute("SELECT slot_name FROM pg_replication_slots WHERE database = %s",
                                     (name,)).fetchall():
                c.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                          "WHERE slot_name = %s AND active_pid IS NOT NULL", (slot,))
                with contextlib.suppress(psycopg.Error):
                    c.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_postgres(settings: dict[str, str] | None = None) -> Iterator[PgServer]:
    srv = PgServer.start(settings=settings)
    try:
        yield srv
    finally:
        srv.destroy()
