"""Authentication: bearer tokens, scopes, the brake on guessing, hashed storage, redaction."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from conveyor import Conveyor, FakeClock
from conveyor.api import AuthConfig, Scope, TokenStore, create_api, redact
from conveyor.api.body_guard import ENVELOPE_BYTES
from conveyor.api.tokens import default_auth_db

from .conftest import Client, Tokens, enqueue

PROTECTED = [
    ("GET", "/api/background-jobs/status"),
    ("GET", "/api/background-jobs/some-job/status"),
    ("GET", "/api/queues/stats"),
    ("GET", "/api/queues/default/jobs/some-job"),
    ("GET", "/app/job-status/status/user/u-1"),
    ("GET", "/app/job-status/status/job/some-job"),
    ("GET", "/app/job-status/recent"),
    ("GET", "/app/job-status/queue/stats"),
    ("GET", "/app/job-status/failed"),
    ("GET", "/api/jobs"),
    ("POST", "/api/jobs"),
    ("POST", "/api/jobs/bulk/retry"),
    ("POST", "/api/jobs/bulk/cancel"),
    ("GET", "/api/jobs/some-job"),
    ("DELETE", "/api/jobs/some-job"),
    ("POST", "/api/jobs/some-job/retry"),
    ("POST", "/api/jobs/some-job/cancel"),
    ("GET", "/api/queues"),
    ("POST", "/api/queues/default/pause"),
    ("POST", "/api/queues/default/resume"),
    ("GET", "/api/schedules"),
    ("GET", "/api/workers"),
    ("GET", "/api/events"),
    ("GET", "/metrics"),
]
OPEN_PATHS = {"/healthz", "/readyz"}


@pytest.fixture
def backend_url(tmp_path: Path) -> str:
    """Authentication does not depend on the jobs' storage."""
    return f"sqlite:///{tmp_path / 'jobs.db'}"


def protected_routes(api: FastAPI) -> list[tuple[str, str]]:
    """Every operation the OpenAPI document describes, with its path parameters filled in."""
    found = []
    for path, operations in api.openapi()["paths"].items():
        if path in OPEN_PATHS:
            continue
        concrete = path.replace("{job_id}", "some-job").replace("{queue}", "default")
        found += [(method.upper(), concrete.replace("{user_id}", "u-1")) for method in operations]
    return found


async def test_every_endpoint_but_health_refuses_a_missing_or_wrong_token(
    api: FastAPI, client_for: Client, tokens: Tokens
) -> None:
    routes = protected_routes(api)
    assert sorted(routes) == sorted(PROTECTED)
    anonymous = client_for()
    for index, (method, path) in enumerate(routes):
        response = await anonymous.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"detail": "missing bearer token"}
        # a fresh address each time, so the brake on guessing does not kick in here
        wrong = client_for(f"cvy_{index:012x}_wrong", address=f"10.0.0.{index}")
        response = await wrong.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.json() == {"detail": "invalid or revoked token"}
    for path in ("/healthz", "/readyz"):
        assert (await anonymous.get(path)).status_code == 200


@pytest.mark.parametrize(
    "token", ["", "Basic abc", "cvy_", "cvy_zz_secret", "cvy_0123456789ab", "not a token"]
)
async def test_malformed_authorization_is_401(client_for: Client, token: str) -> None:
    client = client_for()
    response = await client.get("/api/jobs", headers={"Authorization": token} if token else {})
    assert response.status_code == 401


async def test_scopes_read_write_admin(client_for: Client, tokens: Tokens, app: Conveyor) -> None:
    reader, writer, admin = client_for(tokens.read), client_for(tokens.write), client_for(tokens.admin)
    body = {"type": "catalog:echo", "payload": {"sku": "s"}}

    assert (await reader.get("/api/jobs")).status_code == 200
    assert (await reader.get("/metrics")).status_code == 200
    refused = await reader.post("/api/jobs", json=body)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "this needs a token with scope write"}

    job = (await writer.post("/api/jobs", json=body)).json()
    assert (await writer.post(f"/api/jobs/{job['id']}/cancel")).status_code == 200
    assert (await writer.post("/api/jobs/bulk/retry", json={})).status_code == 403
    assert (await writer.post("/api/queues/default/pause")).status_code == 403
    assert (await reader.delete(f"/api/jobs/{job['id']}")).status_code == 403

    assert (await admin.post("/api/jobs/bulk/retry", json={"state": "cancelled"})).json()["changed"] == 1
    assert (await admin.post("/api/queues/default/pause")).status_code == 200


