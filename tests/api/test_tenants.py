"""A tenant-bound token sees and touches only its tenant's jobs, and learns nothing of the others."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conveyor import Conveyor, Job, JobContext, JobState
from conveyor.api import Scope

from .conftest import Client, Drain, Tokens, enqueue, register_worker


@pytest.fixture
async def jobs(app: Conveyor, drain: Drain) -> dict[str, Job]:
    made = {
        "a_done": await enqueue(app, "catalog:echo", {"sku": "a1"}, tenant="store-a", user_id="u-1"),
        "a_failed": await enqueue(app, "catalog:boom", {"sku": "a2"}, tenant="store-a"),
        "b_done": await enqueue(app, "catalog:echo", {"sku": "b1"}, tenant="store-b", user_id="u-1"),
        "b_failed": await enqueue(app, "catalog:boom", {"sku": "b2"}, tenant="store-b"),
        "b_failed2": await enqueue(app, "catalog:boom", {"sku": "b3"}, tenant="store-b"),
        "nobody": await enqueue(app, "catalog:echo", {"sku": "n"}),
    }
    await drain()
    made["b_waiting"] = await enqueue(app, "catalog:wait", {"key": "bw"}, tenant="store-b")
    return made


@pytest.fixture
def store_a(client_for: Client, tokens: Tokens) -> httpx.AsyncClient:
    return client_for(tokens.tenant_a)


async def test_another_tenants_job_is_404_on_every_path(
    store_a: httpx.AsyncClient, jobs: dict[str, Job]
) -> None:
    other = jobs["b_failed"].id
    requests = [
        ("GET", f"/api/jobs/{other}"),
        ("GET", f"/api/background-jobs/{other}/status"),
        ("GET", f"/api/queues/default/jobs/{other}"),
        ("GET", f"/app/job-status/status/job/{other}"),
        ("POST", f"/api/jobs/{other}/retry"),
        ("POST", f"/api/jobs/{other}/cancel"),
        ("DELETE", f"/api/jobs/{other}"),
    ]
    for method, path in requests:
        response = await store_a.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"detail": f"no job with id {other!r}"}
    for key in ("a_done", "a_failed"):
        assert (await store_a.get(f"/api/jobs/{jobs[key].id}")).status_code == 200
    assert (await store_a.get(f"/api/jobs/{jobs['nobody'].id}")).status_code == 404


async def test_lists_show_only_the_tenants_jobs(store_a: httpx.AsyncClient, jobs: dict[str, Job]) -> None:
    own = {jobs["a_done"].id, jobs["a_failed"].id}

    async def ids(path: str, key: str = "id", **params: Any) -> set[str]:
        response = await store_a.get(path, params=params)
        assert response.status_code == 200, (path, response.text)
        return {job[key] for job in response.json()["jobs"]}

    assert await ids("/api/jobs") == own
    assert await ids("/api/jobs", tenant="store-b") == set()
    assert await ids("/api/jobs", state="failed") == {jobs["a_failed"].id}
    assert await ids("/app/job-status/recent", key="job_id") == own
    assert await ids("/app/job-status/failed", key="job_id") == {jobs["a_failed"].id}
    assert await ids("/app/job-status/status/user/u-1", key="job_id") == {jobs["a_done"].id}


async def test_counts_never_include_other_tenants(
    store_a: httpx.AsyncClient, admin: httpx.AsyncClient, jobs: dict[str, Job]
) -> None:
    statistics = (await store_a.get("/api/background-jobs/status")).json()["statistics"]
    assert statistics == {
        "total": 2,
        "completed": 1,
        "failed": 1,
        "pending": 0,
        "running": 0,
        "success_rate": "50.00%",
    }
    probing = (await store_a.get("/api/background-jobs/status", params={"tenant": "store-b"})).json()
    assert probing["statistics"]["total"] == 0

    queues = (await store_a.get("/api/queues/stats")).json()
    assert set(queues) == {"default"}  # store-b's job on 'slow' does not reveal that queue
    assert queues["default"]["total"] == 2
    assert (await store_a.get("/app/job-status/queue/stats")).json() == queues
    assert [q["queue"] for q in (await store_a.get("/api/queues")).json()] == ["default"]

    everyone = (await admin.get("/api/background-jobs/status")).json()["statistics"]
    assert everyone["total"] == 7
    just_b = (await admin.get("/api/background-jobs/status", params={"tenant": "store-b"})).json()
    assert just_b["statistics"]["total"] == 4


async def test_enqueue_is_forced_into_the_tokens_tenant(store_a: httpx.AsyncClient, app: Conveyor) -> None:
    body = {"type": "catalog:echo", "payload": {"sku": "x"}, "options": {"tenant": "store-b"}}
    created = await store_a.post("/api/jobs", json=body)
    assert created.status_code == 201
    assert created.json()["tenant"] == "store-a"
    assert (await app.get_job(created.json()["id"])).tenant == "store-a"


async def test_tenants_dedup_keys_never_meet(client_for: Client, tokens: Tokens) -> None:
    body = {"type": "catalog:echo", "payload": {"sku": "x"}, "options": {"dedup_key": "shared"}}
    held = await client_for(tokens.tenant_b).post("/api/jobs", json=body)
    assert held.status_code == 201
    own = await client_for(tokens.tenant_a).post("/api/jobs", json=body)
    assert own.status_code == 201  # the same key, but store-a's own
    assert own.json()["id"] != held.json()["id"]
    again = await client_for(tokens.tenant_a).post("/api/jobs", json=body)
    assert (again.status_code, again.json()["id"]) == (200, own.json()["id"])


async def test_tenants_whose_names_share_a_prefix_never_share_dedup_keys(
    client_for: Client, tokens: Tokens
) -> None:
    acme = tokens.store.create(scope=Scope.WRITE, tenant="acme")[1]
    acme_eu = tokens.store.create(scope=Scope.WRITE, tenant="acme:eu")[1]

    def body(key: str) -> dict[str, object]:
        return {"type": "catalog:echo", "payload": {"sku": "x"}, "options": {"dedup_key": key}}

    held = await client_for(acme).post("/api/jobs", json=body("eu:x"))
    other = await client_for(acme_eu).post("/api/jobs", json=body("x"))
    assert (held.status_code, other.status_code) == (201, 201)
    assert held.json()["id"] != other.json()["id"]


async def test_a_key_forged_into_a_tenants_namespace_reveals_nothing(
    client_for: Client, tokens: Tokens
) -> None:
    forged = {"dedup_key": "tenant:7:store-a:shared", "tenant": "store-b"}
    held = await client_for(tokens.admin).post(
        "/api/jobs", json={"type": "catalog:echo", "payload": {"sku": "x"}, "options": forged}
    )
    assert held.status_code == 201
    body = {"type": "catalog:echo", "payload": {"sku": "x"}, "options": {"dedup_key": "shared"}}
    refused = await client_for(tokens.tenant_a).post("/api/jobs", json=body)
    assert refused.status_code == 409
    assert held.json()["id"] not in refused.text


async def test_bulk_actions_touch_only_the_tenants_jobs(
    store_a: httpx.AsyncClient, app: Conveyor, jobs: dict[str, Job]
) -> None:
    retried = await store_a.post("/api/jobs/bulk/retry", json={"type": "catalog:boom"})
    assert retried.json() == {"matched": 1, "changed": 1, "skipped": 0}
    assert (await app.get_job(jobs["a_failed"].id)).state is JobState.PENDING
    assert (await app.get_job(jobs["b_failed"].id)).state is JobState.FAILED

    cancelled = await store_a.post("/api/jobs/bulk/cancel", json={"tenant": "store-b"})
    assert cancelled.json() == {"matched": 0, "changed": 0, "skipped": 0}
    assert (await app.get_job(jobs["b_waiting"].id)).state is JobState.PENDING


async def test_infrastructure_endpoints_need_an_unbound_token(store_a: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/workers"),
        ("GET", "/metrics"),
        ("POST", "/api/queues/default/pause"),
        ("POST", "/api/queues/default/resume"),
    ]:
        response = await store_a.request(method, path)
        assert response.status_code == 403, path
        assert "not bound to a tenant" in response.json()["detail"]


async def test_tracker_leaves_out_children_of_other_tenants(
    app: Conveyor, store_a: httpx.AsyncClient, drain: Drain
) -> None:
    echo = app.job_types["catalog:echo"]

    @app.job("catalog:mixed", queue="parents")
    async def mixed(ctx: JobContext) -> None:
        await ctx.spawn(echo, sku="untenanted")
        await ctx.spawn(echo.options(tenant="store-a"), sku="own")
        await ctx.spawn(echo.options(tenant="store-b"), sku="foreign")

    parent = await enqueue(app, "catalog:mixed", tenant="store-a")
    await drain(queues=["parents"])
    await drain()

    tracker = (await store_a.get(f"/api/jobs/{parent.id}")).json()["tracker"]

    assert len(tracker["children"]) == 2
    foreign = [job.id for job in await app.children(parent.id) if job.tenant == "store-b"]
    assert len(foreign) == 1
    assert foreign[0] not in str(tracker["children"])


async def test_a_foreign_childs_failure_shows_neither_in_the_parents_counts_nor_its_error(
    app: Conveyor, store_a: httpx.AsyncClient, drain: Drain
) -> None:
    boom = app.job_types["catalog:boom"]
    echo = app.job_types["catalog:echo"]

    @app.job("catalog:mixed_fail", queue="parents")
    async def mixed_fail(ctx: JobContext) -> None:
        await ctx.spawn(echo.options(tenant="store-a"), sku="own")
        await ctx.spawn(boom.options(tenant="store-b"), sku="store-b-secret-sku")

    parent = await enqueue(app, "catalog:mixed_fail", tenant="store-a")
    await drain(queues=["parents"])
    await drain()
    answer = (await store_a.get(f"/api/jobs/{parent.id}")).json()
    assert answer["job"]["state"] == "failed"
    assert answer["job"]["error"]["message"] == "a child job of another tenant failed"
    assert "store-b-secret-sku" not in str(answer)
    tracker = answer["tracker"]
    assert tracker["states"] == {"failed": 1, "completed": 1}  # the parent and its own child only
    assert tracker["errors"] == {"ChildFailed": 1}  # the foreign child's ValueError is not counted
    status = (await store_a.get(f"/api/background-jobs/{parent.id}/status")).json()
    assert "store-b-secret-sku" not in str(status)


async def test_tracebacks_are_for_operators_only(
    store_a: httpx.AsyncClient, admin: httpx.AsyncClient, jobs: dict[str, Job]
) -> None:
    path = f"/api/jobs/{jobs['a_failed'].id}"
    (own,) = (await store_a.get(path)).json()["errors"]
    assert own["message"] == "bad sku a2"
    assert own["traceback"] is None
    (full,) = (await admin.get(path)).json()["errors"]
    assert "Traceback" in full["traceback"]


async def test_a_tenant_sees_only_the_concurrency_of_its_own_queues_and_the_types_it_may_start(
    app: Conveyor, client_for: Client, tokens: Tokens
) -> None:
    @app.job("system:purge", tenants=False)
    async def purge() -> None: ...

    await register_worker(app, {"default": 5, "slow": 3, "parents": 7})
    await enqueue(app, "catalog:echo", {"sku": "a"}, tenant="store-a")
    status = (await client_for(tokens.tenant_a).get("/api/background-jobs/status")).json()["status"]
    assert status["max_concurrent_jobs"] == 5  # store-a has jobs in `default` only
    fleet = (await client_for(tokens.admin).get("/api/background-jobs/status")).json()["status"]
    assert fleet["max_concurrent_jobs"] == 15
    refused = await client_for(tokens.tenant_a).post("/api/jobs", json={"type": "system:purge"})
    assert refused.status_code == 422
    assert "system:purge" not in refused.json()["detail"].partition("(")[2]
    assert "catalog:echo" in refused.json()["detail"]
