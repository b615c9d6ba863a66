"""How many jobs a worker's fetch claims: every free slot for short jobs, a share for long ones."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.backends.base import FetchParams
from conveyor.job import Job


async def claims_asked(app: Conveyor, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many jobs each fetch of the app's backend asks for."""
    backend = await app.backend()
    asked: list[int] = []
    real = backend.fetch

    async def fetch(params: FetchParams) -> list[Job]:
        asked.append(sum(params.limits.values()))
        return await real(params)

    monkeypatch.setattr(backend, "fetch", fetch)
    return asked


async def test_long_jobs_are_claimed_a_sixteenth_of_the_slots_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'jobs.db'}")

    @app.job("catalog:slow")
    async def slow(n: int) -> None:
        await asyncio.sleep(0.1)  # dozens of times a local fetch

    await slow.enqueue_many({"n": n} for n in range(96))
    asked = await claims_asked(app, monkeypatch)
    summary = await app.worker(concurrency=32, burst=True).run()
    await app.close()
    assert summary.outcomes == {"complete": 96}
    assert asked[0] == 32  # no run time seen yet: every free slot
    later = asked[len(asked) // 2 :]
    assert later, asked
    assert max(later) <= 32 // 16, asked


async def test_short_jobs_are_claimed_as_many_as_slots_are_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'jobs.db'}")

    @app.job("catalog:quick")
    async def quick(n: int) -> None: ...

    await quick.enqueue_many({"n": n} for n in range(320))
    asked = await claims_asked(app, monkeypatch)
    summary = await app.worker(concurrency=32, burst=True).run()
    await app.close()
    assert summary.outcomes == {"complete": 320}
    assert max(asked[1:]) > 32 // 16, asked  # never cut to a share
