"""The hub lists what people started (flow roots), with the whole flow's progress, live."""

from __future__ import annotations

import httpx

from ..sse import sse_events
from .conftest import Server
from .test_events_stream import first
from .test_security import login


def children_of(server: Server, job_id: str) -> list[str]:
    answer = httpx.get(f"{server.url}/api/jobs/{job_id}", headers=server.bearer("admin"))
    return [child["job_id"] for child in answer.json()["tracker"]["children"]]


def test_the_hub_shows_a_flow_once_with_its_tree_progress(server: Server) -> None:
    client = login(server, "admin")
    flow = server.enqueue("catalog:fanout", {"items": 4})
    server.wait_for(flow, "waiting_children")
    children = children_of(server, flow)
    assert len(children) == 4

    hub = client.get("/").text
    assert f'data-job-id="{flow}"' in hub
    assert "0/4 jobs finished" in hub
    assert not any(child in hub for child in children)  # sub-jobs stay on the flow's own page

    with client.stream("GET", "/events", timeout=15) as response:
        events = sse_events(response)
        first(events, lambda e: e[0] == "stats")
        server.switches.release.set()
        _, rolled_up, _ = first(events, lambda e: e[0] == "job" and e[1]["id"] == flow and "flow" in e[1])
        assert rolled_up["state"] == "waiting_children"
        assert rolled_up["flow"]["percent"] > 0
        assert rolled_up["flow"]["message"].endswith("/4 jobs finished")
        _, done, _ = first(
            events, lambda e: e[0] == "job" and e[1]["id"] == flow and e[1]["state"] == "completed"
        )
    assert "flow" not in done


def test_the_workers_page_lists_each_workers_running_jobs(server: Server) -> None:
    client = login(server, "admin")
    job = server.enqueue("catalog:import", {"total": 3})  # runs, held until the release
    server.wait_for(job, "running")
    page = client.get("/workers").text
    assert f'/jobs/{job}">catalog:import</a>' in page
    server.switches.release.set()
    server.wait_for(job, "completed")
    assert "idle" in client.get("/workers").text
