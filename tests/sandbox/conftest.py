"""Fixtures for the simulator tests: a fake clock and a helper that serves a sandbox on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from conveyor import FakeClock
from conveyor.sandbox import RunningSandbox, Sandbox, start


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def serve() -> Iterator[Callable[[Sandbox], RunningSandbox]]:
    running: list[RunningSandbox] = []

    def run(sandbox: Sandbox) -> RunningSandbox:
        running.append(start(sandbox))
        return running[-1]

    yield run
    for server in running:
        server.stop()
