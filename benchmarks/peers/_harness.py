"""What every peer script shares, so that each engine is timed the same way.

    python benchmarks/peers/<engine>_redis.py --url redis://127.0.0.1:PORT/0 --workload noop
    -> one JSON object on stdout

Workloads:

- noop: JOBS["noop"] jobs that do nothing are enqueued one call each (timed:
  `enqueue_per_s`), then one worker process drains them (`process_per_s`).
- io: JOBS["io"] jobs sleeping IO_SLEEP each, drained at concurrency IO_CONCURRENCY
  or the engine's closest equivalent; the ceiling is IO_CONCURRENCY / IO_SLEEP.
- latency: single jobs sent to an idle, already running worker, one at a
  time; enqueue -> start delay (`latency_p50_ms`, `latency_p99_ms`).

Engines keep different records (or none) of when a job started and finished,
so the handlers keep their own: each job gets its number as its one argument,
and each run appends `number start end` (time.time(), fixed width) to one
file, one O_APPEND write (atomic between processes, about a microsecond).
Rates are from the first start to the last end, so worker start-up is not
counted. The file's size tells the producer, without asking the engine, when
about all jobs ran; the numbers tell it exactly, and reveal a job run twice
(at-least-once delivery), reported as `repeats`.

The worker runs in a child process (`--worker`, in a session of its own) that
kills its whole process group if the producer vanishes; the producer stops it
with SIGTERM, then SIGKILL, on any exit. Peers leave their keys in Redis: give
each run a server of its own, as run.py does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

RECORD_ENV = "BENCH_RECORD_FILE"
LINE = len(f"{0:9d} {0:17.6f} {0:17.6f}\n")  # bytes per record; fixed until the year 2286
JOBS = {"noop": 20_000, "io": 2_000}
LATENCY_SAMPLES = 200
LATENCY_WARMUP = 5
LATENCY_PAUSE = (0.002, 0.008)  # random, so samples never fall into step with a worker's polling
IO_SLEEP = 0.01
IO_CONCURRENCY = 50
WORKLOADS = ("noop", "io", "latency")
DRAIN_TIMEOUT = 240.0
READY_TIMEOUT = 60.0  # worker start-up, e.g. Celery's mingle or 50 RQ processes
SAMPLE_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
SAMPLE_POLL = 0.001  # only decides how soon the next sample goes: the worker stamps the start
DRAIN_POLL = 0.02
PARENT_CHECK_INTERVAL = 0.5

_record_fd: tuple[int, int] | None = None  # (pid, fd), reopened in a forked child that never wrote


def record(number: int, start: float) -> None:
    """Called by every handler as it returns: one line per run, `start` taken as it began."""
    global _record_fd
    end = time.time()
    if _record_fd is None or _record_fd[0] != os.getpid():
        fd = os.open(os.environ[RECORD_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _record_fd = (os.getpid(), fd)
    os.write(_record_fd[1], f"{number:9d} {start:17.6f} {end:17.6f}\n".encode())


class Peer(Protocol):
    """One engine, as its peer script drives it."""

    name: str
    version: str

    def settings(self, workload: str) -> str:
        """How the worker runs this workload (pool, concurrency), for the table."""
        ...

    async def enqueue(self, kind: str, number: int) -> None:
        """Send one job of handler `kind` ("noop" or "io") with argument `number`, one call."""
        ...

    async def close(self) -> None: ...

    def serve(self, workload: str) -> None:
        """Run the engine's worker in this process until SIGTERM."""
        ...


def main(make_peer: Callable[[str], Peer], argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="a Redis server for this run alone")
    parser.add_argument("--workload", choices=WORKLOADS, default="noop")
    parser.add_argument("--jobs", type=int, help=f"noop: {JOBS['noop']:,}; io: {JOBS['io']:,}")
    parser.add_argument("--samples", type=int, default=LATENCY_SAMPLES, help="latency samples")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    peer = make_peer(args.url)
    if args.worker:
        threading.Thread(target=_die_with_parent, args=(os.getppid(),), daemon=True).start()
        peer.serve(args.workload)
        return 0
    jobs = args.jobs or JOBS.get(args.workload, 0)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up on SIGTERM as on Ctrl-C
    try:
        result = asyncio.run(_measure(peer, args.url, args.workload, jobs, args.samples))
    except KeyboardInterrupt:
        print("interrupted; worker stopped and temp files removed", file=sys.stderr)
        return 130
    print(json.dumps(result))
    return 0


