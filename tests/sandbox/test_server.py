"""The loopback server helper, `serve()` for the CLI, the registry and seeded faults over real HTTP."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from conveyor.sandbox import (
    SANDBOXES,
    FaultConfig,
    FaultKind,
    JumpsellerConfig,
    JumpsellerSandbox,
    create,
    serve,
    start,
)
from conveyor.sandbox.server import RunningSandbox


def test_start_picks_a_free_loopback_port_and_stop_frees_it() -> None:
    with start(JumpsellerSandbox()) as a, start(JumpsellerSandbox()) as b:
        assert a.base_url.startswith("http://127.0.0.1:")
        assert a.base_url != b.base_url
        assert a.api_url == a.base_url + "/v1"
        assert httpx.get(f"{a.api_url}/products.json").status_code == 401
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{a.api_url}/products.json")


def test_serve_runs_named_sandboxes_until_stopped() -> None:
    ready: list[RunningSandbox] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=serve, args=(["jumpseller", "ebay"],), kwargs={"on_ready": ready.append, "stop": stop}
    )
    thread.start()
    deadline = time.monotonic() + 5
    while len(ready) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    paths = {"jumpseller": "/products/count.json", "ebay": "/sell/inventory/v1/inventory_item"}
    answers = [httpx.get(r.api_url + paths[r.sandbox.name]).json() for r in ready]
    stop.set()
    thread.join(5)
    assert [r.sandbox.name for r in ready] == ["jumpseller", "ebay"]
    assert answers[0] == {"message": "Invalid login or authtoken"}
    assert answers[1]["errors"][0]["errorId"] == 1002
    assert not thread.is_alive()


def test_registry_creates_each_sandbox_and_rejects_unknown_names() -> None:
    names = ["akeneo", "amazon", "ebay", "jumpseller", "openai", "promidata", "seller_api", "shopify"]
    assert sorted(SANDBOXES) == names
    assert [create(name).name for name in names] == [
        "akeneo", "amazon", "ebay", "jumpseller", "openai", "promidata", "seller_api", "shopify",
    ]  # fmt: skip
    assert create("shopify", faults=FaultConfig(seed=3)).faults.config.seed == 3
    with pytest.raises(ValueError, match="unknown sandbox 'etsy'"):
        create("etsy")


def test_timeouts_hold_the_answer_and_late_mode_still_writes() -> None:
    faults = FaultConfig(timeout_delay=0.3, timeout_mode="late")
    sandbox = JumpsellerSandbox(JumpsellerConfig(faults=faults))
    sandbox.faults.force(FaultKind.TIMEOUT)
    auth = (sandbox.config.login, sandbox.config.authtoken)
    body = {"product": {"name": "Hat", "price": 1}}
    with start(sandbox) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.api_url}/products.json", json=body, auth=auth, timeout=0.05)
        deadline = time.monotonic() + 2
        while not sandbox.store.products and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(sandbox.store.products) == 1
    assert sandbox.counters.faults[FaultKind.TIMEOUT] == 1


def test_seeded_error_rate_over_http_is_reproducible() -> None:
    def statuses() -> list[int]:
        faults = FaultConfig(seed=42, error_rate=0.3)
        sandbox = JumpsellerSandbox(JumpsellerConfig(per_second=100, faults=faults))
        auth = (sandbox.config.login, sandbox.config.authtoken)
        with start(sandbox) as server, httpx.Client(auth=auth) as http:
            return [http.get(f"{server.api_url}/products/count.json").status_code for _ in range(30)]

    first, second = statuses(), statuses()
    assert first == second
    assert 200 in first
    assert set(first) - {200} <= {500, 502, 503}
    assert 3 <= sum(s != 200 for s in first) <= 18
