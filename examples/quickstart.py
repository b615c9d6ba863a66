"""Conveyor at a glance: declare a job, enqueue it, run a worker, read the result."""

import asyncio

from conveyor import Conveyor, JobContext, Unrecoverable

app = Conveyor("sqlite:///quickstart.db")


@app.job("shopify:import:products", queue="imports", priority=2, backoff=[5, 30, 300])
async def import_products(ctx: JobContext, store_id: int, count: int) -> dict[str, int]:
    if store_id <= 0:
        raise Unrecoverable("Invalid Credentials")  # fails at once, no retries
    for done in range(1, count + 1):
        await asyncio.sleep(0.01)  # fetch one product from the store
        ctx.progress(done=done, total=count, message=f"Importing products: {done}/{count}")
    return {"imported": count}


async def main() -> None:
    job = await import_products.enqueue(store_id=1, count=50)
    await import_products.options(priority=1, tenant="store-9").enqueue(store_id=9, count=5)
    await app.worker(burst=True).run()  # drain the queue, then return
    done = await app.get_job(job.id)
    print(done.state.value, done.result, done.progress.message)
    await app.close()


if __name__ == "__main__":
    asyncio.run(main())
