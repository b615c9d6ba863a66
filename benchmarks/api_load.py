"""The HTTP API under a busy shop's load: reads offered at a fixed rate while event streams are open.

    python benchmarks/api_load.py --backend sqlite --json
    python benchmarks/api_load.py --backend redis --streams 50 --rate 200 --seconds 30

A real `conveyor serve` process answers; a worker process keeps jobs moving
(`--churn` jobs a second, each one added, started and finished, so every open
stream has changes to send); this process opens `--streams` event streams and
offers `--rate` reads a second for `--seconds`, open loop: a read is sent on
time whether or not the earlier ones were answered, as many users would, so a
server that queues shows it in its latencies. The reads mix one job's detail,
a page of the job list and the seed status endpoint.

Two phases in the same run, so the figures compare on one noisy machine:
the same reads with no stream open (the peer), then with the streams open.
Afterwards the streams stay open and idle for a few seconds and the server's
CPU use is read from /proc: what idle streams cost.

Figures: reads answered per second (2xx), their p50, p99 and worst latency,
how many were shed (503, with Retry-After) or failed otherwise, and stream
events delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from _redis import free_port, private_redis
from throughput import Children, drop_conveyor_env, make_app, report

from conveyor.api import Scope, TokenStore

SEED_JOBS = 500
START_TIMEOUT = 30.0
IDLE_SECONDS = 5.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--streams", type=int, default=50, help="event streams open (default 50)")
    parser.add_argument("--rate", type=float, default=200.0, help="reads offered per second (default 200)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase (default 30)")
    parser.add_argument("--churn", type=float, default=20.0, help="jobs a second moving through (default 20)")
    parser.add_argument(
        "--max-in-flight", type=int, default=None, help="the server's --max-in-flight (default: its own)"
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="keep-alive connections the reads share (default 32)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


@contextlib.contextmanager
def store(backend: str) -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-api-", ignore_cleanup_errors=True) as tmp:
        if backend == "redis":
            with private_redis() as url:
                yield url, Path(tmp)
        else:
            yield f"sqlite:///{Path(tmp) / 'jobs.db'}", Path(tmp)


async def seed(url: str) -> list[str]:
    """Finished jobs to read, and the churn's jobs to come."""
    app = make_app(url)
    try:
        ids = await app.enqueue_many("noop", [{} for _ in range(SEED_JOBS)])
        await app.worker(burst=True).run()
        return ids
    finally:
        await app.close()


async def churn(url: str, rate: float, stop: asyncio.Event) -> None:
    """Enqueue `rate` io jobs a second for the worker process: a steady stream of events."""
    app = make_app(url)
    try:
        while not stop.is_set():
            await app.enqueue("io")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1 / rate)
    finally:
        await app.close()


def start_server(
    children: Children, url: str, auth_db: Path, port: int, log: Path, max_in_flight: int | None
) -> subprocess.Popen[bytes]:
    children.env["CONVEYOR_AUTH_DB"] = str(auth_db)
    bound = [] if max_in_flight is None else ["--max-in-flight", str(max_in_flight)]
    proc = children.start(
        [
            sys.executable,
            "-m",
            "conveyor",
            "--url",
            url,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *bound,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),  # uvicorn's access log (a line per read) and any error
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("conveyor serve did not start")
        time.sleep(0.1)


async def hold_streams(base: str, token: str, count: int) -> None:
    """The stream holder process: open `count` streams, say so, count events until SIGTERM.

    In a process of its own, so that reading the streams takes nothing from the
    process that times the reads.
    """
    counted = [0]
    opened = [asyncio.Event() for _ in range(count)]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def hold(client: httpx.AsyncClient, ready: asyncio.Event) -> None:
        async with client.stream("GET", "/api/events") as response:
            ready.set()
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    counted[0] += 1

    limits = httpx.Limits(max_connections=None)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=None, limits=limits) as client:
        holders = [asyncio.create_task(hold(client, ready)) for ready in opened]
        await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in opened)), START_TIMEOUT)
        print("open", flush=True)
        await stop.wait()
        for holder in holders:
            holder.cancel()
        await asyncio.gather(*holders, return_exceptions=True)
    print(counted[0], flush=True)


