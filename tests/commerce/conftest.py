"""Commerce tests run on SQLite and, when one is reachable, PostgreSQL.

PostgreSQL cases run when `CONVEYOR_TEST_POSTGRES_URL` is set (it must then
work) or a server answers on 127.0.0.1:5432; otherwise they are not collected.
Each case gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from conveyor import FakeClock
from conveyor.commerce import db
from conveyor.sandbox import RunningSandbox, start
from conveyor.sandbox.base import Sandbox

POSTGRES_ENV = "CONVEYOR_TEST_POSTGRES_URL"
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str | None:
    if url := os.environ.get(POSTGRES_ENV):
        return url
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=0.5).close()
    except OSError:
        return None
    return LOCAL_POSTGRES


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A URL whose connections work in a fresh schema, dropped on exit."""
    schema = "conveyor_test_" + secrets.token_hex(4)
    admin = db.create_engine_for(url)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    except OperationalError as e:
        admin.dispose()
        where = f"{POSTGRES_ENV} is set but" if os.environ.get(POSTGRES_ENV) else "127.0.0.1:5432 answers but"
        shown = sa.make_url(url).render_as_string(hide_password=True)
        pytest.fail(f"{where} PostgreSQL at {shown} is not usable: {e}", pytrace=False)
    try:
        yield (
            sa.make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"] if postgres_url() else ["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    url = postgres_url()
    assert url is not None
    with postgres_schema(url) as schema_url:
        yield schema_url


Serve = Callable[[Sandbox], RunningSandbox]


@pytest.fixture
def clock() -> FakeClock:
    """One fake clock per test, shared by a simulator's rate limits and its connector."""
    return FakeClock()


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start simulators on free loopback ports; all of them stop when the test ends."""
    servers: list[RunningSandbox] = []

    def go(sandbox: Sandbox) -> RunningSandbox:
        servers.append(start(sandbox))
        return servers[-1]

    yield go
    for server in servers:
        server.stop()
