"""Throughput and latency of one Conveyor backend, measured the way a deployment runs it.

    python benchmarks/throughput.py --backend sqlite --jobs 20000 --json
    python benchmarks/throughput.py --workload io            # 2,000 x sleep(10 ms), concurrency 50
    python benchmarks/throughput.py --compare-huey           # also runs benchmarks/peers/huey_sqlite.py
    python benchmarks/throughput.py --backend redis --url redis://127.0.0.1:6379/0 --compare-huey

Without --url, SQLite gets a fresh file in a temp dir and Redis a private
redis-server on a free port (benchmarks/_redis.py), both removed afterwards.
On a Redis given with --url the run works under a fresh key prefix and deletes
its keys at the end; --compare-huey then runs Huey's RedisHuey
(benchmarks/peers/huey_redis.py) on that same server.

Workers run as separate processes (benchmarks/_worker.py), never in this
one: a worker sharing the producer's interpreter and GIL would measure neither.
Rates come from the job records the worker wrote, not from this process's
clock, so process start-up and the final poll are not counted.

CONVEYOR_* environment variables are removed first: they override constructor
arguments (the URL included), and a benchmark must neither be silently retuned
nor pointed at a real store by the host's environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import redis
from _redis import private_redis, server_version

from conveyor import Conveyor, JobFilter, JobState
from conveyor.backends.redis.keys import KeyLayout

HERE = Path(__file__).resolve().parent
WORKER_SCRIPT = HERE / "_worker.py"
HUEY_SCRIPTS = {"sqlite": HERE / "peers" / "huey_sqlite.py", "redis": HERE / "peers" / "huey_redis.py"}

SINGLE_ENQUEUE_JOBS = 5_000
BULK_BATCH = 10_000
LATENCY_SAMPLES = 300
LATENCY_PAUSE = (0.002, 0.008)  # random, so the pauses never fall into step with the worker's polling
POLL = 0.001
PROCESS_TIMEOUT = 300.0
WORKER_READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

IO_SLEEP = 0.01
# Each measurement gets its own queue, so a worker serves only the jobs it is timed on.
QUEUE_PROCESS = "default"
QUEUE_ENQUEUE = "bench-enqueue"
QUEUE_LATENCY = "bench-latency"

WORKLOADS = {
    # workload: (job type, default --jobs, default --concurrency; None = the worker's default)
    "noop": ("noop", 20_000, None),
    "io": ("io", 2_000, 50),
}


def make_app(url: str) -> Conveyor:
    """The benchmark app; _worker.py imports it, so both processes know the same handlers."""
    app = Conveyor(url)

    @app.job("noop", attempts=1)
    async def noop() -> None:
        return None

    @app.job("io", attempts=1)
    async def io() -> None:
        await asyncio.sleep(IO_SLEEP)

    return app


@dataclass
class Children:
    """Worker processes this run started; all are stopped on any exit, Ctrl-C included."""

    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(
        self, cmd: list[str], stdout: int = subprocess.DEVNULL, stderr: int | None = None
    ) -> subprocess.Popen[bytes]:
        """Stdout is this run's report, so children write there only when asked to."""
        # A session of their own: Ctrl-C reaches only this process, which stops children in order.
        proc = subprocess.Popen(cmd, env=self.env, stdout=stdout, stderr=stderr, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start_worker(
        self, url: str, queues: list[str], concurrency: int | None, *, burst: bool
    ) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, str(WORKER_SCRIPT), url, "--queues", ",".join(queues)]
        if concurrency is not None:
            cmd += ["--concurrency", str(concurrency)]
        if burst:
            cmd.append("--burst")
        return self.start(cmd)

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc)


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """Poll rather than wait in a thread: a thread blocked in wait() would stall asyncio.run's exit."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker process {proc.pid} still running after {timeout:g}s")
        await asyncio.sleep(0.05)
    return proc.returncode


async def _wait_until(what: str, check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:g}s")
        await asyncio.sleep(0.02)


async def measure_enqueue(app: Conveyor, job_type: str, n: int) -> float:
    bound = app.job_type(job_type).options(queue=QUEUE_ENQUEUE)
    start = time.perf_counter()
    for _ in range(n):
        await bound.enqueue()
    return n / (time.perf_counter() - start)


async def measure_bulk_enqueue(app: Conveyor, job_type: str, n: int) -> float:
    start = time.perf_counter()
    for offset in range(0, n, BULK_BATCH):
        await app.enqueue_many(job_type, [{}] * min(BULK_BATCH, n - offset))
    return n / (time.perf_counter() - start)


async def measure_processing(
    app: Conveyor, children: Children, url: str, n: int, concurrency: int | None
) -> tuple[float, float]:
    """Drain the bulk-enqueued jobs with one burst worker; returns (jobs/s, seconds)."""
    proc = children.start_worker(url, [QUEUE_PROCESS], concurrency, burst=True)
    code = await _wait_exit(proc, PROCESS_TIMEOUT)
    if code != 0:
        raise RuntimeError(f"burst worker exited with status {code}")
    first_start, last_finish, completed, cursor = float("inf"), 0.0, 0, None
    while True:
        page = await app.list_jobs(JobFilter(queues=[QUEUE_PROCESS]), limit=1000, cursor=cursor)
        for job in page.jobs:
            if job.state is JobState.COMPLETED and job.started_at and job.finished_at:
                completed += 1
                first_start = min(first_start, job.started_at)
                last_finish = max(last_finish, job.finished_at)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    if completed != n:
        raise RuntimeError(f"the burst worker completed {completed} of {n} jobs")
    seconds = last_finish - first_start
    return n / seconds, seconds


async def measure_latency(
    app: Conveyor, children: Children, url: str, job_type: str, concurrency: int | None, drain: int
) -> list[float]:
    """Enqueue-to-start delays (ms) seen by an idle, already running worker, one job at a time.

    The same worker first drains the jobs of the single-enqueue phase, so none
    are left behind in a store given with --url, and so it is warm when timing starts.
    """
    proc = children.start_worker(url, [QUEUE_ENQUEUE, QUEUE_LATENCY], concurrency, burst=False)

    async def registered() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"latency worker exited with status {proc.returncode}")
        return any(w.pid == proc.pid for w in await app.workers())

    async def drained() -> bool:
        return (await app.stats()).count(JobState.COMPLETED, QUEUE_ENQUEUE) == drain

    await _wait_until("the latency worker to start", registered, WORKER_READY_TIMEOUT)
    await _wait_until("the single-enqueue jobs to be processed", drained, PROCESS_TIMEOUT)
    bound = app.job_type(job_type).options(queue=QUEUE_LATENCY)
    samples = []
    for _ in range(LATENCY_SAMPLES):
        job = await bound.enqueue()
        deadline = time.monotonic() + WORKER_READY_TIMEOUT
        while not (record := await app.get_job(job.id)).state.is_finished:
            if time.monotonic() > deadline:
                raise TimeoutError(f"latency job {job.id} not finished after {WORKER_READY_TIMEOUT:g}s")
            await asyncio.sleep(POLL)
        assert record.started_at is not None
        samples.append((record.started_at - record.created_at) * 1000)
        await asyncio.sleep(random.uniform(*LATENCY_PAUSE))
    children.stop(proc)
    return samples


def run_huey_peer(backend: str, url: str, jobs: int, children: Children) -> dict[str, Any]:
    """Huey on the same kind of store: SqliteHuey in its own temp file, or RedisHuey on this Redis."""
    script = HUEY_SCRIPTS[backend]
    cmd = [sys.executable, str(script), "--jobs", str(jobs)]
    if backend == "redis":
        cmd += ["--url", _without_prefix(url), "--workload", "noop"]
    proc = children.start(cmd, subprocess.PIPE)
    out, _ = proc.communicate(timeout=PROCESS_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"{script.name} exited with status {proc.returncode}")
    peer: dict[str, Any] = json.loads(out)
    return peer


async def run(args: argparse.Namespace, url: str, children: Children) -> dict[str, Any]:
    job_type = WORKLOADS[args.workload][0]
    app = make_app(url)
    concurrency = args.concurrency or app.settings.concurrency_for(QUEUE_PROCESS)
    single = min(SINGLE_ENQUEUE_JOBS, args.jobs)
    try:
        await app.backend()  # opened (and migrated) outside every timed section
        _progress(args, f"enqueue: {single:,} jobs, one call each")
        enqueue_rate = await measure_enqueue(app, job_type, single)
        _progress(args, f"bulk enqueue: {args.jobs:,} jobs in batches of {BULK_BATCH:,}")
        bulk_rate = await measure_bulk_enqueue(app, job_type, args.jobs)
        _progress(args, f"process: {args.jobs:,} jobs, one burst worker process")
        process_rate, process_seconds = await measure_processing(
            app, children, url, args.jobs, args.concurrency
        )
        _progress(args, f"latency: {LATENCY_SAMPLES} jobs one at a time on an idle worker")
        latencies = await measure_latency(app, children, url, job_type, args.concurrency, single)
    finally:
        await app.close()
    result: dict[str, Any] = {
        "backend": args.backend,
        "workload": args.workload,
        "jobs": args.jobs,
        "concurrency": concurrency,
        "enqueue_per_s": round(enqueue_rate),
        "enqueue_jobs": single,
        "bulk_enqueue_per_s": round(bulk_rate),
        "bulk_batch": BULK_BATCH,
        "process_per_s": round(process_rate),
        "process_seconds": round(process_seconds, 3),
        "process_measured_by": "job records: first started_at to last finished_at",
        "latency_p50_ms": round(statistics.median(latencies), 2),
        "latency_p99_ms": round(statistics.quantiles(latencies, n=100, method="inclusive")[98], 2),
        "latency_max_ms": round(max(latencies), 2),
        "latency_samples": len(latencies),
        "conveyor": metadata.version("conveyor-jobs"),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    if args.backend == "sqlite":
        result["sqlite_version"] = sqlite3.sqlite_version
    else:
        result["redis_version"] = server_version(_without_prefix(url))
        result["redis_py"] = metadata.version("redis")
    return result


def _progress(args: argparse.Namespace, message: str) -> None:
    if not args.json:
        print(f"... {message}", file=sys.stderr, flush=True)


def print_table(result: dict[str, Any]) -> None:
    width = max(map(len, result))
    for key, value in result.items():
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        print(f"{key:<{width}}  {shown}")


@contextlib.contextmanager
def store_url(args: argparse.Namespace) -> Iterator[str]:
    """The URL to benchmark, and whatever it needs removed afterwards."""
    if args.backend == "redis":
        if args.url is None:
            with private_redis() as url:
                yield url
        else:
            with fresh_prefix(args.url) as url:
                yield url
    elif args.url is not None:
        yield args.url
    else:
        with tempfile.TemporaryDirectory(prefix="conveyor-bench-", ignore_cleanup_errors=True) as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"


@contextlib.contextmanager
def fresh_prefix(url: str) -> Iterator[str]:
    """A key prefix no earlier run used, on a Redis that may hold other data; its keys go afterwards."""
    layout = KeyLayout("bench-" + secrets.token_hex(4))
    try:
        yield f"{url}{'&' if '?' in url else '?'}prefix={layout.prefix}"
    finally:
        with redis.Redis.from_url(url, decode_responses=True) as client:
            keys = [k for k in client.scan_iter(match=layout.base[:-1] + "*", count=1000) if layout.owns(k)]
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])


def _without_prefix(url: str) -> str:
    """The server's URL for clients other than Conveyor's, which do not know `?prefix=`."""
    base, _, query = url.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith("prefix=")]
    return base + ("?" + "&".join(kept) if kept else "")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument(
        "--url",
        help="sqlite: an empty store to use; redis: a server (default: a fresh SQLite file "
        "or a private redis-server, removed afterwards)",
    )
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="noop")
    parser.add_argument("--jobs", type=int, help="noop: 20,000; io: 2,000")
    parser.add_argument("--concurrency", type=int, help="per worker; noop: the worker default; io: 50")
    parser.add_argument(
        "--compare-huey", action="store_true", help="also measure Huey on the same kind of store"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    args = parser.parse_args(argv)
    _, default_jobs, default_concurrency = WORKLOADS[args.workload]
    args.jobs = args.jobs or default_jobs
    args.concurrency = args.concurrency or default_concurrency
    if args.jobs < 1 or (args.concurrency is not None and args.concurrency < 1):
        parser.error("--jobs and --concurrency must be >= 1")
    if args.compare_huey and args.workload != "noop":
        parser.error("--compare-huey measures the noop workload only")
    if args.backend == "redis" and args.url is not None:
        if not args.url.startswith(("redis://", "rediss://", "unix://")):
            parser.error("--backend redis needs a redis://, rediss:// or unix:// --url")
        if "prefix=" in args.url:
            parser.error("give --url without ?prefix=: each run works under a fresh prefix of its own")
    return args


def drop_conveyor_env() -> None:
    """CONVEYOR_* variables override constructor arguments, the URL included (see the docstring)."""
    for name in [n for n in os.environ if n.startswith("CONVEYOR_")]:
        del os.environ[name]


def report(result: dict[str, Any], as_json: bool, table: Callable[[dict[str, Any]], None]) -> None:
    if as_json:
        print(json.dumps(result))
    else:
        table(result)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    drop_conveyor_env()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM as on Ctrl-C
    children = Children(env=dict(os.environ))
    try:
        with store_url(args) as url:
            try:
                result = asyncio.run(run(args, url, children))
                if args.compare_huey:  # after Conveyor's workers are gone, so both runs get the machine
                    _progress(args, f"huey: {args.jobs:,} jobs ({HUEY_SCRIPTS[args.backend].name})")
                    peer = run_huey_peer(args.backend, url, args.jobs, children)
                    result["huey_version"] = peer["version"]
                    result["huey_process_per_s"] = peer["process_per_s"]
                    result["huey_enqueue_per_s"] = peer["enqueue_per_s"]
                    result["ratio_vs_huey"] = round(result["process_per_s"] / peer["process_per_s"], 2)
            finally:
                children.stop_all()  # before the temp dir goes: workers hold the file open
    except KeyboardInterrupt:
        print("interrupted; workers stopped and temp files removed", file=sys.stderr)
        return 130
    report(result, args.json, print_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
