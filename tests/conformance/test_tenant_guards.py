"""Tenant guards: a tenant's job names only what the tenant owns, at enqueue and before every attempt."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from conveyor import Conveyor, JobFilter, JobState, TenantForbidden

from .conftest import Drain

OWNER = {"acct-1": "store-1", "acct-2": "store-2"}
"""Which tenant owns each account; a test changes it to move an account between tenants."""


def register(app: Conveyor, ran: list[str]) -> Any:
    async def owns_account(tenant: str, payload: Mapping[str, Any]) -> None:
        if OWNER.get(payload["account"]) != tenant:
            raise TenantForbidden(f"tenant {tenant!r} does not own account {payload['account']}")

    @app.job("shopify:import:products", attempts=3, tenant_guard=owns_account)
    async def import_products(account: str) -> str:
        ran.append(account)
        return account

    return import_products


@pytest.fixture(autouse=True)
def owners() -> None:
    OWNER.update({"acct-1": "store-1", "acct-2": "store-2"})


async def test_a_tenant_naming_what_it_does_not_own_is_refused_and_nothing_is_stored(app: Conveyor) -> None:
    job_type = register(app, [])
    with pytest.raises(TenantForbidden, match="does not own account acct-2"):
        await job_type.options(tenant="store-1").enqueue(account="acct-2")
    with pytest.raises(TenantForbidden, match=r"job #1: .*acct-2"):
        await job_type.options(tenant="store-1").enqueue_many([{"account": "acct-1"}, {"account": "acct-2"}])
    assert (await app.list_jobs(JobFilter())).jobs == []


async def test_a_tenants_own_ids_and_an_operators_jobs_pass(app: Conveyor, drain: Drain) -> None:
    ran: list[str] = []
    job_type = register(app, ran)
    mine = await job_type.options(tenant="store-1").enqueue(account="acct-1")
    operator = await job_type.enqueue(account="acct-2")  # no tenant: the operator's own job
    await drain()
    assert sorted(ran) == ["acct-1", "acct-2"]
    assert (await app.get_job(mine.id)).state is JobState.COMPLETED
    assert (await app.get_job(operator.id)).state is JobState.COMPLETED


async def test_an_id_that_changed_owner_fails_the_waiting_job_without_running_or_retrying_it(
    app: Conveyor, drain: Drain
) -> None:
    ran: list[str] = []
    job_type = register(app, ran)
    job = await job_type.options(tenant="store-1").enqueue(account="acct-1")
    OWNER["acct-1"] = "store-2"  # the account moved to another store while the job waited
    await drain()
    done = await app.get_job(job.id)
    assert ran == []
    assert done.state is JobState.FAILED
    assert done.attempts == 1  # refused for good: a retry would be refused the same way
    assert done.error is not None
    assert (done.error.type, done.error.message) == (
        "TenantForbidden",
        "tenant 'store-1' does not own account acct-1",
    )


async def test_an_operators_type_refuses_every_tenant_and_runs_for_the_operator(
    app: Conveyor, drain: Drain
) -> None:
    ran: list[str] = []

    @app.job("system:cleanup", tenants=False)
    async def cleanup() -> None:
        ran.append("cleanup")

    with pytest.raises(TenantForbidden, match="may not start system:cleanup: it is for operators only"):
        await cleanup.options(tenant="store-1").enqueue()
    with pytest.raises(TenantForbidden, match="for operators only"):
        await cleanup.options(tenant="store-1").enqueue_many([{}, {}])
    assert (await app.list_jobs(JobFilter())).jobs == []
    await cleanup.enqueue()
    await drain()
    assert ran == ["cleanup"]
