"""The conformance suite: engine semantics, written once, run against every backend.

A backend joins by adding a parameter to `backend_url` (tests/conftest.py)
that yields a URL of a fresh, empty store (a new SQLite file; a new Redis key prefix).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from conveyor import Conveyor, FakeClock, WorkerSummary

AppFactory = Callable[..., Conveyor]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_app(backend_url: str, clock: FakeClock) -> AsyncIterator[AppFactory]:
    """Apps on one store and one fake clock; several apps act as several processes."""
    apps: list[Conveyor] = []

    def factory(**settings: Any) -> Conveyor:
        app = Conveyor(backend_url, clock=clock, **settings)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        await app.close()


@pytest.fixture
def app(make_app: AppFactory) -> Conveyor:
    return make_app()


Drain = Callable[..., Awaitable[WorkerSummary]]


@pytest.fixture
def drain(app: Conveyor) -> Drain:
    """Run a burst worker until nothing is ready (time does not move unless the test moves it)."""

    async def run(target: Conveyor | None = None, **options: Any) -> WorkerSummary:
        return await (target or app).worker(burst=True, **options).run()

    return run
