"""Queues, workers, schedules, metrics, health, mounting under a prefix, and the OpenAPI document."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from conveyor import Conveyor, FakeClock
from conveyor.api import AuthConfig, TokenStore, create_api

from .conftest import Client, Drain, Tokens, claim, enqueue, free_port, register_worker
from .test_seeds import SEED_001_STATUS


async def test_queues_list_pause_and_resume(app: Conveyor, admin: httpx.AsyncClient, drain: Drain) -> None:
    await app.enqueue_many("catalog:echo", [{"sku": f"e{i}"} for i in range(2)])
    await enqueue(app, "catalog:flaky", {"sku": "f"})
    await drain()
    await enqueue(app, "catalog:wait", {"key": "w"})

    queues = {q["queue"]: q for q in (await admin.get("/api/queues")).json()}
    assert queues["default"] == {
        "queue": "default",
        "paused": False,
        "counts": {
            "pending": 0,
            "scheduled": 0,
            "retrying": 1,
            "running": 0,
            "waiting_children": 0,
            "completed": 2,
            "failed": 0,
            "cancelled": 0,
        },
        "total": 3,
    }
    assert queues["slow"]["counts"]["pending"] == 1

    paused = await admin.post("/api/queues/slow/pause")
    assert paused.status_code == 200
    assert paused.json()["paused"] is True
    summary = await drain()
    assert summary.processed == 0  # the paused queue is skipped
    resumed = await admin.post("/api/queues/slow/resume")
    assert resumed.json()["paused"] is False
    assert resumed.json()["counts"]["pending"] == 1
    fresh = await admin.post("/api/queues/brand-new/pause")
    assert fresh.json()["paused"] is True
    assert (await admin.post("/api/queues/bad name!/pause")).status_code == 422


async def test_workers(app: Conveyor, admin: httpx.AsyncClient) -> None:
    assert (await admin.get("/api/workers")).json() == []
    await register_worker(app, {"default": 5, "slow": 2})
    (worker,) = (await admin.get("/api/workers")).json()
    assert worker["id"] == "host:1:abc"
    assert worker["concurrency"] == {"default": 5, "slow": 2}
    assert worker["running"] == 0


async def test_schedules(app: Conveyor, admin: httpx.AsyncClient, client_for: Client, tokens: Tokens) -> None:
    if not hasattr(await app.backend(), "upsert_schedule"):
        pytest.skip("this backend does not store schedules yet")
    await app.add_schedule(
        "hourly-echo", "catalog:echo", cron="0 * * * *", payload={"sku": "s", "api_key": "k"}
    )
    await app.add_schedule("b-sync", "catalog:echo", every=60, payload={"sku": "b"}, tenant="store-b")

    schedules = {s["name"]: s for s in (await admin.get("/api/schedules")).json()}
    assert set(schedules) == {"hourly-echo", "b-sync"}
    assert schedules["hourly-echo"]["cron"] == "0 * * * *"
    assert schedules["hourly-echo"]["payload"] == {"sku": "s", "api_key": "[redacted]"}
    assert schedules["b-sync"]["every"] == 60
    store_a = client_for(tokens.tenant_a)
    assert (await store_a.get("/api/schedules")).json() == []


async def test_metrics_read_the_backend_per_scrape(
    app: Conveyor, admin: httpx.AsyncClient, drain: Drain
) -> None:
    await app.enqueue_many("catalog:echo", [{"sku": f"e{i}"} for i in range(3)])
    await enqueue(app, "catalog:boom", {"sku": "b"})
    await drain()
    await enqueue(app, "catalog:wait", {"key": "w"})
    await claim(app, "slow", 1)
    await register_worker(app, {"default": 5})
    await app.pause("slow")

    response = await admin.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("conveyor_jobs", (("queue", "default"), ("state", "completed")))] == 3
    assert samples[("conveyor_jobs", (("queue", "default"), ("state", "failed")))] == 1
    assert samples[("conveyor_jobs", (("queue", "slow"), ("state", "running")))] == 1
    assert samples[("conveyor_queue_paused", (("queue", "slow"),))] == 1
    assert samples[("conveyor_success_ratio", ())] == 0.75
    assert samples[("conveyor_workers", ())] == 1
    assert samples[("conveyor_jobs_processing", ())] == 1
    assert samples[("conveyor_concurrency", ())] == 5

    await enqueue(app, "catalog:echo", {"sku": "more"})
    again = await admin.get("/metrics")
    assert 'conveyor_jobs{queue="default",state="pending"} 1.0' in again.text


async def test_two_apps_in_one_process_keep_their_own_metrics(
    app: Conveyor, tokens: Tokens, clock: FakeClock, tmp_path: Path
) -> None:
    other = Conveyor(f"sqlite:///{tmp_path / 'other.db'}", clock=clock)
    try:
        await enqueue(app, "catalog:echo", {"sku": "mine"})
        first = create_api(app, auth=AuthConfig(tokens=tokens.store, clock=clock))
        second = create_api(other, auth=AuthConfig(tokens=tokens.store, clock=clock))
        for api, expected in ((first, 'state="pending"} 1.0'), (second, None)):
            transport = httpx.ASGITransport(api)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                text = (await client.get("/metrics", headers=Tokens.header(tokens.admin))).text
            if expected:
                assert expected in text
            else:
                assert "conveyor_jobs{" not in text
    finally:
        await other.close()


async def test_health_and_readiness(admin: httpx.AsyncClient, tokens: Tokens, clock: FakeClock) -> None:
    assert (await admin.get("/healthz")).json() == {"status": "ok"}
    assert (await admin.get("/readyz")).json() == {"status": "ready"}

    unreachable = Conveyor(f"redis://127.0.0.1:{free_port()}/0", clock=clock)
    api = create_api(unreachable, auth=AuthConfig(tokens=tokens.store, clock=clock))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(api), base_url="http://t") as client:
            assert (await client.get("/healthz")).status_code == 200
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json() == {"detail": "the job backend is unavailable"}
            down = await client.get("/api/jobs", headers=Tokens.header(tokens.admin))
            assert down.status_code == 503
            assert down.json() == {"detail": "the job backend is unavailable"}
    finally:
        await unreachable.close()


async def test_mounted_under_a_prefix(api: FastAPI, app: Conveyor, tokens: Tokens) -> None:
    host = FastAPI()

    @host.get("/")
    async def home() -> dict[str, str]:
        return {"shop": "front page"}

    host.mount("/ops/jobs", api)
    job = await enqueue(app, "catalog:echo", {"sku": "m"})

    transport = httpx.ASGITransport(host)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        assert (await client.get("/")).json() == {"shop": "front page"}
        headers = Tokens.header(tokens.admin)
        status = await client.get("/ops/jobs/api/background-jobs/status", headers=headers)
        assert status.status_code == 200
        assert status.json()["statistics"]["pending"] == 1
        one = await client.get(f"/ops/jobs/api/jobs/{job.id}", headers=headers)
        assert one.json()["job"]["id"] == job.id
        assert (await client.get("/ops/jobs/api/jobs")).status_code == 401
        assert (await client.get("/ops/jobs/healthz")).status_code == 200
        assert (await client.get("/ops/jobs/openapi.json")).status_code == 401
        openapi = (await client.get("/ops/jobs/openapi.json", headers=headers)).json()
        assert "/api/background-jobs/status" in openapi["paths"]
        assert (await client.get("/api/jobs", headers=headers)).status_code == 404


async def test_openapi_describes_every_endpoint_with_response_models(admin: httpx.AsyncClient) -> None:
    document = (await admin.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["token"]["description"],
    }
    schemas = document["components"]["schemas"]
    for name in ("BackgroundJobsStatus", "QueueJobStatus", "QueueStats", "JobDetailOut", "JobStatusRecord"):
        assert name in schemas, name
    assert set(schemas["BackgroundJobsStatistics"]["properties"]) == {
        "total",
        "completed",
        "failed",
        "pending",
        "running",
        "success_rate",
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert operation.get("description"), (method, path)
            ok = operation["responses"].get("200") or operation["responses"].get("201") or {}
            if method != "delete":
                assert ok.get("content"), (method, path)
            if path not in ("/healthz", "/readyz"):
                assert operation.get("security") == [{"token": []}], (method, path)
                assert "401" in operation["responses"], (method, path)


def test_the_docs_cover_every_endpoint(tmp_path: Path) -> None:
    api = create_api(Conveyor(f"sqlite:///{tmp_path / 'jobs.db'}"), auth=TokenStore(tmp_path / "auth.db"))
    docs = (Path(__file__).resolve().parents[2] / "docs" / "http-api.md").read_text()
    for path, operations in api.openapi()["paths"].items():
        for method in operations:
            assert path.split("{")[0].rstrip("/") in docs, (method, path)
    assert json.dumps(SEED_001_STATUS["statistics"], indent=2).replace("\n", "\n  ") in docs
