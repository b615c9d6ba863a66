"""The seed endpoints answer with exactly the seeds' JSON shapes, on both backends."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx

from conveyor import Conveyor, FakeClock
from conveyor.backends.base import ProgressUpdate

from .conftest import Drain, claim, enqueue, register_worker

SEED_001_STATUS = {
    "status": {"is_running": True, "currently_processing": 2, "max_concurrent_jobs": 5},
    "statistics": {
        "total": 150,
        "completed": 142,
        "failed": 3,
        "pending": 3,
        "running": 2,
        "success_rate": "94.67%",
    },
}


async def test_queue_status_reproduces_seed_001_example(
    app: Conveyor, admin: httpx.AsyncClient, drain: Drain
) -> None:
    await app.enqueue_many("catalog:echo", [{"sku": f"p{i}"} for i in range(142)])
    await app.enqueue_many("catalog:boom", [{"sku": f"b{i}"} for i in range(3)])
    await drain()
    await app.enqueue_many("catalog:wait", [{"key": f"w{i}"} for i in range(5)])
    await claim(app, "slow", 2)
    await register_worker(app, {"default": 5})

    response = await admin.get("/api/background-jobs/status")

    assert response.status_code == 200
    assert response.json() == SEED_001_STATUS


async def test_queue_status_counts_waiting_and_in_progress_jobs_and_leaves_out_cancelled(
    app: Conveyor, admin: httpx.AsyncClient, drain: Drain, clock: FakeClock
) -> None:
    empty = (await admin.get("/api/background-jobs/status")).json()
    assert empty["statistics"] == {
        "total": 0,
        "completed": 0,
        "failed": 0,
        "pending": 0,
        "running": 0,
        "success_rate": "0.00%",
    }
    assert empty["status"] == {"is_running": False, "currently_processing": 0, "max_concurrent_jobs": 0}

    await enqueue(app, "catalog:flaky", {"sku": "f"})  # fails once, then waits to retry
    await drain()
    await enqueue(app, "catalog:echo", {"sku": "later"}, delay=60)  # scheduled
    cancelled = await enqueue(app, "catalog:echo", {"sku": "c"})
    await app.cancel(cancelled.id)
    await enqueue(app, "catalog:echo", {"sku": "done"})
    await drain()

    stats = (await admin.get("/api/background-jobs/status")).json()["statistics"]
    assert stats == {
        "total": 3,
        "completed": 1,
        "failed": 0,
        "pending": 2,
        "running": 0,
        "success_rate": "33.33%",
    }


async def test_job_status_has_seed_001_fields_and_shows_retrying(
    app: Conveyor, admin: httpx.AsyncClient, drain: Drain
) -> None:
    job = await enqueue(app, "catalog:flaky", {"sku": "x"})
    await drain()

    response = await admin.get(f"/api/background-jobs/{job.id}/status")

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["job"]
    assert {"id", "type", "status", "progress", "progress_message"} <= set(body["job"])
    assert body["job"]["id"] == job.id
    assert body["job"]["type"] == "catalog:flaky"
    assert body["job"]["status"] == "retrying"
    assert body["job"]["progress"] == 0
    assert body["job"]["error"] == "supplier timed out for x"


async def test_running_job_status_shows_progress_and_message(app: Conveyor, admin: httpx.AsyncClient) -> None:
    job = await enqueue(app, "catalog:wait", {"key": "k"})
    (running,) = await claim(app, "slow", 1)
    backend = await app.backend()
    await backend.progress([ProgressUpdate(running.id, 45.6, "AI optimizing: Product Name (15/30)")])

    body = (await admin.get(f"/api/background-jobs/{job.id}/status")).json()

    assert body["job"]["status"] == "running"
    assert body["job"]["progress"] == 45
    assert body["job"]["progress_message"] == "AI optimizing: Product Name (15/30)"


async def test_parent_job_status_reports_its_tree_progress(
    app: Conveyor, admin: httpx.AsyncClient, drain: Drain
) -> None:
    parent = await enqueue(app, "catalog:parent", {"n": 4})
    await drain(queues=["parents"])  # the parent spawns 4 children; none has run yet

    body = (await admin.get(f"/api/background-jobs/{parent.id}/status")).json()
    assert body["job"]["status"] == "waiting_children"
    assert body["job"]["progress"] == 0

    await drain()
    body = (await admin.get(f"/api/background-jobs/{parent.id}/status")).json()
    assert body["job"]["status"] == "completed"
    assert body["job"]["progress"] == 100


async def test_unknown_job_is_404_with_detail(admin: httpx.AsyncClient) -> None:
    for path in (
        "/api/background-jobs/nope/status",
        "/app/job-status/status/job/nope",
        "/api/queues/default/jobs/nope",
        "/api/jobs/nope",
    ):
        response = await admin.get(path)
        assert response.status_code == 404, path
        assert response.json() == {"detail": "no job with id 'nope'"}


async def test_seed_003_job_status_shape(app: Conveyor, admin: httpx.AsyncClient, drain: Drain) -> None:
    job = await enqueue(app, "catalog:echo", {"sku": "s1", "api_key": "sk-live-1"})
    await drain()

    response = await admin.get(f"/api/queues/default/jobs/{job.id}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "state",
        "progress",
        "result",
        "error",
        "attemptsMade",
        "processedOn",
        "finishedOn",
        "timestamp",
        "data",
    }
    assert body["id"] == job.id
    assert body["name"] == "catalog:echo"
    assert body["state"] == "completed"
    assert body["progress"] == {"step": "echo", "percentage": 100}
    assert body["result"] == {"sku": "s1", "qty": 1, "access_token": "[redacted]"}
    assert body["error"] is None
    assert body["attemptsMade"] == 1
    assert body["timestamp"] == round(job.created_at * 1000)
    assert isinstance(body["processedOn"], int)
    assert isinstance(body["finishedOn"], int)
    assert body["data"] == {"sku": "s1", "api_key": "[redacted]", "qty": 1}
    assert (await admin.get(f"/api/queues/slow/jobs/{job.id}")).status_code == 404


async def test_seed_003_states_use_bullmq_names(
    app: Conveyor, admin: httpx.AsyncClient, drain: Drain
) -> None:
    failed = await enqueue(app, "catalog:boom", {"sku": "b"})
    delayed = await enqueue(app, "catalog:echo", {"sku": "d"}, delay=60)
    await drain()
    waiting = await enqueue(app, "catalog:wait", {"key": "w1"})
    active = await enqueue(app, "catalog:wait", {"key": "w2"})
    await claim(app, "slow", 1)

    async def state(queue: str, job_id: str) -> str:
        return str((await admin.get(f"/api/queues/{queue}/jobs/{job_id}")).json()["state"])

    assert await state("default", failed.id) == "failed"
    assert await state("default", delayed.id) == "delayed"
    assert {await state("slow", waiting.id), await state("slow", active.id)} == {"waiting", "active"}
    body = (await admin.get(f"/api/queues/default/jobs/{failed.id}")).json()
    assert body["error"] == "bad sku b"


async def test_seed_003_queue_stats_shape(app: Conveyor, admin: httpx.AsyncClient, drain: Drain) -> None:
    await app.enqueue_many("catalog:echo", [{"sku": f"e{i}"} for i in range(3)])
    await enqueue(app, "catalog:boom", {"sku": "b"})
    await enqueue(app, "catalog:echo", {"sku": "later"}, delay=60)
    await drain()
    await app.enqueue_many("catalog:wait", [{"key": f"w{i}"} for i in range(4)])
    await claim(app, "slow", 1)

    everything = (await admin.get("/api/queues/stats")).json()
    assert everything == {
        "default": {
            "queueName": "default",
            "waiting": 0,
            "active": 0,
            "completed": 3,
            "failed": 1,
            "delayed": 1,
            "total": 5,
        },
        "slow": {
            "queueName": "slow",
            "waiting": 3,
            "active": 1,
            "completed": 0,
            "failed": 0,
            "delayed": 0,
            "total": 4,
        },
    }
    assert (await admin.get("/api/queues/stats", params={"queue": "slow"})).json() == {
        "slow": everything["slow"]
    }
    assert (await admin.get("/api/queues/stats", params={"queue": "nothing-here"})).json() == {
        "nothing-here": {
            "queueName": "nothing-here",
            "waiting": 0,
            "active": 0,
            "completed": 0,
            "failed": 0,
            "delayed": 0,
            "total": 0,
        }
    }
    assert (await admin.get("/app/job-status/queue/stats")).json() == everything


async def test_seed_004_user_status(
    app: Conveyor, admin: httpx.AsyncClient, drain: Drain, clock: FakeClock
) -> None:
    await enqueue(app, "catalog:echo", {"sku": "old"}, user_id="u-1")
    await drain()
    clock.advance(10)
    newest = await enqueue(app, "catalog:boom", {"sku": "new"}, user_id="u-1")
    await enqueue(app, "catalog:echo", {"sku": "other"}, user_id="u-2")
    await drain()

    body = (await admin.get("/app/job-status/status/user/u-1")).json()

    assert body["user_id"] == "u-1"
    assert body["status"] == "failed"
    assert next(j["job_id"] for j in body["jobs"]) == newest.id
    assert [j["status"] for j in body["jobs"]] == ["failed", "completed"]
    record = body["jobs"][1]
    assert set(record) == {
        "job_id",
        "user_id",
        "type",
        "queue",
        "status",
        "progress",
        "progress_message",
        "attempts",
        "created_at",
        "started_at",
        "completed_at",
        "failed_at",
        "duration_seconds",
        "result",
        "error",
    }
    assert record["completed_at"] is not None
    assert record["failed_at"] is None
    assert body["jobs"][0]["failed_at"] is not None
    assert body["jobs"][0]["error"] == "bad sku new"
    nobody = (await admin.get("/app/job-status/status/user/u-404")).json()
    assert nobody == {"user_id": "u-404", "status": None, "jobs": []}


async def test_seed_004_job_recent_and_failed(app: Conveyor, admin: httpx.AsyncClient, drain: Drain) -> None:
    ok = await enqueue(app, "catalog:echo", {"sku": "ok"}, user_id="u-1")
    bad = [await enqueue(app, "catalog:boom", {"sku": f"bad{i}"}) for i in range(3)]
    await drain()

    record = (await admin.get(f"/app/job-status/status/job/{ok.id}")).json()
    assert record["job_id"] == ok.id
    assert record["status"] == "completed"
    assert record["user_id"] == "u-1"
    assert record["progress"] == 100

    recent = (await admin.get("/app/job-status/recent", params={"limit": 2})).json()
    assert [j["job_id"] for j in recent["jobs"]] == [bad[2].id, bad[1].id]

    failed = (await admin.get("/app/job-status/failed", params={"limit": 100})).json()
    assert [j["job_id"] for j in failed["jobs"]] == [b.id for b in reversed(bad)]
    assert all(j["error"].startswith("bad sku") for j in failed["jobs"])
    assert (await admin.get("/app/job-status/failed", params={"limit": 0})).status_code == 422


async def test_seed_004_lists_and_statistics_outlive_retention_with_an_archive(
    app: Conveyor, admin: httpx.AsyncClient, drain: Drain, tmp_path: Path
) -> None:
    app.settings = replace(app.settings, archive_url=f"sqlite:///{tmp_path / 'archive.db'}")
    failed = await enqueue(app, "catalog:boom", {"sku": "b1"}, user_id="u-7")
    done = await enqueue(app, "catalog:echo", {"sku": "e1"}, user_id="u-7")
    await drain()
    assert await app.cleanup(keep_last=0) == 2
    assert (await app.list_jobs()).jobs == []

    listed = (await admin.get("/app/job-status/failed")).json()["jobs"]
    assert [(job["job_id"], job["status"]) for job in listed] == [(failed.id, "failed")]
    mine = (await admin.get("/app/job-status/status/user/u-7")).json()
    assert {job["job_id"] for job in mine["jobs"]} == {failed.id, done.id}
    one = await admin.get(f"/app/job-status/status/job/{done.id}")
    assert (one.status_code, one.json()["status"]) == (200, "completed")
    statistics = (await admin.get("/api/background-jobs/status")).json()["statistics"]
    assert (statistics["completed"], statistics["failed"]) == (1, 1)
