"""The dashboard's guards over plain HTTP: login, cookie flags, CSP, CSRF, tenant scoping."""

from __future__ import annotations

import re
import time

import httpx

from conveyor.api.events import RECHECK

from .conftest import Server


def login(server: Server, who: str) -> httpx.Client:
    client = httpx.Client(base_url=f"{server.url}/dashboard")
    form = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    answer = client.post("/login", data={"token": server.tokens[who], "csrf": csrf.group(1)})
    assert answer.status_code == 303, answer.text
    return client


def page_csrf(client: httpx.Client, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def test_unauthenticated_pages_redirect_to_login(server: Server) -> None:
    for path in ["/", "/jobs", "/jobs/nope", "/queues", "/metrics", "/workers", "/schedules", "/events"]:
        answer = httpx.get(f"{server.url}/dashboard{path}")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/dashboard/login"


def test_every_page_sends_a_strict_content_security_policy(server: Server) -> None:
    client = login(server, "admin")
    for path in ["/login", "/", "/jobs", "/queues", "/metrics", "/workers", "/schedules"]:
        csp = client.get(path).headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp


def test_session_cookie_is_httponly_and_samesite(server: Server) -> None:
    client = httpx.Client(base_url=f"{server.url}/dashboard")
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf is not None
    answer = client.post("/login", data={"token": server.tokens["read"], "csrf": csrf.group(1)})
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("conveyor_session="))
    flags = cookie.lower()
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/dashboard" in flags
    assert "secure" not in flags  # plain http here; https requests get Secure


def test_login_without_its_csrf_token_is_refused(server: Server) -> None:
    answer = httpx.post(f"{server.url}/dashboard/login", data={"token": server.tokens["admin"]})
    assert answer.status_code == 403
    assert "conveyor_session" not in answer.headers.get("set-cookie", "")


def test_wrong_tokens_are_refused_then_slowed_down(server: Server) -> None:
    client = httpx.Client(base_url=f"{server.url}/dashboard")
    codes = []
    for _ in range(7):
        csrf = page_csrf(client, "/login")
        codes.append(client.post("/login", data={"token": "cvy_000000000000_nope", "csrf": csrf}).status_code)
    assert codes[0] == 401
    assert codes[-1] == 429


def test_post_actions_without_csrf_are_refused(server: Server) -> None:
    job_id = server.enqueue("catalog:sync", {"sku": "A-1"})
    server.wait_for(job_id, "failed")
    client = login(server, "admin")
    assert client.post(f"/jobs/{job_id}/retry").status_code == 403
    assert client.post(f"/jobs/{job_id}/retry", data={"csrf": "forged"}).status_code == 403
    assert client.post("/queues/default/pause", data={"csrf": "forged"}).status_code == 403
    csrf = page_csrf(client, f"/jobs/{job_id}")
    assert client.post(f"/jobs/{job_id}/retry", data={"csrf": csrf}).status_code == 303


def test_read_tokens_cannot_press_buttons(server: Server) -> None:
    job_id = server.enqueue("catalog:sync", {"sku": "A-2"})
    server.wait_for(job_id, "failed")
    client = login(server, "read")
    csrf = page_csrf(client, f"/jobs/{job_id}")
    assert client.post(f"/jobs/{job_id}/retry", data={"csrf": csrf}).status_code == 403


def test_secrets_in_payloads_are_redacted(server: Server) -> None:
    job_id = server.enqueue("catalog:sync", {"sku": "A-3", "api_key": "sk-live-123"})
    server.wait_for(job_id, "failed")
    page = login(server, "admin").get(f"/jobs/{job_id}").text
    assert "sk-live-123" not in page
    assert "[redacted]" in page


def test_tenant_sessions_see_only_their_tenant(server: Server) -> None:
    theirs = server.enqueue("catalog:say", {"text": "other store"}, tenant="store-b")
    ours = server.enqueue("catalog:say", {"text": "our store"}, tenant="store-a")
    server.wait_for(theirs, "completed")
    server.wait_for(ours, "completed")
    client = login(server, "store-a")
    assert client.get(f"/jobs/{theirs}").status_code == 404
    listing = client.get("/jobs", params={"tenant": "store-b"}).text
    assert theirs not in listing
    assert theirs not in client.get("/jobs").text
    assert ours in client.get("/jobs").text


def test_a_hand_edited_cursor_is_a_400_page_with_the_security_headers(server: Server) -> None:
    client = login(server, "admin")
    answer = client.get("/jobs", params={"cursor": "not-a-cursor"})
    assert answer.status_code == 400
    assert "pass back a next_cursor" in answer.text
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_an_oversized_bulk_text_filter_is_refused_by_name(server: Server) -> None:
    def cancel(text: str) -> httpx.Response:
        return httpx.post(
            f"{server.url}/api/jobs/bulk/cancel", json={"text": text}, headers=server.bearer("admin")
        )

    assert cancel("%" * 10_000_000).status_code == 413  # over the body limit: never parsed at all
    refused = cancel("%" * 201)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "text"]


def test_signing_out_closes_the_sessions_open_event_stream(server: Server) -> None:
    client = login(server, "admin")
    csrf = page_csrf(client, "/")
    with client.stream("GET", "/events", timeout=15) as stream:
        lines = stream.iter_lines()
        while next(lines) != "event: stats":
            pass
        signed_out = client.post("/logout", data={"csrf": csrf})
        assert signed_out.status_code == 303
        started = time.monotonic()
        rest = list(lines)  # ends only when the server closes the stream
    assert time.monotonic() - started < RECHECK + 3
    assert "event: error" in rest


def test_secrets_in_messages_are_redacted_on_every_page(server: Server) -> None:
    job_id = server.enqueue("catalog:say", {"text": "syncing postgresql://shop:hunter2@db.internal/x"})
    server.wait_for(job_id, "completed")
    client = login(server, "admin")
    for path in (f"/jobs/{job_id}", "/jobs", "/"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "hunter2" not in page.text, path
    assert "shop:[redacted]@db.internal" in client.get(f"/jobs/{job_id}").text