async def test_revoked_token_stops_working_at_once(client_for: Client, tokens: Tokens) -> None:
    client = client_for(tokens.read)
    assert (await client.get("/api/jobs")).status_code == 200
    (info,) = [t for t in tokens.store.list() if t.scope is Scope.READ]
    assert tokens.store.revoke(info.id)
    assert (await client.get("/api/jobs")).status_code == 401
    assert not tokens.store.revoke(info.id)


async def test_repeated_failures_from_one_address_are_slowed_down_but_valid_tokens_pass(
    client_for: Client, tokens: Tokens, clock: FakeClock
) -> None:
    guesser = client_for("cvy_0123456789ab_guess", address="203.0.113.9")
    for _ in range(4):
        assert (await guesser.get("/api/jobs")).status_code == 401
    locked = await guesser.get("/api/jobs")  # the 5th failure starts a lockout
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "2"
    # a valid token from that same address (an office behind one NAT) is let in...
    assert (await client_for(tokens.admin, address="203.0.113.9").get("/api/jobs")).status_code == 200
    # ...and a request without a token is not a guess, but waits like the address
    assert (await client_for(address="203.0.113.9").get("/api/jobs")).status_code == 429
    # every further failure doubles the wait, up to max_lockout
    assert (await guesser.get("/api/jobs")).headers["retry-after"] == "4"
    assert (await guesser.get("/api/jobs")).headers["retry-after"] == "8"
    clock.advance(61)  # the window has passed: the count starts over
    assert (await guesser.get("/api/jobs")).status_code == 401
    # another address was never affected
    assert (
        await client_for("cvy_0123456789ab_other", address="198.51.100.1").get("/api/jobs")
    ).status_code == 401


async def test_guessing_at_one_token_id_is_braked_from_any_address_without_locking_out_its_holder(
    client_for: Client, tokens: Tokens
) -> None:
    token_id = tokens.admin.split("_")[1]
    answers = [
        (await client_for(f"cvy_{token_id}_wrong{n}", address=f"10.9.0.{n}").get("/api/jobs")).status_code
        for n in range(7)
    ]
    assert answers[:4] == [401] * 4
    assert answers[4:] == [429] * 3  # each address is new: only the token id's count can brake them
    assert (await client_for(tokens.admin, address="10.9.0.99").get("/api/jobs")).status_code == 200


