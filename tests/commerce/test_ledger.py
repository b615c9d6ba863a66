"""Delivery ledger: versions, extractors, failures, recovery and races, on SQLite and PostgreSQL.

PostgreSQL cases run as in test_catalog.py: when `CONVEYOR_TEST_POSTGRES_URL`
is set (and must then work) or a server answers on 127.0.0.1:5432; otherwise
they are not collected. Each case gets a schema of its own.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from conveyor import FakeClock
from conveyor.commerce import db
from conveyor.commerce.catalog import Image, MarketplaceAccount, MarketplaceKind, Product, Store, Variant
from conveyor.commerce.ledger import (
    Delivery,
    DeliveryStatus,
    Extractor,
    Ledger,
    LedgerError,
    ProductVersion,
    ShipmentInfo,
    ShipmentStatus,
)

KIND = "publish"


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    db.migrate(database_url)
    engine = db.create_engine_for(database_url)
    yield db.session_factory(engine)
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(sessions: sessionmaker[Session], clock: FakeClock) -> Ledger:
    return Ledger(sessions, clock=clock, lease_seconds=60)


def make_store(
    sessions: sessionmaker[Session], products: int, *, ready: bool = True
) -> tuple[int, list[int]]:
    """A store with one Jumpseller account and `products` products; returns (account id, product ids)."""
    with sessions.begin() as session:
        store = Store(name="shop")
        session.add(store)
        account = MarketplaceAccount(kind=MarketplaceKind.JUMPSELLER, name="js", credentials_ref="env:JS")
        store.accounts.append(account)
        for n in range(products):
            store.products.append(
                Product(
                    sku=f"SKU-{n}",
                    name=f"Product {n}",
                    price=Decimal("10.00"),
                    stock=3,
                    ready=ready,
                    variants=[Variant(sku=f"SKU-{n}-M", options={"Size": "M"})],
                    images=[Image(url=f"https://img/{n}.jpg")],
                )
            )
        session.flush()
        return account.id, [p.id for p in store.products]


def add_account(sessions: sessionmaker[Session], product_id: int) -> int:
    """A second target in the same store as `product_id`."""
    with sessions.begin() as session:
        store_id = session.get_one(Product, product_id).store_id
        account = MarketplaceAccount(
            store_id=store_id, kind=MarketplaceKind.SHOPIFY, name="sh", credentials_ref="env:S"
        )
        session.add(account)
        session.flush()
        return account.id


def edit(sessions: sessionmaker[Session], product_id: int, change: Callable[[Product], Any]) -> None:
    with sessions.begin() as session:
        change(session.get_one(Product, product_id))


def raise_price(product: Product) -> None:
    product.price += 1


def process(ledger: Ledger, shipment: ShipmentInfo, holder: str, deliver: set[int] | None = None) -> None:
    """Claim, deliver (all pending, or the products in `deliver`) and finish a shipment."""
    assert ledger.claim(shipment.id, holder) is not None
    chosen = [i.version_id for i in shipment.pending if deliver is None or i.product_id in deliver]
    assert ledger.mark_delivered(shipment.id, *chosen) == len(chosen)
    ledger.finish(shipment.id, holder)


def picked(shipment: ShipmentInfo) -> list[tuple[int, int]]:
    return [(item.product_id, item.number) for item in shipment.items]


def test_a_version_changes_only_when_the_content_does(
    sessions: sessionmaker[Session], ledger: Ledger
) -> None:
    _, (product_id,) = make_store(sessions, 1)
    first = ledger.record_version(product_id)
    assert (first.number, len(first.content_hash)) == (1, 64)
    assert ledger.record_version(product_id).id == first.id  # same content, same version

    edit(sessions, product_id, lambda p: setattr(p, "ready", False))  # not content
    edit(sessions, product_id, lambda p: setattr(p, "price", Decimal("10.0")))  # same amount
    assert ledger.record_version(product_id).id == first.id

    edit(sessions, product_id, lambda p: p.variants[0].options.update(Color="red"))
    second = ledger.record_version(product_id)
    assert (second.number, second.content_hash != first.content_hash) == (2, True)

    edit(sessions, product_id, lambda p: p.variants[0].options.pop("Color"))  # back to version 1's content
    third = ledger.record_version(product_id)
    assert (third.number, third.content_hash) == (3, first.content_hash)  # still new: the target holds v2

    edit(sessions, product_id, lambda p: p.images.append(Image(url="https://img/extra.jpg", position=1)))
    assert ledger.record_version(product_id).number == 4


def test_extractors_pick_exactly_what_is_undelivered(sessions: sessionmaker[Session], ledger: Ledger) -> None:
    target, products = make_store(sessions, 10)
    _, other_store = make_store(sessions, 2)  # another tenant: never this target's business

    initial = ledger.create_shipment("run-1", target=target, job_kind=KIND, extractor=Extractor.INITIAL)
    assert picked(initial) == [(p, 1) for p in products]
    process(ledger, initial, "run-1", deliver=set(products[:7]))  # 3 released undelivered

    edited = products[2:5]
    for product_id in edited:
        edit(sessions, product_id, raise_price)
    re_release = ledger.create_shipment("run-2", target=target, job_kind=KIND, extractor=Extractor.RE_RELEASE)
    assert picked(re_release) == [(p, 2) for p in edited]
    rerun = ledger.create_shipment("run-3", target=target, job_kind=KIND, extractor=Extractor.RE_RELEASE)
    assert (rerun.items, rerun.status) == ((), ShipmentStatus.DONE)  # claimed by run-2 already
    process(ledger, re_release, "run-2")
    assert ledger.create_shipment("run-4", target=target, job_kind=KIND, extractor="re_release").items == ()

    undelivered = ledger.create_shipment("run-5", target=target, job_kind=KIND, extractor=Extractor.INITIAL)
    assert picked(undelivered) == [(p, 1) for p in products[7:]]
    process(ledger, undelivered, "run-5")
    assert ledger.create_shipment("run-6", target=target, job_kind=KIND, extractor=Extractor.ALL).items == ()
    assert other_store[0] not in {i.product_id for i in initial.items}

    edit(sessions, products[0], raise_price)
    edit(sessions, products[0], raise_price)  # two edits between runs: only the latest version ships
    edit(sessions, products[9], lambda p: setattr(p, "ready", False))
    edit(sessions, products[9], raise_price)  # changed but not ready: not picked
    everything = ledger.create_shipment("run-7", target=target, job_kind=KIND, extractor=Extractor.ALL)
    assert picked(everything) == [(products[0], 2)]


def test_each_target_and_job_kind_has_its_own_records(
    sessions: sessionmaker[Session], ledger: Ledger
) -> None:
    target, products = make_store(sessions, 3)
    second_target = add_account(sessions, products[0])
    process(ledger, ledger.create_shipment("a", target=target, job_kind=KIND, extractor="all"), "a")
    images = ledger.create_shipment("b", target=target, job_kind="images", extractor="all")
    elsewhere = ledger.create_shipment("c", target=second_target, job_kind=KIND, extractor="all")
    assert picked(images) == picked(elsewhere) == [(p, 1) for p in products]
    narrowed = ledger.create_shipment(
        "d", target=second_target, job_kind="x", extractor="all", product_ids=products[1:]
    )
    assert picked(narrowed) == [(p, 1) for p in products[1:]]
    limited = ledger.create_shipment("e", target=second_target, job_kind="y", extractor="all", limit=2)
    assert picked(limited) == [(p, 1) for p in products[:2]]


def test_a_failed_version_is_not_picked_again_until_it_changes(
    sessions: sessionmaker[Session], ledger: Ledger
) -> None:
    target, products = make_store(sessions, 3)
    shipment = ledger.create_shipment("run-1", target=target, job_kind=KIND, extractor=Extractor.ALL)
    assert ledger.claim(shipment.id, "run-1") is not None
    bad = shipment.items[1]
    assert ledger.mark_failed(shipment.id, bad.version_id, "price must be positive")
    assert not ledger.mark_failed(shipment.id, bad.version_id, "again")  # settled once
    assert ledger.mark_delivered(shipment.id, bad.version_id) == 0  # a failure is not overwritten
    ledger.mark_delivered(shipment.id, shipment.items[0].version_id, shipment.items[2].version_id)
    done = ledger.finish(shipment.id, "run-1")
    assert [(i.status, i.error) for i in done.items] == [
        (DeliveryStatus.DELIVERED, None),
        (DeliveryStatus.FAILED, "price must be positive"),
        (DeliveryStatus.DELIVERED, None),
    ]

    for run, extractor in enumerate(Extractor):
        assert (
            ledger.create_shipment(f"again-{run}", target=target, job_kind=KIND, extractor=extractor).items
            == ()
        )

    edit(sessions, products[1], raise_price)
    fixed = ledger.create_shipment("run-2", target=target, job_kind=KIND, extractor=Extractor.RE_RELEASE)
    assert picked(fixed) == [(products[1], 2)]


def test_a_shipment_never_processed_is_found_and_delivered_once(
    sessions: sessionmaker[Session], ledger: Ledger
) -> None:
    target, products = make_store(sessions, 4)
    orphan = ledger.create_shipment("crashed", target=target, job_kind=KIND, extractor="all")
    # The run died here, between packaging and shipping.
    assert [s.id for s in ledger.unprocessed_shipments(target, KIND)] == [orphan.id]
    assert ledger.unprocessed_shipments(target, "images") == []
    assert ledger.create_shipment("next", target=target, job_kind=KIND, extractor="all").items == ()

    process(ledger, orphan, "next")
    assert ledger.unprocessed_shipments(target, KIND) == []
    assert ledger.mark_delivered(orphan.id, *[i.version_id for i in orphan.items]) == 0
    with sessions() as session:
        rows = session.execute(sa.select(Delivery.version_id, Delivery.status)).all()
    assert sorted(rows) == sorted((i.version_id, DeliveryStatus.DELIVERED) for i in orphan.items)
    assert len(rows) == len(products)


def test_a_run_resumes_its_own_shipment_and_a_dead_holder_loses_it(
    sessions: sessionmaker[Session], ledger: Ledger, clock: FakeClock
) -> None:
    target, _ = make_store(sessions, 5)
    shipment = ledger.create_shipment("job-1", target=target, job_kind=KIND, extractor="all")
    assert ledger.claim(shipment.id, "job-1") is not None
    ledger.mark_delivered(shipment.id, *[i.version_id for i in shipment.items[:2]])

    retried = ledger.create_shipment("job-1", target=target, job_kind=KIND, extractor="all")
    assert retried.id == shipment.id  # same run key: same shipment, resumed where it stopped
    assert len(retried.pending) == 3
    with pytest.raises(LedgerError, match="already shipped"):
        ledger.create_shipment("job-1", target=target, job_kind="images", extractor="all")

    assert ledger.unprocessed_shipments(target, KIND) == []  # the lease is live
    assert ledger.claim(shipment.id, "job-2") is None
    clock.advance(61)
    (stale,) = ledger.unprocessed_shipments(target, KIND)
    assert ledger.claim(stale.id, "job-2") is not None
    assert ledger.claim(stale.id, "job-1") is None
    assert ledger.mark_delivered(stale.id, *[i.version_id for i in stale.pending]) == 3
    with pytest.raises(LedgerError, match="not being processed by 'job-1'"):
        ledger.finish(stale.id, "job-1")
    assert ledger.finish(stale.id, "job-2").status is ShipmentStatus.DONE
    assert ledger.claim(stale.id, "job-2") is None  # done is final
    with pytest.raises(LedgerError, match="holds no versions"):
        ledger.mark_delivered(stale.id, 10**6)


def test_the_database_refuses_a_second_record_for_a_triple(
    sessions: sessionmaker[Session], ledger: Ledger
) -> None:
    target, _ = make_store(sessions, 1)
    shipment = ledger.create_shipment("run", target=target, job_kind=KIND, extractor="all")
    (item,) = shipment.items
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(
            Delivery(
                version_id=item.version_id,
                account_id=target,
                job_kind=KIND,
                shipment_id=shipment.id,
                status=DeliveryStatus.DELIVERED,
                updated_at=shipment.created_at,
            )
        )


def run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released at the same instant; re-raise their errors."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_concurrent_recording_creates_one_version(sessions: sessionmaker[Session], database_url: str) -> None:
    target, (product_id,) = make_store(sessions, 1)
    engines = [db.create_engine_for(database_url) for _ in range(4)]
    ledgers = [Ledger(db.session_factory(engine)) for engine in engines]
    ledgers[0].record_version(product_id)
    edit(sessions, product_id, raise_price)
    versions = run_together(4, lambda i: ledgers[i].record_version(product_id))
    assert {(v.id, v.number) for v in versions} == {(versions[0].id, 2)}
    shipments = run_together(
        4, lambda i: ledgers[i].create_shipment("same-run", target=target, job_kind=KIND, extractor="all")
    )
    assert len({s.id for s in shipments}) == 1
    claims = run_together(4, lambda i: ledgers[i].claim(shipments[0].id, f"holder-{i}"))
    assert sum(claim is not None for claim in claims) == 1
    for engine in engines:
        engine.dispose()
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ProductVersion)) == 2


def ship_everything(url: str, target: int, holder: str, barrier: Any = None) -> list[int]:
    """One shipping run: recover orphans, then package and ship 4 at a time until nothing is left.

    Returns the versions it acted on (the marketplace calls it would have made).
    """
    engine = db.create_engine_for(url)
    ledger = Ledger(db.session_factory(engine))
    acted: list[int] = []
    if barrier is not None:
        barrier.wait()
    for run in range(10_000):
        fresh = ledger.create_shipment(
            f"{holder}-{run}", target=target, job_kind=KIND, extractor="all", limit=4
        )
        orphans = ledger.unprocessed_shipments(target, KIND)
        if not fresh.items and not orphans:
            break
        for shipment in [*orphans, fresh]:
            if not shipment.items or (claimed := ledger.claim(shipment.id, holder)) is None:
                continue  # another run holds it
            for item in claimed.pending:
                time.sleep(0.005)  # the marketplace call, during which other runs take their turns
                acted.append(item.version_id)
                assert ledger.mark_delivered(shipment.id, item.version_id) == 1
            ledger.finish(shipment.id, holder)
    engine.dispose()
    return acted


def ship_in_process(url: str, target: int, holder: str, barrier: Any, results: Any) -> None:
    try:
        results.put(ship_everything(url, target, holder, barrier))
    except BaseException:
        results.put(traceback.format_exc())  # the parent fails with it instead of waiting
        raise


def assert_delivered_once(sessions: sessionmaker[Session], runs: list[list[int]], products: int) -> None:
    assert sum(1 for run in runs if run) >= 2  # the runs really raced for the same products
    acted = [version for run in runs for version in run]
    assert len(acted) == len(set(acted)) == products  # every version acted on, none twice
    with sessions() as session:
        statuses = session.scalars(sa.select(Delivery.status)).all()
        assert statuses == [DeliveryStatus.DELIVERED] * products
        assert set(session.scalars(sa.select(Delivery.version_id))) == set(acted)


def test_concurrent_runs_in_threads_never_deliver_a_version_twice(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    target, products = make_store(sessions, 60)
    runs = run_together(3, lambda i: ship_everything(database_url, target, f"thread-{i}"))
    assert_delivered_once(sessions, runs, len(products))


def test_concurrent_processes_on_one_sqlite_file_never_deliver_a_version_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    db.migrate(url)
    engine = db.create_engine_for(url)
    sessions = db.session_factory(engine)
    target, products = make_store(sessions, 60)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=ship_in_process, args=(url, target, f"process-{i}", barrier, results))
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    runs = [results.get(timeout=120) for _ in workers]
    assert all(isinstance(run, list) for run in runs), runs
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0
    assert_delivered_once(sessions, runs, len(products))
    engine.dispose()
