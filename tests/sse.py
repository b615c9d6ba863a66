"""Server-sent events as the tests read them: (event name, decoded JSON data, id or None)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

SseEvent = tuple[str, Any, str | None]


class SseParser:
    """Fed one line at a time; a blank line ends an event and `feed` returns it."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self.name, self.data, self.event_id = "message", list[str](), None

    def feed(self, line: str) -> SseEvent | None:
        if line == "":
            event = (self.name, json.loads("\n".join(self.data)), self.event_id) if self.data else None
            self._clear()
            return event
        field, _, value = line.partition(": ")
        if field == "event":
            self.name = value
        elif field == "data":
            self.data.append(value)
        elif field == "id":
            self.event_id = value
        return None


def sse_events(response: httpx.Response) -> Iterator[SseEvent]:
    parser = SseParser()
    for line in response.iter_lines():
        if (event := parser.feed(line)) is not None:
            yield event


async def async_sse_events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    parser = SseParser()
    async for line in response.aiter_lines():
        if (event := parser.feed(line)) is not None:
            yield event
