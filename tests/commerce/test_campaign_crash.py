"""A worker SIGKILLed in the middle of a campaign: a new worker finishes it, and nothing is created twice.

The killed process dies with phase jobs mid-batch: creates answered but not
recorded, variants half added. Its leases expire (2 s), the engine hands the
jobs to the new worker, and `product_data` finds by SKU what the dead one
created. The simulators count create requests per SKU, so a duplicate cannot
hide behind a later delete or update.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_world import (
    FINISHED,
    Spawn,
    World,
    build_world,
    expected,
    jumpseller_state,
    shopify_state,
    wait_finished,
    worker_processes,
)

from conveyor import JobState

pytestmark = pytest.mark.slow

PRODUCTS = 300
INVALID = 6
KILL_AFTER = 100
"""Products the first worker has created on Jumpseller when it is killed."""


@pytest.fixture
def world(tmp_path: Path, backend_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from build_world(tmp_path, backend_url, monkeypatch, PRODUCTS, INVALID)


@pytest.fixture
def spawn(world: World) -> Iterator[Spawn]:
    yield from worker_processes(world)


async def test_a_worker_killed_mid_campaign_leaves_no_product_published_twice(
    world: World, spawn: Spawn
) -> None:
    job = await world.jobs.process.enqueue(campaign_id=world.campaign_id)
    first = spawn()
    deadline = time.monotonic() + 60
    while len(world.jumpseller.store.products) < KILL_AFTER:
        assert time.monotonic() < deadline, "the first worker never got going"
        await asyncio.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = (len(world.jumpseller.store.products), len(world.shopify.store.products))
    assert (await world.app.get_job(job.id)).state not in FINISHED
    assert killed_at[0] < len(world.valid)

    spawn()
    job = await wait_finished(world, job.id, 90)

    assert job.state is JobState.COMPLETED
    assert job.result["published"] == 2 * len(world.valid)
    for sku in world.valid:
        assert jumpseller_state(world.jumpseller, sku)[1:] == expected(sku)
        assert shopify_state(world.shopify, sku)[1:] == expected(sku)
    assert len(world.jumpseller.store.products) == len(world.shopify.store.products) == len(world.valid)
    # One create request per SKU, whatever the dead worker had on the wire.
    assert world.jumpseller.store.created == dict.fromkeys(world.valid, 1)
    variant_skus = [f"{sku}-{size}" for sku in world.valid for size in ("S", "M")]
    assert world.shopify.store.created == dict.fromkeys(variant_skus, 1)
