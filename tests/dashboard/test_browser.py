"""The dashboard in Debian's Chromium, driven by Playwright: what a store owner actually sees.

Each test writes screenshots of the pages it visits to its tmp_path; with
CONVEYOR_DOCS_SCREENSHOTS=1 the Hub and Job detail shots are copied to docs/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from .conftest import Server

CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[2] / "docs"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def sign_in(page: Page, server: Server, who: str) -> None:
    page.goto(f"{server.url}/dashboard/")
    expect(page).to_have_url(f"{server.url}/dashboard/login")
    page.fill("input[name=token]", server.tokens[who])
    page.click("button[type=submit]")
    expect(page.locator("nav")).to_be_visible()


def shoot(page: Page, tmp_path: Path, name: str, docs_name: str | None = None) -> None:
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot))
    if docs_name and os.environ.get("CONVEYOR_DOCS_SCREENSHOTS") == "1":
        shutil.copy(shot, DOCS / docs_name)


def test_progress_bar_reaches_100_percent_live(page: Page, server: Server, tmp_path: Path) -> None:
    done = server.enqueue("catalog:say", {"text": "Prices updated"})
    server.enqueue("catalog:sync", {"sku": "SKU-9"})
    server.wait_for(done, "completed")
    sign_in(page, server, "admin")
    job_id = server.enqueue("catalog:import", {"total": 8, "pause": 0.3})
    row = page.locator(f'#active-jobs tr[data-job-id="{job_id}"]')
    expect(row).to_be_visible()  # arrived over server-sent events, no reload
    server.switches.release.set()
    expect(row.locator('[data-role="message"]')).to_contain_text("Importing products: ")
    shoot(page, tmp_path, "hub", "dashboard-hub.png")
    expect(row.locator('[data-role="bar"]')).to_have_attribute("value", "100", timeout=15_000)
    expect(row.locator('[data-role="state"]')).to_have_text("completed")
    expect(page.locator('[data-stat="completed"]')).to_have_text("2")  # the cards follow, live
    expect(page.locator('[data-stat="failed"]')).to_have_text("1")
    expect(page.locator('[data-stat="success"]')).to_have_text("66.7%")
    page.goto(f"{server.url}/dashboard/jobs/{job_id}")
    expect(page.locator(".facts")).to_contain_text(job_id)
    shoot(page, tmp_path, "job", "dashboard-job.png")
    for name in ["queues", "metrics", "workers", "schedules"]:
        page.goto(f"{server.url}/dashboard/{name}")
        expect(page.locator("h1")).to_be_visible()
        shoot(page, tmp_path, name)


def test_filter_jobs_and_retry_a_failed_one(page: Page, server: Server, tmp_path: Path) -> None:
    failed = server.enqueue("catalog:sync", {"sku": "SKU-1"})
    said = server.enqueue("catalog:say", {"text": "hello"})
    server.wait_for(failed, "failed")
    server.wait_for(said, "completed")
    sign_in(page, server, "admin")
    expect(page.locator(".alert")).to_contain_text("failed")  # 1 of 2 finished jobs: above 20%
    page.goto(f"{server.url}/dashboard/jobs")
    page.select_option("select[name=state]", "failed")
    page.click("form.filters button")
    rows = page.locator("#job-list tbody tr[data-job-id]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", failed)
    shoot(page, tmp_path, "jobs")
    rows.first.locator("a").first.click()
    expect(page.locator(".attempt")).to_contain_text("supplier rejected SKU-1")
    server.switches.fixed.set()
    page.click("text=Retry")
    server.wait_for(failed, "completed")
    page.reload()
    expect(page.locator("h1 [data-role=state]")).to_have_text("completed")


def test_tenant_cannot_see_another_tenants_job(page: Page, server: Server) -> None:
    theirs = server.enqueue("catalog:say", {"text": "store b secret"}, tenant="store-b")
    server.wait_for(theirs, "completed")
    sign_in(page, server, "store-a")
    answer = page.goto(f"{server.url}/dashboard/jobs/{theirs}")
    assert answer is not None
    assert answer.status == 404
    page.goto(f"{server.url}/dashboard/jobs")
    expect(page.locator(f'[data-job-id="{theirs}"]')).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text("store b secret")


def test_script_in_a_job_message_is_shown_as_text(page: Page, server: Server) -> None:
    evil = "<script>window.pwned = 1</script><img src=x onerror=alert(1)>"
    job_id = server.enqueue("catalog:say", {"text": evil})
    server.wait_for(job_id, "completed")
    sign_in(page, server, "admin")
    page.goto(f"{server.url}/dashboard/jobs/{job_id}")
    expect(page.locator("p[data-role=message]")).to_have_text(evil)
    assert page.evaluate("window.pwned") is None
    assert page.locator("img[src=x]").count() == 0


def test_a_deleted_job_leaves_the_hub_without_a_reload(page: Page, server: Server) -> None:
    sign_in(page, server, "admin")
    kept = server.enqueue("catalog:import", {"total": 2})  # both held running until released
    deleted = server.enqueue("catalog:import", {"total": 2})
    row = page.locator(f'#active-jobs tr[data-job-id="{deleted}"]')
    expect(row).to_be_visible()
    answer = httpx.delete(f"{server.url}/api/jobs/{deleted}", headers=server.bearer("admin"))
    assert answer.status_code == 204
    expect(row).to_have_count(0)  # the `removed` event took it off, no reload
    expect(page.locator(f'#active-jobs tr[data-job-id="{kept}"]')).to_be_visible()


def test_sign_out_ends_the_session_for_good(page: Page, server: Server) -> None:
    sign_in(page, server, "admin")
    session = next(c for c in page.context.cookies() if c["name"] == "conveyor_session")
    page.click("form.who button")
    expect(page).to_have_url(f"{server.url}/dashboard/login")
    assert all(c["name"] != "conveyor_session" for c in page.context.cookies())
    page.goto(f"{server.url}/dashboard/jobs")  # the browser no longer holds the session
    expect(page).to_have_url(f"{server.url}/dashboard/login")
    # and the server forgot it: the old cookie, replayed, opens nothing
    replayed = httpx.get(
        f"{server.url}/dashboard/jobs", cookies={"conveyor_session": session["value"]}, follow_redirects=False
    )
    assert replayed.status_code == 303
    assert replayed.headers["location"].endswith("/dashboard/login")
