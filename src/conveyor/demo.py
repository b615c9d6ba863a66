"""The built-in demo workload: catalog jobs that report progress, retry, and fail for good.

It is engine-only on purpose, so `conveyor demo` runs anywhere without store
credentials. Every workload includes one flaky job (its first attempt fails,
the retry succeeds) and one job that runs out of credits, so the demo always
shows the three endings a real catalog pipeline has.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .app import Conveyor
from .context import JobContext
from .errors import Unrecoverable

DEFAULT_URL = "sqlite:///.conveyor-demo/demo.db"
STEP = 0.25

# CONVEYOR_URL overrides DEFAULT_URL (as for every app); one job per queue per
# worker makes the queues visibly wait their turn.
app = Conveyor(DEFAULT_URL, default_concurrency=1, grace_seconds=5.0)

PRODUCTS = (
    "Blue Widget",
    "Oak Desk Lamp",
    "Linen Throw Pillow",
    "Ceramic Pour-Over Set",
    "Trail Running Shoe",
    "Merino Beanie",
    "Walnut Cutting Board",
    "Solar Garden Light",
)
STORES = ("acme-outdoor", "northwind-home", "blue-harbor")
LANGUAGES = (["de", "fr"], ["es", "it", "nl"], ["ja"])


@app.job("shopify:import:products", queue="imports")
async def import_products(ctx: JobContext, store: str, count: int = 500) -> dict[str, Any]:
    batch = max(1, count // 20)
    for done in range(batch, count + batch, batch):
        await asyncio.sleep(STEP)
        done = min(done, count)
        ctx.progress(done=done, total=count, message=f"Importing products: {done}/{count}")
    ctx.log(f"imported {count} products from {store}")
    return {"store": store, "imported": count}


@app.job("amazon:export:products", queue="exports")
async def export_products(ctx: JobContext, marketplace: str, count: int = 20) -> dict[str, Any]:
    for done in range(1, count + 1):
        name = PRODUCTS[done % len(PRODUCTS)]
        ctx.progress(done=done - 1, total=count, message=f"AI optimizing: {name} ({done}/{count})")
        await asyncio.sleep(STEP)
    ctx.progress(100, f"Exported {count} listings to {marketplace}")
    return {"marketplace": marketplace, "exported": count}


@app.job("translation:ui-labels:bulk", queue="translations")
async def translate_labels(ctx: JobContext, languages: list[str], labels: int = 300) -> dict[str, Any]:
    steps = 20 // len(languages) or 1
    total = steps * len(languages)
    for index, language in enumerate(languages):
        for step in range(1, steps + 1):
            await asyncio.sleep(STEP)
            done = labels * step // steps
            ctx.progress(
                done=index * steps + step,
                total=total,
                message=f"Translating UI labels to {language}: {done}/{labels}",
            )
    return {"languages": languages, "labels": labels}


@app.job("images:optimize:bulk", queue="images")
async def optimize_images(ctx: JobContext, store: str, images: int = 120) -> dict[str, Any]:
    batch = max(1, images // 15)
    for done in range(batch, images + batch, batch):
        await asyncio.sleep(STEP)
        done = min(done, images)
        ctx.progress(done=done, total=images, message=f"Optimizing images: {done}/{images}")
    return {"store": store, "optimized": images}


@app.job("google:feed:sync", queue="feeds", attempts=3, backoff=[1])
async def sync_feed(ctx: JobContext, store: str, products: int = 200) -> dict[str, Any]:
    """Times out on its first attempt, as a busy Merchant Center API does; the retry succeeds."""
    for step in range(1, 11):
        await asyncio.sleep(STEP)
        if ctx.attempt == 1 and step == 6:
            raise ConnectionError("Merchant Center did not answer within 30s (HTTP 504)")
        ctx.progress(
            done=step, total=10, message=f"Syncing feed for {store}: {products * step // 10}/{products}"
        )
    return {"store": store, "synced": products}


@app.job("ai:descriptions:generate", queue="ai")
async def generate_descriptions(ctx: JobContext, store: str, products: int = 50) -> dict[str, Any]:
    """Runs out of AI credits part-way: retrying cannot help, so the job fails at once."""
    for done in range(1, 6):
        await asyncio.sleep(STEP)
        ctx.progress(done=done, total=products, message=f"Writing descriptions: {done}/{products}")
    ctx.log("the AI provider refused the request: no credits left on the account")
    raise Unrecoverable("Insufficient credits")


def workload(size: int) -> list[tuple[str, dict[str, Any]]]:
    """`size` jobs: the flaky and the failing job first, then the others in rotation."""
    rotation: list[tuple[str, dict[str, Any]]] = []
    for i in range(max(0, size - 2)):
        store = STORES[i % len(STORES)]
        kind = i % 4
        if kind == 0:
            rotation.append(("shopify:import:products", {"store": store, "count": 500 - 60 * (i % 5)}))
        elif kind == 1:
            rotation.append(("amazon:export:products", {"marketplace": "amazon.de", "count": 15 + i % 3 * 5}))
        elif kind == 2:
            rotation.append(("translation:ui-labels:bulk", {"languages": LANGUAGES[i % 3], "labels": 300}))
        else:
            rotation.append(("images:optimize:bulk", {"store": store, "images": 90 + 30 * (i % 3)}))
    fixed: list[tuple[str, dict[str, Any]]] = [
        ("google:feed:sync", {"store": STORES[0], "products": 200}),
        ("ai:descriptions:generate", {"store": STORES[1], "products": 50}),
    ]
    return fixed[:size] + rotation
