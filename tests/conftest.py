"""Shared fixtures: one private PostgreSQL cluster and one MariaDB server per test session (each started
only when a test asks for it), a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.mariadb import MariaDbServer
from tests.servers.postgres import PgServer


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    srv = PgServer.start()
    try:
        yield srv
    finally:
        srv.destroy()


@pytest.fixture
def pg_db(pg_server: PgServer) -> Iterator[str]:
    """A fresh database on the session cluster (its slots dropped with it); yields its DSN."""
    name = pg_server.create_database()
    try:
        yield pg_server.dsn(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture(scope="session")
def my_server() -> Iterator[MariaDbServer]:
    srv = MariaDbServer.start()
    try:
        yield srv
    finally:
        srv.destroy()


@pytest.fixture
def my_db(my_server: MariaDbServer) -> Iterator[str]:
    """A fresh database (schema) on the session MariaDB server; yields its name."""
    name = my_server.create_database()
    try:
        yield name
    finally:
        my_server.drop_database(name)
