"""`conveyor tokens` in-process, and `conveyor serve` as a real uvicorn process on a loopback port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from conveyor import Conveyor
from conveyor.api import Scope, TokenStore
from conveyor.cli import cli
from conveyor.cli.commands_tokens import SCOPES

from .conftest import free_port


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


def conveyor(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, ["--url", url, *args], env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def test_the_cli_offers_every_scope() -> None:
    assert tuple(s.value for s in Scope) == SCOPES


def test_tokens_create_list_revoke(url: str, tmp_path: Path) -> None:
    created = conveyor(url, "tokens", "create", "--scope", "read", "--tenant", "store-1", "--name", "hub")
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("cvy_")
    store = TokenStore(tmp_path / "conveyor-auth.db")  # beside the jobs database
    info = store.verify(token)
    assert info is not None
    assert info.scope is Scope.READ
    assert info.tenant == "store-1"
    assert info.name == "hub"

    listed = json.loads(conveyor(url, "tokens", "list", "--json").stdout)
    assert listed == [
        {
            "id": info.id,
            "name": "hub",
            "scope": "read",
            "tenant": "store-1",
            "created_at": info.created_at,
            "last_used_at": info.last_used_at,
        }
    ]
    table = conveyor(url, "tokens", "list").stdout
    assert info.id in table
    assert "store-1" in table
    for output in (table, json.dumps(listed)):
        assert token not in output
        assert token.split("_", 2)[2] not in output

    assert conveyor(url, "tokens", "revoke", info.id).stdout.strip() == f"revoked token {info.id}"
    assert store.verify(token) is None
    again = CliRunner().invoke(cli, ["--url", url, "tokens", "revoke", info.id])
    assert again.exit_code == 1
    assert f"no token with id {info.id!r}" in again.stderr
    assert "no tokens yet" in conveyor(url, "tokens", "list").stdout


def test_tokens_honour_conveyor_auth_db(url: str, tmp_path: Path) -> None:
    elsewhere = tmp_path / "secrets" / "auth.db"
    elsewhere.parent.mkdir()
    created = conveyor(url, "tokens", "create", "--scope", "admin", env={"CONVEYOR_AUTH_DB": str(elsewhere)})
    assert TokenStore(elsewhere).verify(created.stdout.splitlines()[-1]) is not None
    assert not (tmp_path / "conveyor-auth.db").exists()


def test_tokens_create_needs_a_known_scope(url: str) -> None:
    result = CliRunner().invoke(cli, ["--url", url, "tokens", "create", "--scope", "root"])
    assert result.exit_code == 2
    assert "'root' is not one of 'read', 'write', 'admin'" in result.stderr


@pytest.fixture
def served(url: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "--url", url, "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                out, err = process.communicate(timeout=5)
                raise AssertionError(f"conveyor serve did not come up:\n{out}\n{err}")
            time.sleep(0.1)
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.slow
def test_conveyor_serve_answers_over_http(url: str, served: tuple[str, subprocess.Popen[str]]) -> None:
    base, process = served
    token = conveyor(url, "tokens", "create", "--scope", "read").stdout.splitlines()[-1]
    app = Conveyor(url)

    @app.job("catalog:echo")
    def echo(sku: str) -> None: ...

    job = app.enqueue_sync("catalog:echo", {"sku": "served"})
    app.close_sync()

    with httpx.Client(base_url=base, timeout=10) as client:
        status = client.get("/api/background-jobs/status", headers={"Authorization": f"Bearer {token}"})
        assert status.status_code == 200
        assert status.json()["statistics"]["pending"] == 1
        one = client.get(
            f"/api/background-jobs/{job.id}/status", headers={"Authorization": f"Bearer {token}"}
        )
        assert one.json()["job"]["status"] == "pending"
        assert client.get("/api/jobs").status_code == 401
        assert client.get("/readyz").json() == {"status": "ready"}

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=15)
    # Recent uvicorn re-raises the signal once it has shut down gracefully.
    assert process.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    assert f"conveyor API on {base}" in out
    assert "Traceback" not in err
    assert token not in out + err


@pytest.mark.slow
def test_conveyor_serve_believes_no_forwarded_header_unless_told(
    url: str, served: tuple[str, subprocess.Popen[str]]
) -> None:
    """Rotating X-Forwarded-For neither dodges the failed-login brake nor forges the access log."""
    base, process = served
    answers = [
        httpx.get(
            f"{base}/api/jobs",
            headers={"Authorization": "Bearer cvy_wrong_token", "X-Forwarded-For": f"203.0.113.{n}"},
        ).status_code
        for n in range(1, 9)
    ]
    assert answers[:4] == [401] * 4
    assert answers[4:] == [429] * 4
    ok = httpx.get(f"{base}/healthz")
    assert ok.headers["x-content-type-options"] == "nosniff"
    assert ok.headers["cache-control"] == "no-store"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=15)
    assert "203.0.113." not in err
    assert "127.0.0.1" in err
