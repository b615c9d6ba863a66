"""schemathesis against the OpenAPI document: no read endpoint answers 5xx or breaks its own schema."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, Case
from schemathesis.checks import positive_data_acceptance

from conveyor import Conveyor, JobOptions
from conveyor.api import AuthConfig, Scope, TokenStore, create_api

from .conftest import Gates, build_app


@dataclass
class Served:
    schema: schemathesis.BaseSchema
    headers: dict[str, str]


async def _seed(app: Conveyor) -> None:
    """A little of everything, so that lookups by type, state and queue find something."""
    await app.enqueue_many("catalog:echo", [{"sku": f"e{i}", "api_key": "k"} for i in range(3)])
    await app.enqueue("catalog:boom", {"sku": "b"}, JobOptions(tenant="store-a", user_id="u-1"))
    await app.enqueue("catalog:flaky", {"sku": "f"})
    await app.worker(burst=True).run()
    await app.enqueue("catalog:wait", {"key": "w"})
    await app.close()


@pytest.fixture
def served(tmp_path: Path) -> Served:
    app = build_app(f"sqlite:///{tmp_path / 'jobs.db'}", None, Gates())
    asyncio.run(_seed(app))
    store = TokenStore(tmp_path / "auth.db")
    _, token = store.create(scope=Scope.ADMIN)
    # schemathesis also checks that requests without a token are refused; never lock it out for that
    api = create_api(app, auth=AuthConfig(tokens=store, max_failures=1_000_000))
    bearer = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", api, headers=bearer)
    reads = schema.include(method="GET").exclude(path="/api/events")  # a stream never ends
    return Served(reads, bearer)


def test_read_endpoints_conform_to_the_openapi_document(served: Served) -> None:
    operations = [result.ok() for result in served.schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 15
    for operation in operations:
        check_operation(operation, served.headers)


def check_operation(operation: APIOperation[Any, Any, Any, Any], headers: dict[str, str]) -> None:
    # A cursor is any string to the schema, but only one from a previous page means something.
    excluded = [positive_data_acceptance] if operation.path == "/api/jobs" else []

    @given(case=operation.as_strategy())
    @settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Case[Any]) -> None:
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    check()
