"""A private MariaDB 10.11: `mariadb-install-db` in a temp dir, `mariadbd` on a free loopback port.

Used by the test fixtures, the benchmarks and `make demo`. The binlog is on in the form the bridge
needs (ROW, FULL row image, FULL row metadata) unless `settings` says otherwise, so tests can also
start a server that lacks them. When the binaries are missing it installs Debian's `mariadb-server`
(we run as root on CI); as root the server runs as the `mysql` user. Failure to start raises with
the error log's tail. The superuser is `root` over the unix socket and `cdc`/`cdc` over TCP.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from tests.servers.postgres import free_port

USER = "cdc"
PASSWORD = "cdc"


def mariadb_bin(name: str) -> str:
    """The path of a MariaDB program, installing Debian's `mariadb-server` when it is missing."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "mariadb-server",
                        "mariadb-client"], check=True, env=env, stdout=subprocess.DEVNULL)
        # Debian's package starts a system instance where it can; ours never uses it.
        subprocess.run(["service", "mariadb", "stop"], check=False, capture_output=True)
        found = shutil.which(name, path="/usr/sbin:/usr/bin")
        if found:
            return found
    raise RuntimeError(f"MariaDB program {name!r} not found; install Debian's mariadb-server package")


@dataclass
class MariaDbServer:
    """A running private server; `connect(db)` gives a superuser connection over TCP."""

    base: Path
    port: int
    settings: dict[str, str]
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    host = "127.0.0.1"
    user = USER
    password = PASSWORD

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket(self) -> Path:
        return self.base / "mysqld.sock"

    @property
    def cnf(self) -> Path:
        return self.base / "my.cnf"

    @classmethod
    def start(cls, settings: dict[str, str] | None = None, root: Path | None = None) -> MariaDbServer:
        base = Path(tempfile.mkdtemp(prefix="cdc-my-", dir=root))
        conf = {
            "datadir": str(base / "data"), "socket": str(base / "mysqld.sock"), "bind-address": "127.0.0.1",
            "pid-file": str(base / "mysqld.pid"), "log-error": str(base / "error.log"),
            "log-bin": "binlog", "binlog-format": "ROW", "binlog-row-image": "FULL",
            "binlog-row-metadata": "FULL", "server-id": "1", "skip-name-resolve": "1",
            "character-set-server": "utf8mb4", "collation-server": "utf8mb4_general_ci",
            "default-time-zone": "+00:00", "innodb-buffer-pool-size": "256M", "innodb-log-file-size": "256M",
            "max-allowed-packet": "256M", "sync-binlog": "1", "innodb-flush-log-at-trx-commit": "1",
        }
        conf.update(settings or {})
        srv = cls(base=base, port=free_port(), settings=conf)
        conf["port"] = str(srv.port)
        owner = "mysql" if os.geteuid() == 0 else None
        srv.cnf.write_text("[mysqld]\n" + "".join(f"{k}={v}\n" for k, v in conf.items())
                           + (f"user={owner}\n" if owner else ""))
        if owner:
            shutil.chown(base, owner, owner)
        install = subprocess.run(
            [mariadb_bin("mariadb-install-db"), f"--defaults-file={srv.cnf}",
             "--auth-root-authentication-method=socket", "--skip-test-db"], capture_output=True, check=False)
        if install.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {install.stderr.decode(errors='replace')[-2000:]}")
        srv.start_server()
        with srv.root() as c, c.cursor() as cur:
            for host in ("127.0.0.1", "localhost"):
                cur.execute(f"CREATE USER IF NOT EXISTS '{USER}'@'{host}' IDENTIFIED BY '{PASSWORD}'")
                cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'{host}' WITH GRANT OPTION")
        return srv

    def root(self) -> pymysql.Connection[Any]:
        return pymysql.connect(unix_socket=str(self.socket), user="root", autocommit=True)

    def start_server(self) -> None:
        """Start mariadbd (again, after `stop_server`) and wait until it answers."""
        log = self.base / "stdout.log"
        with log.open("ab") as out:
            self._proc = subprocess.Popen([mariadb_bin("mariadbd"), f"--defaults-file={self.cnf}"],
                                          stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.root().close()
                return
            except pymysql.err.OperationalError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    err = (self.base / "error.log")
                    tail = err.read_text(errors="replace")[-2000:] if err.exists() else ""
                    raise RuntimeError(f"MariaDB failed to start (exit {self._proc.poll()}):\n{tail}") from None
                time.sleep(0.1)  # polling the server's own readiness, not standing in for a result

    def stop_server(self, kill: bool = False) -> None:
        """Stop the server: a clean shutdown, or SIGKILL (a crash) with `kill`."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def destroy(self) -> None:
        self.stop_server(kill=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def connect(self, db: str | None = None, **kw: Any) -> pymysql.Connection[Any]:
        kw.setdefault("autocommit", True)
        return pymysql.connect(host=self.host, port=self.port, user=USER, password=PASSWORD, database=db,
                               charset="utf8mb4", **kw)

    def execute(self, db: str | None, *statements: str) -> None:
        with self.connect(db) as c, c.cursor() as cur:
            for s in statements:
                cur.execute(s)

    def create_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.execute(None, f"CREATE DATABASE `{name}`")
        return name

    def drop_database(self, name: str) -> None:
        self.execute(None, f"DROP DATABASE IF EXISTS `{name}`")

    def binlog_position(self) -> tuple[str, int]:
        with self.connect() as c, c.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            row = cur.fetchone()
            assert row is not None
            return str(row[0]), int(row[1])


@contextlib.contextmanager
def running_mariadb(settings: dict[str, str] | None = None) -> Iterator[MariaDbServer]:
    srv = MariaDbServer.start(settings=settings)
    try:
        yield srv
    finally:
        srv.destroy()
