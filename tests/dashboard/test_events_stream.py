"""The dashboard's live stream over plain HTTP: job events with ids, resumed by Last-Event-ID."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..sse import SseEvent, sse_events
from .conftest import Server
from .test_security import login


def first(events: Iterator[SseEvent], wanted: Any) -> SseEvent:
    for event in events:
        if wanted(event):
            return event
    raise AssertionError("the stream ended without the wanted event")


def test_a_reconnecting_browser_resumes_after_its_last_event(server: Server) -> None:
    client = login(server, "admin")
    with client.stream("GET", "/events", timeout=10) as response:
        events = sse_events(response)
        first(events, lambda e: e[0] == "stats")
        job = server.enqueue("catalog:import", {"total": 3, "pause": 0.05})  # held until released
        _, seen, last_id = first(events, lambda e: e[0] == "job" and e[1]["id"] == job)
    assert last_id is not None
    assert seen["event"]["kind"] in ("added", "started")
    server.switches.release.set()
    server.wait_for(job, "completed")
    # The job is finished, so a fresh stream's snapshot would not mention it: only resuming
    # after `last_id` brings its later changes, in order, ending with its completion.
    with client.stream("GET", "/events", headers={"Last-Event-ID": last_id}, timeout=10) as response:
        events = sse_events(response)
        head = first(events, lambda e: e[0] != "stats")
        done = head
        while done[1].get("state") != "completed":
            done = first(events, lambda e: e[0] == "job" and e[1]["id"] == job)
    assert (head[0], head[1]["id"]) == ("job", job)
    assert done[1]["event"]["kind"] == "completed"
    assert done[1]["result"] == 3
