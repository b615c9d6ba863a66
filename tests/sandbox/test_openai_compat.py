"""OpenAI-compatible simulator and connector over real HTTP: answers, auth, rate limits, faults."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from conveyor import FakeClock, RateLimited, Unrecoverable
from conveyor.commerce.connectors import RateLimitInfo, TransientError
from conveyor.commerce.connectors.openai_compat import OpenAICompatConnector
from conveyor.commerce.secrets import Credentials
from conveyor.sandbox import FaultKind, RunningSandbox, Sandbox
from conveyor.sandbox.openai_compat import OpenAICompatConfig, OpenAICompatSandbox, reply_for

Serve = Callable[[Sandbox], RunningSandbox]
MESSAGES = [("system", "Translate to es."), ("user", "Add to cart")]


def connector(
    server: RunningSandbox, clock: FakeClock, key: str, readings: list[RateLimitInfo] | None = None
) -> OpenAICompatConnector:
    return OpenAICompatConnector(
        Credentials({"api_key": key}),
        model="gpt-4o-mini",
        base_url=server.api_url,
        clock=clock,
        on_rate_limit=None if readings is None else readings.append,
    )


async def test_answers_are_deterministic_and_counted(serve: Serve, clock: FakeClock) -> None:
    sandbox = OpenAICompatSandbox(clock=clock)
    server = serve(sandbox)
    readings: list[RateLimitInfo] = []
    async with connector(server, clock, sandbox.config.api_key, readings) as ai:
        first = await ai.complete(MESSAGES)
        again = await ai.complete(MESSAGES)
        sandbox.replies["Checkout"] = "Pagar"
        chosen = await ai.complete([("user", "Checkout")])
    assert first == again == reply_for(MESSAGES)
    assert first.startswith("Add to cart ~")
    assert chosen == "Pagar"
    assert [c.messages for c in sandbox.completions] == [tuple(MESSAGES)] * 2 + [(("user", "Checkout"),)]
    assert sandbox.counters.by_endpoint["POST /v1/chat/completions"] == 3
    limit = sandbox.config.requests_per_minute
    assert [r.remaining for r in readings] == [limit - 1, limit - 2, limit - 3]


async def test_wrong_key_is_unrecoverable_with_the_api_message(serve: Serve, clock: FakeClock) -> None:
    sandbox = OpenAICompatSandbox(clock=clock)
    server = serve(sandbox)
    async with httpx.AsyncClient(base_url=server.api_url) as http:
        raw = await http.post("/v1/chat/completions", headers={"Authorization": "Bearer sk-wrong"}, json={})
    assert raw.status_code == 401
    assert raw.json()["error"]["code"] == "invalid_api_key"
    assert raw.json()["error"]["message"].startswith("Incorrect API key provided: sk-wro***")
    async with connector(server, clock, "sk-wrong") as ai:
        with pytest.raises(Unrecoverable, match=r"API key refused \(HTTP 401, invalid_api_key\)") as refused:
            await ai.complete(MESSAGES)
    assert "sk-wro" not in str(refused.value)  # the API's message echoes the key's start
    assert sandbox.completions == []


async def test_request_limit_answers_429_with_retry_after_and_resets(serve: Serve, clock: FakeClock) -> None:
    sandbox = OpenAICompatSandbox(OpenAICompatConfig(requests_per_minute=2), clock=clock)
    server = serve(sandbox)
    clock.advance(-clock.now() % 60)  # start of a minute window, so the wait is a full 60 s
    headers = {"Authorization": f"Bearer {sandbox.config.api_key}"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=server.api_url, headers=headers) as http:
        answers = [await http.post("/v1/chat/completions", json=body) for _ in range(3)]
        clock.advance(60)
        after = await http.post("/v1/chat/completions", json=body)
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].headers["x-ratelimit-remaining-requests"] == "1"
    assert answers[2].headers["retry-after"] == "60"
    assert answers[2].json()["error"]["code"] == "rate_limit_exceeded"
    assert after.status_code == 200
    assert (sandbox.counters.rate_limited, sandbox.counters.violations) == (1, 1)
    clock.advance(60)
    async with connector(server, clock, sandbox.config.api_key) as ai:
        await ai.complete(MESSAGES)
        await ai.complete(MESSAGES)
        with pytest.raises(RateLimited) as limited:
            await ai.complete(MESSAGES)
    assert limited.value.retry_after == 60


async def test_token_limit_refuses_until_the_bucket_refills(serve: Serve, clock: FakeClock) -> None:
    sandbox = OpenAICompatSandbox(OpenAICompatConfig(tokens_per_minute=20), clock=clock)
    server = serve(sandbox)
    forty_characters = "x" * 40  # 10 tokens by the simulator's count
    async with connector(server, clock, sandbox.config.api_key) as ai:
        await ai.complete([("user", forty_characters)])
        await ai.complete([("user", forty_characters)])
        with pytest.raises(RateLimited, match="tokens per min") as limited:
            await ai.complete([("user", forty_characters)])
        clock.advance(limited.value.retry_after)
        assert await ai.complete([("user", forty_characters)]) == reply_for([("user", forty_characters)])
    assert (
        limited.value.retry_after == 60
    )  # until the 20-token bucket is full again, like x-ratelimit-reset-tokens
    assert len(sandbox.completions) == 3


async def test_exhausted_quota_is_unrecoverable_and_faults_are_transient(
    serve: Serve, clock: FakeClock
) -> None:
    broke = OpenAICompatSandbox(OpenAICompatConfig(quota_exhausted=True), clock=clock)
    sandbox = OpenAICompatSandbox(clock=clock)
    broke_server, server = serve(broke), serve(sandbox)
    async with connector(broke_server, clock, broke.config.api_key) as ai:
        with pytest.raises(Unrecoverable, match="exceeded your current quota"):
            await ai.complete(MESSAGES)
    sandbox.faults.force(FaultKind.ERROR, FaultKind.THROTTLE)
    async with connector(server, clock, sandbox.config.api_key) as ai:
        with pytest.raises(TransientError):
            await ai.complete(MESSAGES)
        with pytest.raises(RateLimited):
            await ai.complete(MESSAGES)
        assert await ai.complete(MESSAGES) == reply_for(MESSAGES)
    assert sandbox.counters.faults == {"error": 1, "throttle": 1}


async def test_unknown_model_and_bad_messages_are_refused(serve: Serve, clock: FakeClock) -> None:
    sandbox = OpenAICompatSandbox(clock=clock)
    server = serve(sandbox)
    headers = {"Authorization": f"Bearer {sandbox.config.api_key}"}
    async with httpx.AsyncClient(base_url=server.api_url, headers=headers) as http:
        unknown = await http.post(
            "/v1/chat/completions", json={"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}
        )
        empty = await http.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "model_not_found")
    assert empty.status_code == 400
    assert sandbox.completions == []