async def test_throttle_forgets_clients_beyond_its_bound(
    app: Conveyor, tokens: Tokens, clock: FakeClock
) -> None:
    config = AuthConfig(tokens=tokens.store, clock=clock, max_tracked_clients=3)
    api = create_api(app, auth=config)
    for i in range(10):
        transport = httpx.ASGITransport(api, client=(f"10.1.0.{i}", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (
                await client.get("/api/jobs", headers=Tokens.header("cvy_0123456789ab_x"))
            ).status_code == 401


def test_tokens_are_stored_hashed(tmp_path: Path, clock: FakeClock) -> None:
    store = TokenStore(tmp_path / "auth.db", clock=clock)
    info, token = store.create(scope=Scope.WRITE, tenant="store-1", name="ci")

    assert token.startswith(f"cvy_{info.id}_")
    assert len(token) > 50
    raw = (tmp_path / "auth.db").read_bytes()
    secret = token.split("_", 2)[2].encode()
    assert token.encode() not in raw
    assert secret not in raw
    with sqlite3.connect(tmp_path / "auth.db") as conn:
        (stored,) = conn.execute("SELECT hash FROM conveyor_api_tokens").fetchone()
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    verified = store.verify(token)
    assert verified is not None
    assert verified.id == info.id
    assert verified.tenant == "store-1"
    assert verified.scope is Scope.WRITE
    assert store.verify(token + "x") is None
    assert store.verify(token.replace(info.id, "0" * 12)) is None
    assert (tmp_path / "auth.db").stat().st_mode & 0o077 == 0


def test_last_used_is_recorded_at_most_once_a_minute(tmp_path: Path, clock: FakeClock) -> None:
    store = TokenStore(tmp_path / "auth.db", clock=clock)
    _info, token = store.create(scope=Scope.READ)
    assert store.list()[0].last_used_at is None
    store.verify(token)
    first = store.list()[0].last_used_at
    assert first == clock.now()
    clock.advance(30)
    store.verify(token)
    assert store.list()[0].last_used_at == first
    clock.advance(31)
    store.verify(token)
    assert store.list()[0].last_used_at == clock.now()


def test_default_auth_db_location() -> None:
    assert default_auth_db("sqlite:///data/jobs.db", env={}) == Path("data/conveyor-auth.db")
    assert default_auth_db("sqlite:////srv/q/jobs.db", env={}) == Path("/srv/q/conveyor-auth.db")
    assert default_auth_db("redis://127.0.0.1:6379/0", env={}) == Path("conveyor-auth.db")
    assert default_auth_db("redis://x", env={"CONVEYOR_AUTH_DB": "/etc/c/auth.db"}) == Path("/etc/c/auth.db")


def test_redact_replaces_secret_looking_keys_at_any_depth() -> None:
    payload = {
        "sku": "A-1",
        "password": "hunter2",
        "apiKey": "k",
        "api-key": "k",
        "client_secret": "s",
        "AuthToken": "t",
        "author": "Jane",
        "accounts": [{"region": "eu", "refresh_token": "r", "auth": {"user": "u"}}],
        "session_id": None,
        "keywords": ["token"],
    }
    assert redact(payload) == {
        "sku": "A-1",
        "password": "[redacted]",
        "apiKey": "[redacted]",
        "api-key": "[redacted]",
        "client_secret": "[redacted]",
        "AuthToken": "[redacted]",
        "author": "Jane",
        "accounts": [{"region": "eu", "refresh_token": "[redacted]", "auth": "[redacted]"}],
        "session_id": None,
        "keywords": ["token"],
    }


async def test_secrets_never_appear_in_any_job_representation(
    app: Conveyor, client_for: Client, tokens: Tokens
) -> None:
    admin = client_for(tokens.admin)
    job = await enqueue(app, "catalog:echo", {"sku": "s", "api_key": "sk-live-777"}, user_id="u-1")
    paths = [
        f"/api/jobs/{job.id}",
        "/api/jobs",
        f"/api/background-jobs/{job.id}/status",
        f"/api/queues/default/jobs/{job.id}",
        f"/app/job-status/status/job/{job.id}",
        "/app/job-status/status/user/u-1",
        "/app/job-status/recent",
    ]
    for path in paths:
        response = await admin.get(path)
        assert response.status_code == 200, path
        assert "sk-live-777" not in response.text, path
    assert (await admin.post(f"/api/jobs/{job.id}/cancel")).text.count("sk-live-777") == 0


async def test_the_openapi_document_needs_a_token_and_no_page_loads_scripts_from_a_cdn(
    client_for: Client, tokens: Tokens
) -> None:
    anonymous = client_for()
    assert (await anonymous.get("/openapi.json")).status_code == 401
    document = await client_for(tokens.read).get("/openapi.json")
    assert document.status_code == 200
    assert "/api/jobs" in document.json()["paths"]
    for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert (await client_for(tokens.admin).get(page)).status_code == 404, page


async def test_a_body_is_read_only_for_a_caller_allowed_to_send_one(
    client_for: Client, tokens: Tokens
) -> None:
    async def never_ending() -> AsyncIterator[bytes]:
        yield b'{"type": "catalog:echo", "payload": {"sku": "'
        await asyncio.Event().wait()  # the rest never comes: only a server that reads it would hang

    async with asyncio.timeout(5):
        anonymous = await client_for().post("/api/jobs", content=never_ending())
    assert (anonymous.status_code, anonymous.json()) == (401, {"detail": "missing bearer token"})
    broken = b'{"type": "catalog:echo", "payload": '  # not even JSON
    reader = await client_for(tokens.read).post("/api/jobs", content=broken)
    assert (reader.status_code, reader.json()) == (403, {"detail": "this needs a token with scope write"})
    writer = await client_for(tokens.write).post("/api/jobs", content=broken)
    assert writer.status_code == 422  # only now is the body read


async def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(
    client_for: Client, tokens: Tokens, app: Conveyor
) -> None:
    limit = app.settings.max_payload_bytes + ENVELOPE_BYTES
    declared = await client_for().post("/api/jobs", content=b"x" * (limit + 1))
    assert declared.status_code == 413  # refused before authentication, by its Content-Length

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    streamed = await client_for(tokens.admin).post("/api/jobs", content=chunks())
    assert streamed.status_code == 413
    assert "byte limit" in streamed.json()["detail"]
    small = await client_for(tokens.write).post(
        "/api/jobs", json={"type": "catalog:echo", "payload": {"sku": "a"}}
    )
    assert small.status_code == 201
