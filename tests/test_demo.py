"""`conveyor demo` as a new user runs it: a subprocess with its own simulators, workers and API."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from conveyor.api.tokens import Scope, TokenStore

PRODUCTS = 12
VALID = PRODUCTS - 2  # the demo store always holds one unpriced and one oversold product
FAMILIES = 5  # 3 variants and 2 pictures per variant each


@pytest.fixture(params=["sqlite", "redis"])
def jobs_option(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "sqlite":
        return []
    return ["--redis", request.getfixturevalue("redis_url")]


def summary_rows(lines: list[str]) -> dict[str, tuple[str, str, str]]:
    """The summary table: pipeline -> (state, attempts, outcome)."""
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["pipeline", "state"])
    rows = {}
    for line in lines[header + 2 :]:
        if not line.strip():
            break
        found = re.match(r"\s*(.+?)\s{2,}(completed|failed|cancelled)\s+(\d+)\s+\S+\s+(.*?)\s*$", line)
        assert found is not None, line
        rows[found.group(1)] = (found.group(2), found.group(3), found.group(4))
    return rows


def test_demo_runs_every_pipeline_through_worker_processes(tmp_path: Path, jobs_option: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    command = [
        "demo",
        "--products",
        str(PRODUCTS),
        "--families",
        str(FAMILIES),
        "--dir",
        "demo",
        *jobs_option,
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "conveyor", *command],
        cwd=tmp_path,
        env={**env, "PYTHONIOENCODING": "utf-8", "COLUMNS": "240"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    demo = tmp_path / "demo"

    login = re.search(r"dashboard: (http://127\.0\.0\.1:\d+)/dashboard +login token: (\S+)", proc.stdout)
    assert login is not None
    token = TokenStore(demo / "auth.db").verify(login.group(2))
    assert token is not None
    assert token.scope is Scope.ADMIN

    progress = [float(m.group(1)) for m in (re.match(r"\[\s*([\d.]+)s\] ", line) for line in lines) if m]
    assert len(progress) >= 2
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(progress[:-1]))  # at most ~1 line/s, then the end

    listings = f"{2 * VALID} of {2 * PRODUCTS} listings published; errors: 4 validation"
    assert summary_rows(lines) == {
        "campaign: 12 products → Jumpseller, Shopify": ("completed", "1", f"partially_published: {listings}"),
        "supplier sync: Promidata A23": (
            "completed",
            "1",
            f"{FAMILIES} of {FAMILIES} families written, {FAMILIES * 6} pictures stored,"
            " 0 unchanged, 0 errors",
        ),
        "seller data: 6 sellers in NA, EU, FE": (
            "completed",
            "1",
            "6 of 6 sellers updated, 18 accounts read",
        ),
        "shopify:import:all (Northwind)": (
            "completed",
            "1",
            "imported 4 collections, 24 products; 0 skipped",
        ),
        "akeneo:import:products (Northwind)": ("completed", "1", "imported 30 products; 0 skipped"),
        "amazon:export:products (Acme)": ("completed", "1", "8 listings exported, 8 AI credits spent"),
        "ebay:export:products (Acme)": (
            "completed",
            "2",
            "8 listings exported, 8 AI credits spent; attempt 1 failed: A system error has occurred.",
        ),
        "translation:ui-labels:bulk (Acme, German)": (
            "completed",
            "1",
            "6 labels translated, 6 AI credits spent",
        ),
        "amazon:export:products (Blue Harbor, no credits)": (
            "failed",
            "1",
            "Insufficient credits: store 3 has 0, title:amazon:DEMO-0000 needs 1",
        ),
    }
    final = re.search(
        r"(\d+) jobs ran in [\d.]+s across the pipelines: (\d+) completed, (\d+) failed", proc.stdout
    )
    assert final is not None
    total, completed, failed = map(int, final.groups())
    assert (total - completed, failed) == (1, 1)

    engine = sa.create_engine(f"sqlite:///{demo / 'catalog.db'}")
    with engine.connect() as conn:
        campaign = conn.execute(
            sa.text("SELECT status, products_published, products_failed FROM campaigns")
        ).one()
        imported = conn.execute(sa.text("SELECT count(*) FROM products WHERE store_id = 2")).scalar_one()
        cached = conn.execute(sa.text("SELECT count(*) FROM seller_data_cache")).scalar_one()
    engine.dispose()
    assert tuple(campaign) == ("partially_published", 2 * VALID, 4)
    assert imported == 24 + 30 + FAMILIES  # Shopify, Akeneo and the supplier feed all land in Northwind
    assert cached == 18
    assert len(list((demo / "supplier-media").rglob("*.jpg"))) == FAMILIES * 6
    for n in (1, 2):
        assert "worker stopped" in (demo / f"worker-{n}.log").read_text()
    assert (demo / "api.log").exists()
