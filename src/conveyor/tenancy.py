"""Tenant guards: a job enqueued for a tenant may only name what that tenant owns.

The engine knows tenants only as strings on jobs; which payload ids a tenant
owns is the application's knowledge (its catalog). A job type therefore
carries an optional guard, written by the application, that the engine asks
at two moments: when a job with a tenant is enqueued (through Python, the CLI
or the HTTP API; a refusal stores nothing), and again just before each attempt
runs, because an id can change owner while its job waits. Jobs without a
tenant are the operator's own and are not checked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import TenantForbidden

if TYPE_CHECKING:
    from .jobtype import JobType

TenantGuard = Callable[[str, Mapping[str, Any]], Awaitable[None]]
"""`await guard(tenant, payload)`: return if `tenant` may run a job with this payload, else raise
`TenantForbidden` saying which field names what the tenant does not own. The payload is the
stored JSON object (after validation against the handler), exactly what the handler receives."""


def refuse_tenant_of(job_type: JobType[Any, Any], tenant: str) -> None:
    """A type registered with `tenants=False` is the operator's alone."""
    if not job_type.tenants:
        raise TenantForbidden(f"tenant {tenant!r} may not start {job_type.name}: it is for operators only")


async def check_tenant(guard: TenantGuard | None, tenant: str | None, payload: Mapping[str, Any]) -> None:
    """Ask `guard` about a tenant's job.

    A guard that cannot answer (its database is down) raises its own error:
    at enqueue that stores nothing, at run time the attempt fails and retries,
    while `TenantForbidden` fails the job for good.
    """
    if guard is not None and tenant is not None:
        await guard(tenant, payload)


__all__ = ["TenantForbidden", "TenantGuard", "check_tenant", "refuse_tenant_of"]
