"""A real Conveyor behind uvicorn on a free local port, with a real worker, for the dashboard tests.

The server and the worker each run their own event loop in a thread (the app
opens one backend per loop), against one SQLite file in the test's folder.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn

from conveyor import Conveyor, JobContext, Unrecoverable
from conveyor.api import AuthConfig, Scope, TokenStore, create_api


@dataclass
class Switches:
    """Lets a test decide, from its own thread, how the jobs below behave."""

    fixed: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


def build_app(url: str, switches: Switches) -> Conveyor:
    app = Conveyor(url, grace_seconds=2)

    @app.job("catalog:import")
    async def import_products(ctx: JobContext, total: int = 10, pause: float = 0.25) -> int:
        while not switches.release.is_set():
            await asyncio.sleep(0.05)
        for done in range(1, total + 1):
            ctx.progress(done=done, total=total, message=f"Importing products: {done}/{total}")
            await asyncio.sleep(pause)
        return total

    @app.job("catalog:sync", attempts=1)
    def sync(sku: str, api_key: str = "") -> str:
        if not switches.fixed.is_set():
            raise Unrecoverable(f"supplier rejected {sku}")
        return sku

    @app.job("catalog:say")
    async def say(ctx: JobContext, text: str) -> None:
        ctx.progress(50, text)

    @app.job("catalog:fanout")
    async def fanout(ctx: JobContext, items: int = 4) -> None:
        """A flow: its imports wait for the release, like the import above."""
        for _ in range(items):
            await ctx.spawn(import_products, total=10, pause=0.05)

    return app


@dataclass
class Server:
    url: str
    app: Conveyor
    tokens: dict[str, str]
    switches: Switches

    def enqueue(self, name: str, payload: dict[str, object], **options: object) -> str:
        """Over the HTTP API: Playwright's sync API keeps a loop running in the test's thread."""
        body = {"type": name, "payload": payload, "options": options}
        answer = httpx.post(f"{self.url}/api/jobs", json=body, headers=self.bearer("admin"))
        assert answer.status_code == 201, answer.text
        job_id: str = answer.json()["id"]
        return job_id

    def bearer(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def wait_for(self, job_id: str, state: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = httpx.get(f"{self.url}/api/jobs/{job_id}", headers=self.bearer("admin"))
            if answer.json()["job"]["display_state"] == state:
                return
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} never reached {state}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    switches = Switches()
    app = build_app(f"sqlite:///{tmp_path / 'jobs.db'}", switches)
    store = TokenStore(tmp_path / "auth.db")
    tokens = {
        "admin": store.create(scope=Scope.ADMIN, name="ops")[1],
        "read": store.create(scope=Scope.READ, name="viewer")[1],
        "store-a": store.create(scope=Scope.ADMIN, tenant="store-a", name="store a")[1],
    }
    api = create_api(app, auth=AuthConfig(tokens=store), events_interval=0.1)
    port = free_port()
    web = uvicorn.Server(
        uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)
    )
    web_thread = threading.Thread(target=web.run, daemon=True)
    web_thread.start()

    worker = app.worker(concurrency=4)
    ready = threading.Event()
    worker_loop: list[asyncio.AbstractEventLoop] = []

    async def run_worker() -> None:
        worker_loop.append(asyncio.get_running_loop())
        ready.set()
        try:
            await worker.run()
        finally:
            await app.close()

    worker_thread = threading.Thread(target=asyncio.run, args=(run_worker(),), daemon=True)
    worker_thread.start()
    ready.wait(5)
    deadline = time.monotonic() + 10
    while not web.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", app, tokens, switches)
    finally:
        switches.release.set()
        worker_loop[0].call_soon_threadsafe(worker.request_stop)
        web.should_exit = True
        worker_thread.join(10)
        web_thread.join(10)
        app.close_sync()
