"""A worker killed mid-job on a shared SQLite file: nothing is lost, and every rerun is accounted for.

Four worker processes drain 1,000 jobs; one is SIGKILLed while it holds jobs
and a replacement starts. Delivery is at least once, so the killed attempts
run again once their leases expire. The side record written by the handler
(tests/crash_app.py) is the ground truth for how often each job really ran;
it must match the attempts and WorkerLost errors in the job records exactly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor import AttemptError, Conveyor, Job, JobFilter, JobState
from tests import crash_app

from .crash_support import all_jobs, wait_until, worker_id

pytestmark = pytest.mark.slow

JOBS = 1000
WORKERS = 4
KILL_AFTER_COMPLETED = 150
COMPLETION_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0

Run = tuple[str, int]  # (job id, attempt) as one line of the side record
Spawn = Callable[[], subprocess.Popen[bytes]]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'crash.db'}"


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
        proc = subprocess.Popen([sys.executable, crash_app.__file__, url, str(record_dir)], env=env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def read_runs(*files: Path) -> list[Run]:
    runs = []
    for file in files:
        if file.exists():
            for line in file.read_text().splitlines():
                job_id, attempt = line.split()
                runs.append((job_id, int(attempt)))
    return runs


async def kill_mid_job(
    app: Conveyor, proc: subprocess.Popen[bytes], owner: str, record_dir: Path
) -> set[Run]:
    """SIGKILL the worker while it holds jobs, at a moment when each held attempt has already run.

    A job claimed but not yet started when the kill lands would count as an
    interrupted attempt with no line in the side record, and the exact
    comparison would fail for a reason unrelated to the engine. So the worker
    is frozen (SIGSTOP) and inspected first: while it is frozen neither its
    jobs (their leases outlast the inspection) nor its side record can change,
    and it is killed only if every attempt it holds has recorded its run.
    Returns those attempts.
    """
    record = crash_app.record_path(record_dir, proc.pid)
    for _ in range(500):
        os.kill(proc.pid, signal.SIGSTOP)
        running = await app.list_jobs(JobFilter(states=[JobState.RUNNING]), limit=1000)
        held = {(job.id, job.attempts) for job in running.jobs if job.worker_id == owner}
        if held and held <= set(read_runs(record)):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return held
        os.kill(proc.pid, signal.SIGCONT)
        await asyncio.sleep(0.005)
    pytest.fail("never caught the worker holding only started jobs")


async def test_sigkilled_worker_loses_nothing_and_reruns_only_interrupted_attempts(
    url: str, record_dir: Path, spawn: Spawn
) -> None:
    app = crash_app.make_app(url, record_dir)
    try:
        ids = await app.enqueue_many("record", [{}] * JOBS)
        workers = [spawn() for _ in range(WORKERS)]

        async def completed(n: int) -> bool:
            dead = [w.pid for w in workers if w.poll() is not None]
            assert not dead, f"worker process(es) {dead} exited on their own"
            return (await app.stats()).count(JobState.COMPLETED) >= n

        await wait_until(
            f"{KILL_AFTER_COMPLETED} completed jobs", lambda: completed(KILL_AFTER_COMPLETED), 60
        )
        victim = workers.pop(0)
        killed = await kill_mid_job(app, victim, await worker_id(app, victim), record_dir)
        workers.append(spawn())
        await wait_until(f"all {JOBS} jobs to complete", lambda: completed(JOBS), COMPLETION_TIMEOUT)

        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            assert proc.wait(STOP_TIMEOUT) == 0, f"worker {proc.pid} did not stop cleanly on SIGTERM"

        jobs = await all_jobs(app)
        errors = {job.id: await app.job_errors(job.id) for job in jobs}
    finally:
        await app.close()

    assert sorted(job.id for job in jobs) == sorted(ids)
    assert_every_run_accounted_for(jobs, errors, killed, record_dir)


def assert_every_run_accounted_for(
    jobs: list[Job], errors: dict[str, list[AttemptError]], killed: set[Run], record_dir: Path
) -> None:
    """All completed; each attempt ran exactly once; the reruns are exactly the killed attempts."""
    runs = read_runs(*record_dir.glob("record-*.log"))
    states = Counter(job.state for job in jobs)
    assert states == {JobState.COMPLETED: JOBS}, f"not all completed: {dict(states)}"

    repeated = [run for run, n in Counter(runs).items() if n > 1]
    assert not repeated, f"the same attempt ran more than once: {repeated[:5]}"
    attempts_run: defaultdict[str, list[int]] = defaultdict(list)
    for job_id, attempt in runs:
        attempts_run[job_id].append(attempt)
    assert attempts_run.keys() == {job.id for job in jobs}, "some job never ran"
    for job in jobs:
        ran = sorted(attempts_run[job.id])
        assert ran == list(range(1, job.attempts + 1)), f"job {job.id} has {job.attempts} attempts, ran {ran}"

    lost = {(job_id, e.attempt) for job_id, errs in errors.items() for e in errs if e.type == "WorkerLost"}
    other = [e for errs in errors.values() for e in errs if e.type != "WorkerLost"]
    assert not other, f"unexpected attempt errors: {other[:3]}"
    repeats = len(runs) - JOBS
    interrupted = sum(job.attempts - 1 for job in jobs)
    assert repeats == interrupted == len(lost) == len(killed) > 0
    assert lost == killed, "the attempts recovered as WorkerLost are not the ones the kill interrupted"
