"""OpenAI-compatible chat completions connector (OpenAI itself, or any server speaking its API).

One call: `POST /v1/chat/completions` with `Authorization: Bearer <api key>`.
Answers are classified like the marketplace connectors': 401/403 and other
4xx are `Unrecoverable`; 429 is `RateLimited` with the server's `retry-after`
(or the request window's `x-ratelimit-reset-requests`), except the
`insufficient_quota` 429, which no wait cures and is `Unrecoverable`; 5xx,
408 and dropped connections are `TransientError`. The request allowance in
the `x-ratelimit-*-requests` headers is reported to the rate-limit hook, so
the engine's key limiter paces later calls.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import httpx

from conveyor import Clock, Unrecoverable
from conveyor.commerce.secrets import Credentials

from .base import ApiClient, HeaderAuth, RateLimitHook, RateLimitInfo, TransientError, classify, json_body

DEFAULT_BASE_URL = "https://api.openai.com"
COMPLETIONS = "/v1/chat/completions"
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$")


class OpenAICompatConnector(ApiClient):
    """Chat completions over a pooled `httpx.AsyncClient`; use as `async with`.

    A completion is a POST, so nothing is repeated inside after a failure.
    """

    name = "openai"

    def __init__(
        self,
        credentials: Credentials,
        *,
        model: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 60.0,
        on_rate_limit: RateLimitHook | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        credentials.require("api_key")
        super().__init__(
            base_url=base_url,
            timeout=timeout,
            on_rate_limit=on_rate_limit,
            clock=clock,
            auth=HeaderAuth("Authorization", f"Bearer {credentials['api_key']}"),
            transport=transport,
        )
        self.model = model

    async def complete(self, messages: Sequence[tuple[str, str]], *, temperature: float = 0.0) -> str:
        """The assistant's reply to `(role, content)` messages."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": role, "content": content} for role, content in messages],
            "temperature": temperature,
        }
        response = await self.request("POST", COMPLETIONS, json=body)
        choices = response.json().get("choices") or []
        content = choices[0].get("message", {}).get("content") if choices else None
        if not isinstance(content, str):
            raise TransientError(f"{self.name}: answer without a message", status=response.status_code)
        return content.strip()

    def rate_limit_info(self, response: httpx.Response, scope: str) -> RateLimitInfo | None:
        headers = response.headers
        remaining = headers.get("x-ratelimit-remaining-requests")
        reset = _seconds(headers.get("x-ratelimit-reset-requests"))
        retry_after = _seconds(headers.get("retry-after")) if response.status_code == 429 else None
        if retry_after is None and response.status_code == 429:
            retry_after = reset
        if remaining is None and retry_after is None:
            return None
        wait = retry_after if retry_after is not None else reset
        return RateLimitInfo(
            remaining=float(remaining) if remaining is not None else 0.0,
            reset_at=self.clock.now() + wait if wait is not None else None,
            retry_after=retry_after,
            limit=_number(headers.get("x-ratelimit-limit-requests")),
            scope="per_minute",
        )

    def failure(self, response: httpx.Response, info: RateLimitInfo | None) -> Exception | None:
        if response.is_success:
            return None
        body = json_body(response)
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        message = str(error.get("message") or f"HTTP {response.status_code}")
        if response.status_code in (401, 403):
            # The API echoes part of the refused key in its message; keep it out of job errors and logs.
            message = f"API key refused (HTTP {response.status_code}, {error.get('code') or 'no code'})"
        if response.status_code == 429 and error.get("code") == "insufficient_quota":
            return Unrecoverable(f"{self.name}: {message}")
        return classify(response.status_code, f"{self.name}: {message}", info.retry_after if info else None)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _seconds(value: str | None) -> float | None:
    """Seconds from `"2"`, `"1.5"` or OpenAI's durations `"1m30s"`, `"12s"`, `"250ms"`."""
    if value is None:
        return None
    plain = _number(value)
    if plain is not None:
        return plain
    match = _DURATION.match(value.strip())
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000
