"""Supplier sync end to end: the Promidata simulator over HTTP, a real worker, SQLite or Redis queues.

The feed has 200 families of 5 variants with 2 pictures each (1,000 variants,
2,000 pictures). A first sync must bring all of it into the catalog and the
media storage; a second one, after 5 families changed, must touch exactly
those 5 and fetch and store only the pictures that are new.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from conveyor import Conveyor, JobFilter, JobState
from conveyor.commerce import db
from conveyor.commerce.catalog import Image, Product, Store, Variant
from conveyor.commerce.suppliers import (
    QUEUE_CONCURRENCY,
    STEPS,
    FamilyHash,
    FamilyKey,
    LocalStorage,
    S3Storage,
    SupplierMedia,
    SupplierSync,
    SyncDone,
    SyncQueued,
    UnknownSupplier,
    register,
)
from conveyor.commerce.suppliers.feed import FeedProduct, IndexEntry
from conveyor.commerce.suppliers.grouping import group_families
from conveyor.sandbox import FaultKind, RunningSandbox, start
from conveyor.sandbox.promidata import PromidataConfig, PromidataSandbox

FAMILIES, VARIANTS, PICTURES = 200, 5, 2


class CountingStorage(LocalStorage):
    """The real local storage, counting the writes that reach it."""

    writes = 0

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.writes += 1
        super().put(key, data, content_type)


@dataclass
class World:
    app: Conveyor
    sync: SupplierSync
    feed: PromidataSandbox
    storage: CountingStorage
    sessions: sessionmaker[Session]
    supplier_id: int
    store_id: int

    def count(self, *query_from: type) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(*query_from)) or 0)


@asynccontextmanager
async def make_world(app_url: str, tmp_path: Path, config: PromidataConfig) -> AsyncIterator[World]:
    feed = PromidataSandbox(config)
    server: RunningSandbox = start(feed)
    catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    db.migrate(catalog_url)
    sessions = db.session_factory(db.create_engine_for(catalog_url))
    with sessions.begin() as session:
        store = Store(name="promo shop")
        session.add(store)
        session.flush()
        store_id = store.id
    app = Conveyor(app_url, concurrency=QUEUE_CONCURRENCY)
    storage = CountingStorage(tmp_path / "media")
    sync = register(
        app,
        catalog_url=catalog_url,
        feed_url=server.api_url,
        storage=storage,
        retry_delay=0.01,
        backoff=(0.1,),
    )
    supplier_id = sync.add_supplier(store_id=store_id, code=config.suppliers[0], name="Acme Promo")
    try:
        yield World(app, sync, feed, storage, sessions, supplier_id, store_id)
    finally:
        await sync.aclose()
        await app.close()
        server.stop()


@pytest.fixture
async def world(backend_url: str, tmp_path: Path) -> AsyncIterator[World]:
    config = PromidataConfig(families=FAMILIES, variants_per_family=VARIANTS, images_per_variant=PICTURES)
    async with make_world(backend_url, tmp_path, config) as built:
        yield built


async def sync_once(world: World) -> str:
    started = await world.sync.start_sync()
    assert isinstance(started, SyncQueued)
    (queued,) = started.jobs
    assert (queued.supplier, queued.queueName, queued.status) == ("A23", "suppliers", "waiting")
    again = await world.sync.start_sync(world.supplier_id)
    assert isinstance(again, SyncQueued)
    assert [j.jobId for j in again.jobs] == [queued.jobId]  # one live sync per supplier
    await world.app.worker(burst=True).run()
    return queued.jobId


def stored_files(world: World) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in world.storage.root.rglob("*.jpg")}


async def test_full_then_incremental_sync(world: World) -> None:
    world.feed.faults.force(FaultKind.ERROR, FaultKind.THROTTLE)  # Import.txt fails twice, then answers
    job_id = await sync_once(world)

    status = await world.sync.get_job_status("suppliers", job_id)
    assert status.found
    assert status.state == "completed"
    assert status.progress is not None
    assert (status.progress.step, status.progress.percentage) == ("done", 100)
    assert status.result["products_processed"] == FAMILIES
    assert (status.result["skipped"], status.result["errors"]) == (0, 0)
    assert status.attemptsMade == 1
    assert status.finishedOn is not None
    assert status.timestamp is not None
    logs = sorted(await world.app.job_logs(job_id), key=lambda line: line.at)
    assert [line.line.split(" (")[0] for line in logs] == list(STEPS)

    # The catalog holds every family, variant and picture; the storage holds every picture's bytes.
    assert world.count(Product) == FAMILIES
    assert world.count(Variant) == FAMILIES * VARIANTS
    assert world.count(Image) == FAMILIES * VARIANTS * PICTURES
    assert world.count(SupplierMedia) == FAMILIES * VARIANTS * PICTURES
    assert world.count(FamilyHash) == FAMILIES
    expected = {
        hashlib.sha256(data).hexdigest()
        for name in world.feed.image_names()
        if (data := world.feed.image_bytes(*name.split("/"))) is not None
    }
    files = stored_files(world)
    assert {hashlib.sha256(data).hexdigest() for data in files.values()} == expected
    assert {name.removesuffix(".jpg") for name in files} == expected
    with world.sessions() as session:
        hashes = set(session.scalars(select(Image.content_hash)))
        product = session.scalars(select(Product).where(Product.sku == "A23-100003")).one()
        assert sorted(v.sku for v in product.variants) == [f"A23-100003-{n:03d}" for n in range(1, 6)]
        assert product.variants[1].options == {"Color": "White", "Size": "XS"}
        assert product.price == min(v.price for v in product.variants if v.price is not None)
        untouched_at = product.updated_at
    assert hashes == expected
    assert world.storage.writes == len(expected) == FAMILIES * VARIANTS * PICTURES
    assert world.feed.image_requests == FAMILIES * VARIANTS * PICTURES

    stats = await world.sync.get_queue_stats()
    assert isinstance(stats, dict)
    assert {role: (s.queueName, s.completed, s.failed, s.total) for role, s in stats.items()} == {
        "supplierSync": ("suppliers", 1, 0, 1),
        "productFamily": ("families", FAMILIES, 0, FAMILIES),
        "imageUpload": ("images", FAMILIES * VARIANTS * PICTURES, 0, FAMILIES * VARIANTS * PICTURES),
    }

    # Second run: 5 families changed (new texts, prices and one new picture each).
    changed = world.feed.change_families(5, start=10)
    writes, requests = world.storage.writes, world.feed.image_requests
    second = await sync_once(world)
    result = (await world.sync.get_job_status("suppliers", second)).result
    assert (result["products_processed"], result["skipped"], result["errors"]) == (5, FAMILIES - 5, 0)
    page = await world.app.list_jobs(JobFilter(types=["suppliers:family"], parent_id=second), limit=1000)
    touched = [job.payload["data"]["sku"] for job in page.jobs]
    assert sorted(touched) == changed
    assert world.storage.writes - writes == 5  # only the new pictures are written…
    assert world.feed.image_requests - requests == 5  # …and only they are downloaded
    assert world.count(Product) == FAMILIES
    assert world.count(Image) == FAMILIES * VARIANTS * PICTURES
    assert world.count(SupplierMedia) == FAMILIES * VARIANTS * PICTURES + 5
    with world.sessions() as session:
        for sku in changed:
            product = session.scalars(select(Product).where(Product.sku == sku)).one()
            assert "(rev 1)" in product.name
            assert product.images[0].url.endswith("-001-1-r1.jpg")
            assert product.images[0].content_hash is not None
        same = session.scalars(select(Product).where(Product.sku == "A23-100003")).one()
        assert same.updated_at == untouched_at
    families = await world.sync.get_queue_stats("families")
    assert not isinstance(families, dict)
    assert (families.completed, families.total) == (FAMILIES + 5, FAMILIES + 5)

    assert not (await world.sync.get_job_status("suppliers", "no-such-job")).found
    assert not (await world.sync.get_job_status("images", second)).found  # a job of another queue
    with pytest.raises(ValueError, match="unknown queue"):
        await world.sync.get_queue_stats("marketplace")


@pytest.fixture
async def small_world(tmp_path: Path) -> AsyncIterator[World]:
    config = PromidataConfig(
        suppliers=("A23", "B7"), families=10, variants_per_family=2, images_per_variant=1
    )
    async with make_world(f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path, config) as built:
        yield built


async def test_inline_sync_returns_results_per_supplier_without_a_worker(small_world: World) -> None:
    world = small_world
    world.sync.add_supplier(store_id=world.store_id, code="B7", name="Bolt Bags")
    world.feed.break_file("A23-100004", "truncated")

    first = await world.sync.start_sync(use_queue=False)
    assert isinstance(first, SyncDone)
    assert (first.mode, first.suppliersProcessed, first.success) == ("direct", 2, False)
    got = {r.supplier: (r.productsProcessed, r.errors, r.skipped) for r in first.results}
    assert got == {"A23": (9, 1, 0), "B7": (10, 0, 0)}
    assert all(r.duration.endswith("s") for r in first.results)
    assert world.count(Product) == 19
    assert world.storage.writes == world.feed.image_requests == 19 * 2

    world.feed.change_families(1, start=12)  # B7-100002
    second = await world.sync.start_sync(use_queue=False)
    assert isinstance(second, SyncDone)
    got = {r.supplier: (r.productsProcessed, r.errors, r.skipped) for r in second.results}
    assert got == {"A23": (0, 1, 9), "B7": (1, 0, 9)}
    assert world.storage.writes == world.feed.image_requests == 19 * 2 + 1
    assert (await world.app.stats()).total == 0  # no job was queued

    with pytest.raises(ValueError, match="supplier code"):
        world.sync.add_supplier(store_id=world.store_id, code="acme", name="x")
    world.feed.faults.force(*[FaultKind.ERROR] * 3)  # the index fails all 3 tries: A23 alone errs
    down = await world.sync.start_sync(use_queue=False)
    assert isinstance(down, SyncDone)
    got = {r.supplier: (r.productsProcessed, r.errors, r.skipped) for r in down.results}
    assert got == {"A23": (0, 1, 0), "B7": (0, 0, 10)}

    with pytest.raises(UnknownSupplier, match="no active supplier with id 99"):
        await world.sync.start_sync(99, use_queue=False)


async def test_a_family_missing_a_picture_fails_keeps_its_old_hash_and_is_retried_next_sync(
    small_world: World,
) -> None:
    world = small_world
    world.feed.break_image("A23-100003-002-1.jpg")
    first = await sync_once(world)
    result = (await world.sync.get_job_status("suppliers", first)).result
    assert (result["products_processed"], result["errors"], result["skipped"]) == (9, 1, 0)
    failed = await world.app.list_jobs(JobFilter(types=["suppliers:family"], states=[JobState.FAILED]))
    (family,) = failed.jobs
    assert family.payload["data"]["sku"] == "A23-100003"
    assert family.error is not None
    assert "1 of 2 pictures" in family.error.message
    assert world.count(FamilyHash) == 9
    assert world.count(Product) == 10  # the product itself was written
    requests = world.feed.image_requests

    world.feed.break_image("A23-100003-002-1.jpg", broken=False)
    second = await sync_once(world)
    result = (await world.sync.get_job_status("suppliers", second)).result
    assert (result["products_processed"], result["errors"], result["skipped"]) == (1, 0, 9)
    assert world.feed.image_requests - requests == 1  # its other picture was stored the first time
    assert world.count(FamilyHash) == 10
    assert world.storage.writes == 20

    unchanged = await sync_once(world)  # nothing changed: no family job, every step still reported
    status = await world.sync.get_job_status("suppliers", unchanged)
    assert status.result is not None
    assert (status.result["products_processed"], status.result["skipped"]) == (0, 10)
    logs = sorted(await world.app.job_logs(unchanged), key=lambda line: line.at)
    assert [line.line.split(" (")[0] for line in logs] == list(STEPS)
    families = await world.app.list_jobs(JobFilter(types=["suppliers:family"], parent_id=unchanged))
    assert families.jobs == []


def test_grouping_by_a_number_folds_a_supplier_into_one_family_as_the_observed_feed_warns() -> None:
    feed = PromidataSandbox(PromidataConfig(families=3, variants_per_family=2))
    files = []
    for ref in feed.catalog.refs():
        entry = IndexEntry(f"https://feed.example/{ref.sku}.json", "h", ref.supplier, f"{ref.sku}.json")
        files.append((entry, FeedProduct.model_validate_json(feed.catalog.product_file(ref, "https://img"))))

    by_sku, errors = group_families(files, key=FamilyKey.SKU, language="de", region="BENELUX")
    assert errors == []
    assert [f.key for f in by_sku] == ["A23-100000", "A23-100001", "A23-100002"]
    assert [len(f.variants) for f in by_sku] == [2, 2, 2]
    assert by_sku[0].name.endswith("[de]")
    assert by_sku[0].content_hash() != by_sku[1].content_hash()

    (by_a_number,), _ = group_families(files, key=FamilyKey.A_NUMBER, language="de", region=None)
    assert by_a_number.key == by_a_number.sku == "A23"
    assert len(by_a_number.variants) == 6


class FakeS3:
    """Just enough of a boto3 S3 client: head_object, put_object and its ClientError."""

    class exceptions:  # noqa: N801 - boto3 spells it this way
        class ClientError(Exception):
            def __init__(self, code: str) -> None:
                super().__init__(code)
                self.response = {"Error": {"Code": code}}

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, int]:  # noqa: N803
        if (Bucket, Key) not in self.objects:
            raise self.exceptions.ClientError("404")
        return {"ContentLength": len(self.objects[Bucket, Key][0])}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str) -> None:  # noqa: N803
        self.objects[Bucket, Key] = (Body, ContentType)


def test_s3_storage_writes_under_its_prefix_and_reports_what_exists() -> None:
    client = FakeS3()
    storage = S3Storage("media", prefix="/suppliers/", public_url="https://cdn.example/", client=client)
    assert not storage.exists("ab/abc.jpg")
    storage.put("ab/abc.jpg", b"jpeg", "image/jpeg")
    assert storage.exists("ab/abc.jpg")
    assert client.objects == {("media", "suppliers/ab/abc.jpg"): (b"jpeg", "image/jpeg")}
    assert storage.url("ab/abc.jpg") == "https://cdn.example/suppliers/ab/abc.jpg"
    with pytest.raises(ValueError, match="bucket"):
        S3Storage("", client=client)
