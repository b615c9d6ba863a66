"""Fixtures shared by every test folder: a real Redis server, and a job store on each backend."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.backends.redis.keys import KeyLayout

from .redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One `redis-server` for the session; each test works under its own key prefix."""
    if not RedisServer.available():
        pytest.fail("redis-server is not installed: run the suite through ./scripts/test, which installs it")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty job store on each backend: a new SQLite file, a new Redis key prefix."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A URL with a fresh key prefix; afterwards, no key outside it may exist, and its keys go."""
    prefix = "t" + secrets.token_hex(5)
    yield redis_server.url(prefix)
    layout = KeyLayout(prefix)
    with redis_server.client() as client:
        keys = list(client.scan_iter(count=1000))
        leaked = [k for k in keys if not layout.owns(k)]
        if keys:
            client.delete(*keys)
    assert not leaked, f"keys written outside prefix {prefix!r}: {sorted(leaked)[:10]}"
