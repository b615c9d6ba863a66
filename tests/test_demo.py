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


@pytest.fixture(params=["sqlite", "redis"])
def jobs_option(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "sqlite":
        return []
    return ["--redis", request.getfixturevalue("redis_url")]


def test_demo_publishes_a_campaign_through_worker_processes(tmp_path: Path, jobs_option: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_") and k != "COLUMNS"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "conveyor",
            "demo",
            "--products",
            str(PRODUCTS),
            "--dir",
            "demo",
            *jobs_option,
        ],
        cwd=tmp_path,
        env={**env, "PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        text=True,
        timeout=180,
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

    row = re.search(
        r"^ *campaign: .*? Shopify +(\w+) +(\d+) .*?(\w+): (\d+) of (\d+) listings", proc.stdout, re.M
    )
    assert row is not None
    assert row.groups() == ("completed", "1", "partially_published", str(2 * VALID), str(2 * PRODUCTS))
    final = re.search(
        r"(\d+) jobs ran in [\d.]+s across the pipelines: (\d+) completed, (\d+) failed", proc.stdout
    )
    assert final is not None
    total, completed, failed = map(int, final.groups())
    assert total == completed
    assert failed == 0

    engine = sa.create_engine(f"sqlite:///{demo / 'catalog.db'}")
    with engine.connect() as conn:
        status = conn.execute(
            sa.text("SELECT status, products_published, products_failed FROM campaigns")
        ).one()
    engine.dispose()
    assert tuple(status) == ("partially_published", 2 * VALID, 4)
    for n in (1, 2):
        assert "worker stopped" in (demo / f"worker-{n}.log").read_text()
    assert (demo / "api.log").exists()
