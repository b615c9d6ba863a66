"""Crashes on the Redis backend: nothing is lost, and every repeated or spent attempt is accounted for.

Three worker processes drain 5,000 jobs from a real redis-server with AOF
(`appendfsync always`) and 2-second leases, while either (a) one worker after
another is SIGKILLed mid-job and replaced, or (b) redis-server itself is
SIGKILLed and restarted on the same port and folder. Delivery is at least
once, so interrupted attempts run again once their leases expire.

The handlers' side record (tests/crash_redis_app.py) is the ground truth for
how often each job ran; the backend's record of the claims each worker
received tells apart the one kind of spent attempt that never runs: a claim
Redis executed and made durable but whose reply died with the server (the
Redis backend documents it: the attempt counts and comes back as WorkerLost
when its lease expires). So the exact equation in both tests is

    attempts counted - jobs  ==  reruns (side record)  +  claims never received

and in (a), where Redis never dies, the second term must be zero.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor import AttemptError, BackendError, Conveyor, Job, JobFilter, JobState
from tests import crash_redis_app
from tests.redis_server import RedisServer

from .crash_support import all_jobs, wait_until, worker_id

pytestmark = pytest.mark.slow

JOBS = 5000
WORKERS = 3
KILL_EVERY = 2.5  # seconds between worker kills in (a)
MAX_KILLS = 6
MIN_KILLS = 3
KILLS_STOP_AT = 0.8  # no kills once this share of the jobs completed: every kill must interrupt work
REDIS_CRASHES = ((0.3, 2.5), (0.65, 0.0))  # (share completed, seconds down): leases expire in the first
RECOVERY_WINDOW = crash_redis_app.LEASE_SECONDS + 3.0  # a lost claim's lease expires and is recovered
COMPLETION_TIMEOUT = 80.0
STOP_TIMEOUT = 30.0
FREEZE_SETTLE = 0.05  # lets Redis answer what a frozen worker sent before it froze

Run = tuple[str, int]  # (job id, attempt) as one line of a side record
Spawn = Callable[[], subprocess.Popen[bytes]]


class CrashableRedis(RedisServer):
    def crash(self) -> None:
        """SIGKILL: no shutdown, no final AOF rewrite, connections cut mid-reply."""
        assert self._process is not None
        self._process.kill()
        self._process.wait()
        self._process = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CrashableRedis]:
    if not RedisServer.available():
        pytest.fail("redis-server is not installed: run the suite through ./scripts/test, which installs it")
    folder = tmp_path / "redis"
    folder.mkdir()
    redis_server = CrashableRedis(folder, appendonly=True)
    redis_server.start()
    yield redis_server
    redis_server.stop()


@pytest.fixture
def url(server: CrashableRedis) -> str:
    return server.url("crash" + secrets.token_hex(4))


@pytest.fixture
def record_dir(tmp_path: Path) -> Path:
    path = tmp_path / "records"
    path.mkdir()
    return path


@pytest.fixture
def spawn(url: str, record_dir: Path) -> Iterator[Spawn]:
    """Worker processes; whatever still runs when the test ends (failed or not) is killed."""
    procs: list[subprocess.Popen[bytes]] = []
    # CONVEYOR_* variables override constructor settings; the lease must be the test's own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}

    def start() -> subprocess.Popen[bytes]:
        cmd = [sys.executable, crash_redis_app.__file__, url, str(record_dir)]
        proc = subprocess.Popen(cmd, env=env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)  # a test failing mid-freeze leaves one stopped
            proc.kill()
            proc.wait()


def read_records(*files: Path) -> list[Run]:
    runs = []
    for file in files:
        if file.exists():
            for line in file.read_text().splitlines():
                job_id, attempt = line.split()
                runs.append((job_id, int(attempt)))
    return runs


async def completed(app: Conveyor, workers: list[subprocess.Popen[bytes]]) -> int:
    """Completed jobs, or -1 while Redis is unreachable (the caller keeps waiting)."""
    dead = [w.pid for w in workers if w.poll() is not None]
    assert not dead, f"worker process(es) {dead} exited on their own"
    try:
        return (await app.stats()).count(JobState.COMPLETED)
    except BackendError:
        return -1


async def held_by(app: Conveyor, owner: str) -> set[Run]:
    running: list[Job] = []
    cursor = None
    while True:
        page = await app.list_jobs(JobFilter(states=[JobState.RUNNING]), limit=1000, cursor=cursor)
        running += page.jobs
        if page.next_cursor is None:
            return {(job.id, job.attempts) for job in running if job.worker_id == owner}
        cursor = page.next_cursor


async def kill_mid_job(
    app: Conveyor, proc: subprocess.Popen[bytes], owner: str, record_dir: Path
) -> set[Run]:
    """SIGKILL the worker while it holds jobs, at a moment when each held attempt has already run.

    As in test_crash_sqlite.py: a job claimed but not yet started when the kill
    lands would be an interrupted attempt with no line in the side record. So
    the worker is frozen (SIGSTOP) and inspected first; while it is frozen its
    side records cannot change and its leases (2 s) outlast the inspection.
    A fetch it sent just before freezing may still run in Redis, so the jobs
    it holds are read twice, a moment apart, and must agree. Returns them.
    """
    runs = crash_redis_app.runs_path(record_dir, proc.pid)
    for _ in range(200):
        os.kill(proc.pid, signal.SIGSTOP)
        await asyncio.sleep(FREEZE_SETTLE)
        held = await held_by(app, owner)
        if held and held <= set(read_records(runs)) and held == await held_by(app, owner):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return held
        os.kill(proc.pid, signal.SIGCONT)
        await asyncio.sleep(0.01)
    pytest.fail("never caught the worker holding only started jobs")


async def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        code = await asyncio.to_thread(proc.wait, STOP_TIMEOUT)
        assert code == 0, f"worker {proc.pid} did not stop cleanly on SIGTERM"


async def test_sigkilled_workers_lose_nothing_and_rerun_only_interrupted_attempts(
    url: str, record_dir: Path, spawn: Spawn
) -> None:
    app = crash_redis_app.make_app(url, record_dir)
    killed: set[Run] = set()
    kills = 0
    try:
        ids = await app.enqueue_many("record", [{}] * JOBS)
        workers = [spawn() for _ in range(WORKERS)]
        deadline = time.monotonic() + COMPLETION_TIMEOUT
        last_kill = time.monotonic()
        while (done := await completed(app, workers)) < JOBS:
            if time.monotonic() > deadline:
                pytest.fail(f"{done} of {JOBS} jobs completed after {COMPLETION_TIMEOUT:g}s")
            if (
                kills < MAX_KILLS
                and done < JOBS * KILLS_STOP_AT
                and time.monotonic() - last_kill > KILL_EVERY
            ):
                victim = workers.pop(0)  # the oldest, so it is registered and busy
                killed |= await kill_mid_job(app, victim, await worker_id(app, victim), record_dir)
                workers.append(spawn())
                kills += 1
                last_kill = time.monotonic()
            await asyncio.sleep(0.05)
        await stop_workers(workers)
        jobs = await all_jobs(app)
        errors = {job.id: await app.job_errors(job.id) for job in jobs}
    finally:
        await app.close()

    assert kills >= MIN_KILLS, f"only {kills} kills before the jobs ran out"
    assert sorted(job.id for job in jobs) == sorted(ids)
    rerun, never_received = assert_every_attempt_accounted_for(jobs, errors, record_dir)
    assert not never_received, f"attempts counted but never received, with Redis up: {never_received}"
    assert rerun == killed, "the attempts run again are not the ones the kills interrupted"


async def test_redis_sigkilled_mid_run_loses_nothing_and_every_spent_attempt_is_accounted_for(
    server: CrashableRedis, url: str, record_dir: Path, spawn: Spawn
) -> None:
    app = crash_redis_app.make_app(url, record_dir)
    outages: list[tuple[float, float]] = []  # (killed at, answering again by)
    try:
        ids = await app.enqueue_many("record", [{}] * JOBS)
        workers = [spawn() for _ in range(WORKERS)]
        started = time.monotonic()
        for share, down_for in REDIS_CRASHES:

            async def reached(share: float = share) -> bool:
                return await completed(app, workers) >= JOBS * share

            await wait_until(f"{share:.0%} of the jobs to complete", reached, COMPLETION_TIMEOUT)
            killed_at = time.time()
            server.crash()
            await asyncio.sleep(down_for)
            await asyncio.to_thread(server.start)
            outages.append((killed_at, time.time()))

        async def all_done() -> bool:
            return await completed(app, workers) == JOBS

        remaining = COMPLETION_TIMEOUT - (time.monotonic() - started)
        await wait_until(f"all {JOBS} jobs to complete", all_done, remaining)
        await stop_workers(workers)
        jobs = await all_jobs(app)
        errors = {job.id: await app.job_errors(job.id) for job in jobs}
    finally:
        await app.close()

    assert sorted(job.id for job in jobs) == sorted(ids)
    _, never_received = assert_every_attempt_accounted_for(jobs, errors, record_dir)
    # A claim lost with its reply is one Redis executed just before it died: its lease
    # (from then) expires, and it is recovered once Redis is back, soon after the test saw
    # it answer (a worker may reconnect a moment before the test's own ping does), never at
    # another time.
    recovered_at = {(job_id, e.attempt): e.at for job_id, errs in errors.items() for e in errs}
    for attempt in never_received:
        at = recovered_at[attempt]
        assert any(killed <= at <= back + RECOVERY_WINDOW for killed, back in outages), (
            f"attempt {attempt} was never received, yet recovered at {at}, outside every outage "
            f"(killed at, answering by): {outages}"
        )
    fetches_per_crash = WORKERS * crash_redis_app.CONCURRENCY
    assert len(never_received) <= fetches_per_crash * len(REDIS_CRASHES)


def assert_every_attempt_accounted_for(
    jobs: list[Job], errors: dict[str, list[AttemptError]], record_dir: Path
) -> tuple[set[Run], set[Run]]:
    """All completed; each attempt ran at most once; every spent attempt is either rerun or never received.

    Returns (interrupted attempts that ran, attempts counted that no worker received).
    """
    runs = read_records(*record_dir.glob("runs-*.log"))
    claims = read_records(*record_dir.glob("claims-*.log"))
    states = Counter(job.state for job in jobs)
    assert states == {JobState.COMPLETED: JOBS}, f"not all completed: {dict(states)}"

    repeated = [run for run, n in Counter(runs).items() if n > 1]
    assert not repeated, f"the same attempt ran more than once: {repeated[:5]}"
    twice = [claim for claim, n in Counter(claims).items() if n > 1]
    assert not twice, f"the same attempt was claimed twice: {twice[:5]}"
    ran = set(runs)
    assert ran == set(claims), "a received claim never ran, or a run was never claimed"

    counted = {(job.id, n) for job in jobs for n in range(1, job.attempts + 1)}
    finals = {(job.id, job.attempts) for job in jobs}
    assert ran <= counted, f"runs of attempts Redis never counted: {sorted(ran - counted)[:5]}"
    assert finals <= ran, f"completed without running: {sorted(finals - ran)[:5]}"

    other = [e for errs in errors.values() for e in errs if e.type != "WorkerLost"]
    assert not other, f"unexpected attempt errors: {other[:3]}"
    lost = Counter((job_id, e.attempt) for job_id, errs in errors.items() for e in errs)
    interrupted = counted - finals
    assert set(lost) == interrupted, "interrupted attempts and WorkerLost errors differ"
    assert all(n == 1 for n in lost.values()), "an attempt was recovered twice"

    rerun, never_received = interrupted & ran, interrupted - ran
    repeats = len(runs) - JOBS
    assert repeats == len(rerun)
    assert sum(job.attempts - 1 for job in jobs) == repeats + len(never_received)
    print(f"reruns: {repeats}; attempts counted but never received: {len(never_received)}")
    return rerun, never_received