def _die_with_parent(parent_pid: int) -> None:
    """A producer killed outright must not leave a worker (or its children) running."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_INTERVAL)
    os.killpg(os.getpgrp(), signal.SIGKILL)


async def _measure(peer: Peer, url: str, workload: str, jobs: int, samples: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "peer": peer.name,
        "version": peer.version,
        "workload": workload,
        "settings": peer.settings(workload),
    }
    with tempfile.TemporaryDirectory(prefix="peer-bench-", ignore_cleanup_errors=True) as tmp:
        records = Path(tmp) / "records.log"
        records.touch()
        log = Path(tmp) / "worker.log"
        try:
            if workload == "latency":
                with _worker(peer, url, workload, records, log) as proc:
                    latencies = await _latencies(peer, proc, records, samples)
                result |= {
                    "samples": len(latencies),
                    "latency_p50_ms": round(statistics.median(latencies), 2),
                    "latency_p99_ms": round(
                        statistics.quantiles(latencies, n=100, method="inclusive")[98], 2
                    ),
                }
            else:
                kind = "io" if workload == "io" else "noop"
                start = time.perf_counter()
                for number in range(jobs):
                    await peer.enqueue(kind, number)
                enqueue_rate = jobs / (time.perf_counter() - start)
                with _worker(peer, url, workload, records, log) as proc:
                    await _wait_for_runs(proc, records, jobs, DRAIN_TIMEOUT, DRAIN_POLL)
                    while len({number for number, _, _ in _read(records)}) < jobs:
                        await _wait_for_runs(proc, records, _recorded(records) + 1, DRAIN_TIMEOUT, DRAIN_POLL)
                runs = _read(records)
                seconds = max(end for *_, end in runs) - min(begin for _, begin, _ in runs)
                result |= {
                    "jobs": jobs,
                    "enqueue_per_s": round(enqueue_rate),
                    "process_per_s": round(jobs / seconds),
                    "process_seconds": round(seconds, 3),
                    "repeats": len(runs) - jobs,
                }
        finally:
            await peer.close()
    return result


@contextlib.contextmanager
def _worker(
    peer: Peer, url: str, workload: str, records: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The worker process; its banners and logs go to `log`, shown if the run fails."""
    script = sys.modules["__main__"].__file__
    assert script is not None
    cmd = [sys.executable, script, "--worker", "--url", url, "--workload", workload]
    env = {**os.environ, RECORD_ENV: str(records)}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, start_new_session=True)
    try:
        yield proc
    except BaseException:
        _stop(proc)
        tail = log.read_text(errors="replace")[-3000:]
        print(f"--- {peer.name} worker output (tail) ---\n{tail}", file=sys.stderr)
        raise
    _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the worker's process group (pools, forked children), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # children the worker did not wait for


async def _wait_for_runs(
    proc: subprocess.Popen[bytes], records: Path, n: int, timeout: float, poll: float
) -> None:
    deadline = time.monotonic() + timeout
    while _recorded(records) < n:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{_recorded(records)} of {n} runs recorded after {timeout:g}s")
        await asyncio.sleep(poll)


def _recorded(records: Path) -> int:
    return os.stat(records).st_size // LINE


async def _latencies(peer: Peer, proc: subprocess.Popen[bytes], records: Path, samples: int) -> list[float]:
    """Enqueue -> start delays (ms); the warm-up jobs wait out the worker's start-up."""
    latencies: list[float] = []
    for i in range(LATENCY_WARMUP + samples):
        before = _recorded(records)
        sent = time.time()
        await peer.enqueue("noop", i)
        timeout = READY_TIMEOUT if i == 0 else SAMPLE_TIMEOUT
        await _wait_for_runs(proc, records, before + 1, timeout, SAMPLE_POLL)
        if i >= LATENCY_WARMUP:
            _, started, _ = _read(records)[-1]
            latencies.append((started - sent) * 1000)
        await asyncio.sleep(random.uniform(*LATENCY_PAUSE))
    return latencies


def _read(records: Path) -> list[tuple[int, float, float]]:
    runs = []
    for line in records.read_text().splitlines():
        number, begin, end = line.split()
        runs.append((int(number), float(begin), float(end)))
    return runs
