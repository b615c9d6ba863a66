"""OpenAI-compatible chat completions simulator: `POST /v1/chat/completions` with Bearer auth.

`../shared/marketplace-apis.md` has no section on OpenAI-compatible APIs, so
every shape here is an assumption taken from the public OpenAI API reference
and marked as such:
- auth is `Authorization: Bearer <key>`; a wrong key answers 401
  `{"error": {"message", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}`;
- limits are per minute, for requests (a fixed window here) and for tokens
  (a bucket refilling continuously); every answer carries
  `x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests`,
  `x-ratelimit-reset-requests` (a duration such as `"12s"`) and the same three
  for tokens; a refused call answers 429 with `retry-after` (whole seconds) and
  `{"error": {..., "type": "requests", "code": "rate_limit_exceeded"}}`;
- an exhausted account answers 429 with `code: "insufficient_quota"`, which
  waiting does not cure.

Answers are deterministic: the reply to a conversation is its last user
message with a short digest of the whole conversation appended (or a reply
set in `replies`), so a test can predict exactly what a caller stored.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response

from conveyor import Clock

from .base import Gate, Reply, Sandbox, json_response
from .faults import FaultConfig
from .limits import FixedWindow, TokenBucket

COMPLETIONS = "/v1/chat/completions"


@dataclass(frozen=True)
class OpenAICompatConfig:
    api_key: str = "sk-sandbox-0123456789abcdef"
    models: frozenset[str] = frozenset({"gpt-4o-mini"})
    requests_per_minute: int = 500
    tokens_per_minute: int = 200_000
    quota_exhausted: bool = False
    """Answer every call with the `insufficient_quota` 429 (an account without credit)."""
    faults: FaultConfig = field(default_factory=FaultConfig)


@dataclass(frozen=True)
class Completion:
    """One answered call, for tests: the model, the messages sent and the reply given."""

    model: str
    messages: tuple[tuple[str, str], ...]
    reply: str


def reply_for(messages: list[tuple[str, str]]) -> str:
    """The simulator's default reply: the last user message plus a digest of the conversation."""
    user = next((content for role, content in reversed(messages) if role == "user"), "")
    digest = hashlib.sha256(repr(messages).encode()).hexdigest()[:6]
    return f"{user} ~{digest}"


def tokens_of(text: str) -> int:
    """A rough token count (4 characters each), enough to exercise the token limit."""
    return max(1, math.ceil(len(text) / 4))


class OpenAICompatSandbox(Sandbox):
    name = "openai"

    def __init__(self, config: OpenAICompatConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or OpenAICompatConfig()
        self.replies: dict[str, str] = {}
        """Last user message -> reply, overriding `reply_for`."""
        self.completions: list[Completion] = []
        super().__init__(self.config.faults, clock)
        self.requests = FixedWindow(self.config.requests_per_minute, 60.0, self.clock)
        tpm = self.config.tokens_per_minute
        self.tokens = TokenBucket(tpm, tpm / 60.0, self.clock)

    def routes(self, app: FastAPI) -> None:
        app.add_api_route(COMPLETIONS, self.chat_completions, methods=["POST"])

    def admit(self, request: Request, endpoint: str) -> Gate:
        given = request.headers.get("authorization", "")
        if given != f"Bearer {self.config.api_key}":
            shown = given.removeprefix("Bearer ")[:6] + "***" if given else ""
            message = (
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
                if shown
                else "You didn't provide an API key."
            )
            return Gate(self._error(401, message, "invalid_request_error", "invalid_api_key"))
        if self.config.quota_exhausted:
            message = "You exceeded your current quota, please check your plan and billing details."
            return Gate(self._error(429, message, "insufficient_quota", "insufficient_quota"))
        if not self.requests.try_take():
            self.counters.violations += 1
            return Gate(self.throttled(endpoint), self._limit_headers())
        return Gate(None, self._limit_headers())

    def _limit_headers(self) -> dict[str, str]:
        now = self.clock.now()
        return {
            "x-ratelimit-limit-requests": str(self.requests.limit),
            "x-ratelimit-remaining-requests": str(self.requests.remaining()),
            "x-ratelimit-reset-requests": _duration(self.requests.reset_at() - now),
            "x-ratelimit-limit-tokens": str(self.config.tokens_per_minute),
            "x-ratelimit-remaining-tokens": str(math.floor(self.tokens.available())),
            "x-ratelimit-reset-tokens": _duration(self.tokens.used() / self.tokens.rate),
        }

    def throttled(self, endpoint: str) -> Response:
        self.counters.rate_limited += 1
        now = self.clock.now()
        if self.requests.remaining() == 0:
            kind, wait = "requests", self.requests.reset_at() - now
            limit = f"requests per min (RPM): Limit {self.requests.limit}"
        else:
            kind, wait = "tokens", self.tokens.used() / self.tokens.rate
            limit = f"tokens per min (TPM): Limit {self.config.tokens_per_minute}"
        seconds = max(1, math.ceil(wait))
        message = f"Rate limit reached for {limit}. Please try again in {seconds}s."
        response = self._error(429, message, kind, "rate_limit_exceeded")
        response.headers["retry-after"] = str(seconds)
        response.headers.update(self._limit_headers())
        return response

    def error(self, status: int, message: str) -> Response:
        return self._error(
            status, message, "server_error" if status >= 500 else "invalid_request_error", None
        )

    def _error(self, status: int, message: str, kind: str, code: str | None) -> Response:
        return json_response(
            status, {"error": {"message": message, "type": kind, "param": None, "code": code}}
        )

    async def chat_completions(self, request: Request) -> Response:
        body = await self.read_json(request)
        model, messages = self._validate(body)
        prompt_tokens = sum(tokens_of(content) for _, content in messages)
        if not self.tokens.try_take(prompt_tokens):
            self.counters.violations += 1
            raise Reply(self.throttled(COMPLETIONS))
        user = next((content for role, content in reversed(messages) if role == "user"), "")
        reply = self.replies.get(user) or reply_for(messages)
        self.completions.append(Completion(model, tuple(messages), reply))
        completion_tokens = tokens_of(reply)
        answer = {
            "id": f"chatcmpl-{len(self.completions):08d}",
            "object": "chat.completion",
            "created": int(self.clock.now()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return json_response(200, answer)

    def _validate(self, body: Any) -> tuple[str, list[tuple[str, str]]]:
        if not isinstance(body, dict):
            raise Reply(self.error(400, "We could not parse the JSON body of your request."))
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise Reply(self.error(400, "you must provide a model parameter"))
        if model not in self.config.models:
            message = f"The model `{model}` does not exist or you do not have access to it."
            raise Reply(self._error(404, message, "invalid_request_error", "model_not_found"))
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            raise Reply(self.error(400, "'messages' must be a non-empty array"))
        messages: list[tuple[str, str]] = []
        for n, item in enumerate(raw):
            if not (isinstance(item, dict) and item.get("role") in ("system", "user", "assistant")):
                raise Reply(self.error(400, f"Invalid value for 'messages[{n}].role'"))
            if not isinstance(item.get("content"), str):
                raise Reply(self.error(400, f"Invalid type for 'messages[{n}].content': expected a string"))
            messages.append((item["role"], item["content"]))
        return model, messages


def _duration(seconds: float) -> str:
    """OpenAI's reset format: `"1m30s"`, `"12s"`, `"250ms"`."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"
