"""The deployable seller-data app is configured from the environment, and says clearly what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor import ConfigurationError
from conveyor.commerce.seller_data import QUEUE
from conveyor.commerce.seller_data.config import WORKER_CONCURRENCY, create_app


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CONVEYOR_URL", f"sqlite:///{tmp_path / 'jobs.db'}")
    monkeypatch.delenv("CONVEYOR_CONCURRENCY_SELLER_DATA", raising=False)
    return f"sqlite:///{tmp_path / 'catalog.db'}"


async def test_environment_sets_the_tick_and_the_worker_concurrency(
    catalog: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = create_app({"SELLER_DATA_CATALOG_URL": catalog})
    monkeypatch.setenv("CONVEYOR_CONCURRENCY_SELLER_DATA", "5")
    app = create_app({"SELLER_DATA_CATALOG_URL": catalog, "SELLER_DATA_EVERY": "120"})
    await app.sync_schedules()
    (schedule,) = await app.schedules()
    await app.close()
    assert (schedule.every, schedule.cron, schedule.job_type) == (
        120.0,
        None,
        "seller_data:enqueue_due_users",
    )
    assert default.settings.concurrency_for(QUEUE) == WORKER_CONCURRENCY == 3
    assert app.settings.concurrency_for(QUEUE) == 5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SELLER_DATA_CATALOG_URL must name"),
        ({"SELLER_DATA_EVERY": "often"}, "SELLER_DATA_EVERY must be a number"),
        ({"SELLER_DATA_STALE_AFTER": "-1"}, "SELLER_DATA_STALE_AFTER must not be negative"),
        ({"SELLER_DATA_CRON": "every hour"}, "not a valid cron expression"),
    ],
)
def test_bad_settings_are_named(catalog: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        create_app({"SELLER_DATA_CATALOG_URL": catalog, **env} if env else {})
