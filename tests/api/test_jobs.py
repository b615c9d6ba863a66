"""/api/jobs: listing with filters and cursors, detail, enqueue, retry, cancel, delete, bulk actions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from conveyor import Conveyor, FakeClock, JobState

from .conftest import Drain, claim, enqueue


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


async def test_list_filters(app: Conveyor, admin: httpx.AsyncClient, drain: Drain, clock: FakeClock) -> None:
    early = await enqueue(app, "catalog:echo", {"sku": "early"}, tenant="store-a", user_id="u-1")
    clock.advance(100)
    boom = await enqueue(app, "catalog:boom", {"sku": "kaput"}, tenant="store-b")
    clock.advance(1)  # across queues, Redis lists by creation time
    waiting = await enqueue(app, "catalog:wait", {"key": "w"}, user_id="u-1")
    await drain(queues=["default"])

    async def ids(**params: Any) -> list[str]:
        response = await admin.get("/api/jobs", params=params)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()["jobs"]]

    assert await ids() == [waiting.id, boom.id, early.id]
    assert await ids(type="catalog:boom") == [boom.id]
    assert await ids(type=["catalog:boom", "catalog:echo"]) == [boom.id, early.id]
    assert await ids(state="completed") == [early.id]
    assert await ids(state=["failed", "pending"]) == [waiting.id, boom.id]
    assert await ids(queue="slow") == [waiting.id]
    assert await ids(tenant="store-b") == [boom.id]
    assert await ids(user="u-1") == [waiting.id, early.id]
    assert await ids(created_from=iso(early.created_at + 1)) == [waiting.id, boom.id]
    assert await ids(created_to=iso(early.created_at + 1)) == [early.id]
    assert await ids(q="kaput") == [boom.id]  # text of the last error
    assert await ids(error_type="ValueError") == [boom.id]
    assert await ids(oldest_first=True) == [early.id, boom.id, waiting.id]
    assert (await admin.get("/api/jobs", params={"state": "bogus"})).status_code == 422


async def test_cursor_pagination_visits_every_job_once(app: Conveyor, admin: httpx.AsyncClient) -> None:
    created = await app.enqueue_many("catalog:echo", [{"sku": f"p{i}"} for i in range(7)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = (await admin.get("/api/jobs", params=params)).json()
        seen += [job["id"] for job in body["jobs"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(created))
    bad = await admin.get("/api/jobs", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert "cursor" in bad.json()["detail"]


async def test_detail_has_logs_attempt_errors_and_tracker(
    app: Conveyor, admin: httpx.AsyncClient, drain: Drain, clock: FakeClock
) -> None:
    flaky = await enqueue(app, "catalog:flaky", {"sku": "f"})
    await drain()
    clock.advance(5)
    await drain()

    detail = (await admin.get(f"/api/jobs/{flaky.id}")).json()

    assert detail["job"]["display_state"] == "retrying"
    assert [e["attempt"] for e in detail["errors"]] == [1, 2]
    assert detail["errors"][0]["type"] == "ConnectionError"
    assert "Traceback" in detail["errors"][0]["traceback"]
    assert detail["tracker"]["job_id"] == flaky.id
    assert detail["tracker"]["children"] == []

    echo = await enqueue(app, "catalog:echo", {"sku": "s", "qty": 2})
    await drain()
    detail = (await admin.get(f"/api/jobs/{echo.id}")).json()
    assert [line["line"] for line in detail["logs"]] == ["echo s x2"]
    assert detail["job"]["progress"] == {"percent": 100.0, "message": "echoing s", "step": "echo"}
    assert detail["tracker"]["percent"] == 100
    assert (await admin.get(f"/api/jobs/{echo.id}", params={"logs": 0})).json()["logs"] == []


async def test_detail_tracker_tree_of_a_parent(app: Conveyor, admin: httpx.AsyncClient, drain: Drain) -> None:
    parent = await enqueue(app, "catalog:parent", {"n": 3})
    await drain(queues=["parents"])
    await drain(queues=["default"], concurrency=1)

    tracker = (await admin.get(f"/api/jobs/{parent.id}")).json()["tracker"]

    assert len(tracker["children"]) == 3
    assert tracker["states"]["completed"] >= 3
    assert {child["state"] for child in tracker["children"]} == {"completed"}
    children = (await admin.get("/api/jobs", params={"parent": parent.id})).json()["jobs"]
    assert len(children) == 3


async def test_enqueue_validates_against_the_registered_type(app: Conveyor, admin: httpx.AsyncClient) -> None:
    created = await admin.post(
        "/api/jobs",
        json={
            "type": "catalog:echo",
            "payload": {"sku": "n1", "api_key": "sk-live-secret"},
            "options": {"priority": 1, "delay": 30, "user_id": "u-7", "tags": ["import"]},
        },
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["type"] == "catalog:echo"
    assert job["state"] == "scheduled"
    assert job["priority"] == 1
    assert job["user_id"] == "u-7"
    assert job["tags"] == ["import"]
    assert job["payload"] == {"sku": "n1", "api_key": "[redacted]", "qty": 1}
    stored = await app.get_job(job["id"])
    assert stored.payload["api_key"] == "sk-live-secret"  # redacted in responses only

    bad = await admin.post("/api/jobs", json={"type": "catalog:echo", "payload": {"qty": "many"}})
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("invalid payload for 'catalog:echo'")
    unknown = await admin.post("/api/jobs", json={"type": "nope:nothing", "payload": {}})
    assert unknown.status_code == 422
    assert "unknown job type 'nope:nothing'" in unknown.json()["detail"]
    both = await admin.post(
        "/api/jobs",
        json={"type": "catalog:echo", "payload": {"sku": "x"}, "options": {"delay": 1, "run_at": 5}},
    )
    assert both.status_code == 422
    assert (await admin.post("/api/jobs", json={"type": "catalog:echo", "extra": 1})).status_code == 422


async def test_enqueue_with_dedup_key_returns_the_live_job(admin: httpx.AsyncClient) -> None:
    body = {"type": "catalog:echo", "payload": {"sku": "d"}, "options": {"dedup_key": "sku-d"}}
    first = await admin.post("/api/jobs", json=body)
    second = await admin.post("/api/jobs", json=body)
    assert (first.status_code, second.status_code) == (201, 200)  # created, then the live one
    assert first.json()["id"] == second.json()["id"]


async def test_retry_cancel_delete(app: Conveyor, admin: httpx.AsyncClient, drain: Drain) -> None:
    failed = await enqueue(app, "catalog:boom", {"sku": "b"})
    done = await enqueue(app, "catalog:echo", {"sku": "e"})
    await drain()

    retried = await admin.post(f"/api/jobs/{failed.id}/retry")
    assert retried.status_code == 200
    assert retried.json()["state"] == "pending"
    conflict = await admin.post(f"/api/jobs/{done.id}/retry")
    assert conflict.status_code == 409
    assert "only failed or cancelled jobs can be retried" in conflict.json()["detail"]

    cancelled = await admin.post(f"/api/jobs/{failed.id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    assert (await admin.post(f"/api/jobs/{done.id}/cancel")).status_code == 409

    waiting = await enqueue(app, "catalog:wait", {"key": "r"})
    await claim(app, "slow", 1)
    running = (await admin.post(f"/api/jobs/{waiting.id}/cancel")).json()
    assert running["state"] == "running"
    assert running["cancel_requested"] is True

    assert (await admin.delete(f"/api/jobs/{done.id}")).status_code == 204
    assert (await admin.get(f"/api/jobs/{done.id}")).status_code == 404
    assert (await admin.delete(f"/api/jobs/{done.id}")).status_code == 404
    for verb in ("retry", "cancel"):
        assert (await admin.post(f"/api/jobs/nope/{verb}")).status_code == 404


async def test_bulk_retry_of_all_failed_jobs_of_one_type(
    app: Conveyor, admin: httpx.AsyncClient, drain: Drain
) -> None:
    booms = await app.enqueue_many("catalog:boom", [{"sku": f"b{i}"} for i in range(5)])
    await app.enqueue_many("catalog:echo", [{"sku": f"e{i}"} for i in range(3)])
    await drain()
    await app.enqueue_many("catalog:boom", [{"sku": "later"}])  # pending: not failed, not retried

    response = await admin.post("/api/jobs/bulk/retry", json={"type": "catalog:boom"})

    assert response.status_code == 200, response.text
    assert response.json() == {"matched": 5, "changed": 5, "skipped": 0}
    for job_id in booms:
        job = await app.get_job(job_id)
        assert job.state is JobState.PENDING
        assert job.attempts == 0
    again = await admin.post("/api/jobs/bulk/retry", json={"type": "catalog:boom"})
    assert again.json() == {"matched": 0, "changed": 0, "skipped": 0}
    refused = await admin.post("/api/jobs/bulk/retry", json={"state": "running"})
    assert refused.status_code == 422


async def test_bulk_retry_by_error_type_and_bulk_cancel(
    app: Conveyor, admin: httpx.AsyncClient, drain: Drain
) -> None:
    await enqueue(app, "catalog:boom", {"sku": "b"})
    flaky = [await enqueue(app, "catalog:flaky", {"sku": f"f{i}"}, attempts=1) for i in range(2)]
    await drain()

    by_error = await admin.post("/api/jobs/bulk/retry", json={"error_type": "ConnectionError"})
    assert by_error.json() == {"matched": 2, "changed": 2, "skipped": 0}
    assert {(await app.get_job(j.id)).state for j in flaky} == {JobState.PENDING}

    await app.enqueue_many("catalog:wait", [{"key": f"k{i}"} for i in range(3)])
    cancelled = await admin.post("/api/jobs/bulk/cancel", json={"queue": "slow"})
    assert cancelled.json() == {"matched": 3, "changed": 3, "skipped": 0}
    remaining = (await admin.get("/api/jobs", params={"queue": "slow", "state": "cancelled"})).json()
    assert len(remaining["jobs"]) == 3
    assert (await admin.post("/api/jobs/bulk/cancel", json={"state": "completed"})).status_code == 422


async def test_bulk_retry_of_one_accounts_failed_jobs(
    app: Conveyor, admin: httpx.AsyncClient, drain: Drain
) -> None:
    """After an account's credentials are fixed: retry its failed jobs, and only those."""
    fixed = [await enqueue(app, "catalog:boom", {"sku": f"a{i}"}, key="amazon:3") for i in range(2)]
    other = await enqueue(app, "catalog:boom", {"sku": "e"}, key="ebay:4")
    await drain()

    listed = (await admin.get("/api/jobs", params={"key": "amazon:3"})).json()["jobs"]
    assert {job["id"] for job in listed} == {job.id for job in fixed}
    retried = await admin.post("/api/jobs/bulk/retry", json={"key": "amazon:3"})
    assert retried.json() == {"matched": 2, "changed": 2, "skipped": 0}
    assert {(await app.get_job(job.id)).state for job in fixed} == {JobState.PENDING}
    assert (await app.get_job(other.id)).state is JobState.FAILED
