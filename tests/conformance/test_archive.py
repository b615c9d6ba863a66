"""The SQL archive of finished jobs: copied from the event stream, kept through retention, read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor import Conveyor, JobContext, JobOptions, JobState, Unrecoverable

from .conftest import AppFactory


@pytest.fixture
def archived_app(make_app: AppFactory, tmp_path: Path) -> Conveyor:
    app = make_app(archive_url=f"sqlite:///{tmp_path / 'archive.db'}")

    @app.job("catalog:sync", attempts=1)
    async def sync(ctx: JobContext, sku: str) -> dict[str, str]:
        if sku.startswith("bad"):
            raise Unrecoverable(f"supplier rejected {sku}")
        ctx.progress(100, f"synced {sku}")
        return {"sku": sku}

    return app


async def test_finished_jobs_survive_retention_in_the_archive(archived_app: Conveyor) -> None:
    app = archived_app
    ok = []
    for n in range(5):
        ok.append((await app.enqueue("catalog:sync", {"sku": f"p{n}"})).id)
        app.clock.advance(1)  # "newest first" needs distinct creation times
    bad = (await app.enqueue("catalog:sync", {"sku": "bad-1"})).id
    app.clock.advance(1)
    waiting = (await app.enqueue("catalog:sync", {"sku": "later"}, JobOptions(delay=3600))).id
    await app.worker(burst=True).run()  # a burst run ends with an archive pass

    assert await app.cleanup(keep_last=0) == 6  # every finished job leaves the backend
    assert [job.id for job in (await app.list_jobs()).jobs] == [waiting]
    stats = await app.stats()
    assert (stats.count(JobState.COMPLETED), stats.count(JobState.FAILED)) == (5, 1)
    assert stats.count(JobState.SCHEDULED) == 1

    failed = await app.history(states=[JobState.FAILED])
    assert [(job.id, job.error.message if job.error else None) for job in failed] == [
        (bad, "supplier rejected bad-1")
    ]
    newest = await app.history(limit=10)
    assert [job.id for job in newest] == [waiting, bad, *reversed(ok)]
    archived = newest[-1]
    assert (archived.state, archived.result, archived.progress.message) == (
        JobState.COMPLETED,
        {"sku": "p0"},
        "synced p0",
    )


async def test_each_pass_copies_only_what_finished_since(archived_app: Conveyor) -> None:
    app = archived_app
    await app.enqueue_many("catalog:sync", [{"sku": f"a{n}"} for n in range(3)])
    await app.worker(burst=True).run()
    assert await app.archive_finished() == 0  # the burst run's pass took them all
    await app.enqueue_many("catalog:sync", [{"sku": f"b{n}"} for n in range(2)])
    await app.worker(burst=True, scheduler=False).run()
    archive = app.archive
    assert archive is not None
    assert sum(archive.counts().get("default", {}).values()) == 5


async def test_cleanup_archives_before_it_trims(archived_app: Conveyor) -> None:
    app = archived_app
    await app.enqueue_many("catalog:sync", [{"sku": f"c{n}"} for n in range(4)])
    archive = app.archive
    assert archive is not None
    await app.worker(burst=True).run()
    with archive.engine.begin() as conn:  # forget the worker's pass: cleanup must archive by itself
        conn.exec_driver_sql("DELETE FROM conveyor_archived_jobs")
        conn.exec_driver_sql("DELETE FROM conveyor_archive_cursor")
    assert await app.cleanup(keep_last=0) == 4
    assert archive.counts()["default"] == {JobState.COMPLETED: 4}


async def test_a_reader_behind_the_streams_bound_copies_every_finished_job(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_EVENTS_MAX", "10")
    app = make_app(archive_url=f"sqlite:///{tmp_path / 'archive.db'}")
    busy = make_app()  # the same backend, without an archive: its workers copy nothing

    for each in (app, busy):

        @each.job("catalog:sync")
        async def sync(sku: str) -> str:
            return sku

    await busy.enqueue("catalog:sync", {"sku": "first"})
    await busy.worker(burst=True).run()
    assert await app.archive_finished() == 1  # an empty archive copies what is there, then follows
    archive = app.archive
    assert archive is not None
    behind = archive.cursor()
    await busy.enqueue_many("catalog:sync", [{"sku": f"s{n}"} for n in range(150)])
    await busy.worker(burst=True).run()
    backend = await app.backend()
    assert (await backend.events(behind, limit=1)).missed  # 450 events went by a bound of about 10
    assert await app.archive_finished() == 151  # behind the bound: everything finished, again
    assert archive.counts()["default"] == {JobState.COMPLETED: 151}
