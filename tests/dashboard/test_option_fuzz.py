"""No enqueue option, however extreme, stores a job that breaks a listing, a page or a live stream.

Hypothesis sends `POST /api/jobs` with options drawn from non-finite, huge,
negative, oversized and control-character values (JSON's `Infinity` and `NaN`
included, which Python's parser accepts) to a real server. Every answer must
be 201 or a 422 naming the field; after all of them, the job listing, the
dashboard's jobs page and both event streams still answer and deliver.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..sse import sse_events
from .conftest import Server

NUMBERS = st.one_of(
    st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, 1e20, 1e30, -1.0, 0.0, 0.5]),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
)
TEXTS = st.one_of(
    st.sampled_from(["", "\x00", "a\x00b", "x" * 10_000, "\x1b]0;title\x07", "ok"]),
    st.text(max_size=300),
)
OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "delay": NUMBERS,
        "attempts": NUMBERS,
        "timeout": NUMBERS,
        "priority": NUMBERS,
        "run_at": st.sampled_from(["9999-12-31T23:59:59", "0001-01-01T00:00:00", "2030-01-01T00:00:00"]),
        "dedup_key": TEXTS,
        "user_id": TEXTS,
        "tenant": TEXTS,
        "queue": TEXTS,
        "tags": st.one_of(st.lists(TEXTS, max_size=5), st.just(["t"] * 1000)),
    },
)


def test_no_option_value_stores_a_job_that_breaks_a_reader(server: Server) -> None:
    admin = server.bearer("admin")
    answers: dict[int, int] = {}

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(options=OPTIONS)
    def enqueue(options: dict[str, Any]) -> None:
        body = json.dumps({"type": "catalog:say", "payload": {"text": "fuzz"}, "options": options})
        answer = httpx.post(
            f"{server.url}/api/jobs", content=body, headers={**admin, "Content-Type": "application/json"}
        )
        answers[answer.status_code] = answers.get(answer.status_code, 0) + 1
        assert answer.status_code in (201, 422), (options, answer.status_code, answer.text)
        if answer.status_code == 422:
            said = json.dumps(answer.json()["detail"])
            assert any(name in said for name in options), (options, said)
        listing = httpx.get(f"{server.url}/api/jobs", params={"limit": 1000}, headers=admin)
        assert listing.status_code == 200, (options, listing.text)

    enqueue()
    assert answers.get(422, 0) > 0
    assert answers.get(201, 0) > 0

    page = httpx.get(f"{server.url}/api/jobs", params={"limit": 1000}, headers=admin)
    assert page.status_code == 200
    assert all(job["type"] == "catalog:say" for job in page.json()["jobs"])
    for path in ("/api/events", "/dashboard/events"):
        headers = admin if path.startswith("/api") else {}
        cookies = {} if path.startswith("/api") else {"conveyor_session": _session(server)}
        with httpx.stream("GET", server.url + path, headers=headers, cookies=cookies, timeout=10) as stream:
            assert stream.status_code == 200, path
            names = []
            for name, _data, _id in sse_events(stream):
                names.append(name)
                if name == "stats":  # the snapshot ends with the statistics
                    break
            assert names[-1] == "stats", (path, names)


def _session(server: Server) -> str:
    """Sign in as the admin through the login form, as a browser would; the session cookie's value."""
    with httpx.Client(base_url=server.url) as client:
        form = client.get("/dashboard/login")
        csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        client.post("/dashboard/login", data={"token": server.tokens["admin"], "csrf": csrf})
        value = client.cookies.get("conveyor_session")
    assert value, "sign-in did not set a session cookie"
    return value
