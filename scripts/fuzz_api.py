"""schemathesis against the whole HTTP API, every check, as an admin and as a tenant; counts printed.

    .venv/bin/python scripts/fuzz_api.py --examples 200

The test suite runs a small schemathesis pass over the read endpoints on every
run (tests/api/test_schema.py); this is the long one, over every operation
(writes included), for a reviewer or a release. It serves the API in process
on a fresh SQLite store seeded with jobs of two tenants, sends the generated
cases with an admin token and then with a tenant's admin token, and prints
one JSON object: cases sent, answers by status, and each failing check with
an example. It exits 1 if any check failed. Every check runs but
`positive_data_acceptance`: the schema cannot say which cursors, job types or
payloads exist, so a schema-valid request the engine refuses (422) is right.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import positive_data_acceptance

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.api.conftest import Gates, build_app  # noqa: E402

from conveyor import Conveyor, JobOptions  # noqa: E402
from conveyor.api import AuthConfig, Scope, TokenStore, create_api  # noqa: E402


async def seed(app: Conveyor) -> None:
    await app.enqueue_many("catalog:echo", [{"sku": f"e{i}", "api_key": "k"} for i in range(3)])
    await app.enqueue("catalog:boom", {"sku": "b"}, JobOptions(tenant="store-a", user_id="u-1"))
    await app.enqueue("catalog:boom", {"sku": "c"}, JobOptions(tenant="store-b"))
    await app.enqueue("catalog:flaky", {"sku": "f"})
    await app.worker(burst=True).run()


def fuzz(operation: Any, bearer: dict[str, str], examples: int, statuses: Counter[str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Case[Any]) -> None:
        response = case.call(headers=bearer)
        statuses[str(response.status_code)] += 1
        case.validate_response(response, excluded_checks=[positive_data_acceptance])

    check()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--examples", type=int, default=100, help="cases per operation and token (default 100)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-fuzz-") as tmp:
        app = build_app(f"sqlite:///{Path(tmp) / 'jobs.db'}", None, Gates())
        asyncio.run(seed(app))
        store = TokenStore(Path(tmp) / "auth.db")
        tokens = {
            "admin": store.create(scope=Scope.ADMIN)[1],
            "tenant": store.create(scope=Scope.ADMIN, tenant="store-a")[1],
        }
        # never lock the fuzzer out: it also checks that requests without a token are refused
        api = create_api(app, auth=AuthConfig(tokens=store, max_failures=10**9))
        headers = {"Authorization": f"Bearer {tokens['admin']}"}
        schema = schemathesis.openapi.from_asgi("/openapi.json", api, headers=headers)
        statuses: Counter[str] = Counter()
        failures: dict[str, str] = {}
        for who, token in tokens.items():
            bearer = {"Authorization": f"Bearer {token}"}
            for result in schema.exclude(path="/api/events").get_all_operations():
                operation = result.ok()
                try:
                    fuzz(operation, bearer, args.examples, statuses)
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - report each, go on
                    failures[f"{who} {operation.method.upper()} {operation.path}"] = str(exc)[:600]
        sent = sum(statuses.values())
        print(
            json.dumps(
                {"cases": sent, "statuses": dict(sorted(statuses.items())), "failures": failures}, indent=2
            )
        )
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