def start_streams(children: Children, base: str, token: str, count: int) -> subprocess.Popen[bytes]:
    script = [sys.executable, str(Path(__file__).resolve()), "--hold-streams", str(count), base, token]
    proc = children.start(script, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"open":
        raise RuntimeError("the stream holder could not open its streams")
    return proc


def stream_events(children: Children, holder: subprocess.Popen[bytes]) -> int:
    holder.send_signal(signal.SIGTERM)
    out, _ = holder.communicate(timeout=30)
    return int(out.split()[-1])


READS = {
    "job": lambda ids: f"/api/jobs/{random.choice(ids)}",
    "list": lambda ids: "/api/jobs?limit=20",
    "status": lambda ids: "/api/background-jobs/status",
}
"""The reads offered, in turn: one job's detail, a page of the job list, the seed status endpoint."""


async def offer_reads(
    base: str, token: str, ids: list[str], rate: float, seconds: float, connections: int
) -> dict[str, Any]:
    """Open loop: read number n is due at start + n / rate, answered or not.

    `connections` keep-alive connections take the due reads in turn, as a pool of
    browsers would; a read's latency runs from when it was due, so a read that
    waits for a free connection because the server is slow counts that wait. The
    client speaks HTTP/1.1 itself: httpx's pool spends time per request that
    grows with its connections, and under a slow server it, not the server,
    became what was measured.
    """
    host, port = base.removeprefix("http://").split(":")
    due: asyncio.Queue[tuple[float, str] | None] = asyncio.Queue()
    latencies: dict[str, list[float]] = {kind: [] for kind in READS}
    statuses: dict[int, int] = {}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while (item := await due.get()) is not None:
                at, kind = item
                path = READS[kind](ids)
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
                )
                code = await _read_response(reader)
                statuses[code] = statuses.get(code, 0) + 1
                if 200 <= code < 300:
                    latencies[kind].append(time.monotonic() - at)
        finally:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    start = time.monotonic()
    total = int(rate * seconds)
    kinds = list(READS)
    for n in range(total):
        at = start + n / rate
        if (delay := at - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        due.put_nowait((at, kinds[n % len(kinds)]))
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.monotonic() - start
    answered = sum(len(v) for v in latencies.values())
    return {
        "offered": total,
        "answered_per_s": round(answered / elapsed, 1),
        **_spread([t for v in latencies.values() for t in v]),
        "shed_503": statuses.get(503, 0),
        "failed": sum(n for code, n in statuses.items() if not 200 <= code < 300 and code != 503),
        "by_read": {kind: {"answered": len(v), **_spread(v)} for kind, v in latencies.items()},
    }


async def _read_response(reader: asyncio.StreamReader) -> int:
    """One HTTP/1.1 response with a Content-Length (every API answer has one); its status."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    fields = (line.partition(":") for line in head[1:])
    await reader.readexactly(
        next(int(value) for name, _, value in fields if name.lower() == "content-length")
    )
    return int(head[0].split()[1])


def _spread(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies) or [0.0]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(args: argparse.Namespace, url: str, tmp: Path, children: Children) -> dict[str, Any]:
    ids = await seed(url)
    auth_db = tmp / "auth.db"
    token = TokenStore(auth_db).create(scope=Scope.READ, name="bench")[1]
    port = free_port()
    server = start_server(children, url, auth_db, port, tmp / "api.log", args.max_in_flight)
    children.start_worker(url, ["default"], 50, burst=False)
    stop = asyncio.Event()
    churner = asyncio.create_task(churn(url, args.churn, stop))
    base = f"http://127.0.0.1:{port}"
    without = await offer_reads(base, token, ids, args.rate, args.seconds, args.connections)
    holder = await asyncio.to_thread(start_streams, children, base, token, args.streams)
    with_streams = await offer_reads(base, token, ids, args.rate, args.seconds, args.connections)
    stop.set()
    await churner
    await asyncio.sleep(1.0)  # the churn's last jobs finish
    before = cpu_seconds(server.pid)
    await asyncio.sleep(IDLE_SECONDS)
    idle_cpu = (cpu_seconds(server.pid) - before) / IDLE_SECONDS
    events = await asyncio.to_thread(stream_events, children, holder)
    return {
        "backend": args.backend,
        "streams": args.streams,
        "rate": args.rate,
        "seconds": args.seconds,
        "churn_jobs_per_s": args.churn,
        "connections": args.connections,
        "max_in_flight": args.max_in_flight,
        "without_streams": without,
        "with_streams": with_streams,
        "stream_events": events,
        "idle_server_cpu_percent": round(idle_cpu * 100, 1),
    }


def table(result: dict[str, Any]) -> None:
    print(
        f"{result['backend']}: {result['rate']:g} reads/s offered for {result['seconds']:g}s,"
        f" {result['churn_jobs_per_s']:g} jobs/s moving"
    )
    for phase in ("without_streams", "with_streams"):
        r = result[phase]
        label = "no streams" if phase == "without_streams" else f"{result['streams']} streams"
        print(
            f"  {label:>11}: {r['answered_per_s']:7.1f} answered/s  p50 {r['p50_ms']:8.1f} ms"
            f"  p99 {r['p99_ms']:8.1f} ms  max {r['max_ms']:8.1f} ms"
            f"  shed {r['shed_503']}  failed {r['failed']}"
        )
    print(f"  stream events delivered: {result['stream_events']}")
    print(f"  server CPU with {result['streams']} idle streams: {result['idle_server_cpu_percent']}%")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--hold-streams"]:
        asyncio.run(hold_streams(argv[2], argv[3], int(argv[1])))
        return 0
    args = parse_args(argv)
    drop_conveyor_env()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    children = Children(env=dict(os.environ))
    try:
        with store(args.backend) as (url, tmp):
            try:
                result = asyncio.run(measure(args, url, tmp, children))
            finally:
                children.stop_all()
    except KeyboardInterrupt:
        return 130
    report(result, args.json, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
